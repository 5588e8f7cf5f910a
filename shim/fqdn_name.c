/* Validates INITD_FQDN with the same rules as initd/fqdn.py's resolve():
 * dot-separated labels of 1-63 letters, digits and '-', no label starting or
 * ending with '-', at most 64 characters in all (the kernel's nodename limit).
 * Anything else makes the library pass every call through to libc, so a bad
 * value can never hand an application a name the kernel would refuse. */
#include "fqdn_name.h"

#include <string.h>

#define LABEL_MAX 63 /* RFC 1035 2.3.4 */

static int label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-';
}

size_t fqdn_name_check(const char *value)
{
    if (value == NULL)
        return 0;
    /* strnlen: never read past FQDN_NAME_MAX + 1 of a huge variable. */
    size_t len = strnlen(value, FQDN_NAME_MAX + 1);
    if (len == 0 || len > FQDN_NAME_MAX)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && value[i] != '.') {
            if (!label_char(value[i]))
                return 0;
            continue;
        }
        /* value[start..i) is one label. */
        size_t label_len = i - start;
        if (label_len == 0 || label_len > LABEL_MAX)
            return 0;
        if (value[start] == '-' || value[i - 1] == '-')
            return 0;
        start = i + 1;
    }
    return len;
}

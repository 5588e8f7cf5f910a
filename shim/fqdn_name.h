/* The name the FQDN hooks report: checked once, at load time. */
#ifndef INITD_FQDN_NAME_H
#define INITD_FQDN_NAME_H

#include <stddef.h>

/* The kernel's limit for a nodename (__NEW_UTS_LEN), not counting the NUL. */
#define FQDN_NAME_MAX 64

/* Length of VALUE if it is a hostname the hooks may report, else 0 (NULL,
 * empty, too long, or not a DNS name, e.g. an unreplaced "{hostname}"). */
size_t fqdn_name_check(const char *value);

#endif

/* LD_PRELOAD hooks that make gethostname() and uname() report INITD_FQDN.
 *
 * Three entry points, because each is reached on its own:
 *  - uname(): glibc's gethostname() calls its internal __uname, not this
 *    symbol, so hooking uname alone would not change gethostname();
 *  - gethostname(): what most programs (Python's socket.gethostname, Perl,
 *    Ruby, hostname(1)) call;
 *  - __gethostname_chk(): what a program built with -O2 -D_FORTIFY_SOURCE
 *    calls instead of gethostname() when the buffer size is known.
 *
 * INITD_FQDN is read once, in the constructor, into a static buffer; after
 * that the hooks only read it: no allocation, no locks, no lazy dlsym, so they
 * are safe from any thread and from a signal handler (they are as
 * async-signal-safe as uname(2)). errno is only written on failure.
 *
 * With INITD_FQDN unset or invalid every call goes to the next definition
 * (libc's, or another preloaded library's) unchanged.
 */
/* The fortified inline gethostname() of <bits/unistd.h> would clash with the
 * definition below. */
#undef _FORTIFY_SOURCE

#include "fqdn_name.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(((struct utsname *)0)->nodename) > FQDN_NAME_MAX,
               "utsname.nodename must hold FQDN_NAME_MAX chars and a NUL");

/* glibc's, exported but not declared in any header (debug/chk_fail.c). */
extern void __chk_fail(void) __attribute__((noreturn));
int __gethostname_chk(char *buf, size_t len, size_t buflen);

/* Written once by the constructor, read-only afterwards. */
static char fqdn[FQDN_NAME_MAX + 1];
static size_t fqdn_len; /* 0: pass every call through */

static int (*next_uname)(struct utsname *);
static int (*next_gethostname)(char *, size_t);
static int (*next_gethostname_chk)(char *, size_t, size_t);

__attribute__((constructor)) static void fqdn_init(void)
{
    /* dlsym may set errno; the program's errno is none of our business. */
    int saved_errno = errno;
    next_uname = (int (*)(struct utsname *))dlsym(RTLD_NEXT, "uname");
    next_gethostname = (int (*)(char *, size_t))dlsym(RTLD_NEXT, "gethostname");
    next_gethostname_chk =
        (int (*)(char *, size_t, size_t))dlsym(RTLD_NEXT, "__gethostname_chk");
    const char *value = getenv("INITD_FQDN");
    size_t len = fqdn_name_check(value);
    if (len > 0) {
        memcpy(fqdn, value, len);
        fqdn[len] = '\0';
        fqdn_len = len;
    }
    errno = saved_errno;
}

/* glibc 2.36 sysdeps/unix/sysv/linux/gethostname.c, byte for byte: copy as
 * much of name + NUL as fits (a short buffer gets a truncated name without a
 * NUL), then fail with ENAMETOOLONG if it did not all fit; len 0 copies
 * nothing and fails. */
static int copy_hostname(char *buf, size_t len, const char *name, size_t name_len)
{
    size_t need = name_len + 1;
    size_t n = len < need ? len : need;
    if (n > 0)
        memcpy(buf, name, n);
    if (need > len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* The next uname, or the system call itself when called before the
 * constructor ran (from another preloaded library's constructor). */
static int pass_uname(struct utsname *u)
{
    if (next_uname != NULL)
        return next_uname(u);
    return (int)syscall(SYS_uname, u);
}

static int pass_gethostname(char *buf, size_t len)
{
    if (next_gethostname != NULL)
        return next_gethostname(buf, len);
    struct utsname u;
    if (pass_uname(&u) != 0)
        return -1;
    return copy_hostname(buf, len, u.nodename, strlen(u.nodename));
}

EXPORT int uname(struct utsname *u)
{
    int ret = pass_uname(u);
    if (ret == 0 && fqdn_len > 0) {
        /* Zero the rest of the field as the kernel does (sethostname). */
        memcpy(u->nodename, fqdn, fqdn_len);
        memset(u->nodename + fqdn_len, 0, sizeof(u->nodename) - fqdn_len);
    }
    return ret;
}

EXPORT int gethostname(char *buf, size_t len)
{
    if (fqdn_len == 0)
        return pass_gethostname(buf, len);
    return copy_hostname(buf, len, fqdn, fqdn_len);
}

/* glibc debug/gethostname_chk.c: LEN larger than the real buffer is a
 * detected overflow, reported and aborted like any other. */
EXPORT int __gethostname_chk(char *buf, size_t len, size_t buflen)
{
    if (fqdn_len == 0 && next_gethostname_chk != NULL)
        return next_gethostname_chk(buf, len, buflen);
    if (len > buflen)
        __chk_fail();
    if (fqdn_len == 0)
        return pass_gethostname(buf, len);
    return copy_hostname(buf, len, fqdn, fqdn_len);
}

/* Probe for the FQDN library tests: prints what gethostname() and uname()
 * return, byte for byte, so a run through the library can be compared with a
 * run of the real libc on a real hostname of the same length.
 *
 * Built by tests/integration/test_fqdn_shim.py at -O0, at -O2
 * -D_FORTIFY_SOURCE=2 (gethostname then compiles to __gethostname_chk) and
 * -static.  Usage:
 *   probe gethostname LEN...  one line per LEN: ret, errno, the whole buffer
 *   probe uname               ret, errno, every field, nodename's 65 bytes
 *   probe name                gethostname(buf, 256) -> "name=..."
 *   probe ids                 real and effective uid (setuid test)
 *   probe overflow LEN        gethostname into a 64-byte buffer claiming LEN
 *   probe signal              gethostname + uname from a SIGUSR1 handler
 *   probe threads             8 threads x 20000 calls agree with the first
 */
#define _GNU_SOURCE /* utsname.domainname */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define BUF_SIZE 300
#define FILL 0xAA
/* Any value a correct implementation leaves alone on success. */
#define SENTINEL_ERRNO EXDEV

static void print_hex(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static int do_gethostname(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        /* A stack array of known size: with _FORTIFY_SOURCE the compiler
         * routes this call through __gethostname_chk(buf, len, 300). */
        char buf[BUF_SIZE];
        size_t len = strtoul(argv[i], NULL, 10);
        memset(buf, FILL, sizeof(buf));
        errno = SENTINEL_ERRNO;
        int ret = gethostname(buf, len);
        int err = errno;
        printf("gethostname len=%zu ret=%d errno=%d buf=", len, ret, err);
        print_hex((unsigned char *)buf, sizeof(buf));
        printf("\n");
    }
    return 0;
}

static int do_uname(void)
{
    struct utsname u;
    memset(&u, FILL, sizeof(u));
    errno = SENTINEL_ERRNO;
    int ret = uname(&u);
    int err = errno;
    printf("uname ret=%d errno=%d sysname=%s nodename=%s release=%s "
           "version=%s machine=%s domainname=%s nodebytes=",
           ret, err, u.sysname, u.nodename, u.release, u.version, u.machine,
           u.domainname);
    print_hex((unsigned char *)u.nodename, sizeof(u.nodename));
    printf("\n");
    return 0;
}

static int do_name(void)
{
    char buf[256];
    if (gethostname(buf, sizeof(buf)) != 0) {
        perror("gethostname");
        return 1;
    }
    printf("name=%s\n", buf);
    return 0;
}

static int do_overflow(const char *arg)
{
    char buf[64];
    size_t len = strtoul(arg, NULL, 10);
    /* With _FORTIFY_SOURCE and len > 64 glibc aborts in __chk_fail. */
    int ret = gethostname(buf, len);
    printf("overflow ret=%d\n", ret);
    return 0;
}

static volatile sig_atomic_t handler_ok;

static void on_usr1(int sig)
{
    (void)sig;
    char buf[128];
    struct utsname u;
    int saved = errno;
    errno = SENTINEL_ERRNO;
    if (gethostname(buf, sizeof(buf)) == 0 && uname(&u) == 0
        && errno == SENTINEL_ERRNO && strcmp(buf, u.nodename) == 0)
        handler_ok = 1;
    errno = saved;
}

static int do_signal(void)
{
    char buf[128];
    if (signal(SIGUSR1, on_usr1) == SIG_ERR || raise(SIGUSR1) != 0)
        return 1;
    if (gethostname(buf, sizeof(buf)) != 0)
        return 1;
    printf("signal ok=%d name=%s\n", (int)handler_ok, buf);
    return 0;
}

static char expected[128];

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        char buf[128];
        struct utsname u;
        if (gethostname(buf, sizeof(buf)) != 0 || strcmp(buf, expected) != 0)
            return (void *)1;
        if (uname(&u) != 0 || strcmp(u.nodename, expected) != 0)
            return (void *)1;
    }
    return NULL;
}

static int do_threads(void)
{
    pthread_t t[8];
    int bad = 0;
    if (gethostname(expected, sizeof(expected)) != 0)
        return 1;
    for (int i = 0; i < 8; i++)
        if (pthread_create(&t[i], NULL, hammer, NULL) != 0)
            return 1;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    printf("threads bad=%d name=%s\n", bad, expected);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    /* Line-buffered so a crash mid-way still shows what ran. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "gethostname") == 0)
        return do_gethostname(argc, argv);
    if (strcmp(argv[1], "uname") == 0)
        return do_uname();
    if (strcmp(argv[1], "name") == 0)
        return do_name();
    if (strcmp(argv[1], "ids") == 0) {
        printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
        return 0;
    }
    if (strcmp(argv[1], "overflow") == 0 && argc == 3)
        return do_overflow(argv[2]);
    if (strcmp(argv[1], "signal") == 0)
        return do_signal();
    if (strcmp(argv[1], "threads") == 0)
        return do_threads();
usage:
    fprintf(stderr, "usage: probe gethostname LEN...|uname|name|ids|"
                    "overflow LEN|signal|threads\n");
    return 2;
}

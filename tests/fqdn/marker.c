/* A second LD_PRELOAD library that only says it was loaded: the tests put it
 * in LD_PRELOAD first to show the FQDN library is added after it, not in its
 * place. */
#include <unistd.h>

__attribute__((constructor)) static void marker_loaded(void)
{
    static const char msg[] = "marker preload loaded\n";
    /* write(2), not stdio: nothing to flush, safe this early. */
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
        return;
}

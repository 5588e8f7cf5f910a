/*
 * sigecho: the app for the signal benchmarks.
 *
 * usage: sigecho FIFO [SIGNUM...]
 *
 * Opens FIFO for writing, installs a handler for each SIGNUM that writes the
 * signal number as one byte, writes 'R' (ready), then waits forever. The
 * harness times kill(init) -> that byte. Signals not listed keep their
 * default action, so with no SIGNUM this is an idle app that dies at once on
 * SIGTERM (the memory and shutdown benchmarks).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int out = -1;

static void on_signal(int sig)
{
    unsigned char byte = (unsigned char)sig;
    /* write(2) is async-signal-safe; a failed write only loses a sample,
     * which the harness sees as a timeout. */
    if (write(out, &byte, 1) < 0)
        _exit(3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sigecho FIFO [SIGNUM...]\n");
        return 2;
    }
    out = open(argv[1], O_WRONLY | O_CLOEXEC);
    if (out < 0) {
        perror(argv[1]);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 2; i < argc; i++)
        if (sigaction(atoi(argv[i]), &sa, NULL) < 0) {
            perror("sigaction");
            return 1;
        }
    unsigned char ready = 'R';
    if (write(out, &ready, 1) != 1)
        return 1;
    for (;;)
        pause();
}

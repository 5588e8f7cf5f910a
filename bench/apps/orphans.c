/*
 * orphans: the app for the zombie-reaping benchmark.
 *
 * usage: orphans FIFO COUNT
 *
 * Makes COUNT orphans as fast as it can: fork a middle child, which forks a
 * grandchild and exits at once (the grandchild exits at once too); reap the
 * middle. Each grandchild is re-parented to the namespace's PID 1, which must
 * reap it. Then writes "ELAPSED_NS RETRIES\n" to FIFO (RETRIES: forks that
 * failed with EAGAIN because too many unreaped pids were held) and waits to
 * be killed, so the init is measured reaping, not tearing down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: orphans FIFO COUNT\n");
        return 2;
    }
    int out = open(argv[1], O_WRONLY | O_CLOEXEC);
    if (out < 0) {
        perror(argv[1]);
        return 1;
    }
    long count = atol(argv[2]);
    long retries = 0;
    long long start = now_ns();
    for (long i = 0; i < count; i++) {
        pid_t middle = fork();
        if (middle < 0) {
            if (errno != EAGAIN || ++retries > 1000000) {
                perror("fork");
                return 1;
            }
            usleep(100);
            i--;
            continue;
        }
        if (middle == 0) {
            /* Both the middle and the grandchild leave at once; fork's
             * failure only means one orphan fewer, which is not worth a
             * message from a child. */
            fork();
            _exit(0);
        }
        while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    long long elapsed = now_ns() - start;
    dprintf(out, "%lld %ld\n", elapsed, retries);
    for (;;)
        pause();
}

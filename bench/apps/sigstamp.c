/*
 * sigstamp: the app for the signal-forwarding benchmark.
 *
 * usage: sigstamp FIFO [SIGNUM...]
 *
 * Like sigecho, but what it reports is when: the handler of each SIGNUM reads
 * CLOCK_MONOTONIC first thing and writes one record to FIFO:
 *
 *     int64 ns (CLOCK_MONOTONIC at the handler's entry), int32 signum, int32 cpu
 *
 * The harness reads the same clock just before kill(init), so the time it
 * reports is signal sent to PID 1 -> the app's handler runs, what a user
 * waits for; when the harness itself wakes up to read the record is left out.
 * It writes 'R' once ready, then waits for ever.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int out = -1;

struct record {
    int64_t ns;
    int32_t sig;
    int32_t cpu;
};

static void on_signal(int sig)
{
    struct timespec ts;
    /* clock_gettime(2) and write(2) are async-signal-safe (signal-safety(7));
     * sched_getcpu is a vDSO read. The clock comes first: the time is the
     * handler's entry. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    struct record r = {(int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, sig, sched_getcpu()};
    /* A failed write only loses a sample, which the harness sees as a timeout. */
    if (write(out, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sigstamp FIFO [SIGNUM...]\n");
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
    sigfillset(&sa.sa_mask);  /* one record at a time */
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

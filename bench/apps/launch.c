/*
 * launch: exec a program that dies with the benchmark harness.
 *
 * usage: launch HARNESS_PID PROGRAM [ARG...]
 *
 * Sets PR_SET_PDEATHSIG(SIGKILL), which survives the exec of a program that
 * is not set-uid (prctl(2)), changes to / (so `python -m initd` imports initd
 * from PYTHONPATH, not from the harness's working directory), then execs
 * PROGRAM. The harness runs
 * `launch PID unshare --kill-child ... INIT ...`: if the harness dies, even by
 * SIGKILL, unshare gets SIGKILL, --kill-child SIGKILLs the namespace's PID 1,
 * and the kernel kills everything left in the namespace. Nothing outlives it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: launch HARNESS_PID PROGRAM [ARG...]\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The harness may have died before prctl took effect. */
    if (getppid() != (pid_t)atoi(argv[1]))
        return 1;
    if (chdir("/") < 0) {
        perror("chdir /");
        return 1;
    }
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
}

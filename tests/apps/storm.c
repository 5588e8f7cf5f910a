/* Makes N orphans as fast as it can: each middle child forks a grandchild
 * and exits at once, so the grandchild is re-parented to the init and must
 * be reaped there. Prints "storm done" and then waits for a signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    for (int i = 0; i < n; i++) {
        pid_t mid = fork();
        if (mid == 0) {
            if (fork() < 0)
                _exit(1);
            _exit(0);
        }
        if (mid > 0)
            waitpid(mid, NULL, 0);
    }
    printf("storm done\n");
    fflush(stdout);
    pause();
    return 0;
}

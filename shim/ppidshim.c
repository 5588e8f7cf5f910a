/*
 * ppidshim: PID 2, the app's parent.
 *
 * initd (PID 1) starts this program; it starts the app (PID 3), so the app
 * never sees getppid() == 1 and never believes it was daemonized. It passes
 * every signal it receives on to the app and leaves with the app's exact
 * status: an exit code stays that code, a signal death stays a signal death.
 *
 * It is C, not Python, because it lives as long as the app: a second Python
 * interpreter would double initd's memory and add a slow hop to every signal.
 *
 * usage: argv[0] is the process title ("ppidshim: web"), then
 *   ppidshim REPORT_FD GROUP PDEATHSIG [MODE] -- COMMAND [ARG...]
 * REPORT_FD  an fd to write the app's pid to ("%d\n"), then closed; -1: none
 * GROUP      1: deliver signals to the app's process group, 0: to the app
 * PDEATHSIG  the app's stop signal: sent to the app if this shim dies, and to
 *            this shim (which passes it on) if initd dies (PR_SET_PDEATHSIG)
 * MODE       comma-separated words; left out, it is "pgrp":
 *   pgrp          the app gets a process group of its own, and the terminal's
 *                 foreground when ours has it (tini's way)
 *   setsid        the app gets a session of its own, with the terminal on
 *                 stdin as its controlling tty if no other session holds it
 *                 (dumb-init's default); we take a process group of our own,
 *                 so a terminal's Ctrl-C reaches initd only, not us as well
 *   exec-error=N  exit N when COMMAND cannot be run (dumb-init: 2)
 *
 * initd starts us with every signal blocked, so signals sent to us before the
 * app exists stay pending and are forwarded once it does: none is lost.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

/* Faults are the kernel's business (a blocked SIGSEGV from a real fault kills
 * anyway, and hides the cause); everything else is ours to forward. */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};

static void say(const char *level, const char *fmt, const char *arg, const char *detail)
{
    /* One voice: the same prefix initd uses. fprintf is fine here: we are
     * single-threaded and never inside a signal handler. */
    fprintf(stderr, "initd: %s ", level);
    fprintf(stderr, fmt, arg, detail);
    fputc('\n', stderr);
    fflush(stderr);
}

static void forwarded_set(sigset_t *set)
{
    sigfillset(set);
    for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
        sigdelset(set, fault_signals[i]);
}

static void close_fds_from(int lowest)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0)
        return;
#endif
    /* Older kernels: walk /proc/self/fd. */
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd >= lowest && fd != self)
            close(fd);
    }
    closedir(d);
}

/* Runs in the forked child: make the app start clean, then exec it. */
static int parse_mode(char *mode, int *setsid_mode, int *exec_error)
{
    for (char *word = strtok(mode, ","); word; word = strtok(NULL, ",")) {
        if (strcmp(word, "pgrp") == 0)
            *setsid_mode = 0;
        else if (strcmp(word, "setsid") == 0)
            *setsid_mode = 1;
        else if (strncmp(word, "exec-error=", 11) == 0)
            *exec_error = atoi(word + 11);
        else
            return -1;
    }
    return 0;
}

static void exec_app(char **argv, pid_t shim, int pdeathsig, int setsid_mode, int exec_error)
{
    if (setsid_mode) {
        /* A session of its own (so its process group, which signals reach,
         * is never ours), and the terminal as its controlling tty: TIOCSCTTY
         * with 0 takes it only if no session holds it (initd gave it up with
         * TIOCNOTTY if it was its own); else the app runs without one, as
         * under dumb-init. */
        if (setsid() < 0)
            say("WARNING", "setsid: %s%s", strerror(errno), "");
        else if (isatty(STDIN_FILENO))
            ioctl(STDIN_FILENO, TIOCSCTTY, 0);
    } else {
        /* Own process group, so a group signal reaches the app and its
         * workers but never us; and, on a terminal we own, the foreground
         * group, so Ctrl-C and Ctrl-Z reach the app (SIGTTOU is still
         * blocked here). */
        setpgid(0, 0);
        if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgid(shim))
            tcsetpgrp(STDIN_FILENO, getpid());
    }

    if (pdeathsig > 0) {
        prctl(PR_SET_PDEATHSIG, pdeathsig);
        /* The shim may have died before prctl took effect. */
        if (getppid() != shim)
            _exit(128 + pdeathsig);
    }

    /* Default dispositions (SIG_IGN survives exec; initd's Python ignores
     * SIGPIPE and SIGXFSZ) and an empty mask: the app starts as from a shell. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    close_fds_from(3);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    execvp(argv[0], argv);
    int err = errno;
    /* Like shells and tini: 127 when there is nothing to run, 126 when it
     * cannot be run. */
    say("ERROR", "cannot run %s: %s", argv[0], strerror(err));
    if (exec_error > 0)
        _exit(exec_error);
    _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* Leave with the app's status: the same code, or death by the same signal. */
static void exit_like(int status)
{
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    /* The app already dumped core if it was going to; we must not again. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    kill(getpid(), sig);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    /* Signals whose default is to stop or be ignored cannot kill; they
     * cannot have killed the app either, but be exact anyway. */
    _exit(128 + sig);
}

static char **copy_args(int n, char **args)
{
    char **copy = calloc((size_t)n + 1, sizeof *copy);
    for (int i = 0; copy && i < n; i++)
        if (!(copy[i] = strdup(args[i])))
            return NULL;
    return copy;
}

/* ps reads /proc/PID/cmdline, which is our argv memory: blank everything
 * after the title so `ps` shows "ppidshim: web", not our plumbing. */
static void retitle(int argc, char **argv)
{
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    char *start = argv[0] + strlen(argv[0]);
    memset(start, 0, (size_t)(end - start));
}

int main(int argc, char **argv)
{
    /* MODE may be left out (the protocol before it existed): "--" then
     * comes fourth. MODE itself is never "--". */
    int with_mode = argc >= 7 && strcmp(argv[4], "--") != 0 && strcmp(argv[5], "--") == 0;
    int setsid_mode = 0, exec_error = 0;
    if (!with_mode && (argc < 6 || strcmp(argv[4], "--") != 0)) {
        fprintf(stderr, "initd: ERROR ppidshim is started by initd, not by hand\n");
        return 2;
    }
    if (with_mode && parse_mode(argv[4], &setsid_mode, &exec_error) < 0) {
        fprintf(stderr, "initd: ERROR ppidshim: unknown mode word in \"%s\"\n", argv[4]);
        return 2;
    }
    int first = with_mode ? 6 : 5; /* COMMAND */
    int report_fd = atoi(argv[1]);
    int group = atoi(argv[2]) == 1;
    int pdeathsig = atoi(argv[3]);
    char **command = copy_args(argc - first, argv + first);
    if (!command) {
        fprintf(stderr, "initd: ERROR ppidshim: out of memory\n");
        return 126;
    }
    retitle(argc, argv);

    sigset_t waited;
    forwarded_set(&waited);
    sigprocmask(SIG_BLOCK, &waited, NULL);

    /* When initd is not PID 1 it can die before the app: we then get the
     * app's stop signal, which the loop below passes on like any other. */
    if (pdeathsig > 0)
        prctl(PR_SET_PDEATHSIG, pdeathsig);

    /* setsid: out of initd's process group, so what a terminal sends to the
     * foreground group (Ctrl-C, Ctrl-Z) reaches initd alone, which passes it
     * on once; not initd and us both. */
    if (setsid_mode)
        setpgid(0, 0);

    pid_t shim = getpid();
    pid_t app = fork();
    if (app < 0) {
        say("ERROR", "cannot start %s: fork: %s", command[0], strerror(errno));
        return 126;
    }
    if (app == 0)
        exec_app(command, shim, pdeathsig, setsid_mode, exec_error);

    /* Set the group from here too, so a group signal sent before the child
     * ran setpgid cannot miss (the classic job-control race). Not for setsid:
     * a group leader cannot setsid; a group signal that finds no group yet
     * goes to the app alone below, which is all the group will hold. */
    if (!setsid_mode)
        setpgid(app, app);
    if (report_fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", (int)app);
        if (write(report_fd, line, (size_t)n) < 0 && errno == EPIPE) {
            /* initd died before our parent-death signal was set: act as if
             * it had fired, after taking back the SIGPIPE the write raised
             * (it is blocked, and must not be passed on to the app). */
            sigset_t pipe_only;
            sigemptyset(&pipe_only);
            sigaddset(&pipe_only, SIGPIPE);
            struct timespec now = {0, 0};
            sigtimedwait(&pipe_only, NULL, &now);
            if (pdeathsig > 0)
                kill(shim, pdeathsig);
        }
        close(report_fd);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&waited, &info);
        if (sig < 0)
            continue; /* EINTR: a stop/continue of ourselves */
        if (sig != SIGCHLD) {
            /* The app is our unreaped child, so its pid (and group id) cannot
             * have been reused: signalling it is race-free. */
            if (!group || (kill(-app, sig) < 0 && errno == ESRCH))
                kill(app, sig);
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == app)
                exit_like(status);
    }
}

/*
 * ppidshim: PID 2, the app's parent.
 *
 * initd (PID 1) starts this program; it starts the app (PID 3), so the app
 * never sees getppid() == 1 and never believes it was daemonized. It passes
 * the signals initd sends it on to the app and leaves with the app's exact
 * status: an exit code stays that code, a signal death stays a signal death.
 *
 * It is C, not Python, because it lives as long as the app: a second Python
 * interpreter would double initd's memory and add a slow hop to every signal.
 *
 * usage: argv[0] is the process title ("ppidshim: web"), then
 *   ppidshim REPORT_FD GROUP PDEATHSIG MODE -- COMMAND [ARG...]
 * REPORT_FD  an fd to write the app's pid to ("%d\n"), then closed; -1: none.
 *            With subreaper: kept open for "exit PID STATUS\n" lines
 * GROUP      1: deliver signals to the app's process group, 0: to the app
 * PDEATHSIG  the app's stop signal, sent to this shim (which passes it on) if
 *            initd dies (PR_SET_PDEATHSIG); 0: none. If this shim dies, the
 *            app is not signalled: initd adopts it and goes on
 * MODE       comma-separated words:
 *   pgrp          the app gets a process group of its own, and the terminal's
 *                 foreground when ours has it (tini's way)
 *   setsid        the app gets a session of its own, with the terminal on
 *                 stdin as its controlling tty if no other session holds it
 *                 (dumb-init's default); we take a process group of our own,
 *                 so a terminal's Ctrl-C reaches initd only, not us as well
 *   exec-error=N  exit N when COMMAND cannot be run (dumb-init: 2)
 *   subreaper     we are a child subreaper (PR_SET_CHILD_SUBREAPER): what the
 *                 app leaves behind (a re-exec'd successor) is re-parented to
 *                 us, not to PID 1; we reap it and still wait for the app only
 *   debug         a line for every signal we do not forward
 *
 * Which signals are forwarded: only those initd sent (siginfo: si_code
 * SI_USER, SI_QUEUE or SI_TKILL and si_pid our parent), every one of them,
 * faults and real-time signals included. Others are not initd's decision and
 * are dropped: the app's own `kill -TERM -1` ("everyone but me", which spares
 * only PID 1) must not come back to it through us, and what a terminal sends
 * to our process group reaches initd too, which passes it on once. The one
 * exception is the parent-death signal once initd is gone (see forward()).
 *
 * All signals stay blocked in this process, the fault signals too: a real
 * fault (SIGSEGV in our own code) is delivered by the kernel even when
 * blocked, and kills us, so blocking them only stops a kill(2)'d one.
 *
 * initd starts us with its signals blocked, so a signal sent to us before
 * the app exists stays pending and is forwarded once it does: none is lost.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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

/* The kernel's signal set: one bit per signal 1..64. glibc's sigset_t
 * functions refuse its two internal real-time signals (32 and 33, used by
 * threads, which we have none of), yet `--map USR1:32` is a valid request; so
 * the mask and the wait go to the kernel directly with this set. */
typedef uint64_t ksigset;
#define KSIG(sig) ((ksigset)1 << ((sig) - 1))
#define KSIGSET_SIZE sizeof(ksigset)

struct options {
    int report_fd;     /* -1: none */
    int group;         /* deliver to the app's process group */
    int pdeathsig;     /* 0: none */
    int setsid_mode;   /* 0: pgrp */
    int exec_error;    /* 0: 127/126 */
    int subreaper;
    char **command;
};

static int debug;

/* One voice, the prefix initd uses, one write per line so lines from the
 * shim, the app and initd never interleave mid-line. Never called from a
 * signal handler (there are none). */
__attribute__((format(printf, 2, 3))) static void say(const char *level, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "initd: %s ", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* Nothing to do if stderr is gone; the exit code still says it. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* --- parse ------------------------------------------------------------------ */

/* A whole number in [lo, hi], or -1 in *ok. */
static long number(const char *text, long lo, long hi, int *ok)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        *ok = 0;
    return v;
}

static int parse_mode(char *mode, struct options *o)
{
    for (char *word = strtok(mode, ","); word; word = strtok(NULL, ",")) {
        int ok = 1;
        if (strcmp(word, "pgrp") == 0)
            o->setsid_mode = 0;
        else if (strcmp(word, "setsid") == 0)
            o->setsid_mode = 1;
        else if (strcmp(word, "subreaper") == 0)
            o->subreaper = 1;
        else if (strcmp(word, "debug") == 0)
            debug = 1;
        else if (strncmp(word, "exec-error=", 11) == 0)
            o->exec_error = (int)number(word + 11, 1, 255, &ok);
        else
            ok = 0;
        if (!ok) {
            say("ERROR", "ppidshim: unknown mode word \"%s\"", word);
            return -1;
        }
    }
    return 0;
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

/* Exits 2 on a malformed command line: only initd starts us. */
static void parse(int argc, char **argv, struct options *o)
{
    int ok = 1;
    if (argc < 7 || strcmp(argv[5], "--") != 0) {
        say("ERROR", "ppidshim is started by initd, not by hand "
                     "(ppidshim REPORT_FD GROUP PDEATHSIG MODE -- COMMAND...)");
        exit(2);
    }
    o->report_fd = (int)number(argv[1], -1, INT32_MAX, &ok);
    o->group = (int)number(argv[2], 0, 1, &ok);
    o->pdeathsig = (int)number(argv[3], 0, 64, &ok);
    if (!ok) {
        say("ERROR", "ppidshim: bad REPORT_FD, GROUP or PDEATHSIG: \"%s\" \"%s\" \"%s\"",
            argv[1], argv[2], argv[3]);
        exit(2);
    }
    if (parse_mode(argv[4], o) < 0)
        exit(2);
    o->command = copy_args(argc - 6, argv + 6);
    if (!o->command) {
        say("ERROR", "ppidshim: out of memory");
        exit(126);
    }
    retitle(argc, argv);
}

/* --- spawn ------------------------------------------------------------------ */

static int set_kernel_mask(int how, ksigset set)
{
    return (int)syscall(SYS_rt_sigprocmask, how, &set, NULL, KSIGSET_SIZE);
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

/* Runs in the forked child: make the app start clean, then exec it. Never
 * returns. */
static void exec_app(const struct options *o, pid_t shim, int gate_fd)
{
    if (o->setsid_mode) {
        /* A session of its own (so its process group, which signals reach,
         * is never ours), and the terminal as its controlling tty: TIOCSCTTY
         * with 0 takes it only if no session holds it (initd gave it up with
         * TIOCNOTTY if it was its own); else the app runs without one, as
         * under dumb-init. */
        if (setsid() < 0)
            say("WARNING", "setsid: %s", strerror(errno));
        else if (isatty(STDIN_FILENO) && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0 && debug)
            say("DEBUG", "ppidshim: the terminal stays another session's: %s", strerror(errno));
    } else {
        /* Own process group, so a group signal reaches the app and its
         * workers but never us; and, on a terminal we own, the foreground
         * group, so Ctrl-C and Ctrl-Z reach the app (SIGTTOU is still
         * blocked here). */
        if (setpgid(0, 0) < 0)
            say("WARNING", "setpgid: %s", strerror(errno));
        if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgid(shim)
            && tcsetpgrp(STDIN_FILENO, getpid()) < 0)
            say("WARNING", "cannot give the terminal to the app: tcsetpgrp: %s", strerror(errno));
    }

    /* Wait until the shim has told initd our pid: initd must know the app
     * before the app can do anything (kill its shim, exit), or its status
     * could not be told from an orphan's. EOF comes when the shim closes its
     * end, after the report, or when it dies: then we were never reported,
     * and do not start. No PR_SET_PDEATHSIG for the app: if the shim dies,
     * initd adopts the app and goes on supervising it. */
    char byte;
    while (read(gate_fd, &byte, 1) < 0 && errno == EINTR)
        ;
    close(gate_fd);
    if (getppid() != shim)
        _exit(128 + SIGKILL);

    /* Default dispositions (SIG_IGN survives exec; initd's Python ignores
     * SIGPIPE and SIGXFSZ) and an empty mask: the app starts as from a shell.
     * Nothing of ours is ignored or caught, so the only dispositions to
     * reset are those inherited from initd's exec; glibc's internal 32 and
     * 33 cannot be set through sigaction and are never ignored. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && (sig < 32 || sig >= SIGRTMIN)
            && sigaction(sig, &dfl, NULL) < 0)
            say("WARNING", "sigaction(%d, SIG_DFL): %s", sig, strerror(errno));
    close_fds_from(3);
    if (set_kernel_mask(SIG_SETMASK, 0) < 0)
        say("WARNING", "cannot unblock signals for the app: %s", strerror(errno));

    execvp(o->command[0], o->command);
    int err = errno;
    /* Like shells and tini: 127 when there is nothing to run, 126 when it
     * cannot be run. */
    say("ERROR", "cannot run %s: %s", o->command[0], strerror(err));
    if (o->exec_error > 0)
        _exit(o->exec_error);
    _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* Block everything, set up what the options ask for, fork the app and
 * report its pid. Returns the app's pid; exits 126 when it cannot. */
static pid_t spawn(const struct options *o, pid_t parent, int *parent_gone)
{
    /* Every signal (KILL and STOP aside, which cannot be): from here on
     * each waits in the kernel until forward() takes it. */
    if (set_kernel_mask(SIG_BLOCK, ~(ksigset)0) < 0) {
        say("ERROR", "ppidshim: cannot block signals: %s", strerror(errno));
        exit(126);
    }

    /* When initd is not PID 1 it can die before the app: we then get the
     * app's stop signal, which forward() passes on. */
    if (o->pdeathsig > 0 && prctl(PR_SET_PDEATHSIG, o->pdeathsig) < 0)
        say("WARNING", "ppidshim: PR_SET_PDEATHSIG: %s; the app is not stopped if initd dies",
            strerror(errno));
    if (o->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        say("ERROR", "ppidshim: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        exit(126);
    }

    /* setsid: out of initd's process group, so what a terminal sends to the
     * foreground group (Ctrl-C, Ctrl-Z) reaches initd alone, which passes it
     * on once; not initd and us both. */
    if (o->setsid_mode && setpgid(0, 0) < 0)
        say("WARNING", "ppidshim: setpgid: %s", strerror(errno));

    /* The gate: the app waits on it until its pid has been reported. */
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) {
        say("ERROR", "cannot start %s: pipe: %s", o->command[0], strerror(errno));
        exit(126);
    }
    pid_t shim = getpid();
    pid_t app = fork();
    if (app < 0) {
        say("ERROR", "cannot start %s: fork: %s", o->command[0], strerror(errno));
        exit(126);
    }
    if (app == 0) {
        close(gate[1]);
        exec_app(o, shim, gate[0]);
    }
    close(gate[0]);

    /* Set the group from here too, so a group signal sent before the child
     * ran setpgid cannot miss (the classic job-control race). EACCES: the
     * child has exec'd, after setting it itself. Not for setsid: a group
     * leader cannot setsid; a group signal that finds no group yet goes to
     * the app alone below, which is all the group will hold. */
    if (!o->setsid_mode && setpgid(app, app) < 0 && errno != EACCES && errno != ESRCH)
        say("WARNING", "ppidshim: setpgid(%d): %s", (int)app, strerror(errno));

    if (o->report_fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", (int)app);
        if (write(o->report_fd, line, (size_t)n) < 0 && errno == EPIPE) {
            /* initd died before our parent-death signal was set: act as if
             * it had fired, after taking back the SIGPIPE the write raised
             * (it is blocked, and must not be passed on to the app). */
            ksigset pipe_only = KSIG(SIGPIPE);
            struct timespec now = {0, 0};
            syscall(SYS_rt_sigtimedwait, &pipe_only, NULL, &now, KSIGSET_SIZE);
            *parent_gone = 1;
        }
        if (!o->subreaper)
            close(o->report_fd); /* as a subreaper it carries the exit reports */
    }
    close(gate[1]); /* the app may run now */
    /* The parent may be gone already (before our prctl): same thing. */
    if (getppid() != parent)
        *parent_gone = 1;
    return app;
}

/* --- forward ---------------------------------------------------------------- */

static void deliver(const struct options *o, pid_t app, int sig)
{
    /* The app is our unreaped child, so its pid (and group id) cannot have
     * been reused: signalling it is race-free. */
    if (!o->group || (kill(-app, sig) < 0 && errno == ESRCH))
        kill(app, sig);
}

/* Is this signal initd's decision? si_pid is our parent's pid as our pid
 * namespace sees it (1 when initd is that namespace's init). The kernel's
 * parent-death signal also arrives as SI_USER from the dying parent's pid
 * (SEND_SIG_NOINFO, kernel/signal.c); should it come with another sender,
 * a stop signal after our parent changed is still initd's death. */
static int from_initd(const struct options *o, const siginfo_t *info, pid_t parent)
{
    int user = info->si_code == SI_USER || info->si_code == SI_QUEUE || info->si_code == SI_TKILL;
    if (user && info->si_pid == parent)
        return 1;
    return o->pdeathsig > 0 && info->si_signo == o->pdeathsig && getppid() != parent;
}

static void forward(const struct options *o, pid_t app, pid_t parent, const siginfo_t *info)
{
    int sig = info->si_signo;
    if (from_initd(o, info, parent)) {
        deliver(o, app, sig);
        return;
    }
    if (debug)
        say("DEBUG", "ppidshim: not forwarding signal %d from pid %d (code %d): not sent by initd",
            sig, (int)info->si_pid, info->si_code);
}

/* --- reap ------------------------------------------------------------------- */

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
    kill(getpid(), sig);
    set_kernel_mask(SIG_UNBLOCK, KSIG(sig));
    /* Signals whose default is to stop or be ignored cannot kill; they
     * cannot have killed the app either, but be exact anyway. */
    _exit(128 + sig);
}

/* Reap every child that has exited: the app (then leave like it) and, as a
 * subreaper, whatever was re-parented to us.
 *
 * As a subreaper (a role with pid_file), the app's death is not the end: a
 * successor it started (Unicorn's USR2 re-exec) is re-parented to us, and
 * initd decides whether it becomes the app. So every child's death is
 * reported to initd on the report fd as "exit PID STATUS\n" (the raw wait
 * status), and we leave only when no child is left, like the last one. */
static void reap(const struct options *o, pid_t app)
{
    static int last_status = 0;
    int status;
    pid_t pid;
    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            if (!o->subreaper) {
                if (pid == app)
                    exit_like(status);
                continue;
            }
            last_status = status;
            if (o->report_fd >= 0) {
                char line[48];
                int n = snprintf(line, sizeof line, "exit %d %d\n", (int)pid, status);
                if (write(o->report_fd, line, (size_t)n) < 0 && errno != EAGAIN)
                    say("WARNING", "ppidshim: cannot report the exit of %d: %s", (int)pid,
                        strerror(errno));
            }
            continue;
        }
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0 && errno == ECHILD && o->subreaper)
            exit_like(last_status); /* nothing left to wait for */
        return;
    }
}

int main(int argc, char **argv)
{
    struct options o = {.report_fd = -1};
    parse(argc, argv, &o);

    pid_t parent = getppid();
    int parent_gone = 0;
    pid_t app = spawn(&o, parent, &parent_gone);
    if (parent_gone && o.pdeathsig > 0)
        deliver(&o, app, o.pdeathsig);

    ksigset all = ~(ksigset)0;
    for (;;) {
        siginfo_t info;
        int sig = (int)syscall(SYS_rt_sigtimedwait, &all, &info, NULL, KSIGSET_SIZE);
        if (sig < 0)
            continue; /* EINTR: a stop/continue of ourselves */
        if (sig == SIGCHLD)
            reap(&o, app); /* never forwarded: it is about our children */
        else
            forward(&o, app, parent, &info);
    }
}

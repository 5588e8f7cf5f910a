"""The only process creator: starts the ppidshim (PID 2), which starts the app.

Here the child gets its working directory, user and environment; the shim
then gives the app its own process group, default signal dispositions, an
empty signal mask and no stray fds, and execs it.

No subprocess module: PID 1's reaper would steal Popen's children, and
Popen.wait() then reports 0 for whatever the real status was.
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
from initd.errors import InitdError
from initd.record import record

BIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin")


# name is None for a uid with no passwd entry.
Account = record("Account", "name uid gid groups home")


def resolve_user(spec):
    """`name`, `uid`, `name:group` or `uid:gid` -> Account. ValueError if unknown.

    A uid with no passwd entry is allowed (Kubernetes runAsUser often is one):
    like docker --user, its group is then 0 and its home /.
    """
    import grp
    import pwd
    user, _, group = spec.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise ValueError(f'no user named "{user}" in /etc/passwd')
        entry = None
    if entry:
        name, uid, gid, home = entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir
    else:
        name, uid, gid, home = None, int(user), 0, "/"
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValueError(f'no group named "{group}" in /etc/group')
    groups = tuple(os.getgrouplist(name, gid)) if name else (gid,)
    return Account(name, uid, gid, groups, home)


def shim_path():
    path = os.path.join(BIN_DIR, "ppidshim")
    if not os.access(path, os.X_OK):
        raise InitdError(f"{path}: missing; reinstall initd with `pip install .` "
                         "so that its C parts are built", exit_code=126)
    return path


def start(plan):
    """Fork+exec the ppidshim running the plan's app. Returns (shim pid, app
    pid, report fd): the app pid is None when the shim could not start it
    (its exit status then says why); the report fd, non-blocking, carries the
    shim's "exit PID STATUS" lines when the plan has a pid_file, else None.
    Every signal stays blocked in the shim (inherited
    from us) until it waits for them, so none sent during start-up is lost.
    """
    shim = shim_path()
    mode = ["setsid" if plan.setsid else "pgrp"]
    if plan.pid_file:
        mode.append("subreaper")  # the app's successor is re-parented to the shim
    if plan.exec_error is not None:
        mode.append(f"exec-error={int(plan.exec_error)}")
    if plan.setsid:
        _release_terminal()
    # Opened while we are still root: the app's user may not be allowed to
    # reach initd's install directory (a 0700 home, a root-only venv), but
    # executing an open file needs only its own x bit (execveat, fexecve(3)).
    shim_fd = os.open(shim, os.O_RDONLY | os.O_CLOEXEC)
    no_new_privs = None
    if plan.no_new_privs:
        import prctl  # imported here, not in the forked child
        no_new_privs = prctl.set_no_new_privs
    report_r, report_w = os.pipe()
    shim_argv = [f"ppidshim: {plan.name}", str(report_w), "1" if plan.to_group else "0",
                 str(plan.stop_signal or 0), ",".join(mode), "--", *plan.argv]
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (shim_fd, report_r, report_w):
            os.close(fd)
        raise InitdError(f"cannot start {plan.argv[0]}: fork: {e.strerror}", exit_code=126)
    if pid == 0:
        _exec_shim(shim, shim_fd, shim_argv, plan.env, plan.workdir, plan.account, report_w,
                   no_new_privs)
    os.close(shim_fd)
    os.close(report_w)
    try:
        # The shim writes the app's pid right after its fork, or dies first
        # (EOF): this read is bounded by the shim's own start-up. One byte at
        # a time: nothing after the first line may be taken from the pipe.
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(report_r, 1)
            if not chunk:
                break
            data += chunk
    finally:
        if not plan.pid_file:
            os.close(report_r)
    app_pid = int(data) if data.strip().isdigit() else None
    if not plan.pid_file:
        return pid, app_pid, None
    os.set_blocking(report_r, False)
    return pid, app_pid, report_r


def start_direct(plan):
    """Fork+exec the app as initd's own child, with no shim: the process tree
    of tini and dumb-init, under whose names this is used. Returns its pid.

    The child gets what those programs give theirs: a process group of its
    own and the terminal's foreground (tini), or a session of its own with
    the terminal as its controlling tty (dumb-init); tini's child starts with
    the mask and ignored signals tini inherited, dumb-init's with none. Like
    them, initd closes no inherited fd (its own are close-on-exec)."""
    if plan.setsid:
        _release_terminal()
    no_new_privs = None
    if plan.no_new_privs:
        import prctl  # imported here, not in the forked child
        no_new_privs = prctl.set_no_new_privs
    try:
        pid = os.fork()
    except OSError as e:
        raise InitdError(f"cannot start {plan.argv[0]}: fork: {e.strerror}", exit_code=126)
    if pid == 0:
        _exec_direct(plan, no_new_privs)
    if not plan.setsid:
        try:
            os.setpgid(pid, pid)  # from here too: a group signal before the child ran must not miss
        except OSError:
            pass
    return pid


def _exec_direct(plan, no_new_privs):
    """In the forked child of start_direct. Never returns."""
    parent = os.getppid()
    try:
        if plan.setsid:
            os.setsid()
            if os.isatty(0):
                import fcntl
                import termios
                try:
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                except OSError:
                    pass  # another session holds it: run without one, as dumb-init
        else:
            os.setpgid(0, 0)
            try:
                if os.isatty(0) and os.tcgetpgrp(0) == os.getpgid(parent):
                    os.tcsetpgrp(0, os.getpid())  # TTOU is still blocked here
            except OSError:
                pass
        for signum in range(1, signal.NSIG):
            if signum in (signal.SIGKILL, signal.SIGSTOP) or 32 <= signum < signal.SIGRTMIN:
                continue
            try:
                signal.signal(signum, signal.SIG_IGN if signum in plan.child_ignored
                              else signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        try:
            os.chdir(plan.workdir)
        except OSError as e:
            _die(f"cannot change to workdir {plan.workdir}: {e.strerror}", 126)
        if plan.account:
            os.setgroups(list(plan.account.groups))
            os.setgid(plan.account.gid)
            os.setuid(plan.account.uid)
        if no_new_privs:
            no_new_privs(True)
        signal.pthread_sigmask(signal.SIG_SETMASK, plan.child_mask)
        os.execvpe(plan.argv[0], list(plan.argv), plan.env)
    except OSError as e:
        code = plan.exec_error if plan.exec_error is not None else (
            127 if isinstance(e, (FileNotFoundError, NotADirectoryError)) else 126)
        _die(f"cannot run {plan.argv[0]}: {e.strerror}", code)
    except BaseException as e:  # noqa: B036 - this process must end here
        _die(f"cannot run {plan.argv[0]}: {e}", 126)
    finally:
        os._exit(126)


def child(argv, env, workdir="/", account=None, stdout=None, stderr=None):
    """Fork+exec anything that is not the app (a health probe, a hook)
    directly under initd, in a process group of its own (pgid == pid, so
    killpg(pid, SIGKILL) takes its grandchildren too), with an empty signal
    mask, default dispositions, stdin on /dev/null, stdout/stderr on the
    given fds (None: initd's own) and every other fd closed. Its status
    comes only through the loop's reaper. Raises OSError when fork fails."""
    pid = os.fork()
    if pid != 0:
        try:
            os.setpgid(pid, pid)  # also from here: a killpg before the child ran must not miss
        except OSError:
            pass  # it already exec'd, or died: its own setpgid stands
        return pid
    try:
        os.setpgid(0, 0)
        _clean_signals()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        if stdout is not None:
            os.dup2(stdout, 1)
        if stderr is not None:
            os.dup2(stderr, 2)
        os.chdir(workdir)
        if account:
            os.setgroups(list(account.groups))
            os.setgid(account.gid)
            os.setuid(account.uid)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.execvpe(argv[0], list(argv), env)
    except FileNotFoundError as e:
        _die(f"cannot run {argv[0]}: {e.strerror}", 127)
    except BaseException as e:  # noqa: B036 - this process must end here
        _die(f"cannot run {argv[0]}: {getattr(e, 'strerror', None) or e}", 126)
    finally:
        os._exit(126)


def _clean_signals():
    """In a forked child: default dispositions (SIG_IGN survives exec, and
    Python ignores PIPE and XFSZ) and an empty mask (initd blocks them all)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _release_terminal():
    """dumb-init's TIOCNOTTY before the app's setsid: a terminal is the
    controlling tty of one session at most, and the app's TIOCSCTTY only
    takes one that no session holds. When we lead our session (docker run
    -it), the kernel then sends SIGHUP and SIGCONT to the terminal's
    foreground group, which is us (tty_ioctl(4)); they are blocked, so take
    them back here, or the loop would pass a hangup to the app as it starts
    (dumb-init bug #136, fixed in its #174 by ignoring them the same way)."""
    if not os.isatty(0):
        return
    import fcntl
    import termios
    before = signal.sigpending()
    try:
        fcntl.ioctl(0, termios.TIOCNOTTY)
    except OSError:
        return  # not our controlling tty: nothing to give up
    for signum in (signal.SIGHUP, signal.SIGCONT):
        if signum not in before:
            signal.sigtimedwait([signum], 0)


def _exec_shim(shim, shim_fd, shim_argv, env, workdir, account, report_w, no_new_privs=None):
    """In the forked child. Never returns, never lets an exception reach the
    parent's code (which would run a second initd loop in this process)."""
    try:
        # SIG_IGN survives exec, and Python ignores these two by default.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        try:
            os.chdir(workdir)
        except OSError as e:
            _die(f"cannot change to workdir {workdir}: {e.strerror}", 126)
        if account:
            # Supplementary groups, then gid, then uid: after setuid the
            # others can no longer be changed.
            os.setgroups(list(account.groups))
            os.setgid(account.gid)
            os.setuid(account.uid)
            _warn_unreadable_preload(env)
        if no_new_privs:
            # Inherited by the shim and the app across exec; setuid and
            # file capabilities no longer raise privileges (prctl(2)).
            no_new_privs(True)
        # Nothing of ours leaks into the shim but the report pipe (and the
        # shim's own fd, which is close-on-exec).
        low, high = sorted((report_w, shim_fd))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, os.sysconf("SC_OPEN_MAX"))
        os.set_inheritable(report_w, True)
        os.execve(shim_fd, shim_argv, env)
    except BaseException as e:  # noqa: B036 - this process must end here
        _die(f"cannot start {shim}: {e}", 126)
    finally:
        os._exit(126)


def _warn_unreadable_preload(env):
    """The FQDN library is loaded by the app, as the app's user: say so when
    that user cannot read it (ld.so would skip it with a line of its own, and
    the app would report the short hostname)."""
    for path in env.get("LD_PRELOAD", "").replace(":", " ").split():
        if path.startswith(BIN_DIR) and not os.access(path, os.R_OK):
            os.write(2, (f"initd: WARNING {path}: not readable by the app's user, so "
                         "the FQDN is not applied; install initd where that user "
                         "can read it\n").encode(errors="replace"))


def _die(message, code):
    try:
        os.write(2, f"initd: ERROR {message}\n".encode(errors="replace"))
    finally:
        os._exit(code)

"""Drains waitpid and turns wait statuses into exit codes. The only place in
initd that collects a child's status: a second waitpid elsewhere would steal
statuses (see STYLE.md on subprocess)."""
import os


def exit_code(status):
    """A wait status as a shell would report it: the code, or 128+N for signal N.
    (os.WEXITSTATUS of a signal death is 0, which would report a crash as success.)"""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def reap_all():
    """[(pid, exit code), ...] for every child that has exited; never blocks.

    Called after every wake-up, SIGCHLD or not: SIGCHLDs coalesce, so one
    signal may stand for many exits.
    """
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # no children at all
        except InterruptedError:
            continue
        if pid == 0:
            break  # children exist, none has exited
        reaped.append((pid, exit_code(status)))
    return reaped


def is_child(pid):
    """Whether pid is our child, alive or exited, WITHOUT collecting its
    status (WNOWAIT): the next reap_all still reports how it ended. A
    waitpid(pid, WNOHANG) here would consume the status of a child that
    exited a moment ago, and its exit code would be lost."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return True
    except ChildProcessError:
        return False
    except InterruptedError:
        return True  # it is ours (ECHILD would have said otherwise)

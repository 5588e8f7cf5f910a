"""Drains waitpid and turns wait statuses into exit codes."""
import os


def exit_code(status):
    """A wait status as a shell would report it: the code, or 128+N for signal N.
    (os.WEXITSTATUS of a signal death is 0, which would report a crash as success.)"""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def reap_all(watched, on_other=None):
    """Reap every child that has exited; never blocks.

    Called after every wake-up, SIGCHLD or not: SIGCHLDs coalesce, so one
    signal may stand for many exits. Returns ({pid: exit code} for the pids in
    `watched`, how many others were reaped); on_other(pid, exit code) is
    called for each of the others (tini -w).
    """
    found = {}
    others = 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # no children at all
        except InterruptedError:
            continue
        if pid == 0:
            break  # children exist, none has exited
        if pid in watched:
            found[pid] = exit_code(status)
        else:
            others += 1
            if on_other:
                on_other(pid, exit_code(status))
    return found, others

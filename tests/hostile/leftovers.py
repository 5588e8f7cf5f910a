"""Run a command as a child of a subreaper (this process) and report what it
left behind: after the command exits, every process still alive or unreaped
that descended from it has been re-parented to us. Prints
`left=N zombies=Z exit=CODE`, then SIGKILLs and reaps them all by pid.

  leftovers.py TIMEOUT CMD...
"""
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children():
    with open(f"/proc/self/task/{os.getpid()}/children") as f:
        return [int(p) for p in f.read().split()]


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def main():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    timeout, argv = float(sys.argv[1]), sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = -1
            break
        time.sleep(0.01)
    left = children()
    zombies = sum(state(p) == "Z" for p in left)
    print(f"left={len(left)} zombies={zombies} exit={os.waitstatus_to_exitcode(status) if status != -1 else 'timeout'}",
          flush=True)
    for _ in range(50):  # clean up by pid: ours now
        for p in children():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            break
        time.sleep(0.02)


main()

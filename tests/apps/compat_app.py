"""Test app for the tini/dumb-init compatibility tests.

  compat_app.py [--kid] [--orphan]
Prints "app ready pid=P ppid=Q pgid=G sid=S tty=yes|no fg=F" (F: the
terminal's foreground group, -1 without one), then "app got SIGNAME" for each
signal (flushed). TERM and INT are printed and then kill it the default way,
so its status is a signal death (143, 130). TSTP, TTIN and TTOU keep their
default action (they stop it); CONT is printed (it still continues).

--kid     fork a child in the same process group that prints "kid ready
          pid=P" and "kid got SIGNAME"; it dies with the app (PDEATHSIG).
--orphan  make an orphan: a middle child forks a grandchild and exits; the
          grandchild waits to be re-parented, prints "orphan pid=P ppid=Q"
          (Q: its new parent) and exits 0.1 s later, leaving a zombie for
          whoever adopted it.
"""
import os
import signal
import sys
import time

who = "app"
DIE = (signal.SIGTERM, signal.SIGINT)
CAUGHT = [s for s in range(1, 32) if s not in (
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTSTP, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
    signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS)]


def say(text):
    os.write(1, f"{who} {text}\n".encode())


def on_signal(signum, frame):
    say(f"got {signal.Signals(signum).name}")
    if signum in DIE:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def foreground():
    try:
        return os.tcgetpgrp(0)
    except OSError:
        return -1


def has_tty():
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
        return "yes"
    except OSError:
        return "no"


def idle():
    # Not signal.pause(): a signal that lands after the interpreter's last
    # check and before pause() enters the kernel leaves its Python handler
    # waiting for the next signal. A short sleep bounds that delay.
    while True:
        time.sleep(0.05)


def say_as(name, text):
    os.write(1, f"{name} {text}\n".encode())


def make_orphan():
    middle = os.fork()
    if middle:
        os.waitpid(middle, 0)
        return
    middle = os.getpid()
    if os.fork():
        os._exit(0)  # the grandchild is orphaned here
    deadline = time.monotonic() + 5
    while os.getppid() == middle and time.monotonic() < deadline:
        time.sleep(0.01)
    say_as("orphan", f"pid={os.getpid()} ppid={os.getppid()}")
    time.sleep(0.1)
    os._exit(0)


if __name__ == "__main__":
    args = sys.argv[1:]
    for s in CAUGHT:
        signal.signal(s, on_signal)
    if "--kid" in args:
        if os.fork() == 0:
            import prctl
            prctl.set_pdeathsig(signal.SIGKILL)
            who = "kid"
            say(f"ready pid={os.getpid()}")
            idle()
    say(f"ready pid={os.getpid()} ppid={os.getppid()} pgid={os.getpgrp()} "
        f"sid={os.getsid(0)} tty={has_tty()} fg={foreground()}")
    if "--orphan" in args:
        make_orphan()
    idle()

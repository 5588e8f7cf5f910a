"""Test app for the shim: prints "got N" for every signal it gets, real-time
ones included (tests/apps/printsig.py stops at 31), and exits 0 on TERM.

Prints "ready pid=P ppid=Q" first. Python cannot catch glibc's internal 32
and 33, nor KILL and STOP; CHLD is left alone.
"""
import os
import signal
import time


def on_signal(signum, frame):
    os.write(1, f"got {signum}\n".encode())
    if signum == signal.SIGTERM:
        os._exit(0)


for s in [*range(1, 32), *range(signal.SIGRTMIN, signal.SIGRTMAX + 1)]:
    if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        signal.signal(s, on_signal)
os.write(1, f"ready pid={os.getpid()} ppid={os.getppid()}\n".encode())
while True:
    time.sleep(0.05)  # not pause(): see printsig.py

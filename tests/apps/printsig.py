"""Test app: says who it is, then prints every signal it gets, one line each.

  printsig.py [--exit-on SIG:CODE ...] [--ignore SIG ...]
Prints "ready pid=P ppid=Q", then "got SIGNAME" per signal (flushed), and
exits with CODE when it gets SIG (after printing it).
"""
import os
import signal
import sys
import time

exit_on = {}
ignore = set()
args = sys.argv[1:]
while args:
    flag, value, args = args[0], args[1], args[2:]
    if flag == "--exit-on":
        sig, code = value.split(":")
        exit_on[getattr(signal, "SIG" + sig)] = int(code)
    elif flag == "--ignore":
        ignore.add(getattr(signal, "SIG" + value))

handled = [s for s in range(1, 32)
           if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)]


def on_signal(signum, frame):
    if signum in ignore:
        return
    os.write(1, f"got {signal.Signals(signum).name}\n".encode())
    if signum in exit_on:
        os._exit(exit_on[signum])


for s in handled:
    signal.signal(s, on_signal)
os.write(1, f"ready pid={os.getpid()} ppid={os.getppid()}\n".encode())
while True:
    # Not signal.pause(): a signal landing between Python's check for pending
    # handlers and the pause() call would wait for the next signal. A short
    # sleep bounds that delay.
    time.sleep(0.05)

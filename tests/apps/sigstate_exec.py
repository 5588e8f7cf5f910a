"""Exec a program with a chosen signal state, as a parent shell or a
container runtime might leave it: sigstate_exec.py BLOCK IGNORE -- ARGV...
BLOCK and IGNORE are comma-separated names (USR1,USR2 / TTIN,TTOU) or "-".
Every other signal gets its default disposition (Python itself ignores PIPE
and XFSZ, and SIG_IGN would survive the exec)."""
import os
import signal
import sys

block, ignore, dash, *argv = sys.argv[1:]
assert dash == "--" and argv, __doc__


def parse(text):
    return [] if text == "-" else [getattr(signal, "SIG" + n) for n in text.split(",")]


for s in range(1, 32):
    if s not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(s, signal.SIG_DFL)
for s in parse(ignore):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_SETMASK, parse(block))
os.execvp(argv[0], argv)

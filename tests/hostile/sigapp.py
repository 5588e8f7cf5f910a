"""Test app: prints `ready pid=P`, then `got N` for every signal number it
receives (real-time ones and fault signals too, caught by handlers), and
exits 3 on SIGTERM unless told `--survive`."""
import os
import signal
import sys
import time

survive = "--survive" in sys.argv


def on_signal(signum, frame):
    os.write(1, f"got {signum}\n".encode())
    if signum == signal.SIGTERM and not survive:
        os._exit(3)


for s in range(1, signal.SIGRTMAX + 1):
    if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        try:
            signal.signal(s, on_signal)
        except (OSError, ValueError):
            pass
os.write(1, f"ready pid={os.getpid()}\n".encode())
while True:
    time.sleep(0.05)

"""Test app speaking systemd's notify protocol itself over NOTIFY_SOCKET.

  notify_app.py [--ready-when PATH] [--status TEXT] [--ping-until PATH]
                [--systemd-notify] [--exit-on SIG:CODE ...]
Prints "ready pid=P" at start and "got SIGNAME" per signal (flushed). Sends
READY=1 (with STATUS=TEXT) once PATH exists (at once without
--ready-when), through `systemd-notify --ready --status=TEXT` run as its
child with --systemd-notify. With --ping-until it sends WATCHDOG=1 every
50 ms until that file exists. Exits with CODE on SIG (default TERM:0).
"""
import os
import signal
import socket
import subprocess
import sys
import time

ready_when = status = ping_until = None
use_systemd_notify = False
exit_on = {signal.SIGTERM: 0}
args = sys.argv[1:]
while args:
    flag = args.pop(0)
    if flag == "--ready-when":
        ready_when = args.pop(0)
    elif flag == "--status":
        status = args.pop(0)
    elif flag == "--ping-until":
        ping_until = args.pop(0)
    elif flag == "--systemd-notify":
        use_systemd_notify = True
    elif flag == "--exit-on":
        sig, code = args.pop(0).split(":")
        exit_on[getattr(signal, "SIG" + sig)] = int(code)


def on_signal(signum, frame):
    os.write(1, f"got {signal.Signals(signum).name}\n".encode())
    if signum in exit_on:
        os._exit(exit_on[signum])


for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
          signal.SIGHUP):
    signal.signal(s, on_signal)

address = os.environ["NOTIFY_SOCKET"]
address = "\0" + address[1:] if address.startswith("@") else address
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)


def send(text):
    sock.sendto(text.encode(), address)


os.write(1, f"ready pid={os.getpid()}\n".encode())
sent_ready = False
while True:
    if not sent_ready and (ready_when is None or os.path.exists(ready_when)):
        sent_ready = True
        if use_systemd_notify:
            argv = ["systemd-notify", "--ready"] + ([f"--status={status}"] if status else [])
            code = subprocess.run(argv, timeout=20).returncode
            os.write(1, f"systemd-notify exited {code}\n".encode())
        else:
            send("READY=1" + (f"\nSTATUS={status}" if status else ""))
            os.write(1, b"sent READY=1\n")
    if ping_until is not None and not os.path.exists(ping_until):
        send("WATCHDOG=1")
    time.sleep(0.05)

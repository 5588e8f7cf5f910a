"""The control socket, the metrics server and the notify socket inside the
real loop (initd.loop.Loop: signalfd + poll), in a process of their own:
clients that never speak or never read do not delay signals."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import free_port
from test_control import SNAPSHOT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SERVER = r"""
import json, os, signal, sys, time
from initd import control, loop as L, metrics, notify, signals
signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED)
snapshot = json.loads(sys.argv[2])
snapshot["blob"] = "x" * 900_000          # more than a socket buffer holds
lp = L.Loop()
srv = control.ControlServer.open(sys.argv[1], lambda: snapshot, deadline=1.0)
srv.start(lp)
met = metrics.MetricsServer.open("127.0.0.1:" + sys.argv[3], lambda: snapshot)
met.start(lp)
rcv = notify.Receiver(sys.argv[4], lambda pid, uid: True,
                      lambda e, v, now: print("notify", e, v, flush=True))
lp.watch(rcv.fd, rcv.on_ready)
def on_signal(signum, sender, now):
    print("signal", signum, flush=True)
    if signum == signal.SIGTERM:
        lp.running = False
lp.on_signal = on_signal
print("listening", flush=True)
lp.run()
srv.close(); met.close(); rcv.close()
print("bye", flush=True)
"""


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "run" / "initd.sock")
    port = free_port()
    address = "@initd-test-" + os.urandom(6).hex()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, path, json.dumps(SNAPSHOT),
                             str(port), address], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert proc.stdout.readline() == "listening\n"
        yield proc, path, port, address
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_stuck_clients_do_not_delay_signals(server):
    proc, path, port, address = server
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(path)
    lazy = socket.socket(socket.AF_UNIX)          # asks, never reads
    lazy.connect(path)
    lazy.sendall(b"status\n")
    silent_tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(0.2)
    for _ in range(3):
        start = time.monotonic()
        os.kill(proc.pid, signal.SIGUSR1)
        assert proc.stdout.readline() == f"signal {int(signal.SIGUSR1)}\n"
        assert time.monotonic() - start < 0.5
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", "\0" + address[1:])
    assert proc.stdout.readline() == "notify ready True\n"
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(3)
        c.connect(path)
        c.sendall(b"health\n")
        assert json.loads(c.makefile("rb").read())["ready"] is True
    silent.settimeout(3)
    assert silent.recv(1) == b""                  # closed at its deadline
    silent_tcp.settimeout(5)
    assert silent_tcp.recv(1) == b""
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.stdout.readline() == f"signal {int(signal.SIGTERM)}\n"
    assert proc.stdout.readline() == "bye\n"
    assert proc.wait(5) == 0
    assert not os.path.exists(path)
    for s in (silent, lazy, silent_tcp):
        s.close()

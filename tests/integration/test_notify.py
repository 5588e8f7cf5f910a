"""The notify socket with real datagrams: from systemd-notify, from a Python
app writing them itself, from a foreign process (ignored), and the watchdog."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from fakeloop import FakeLoop
from initd import notify

SYSTEMD_NOTIFY = shutil.which("systemd-notify")


class Setup:
    def __init__(self):
        self.loop = FakeLoop()
        self.events = []
        self.app = None
        self.procs = []
        self.address = notify.new_address()
        is_ours = notify.family_check(lambda: self.app, os.getuid)
        self.receiver = notify.Receiver(self.address, is_ours,
                                        lambda e, v, now: self.events.append((e, v)))
        self.loop.watch(self.receiver.fd, self.receiver.on_ready)

    def start(self, argv, app=False, **kwargs):
        env = dict(os.environ, **notify.app_environ(self.address, kwargs.pop("watchdog", None)))
        proc = subprocess.Popen(argv, env=env, **kwargs)
        self.procs.append(proc)
        if app:
            self.app = proc.pid
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
        self.receiver.close()
        assert not self.loop.errors, self.loop.errors


@pytest.fixture
def setup():
    s = Setup()
    yield s
    s.close()


PY_APP = r"""
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(msg): s.sendto(msg.encode(), addr)
send("STATUS=warming up")
send("READY=1\nSTATUS=serving")
pings = int(sys.argv[1])
for _ in range(pings):
    time.sleep(0.05); send("WATCHDOG=1")
time.sleep(30)
"""


def test_python_app_ready_and_status(setup):
    setup.start([sys.executable, "-c", PY_APP, "0"], app=True)
    setup.loop.run_until(lambda: ("status", "serving") in setup.events, timeout=10)
    assert setup.events == [("status", "warming up"), ("ready", True), ("status", "serving")]


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify (Debian's systemd) missing")
def test_systemd_notify_from_the_app_script(setup):
    # The app is a shell script calling systemd-notify, as real ones do. It
    # waits for our answer to its BARRIER=1 (its fd closed), so `wait` ends
    # quickly only if we close it, and the script's next line then runs.
    app = setup.start(["sh", "-c", f'{SYSTEMD_NOTIFY} --ready --status="up and running"; '
                       'echo done=$?; sleep 30'], app=True, stdout=subprocess.PIPE)
    before = len(os.listdir("/proc/self/fd"))
    start = time.monotonic()
    setup.loop.run_until(lambda: ("ready", True) in setup.events, timeout=10)
    assert ("status", "up and running") in setup.events
    setup.loop.run_for(0.3)
    assert app.stdout.readline() == b"done=0\n"
    assert time.monotonic() - start < 3        # not systemd-notify's 5 s barrier timeout
    assert len(os.listdir("/proc/self/fd")) <= before  # the barrier fd was closed


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify (Debian's systemd) missing")
def test_systemd_notify_no_block_gone_before_read(setup):
    # --no-block: it sends and exits at once. As root it sends on behalf of
    # its parent, here a shell that has exited too by the time we read:
    # only the uid rule can accept it.
    app = setup.start(["sh", "-c", f'sh -c "{SYSTEMD_NOTIFY} --no-block STATUS=quick"; '
                       'echo sent; sleep 30'], app=True, stdout=subprocess.PIPE)
    assert app.stdout.readline() == b"sent\n"
    setup.loop.run_until(lambda: ("status", "quick") in setup.events, timeout=5)


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify (Debian's systemd) missing")
def test_systemd_notify_from_outside_the_app_ignored(setup):
    # Sent on behalf of its parent, this test process: alive, and not the app's.
    setup.start(["sleep", "30"], app=True)
    sender = setup.start([SYSTEMD_NOTIFY, "--no-block", "--ready"])
    sender.wait(10)
    setup.loop.run_for(0.3)
    assert setup.events == [] and setup.receiver.dropped == 1


FOREIGN = r"""
import os, socket, sys, time
addr = "\0" + os.environ["NOTIFY_SOCKET"][1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=spoofed", addr)
print("sent", flush=True)
time.sleep(30)
"""


def test_foreign_process_ignored(setup):
    setup.start(["sleep", "30"], app=True)
    foreign = setup.start([sys.executable, "-c", FOREIGN], stdout=subprocess.PIPE)
    assert foreign.stdout.readline() == b"sent\n"  # still alive when we read
    setup.loop.run_for(0.3)
    assert setup.events == [] and setup.receiver.dropped == 1


def test_gone_sender_of_another_uid_ignored(setup):
    setup.start(["sleep", "30"], app=True)
    other = setup.start(["/usr/bin/python3", "-c", FOREIGN.replace("time.sleep(30)", "")],
                        stdout=subprocess.PIPE, user=65534, group=65534)
    other.wait(10)
    setup.loop.run_for(0.3)
    assert setup.events == [] and setup.receiver.dropped == 1


def test_watchdog_pings_then_silence(setup):
    misses = []
    dog = notify.Watchdog(0.3, misses.append)
    setup.loop.add(dog)
    setup.receiver.on_event = lambda e, v, now: dog.ping(now) if e == "watchdog" else None
    dog.arm(setup.loop.now())
    setup.start([sys.executable, "-c", PY_APP, "20"], app=True, watchdog=0.3)
    setup.loop.run_for(0.9)                   # pinging every 50 ms for ~1 s
    assert misses == []
    setup.loop.run_until(lambda: len(misses) >= 2, timeout=5)  # then silent: a miss a period


def test_path_address(tmp_path, setup):
    path = str(tmp_path / "notify.sock")
    events = []
    r = notify.Receiver(path, lambda pid, uid: pid == os.getpid(),
                        lambda e, v, now: events.append(e))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", path)
        r.on_ready(r.fd, 0, 0.0)
        assert events == ["ready"]
    finally:
        r.close()
    assert not os.path.exists(path)


def test_bounded_reads_per_wake(setup, monkeypatch):
    # The kernel queues only net.unix.max_dgram_qlen (often 10) datagrams,
    # so the bound is lowered to show it holds.
    monkeypatch.setattr(notify, "MAX_PER_WAKE", 4)
    setup.app = os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK) as s:
        for _ in range(6):
            s.sendto(b"WATCHDOG=1", "\0" + setup.address[1:])
    setup.receiver.on_ready(setup.receiver.fd, 0, 0.0)
    assert len(setup.events) == 4
    setup.receiver.on_ready(setup.receiver.fd, 0, 0.0)
    assert len(setup.events) == 6

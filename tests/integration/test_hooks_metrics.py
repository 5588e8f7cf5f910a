"""Hooks run for real (environment, failures, a hook that hangs), and the
metrics HTTP server over real TCP, its output checked by promtool."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from fakeloop import FakeLoop
from initd import hooks, metrics
from serverthread import Running

from test_control import SNAPSHOT


def make_hooks(loop, commands, timeout=5.0):
    hookset = hooks.parse_hooks(dict(commands, timeout=timeout))
    h = hooks.Hooks(hookset, "web", loop, {"PATH": os.environ["PATH"]})  # the real spawn.child
    loop.add(h)
    return h


def test_hook_gets_its_environment(tmp_path):
    loop = FakeLoop()
    out = tmp_path / "env.json"
    h = make_hooks(loop, {"ready": f'env > {out}.tmp && mv {out}.tmp {out}',
                          "exited": ["/bin/sh", "-c", f'echo "$INITD_EXIT_CODE" > {out}.exit']})
    assert h.fire("unready", 3, None, loop.now()) is None   # no hook for it
    h.fire("ready", 1234, None, loop.now())
    loop.run_until(lambda: not h.busy())
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["INITD_EVENT"] == "ready" and env["INITD_ROLE"] == "web"
    assert env["INITD_APP_PID"] == "1234" and env["INITD_EXIT_CODE"] == ""
    h.fire("exited", None, 143, loop.now())
    loop.run_until(lambda: not h.busy())
    assert (tmp_path / "env.json.exit").read_text() == "143\n"


def test_hung_hook_and_its_children_killed_at_timeout(tmp_path):
    loop = FakeLoop()
    pidfile = tmp_path / "grandchild"
    h = make_hooks(loop, {"stopping": f"sleep 60 & echo $! > {pidfile}; wait"}, timeout=0.5)
    start = time.monotonic()
    pid = h.fire("stopping", 1, None, loop.now())
    loop.run_until(lambda: pidfile.exists() and pidfile.read_text().strip())
    grandchild = int(pidfile.read_text())
    try:
        loop.run_until(lambda: not h.busy(), timeout=5)
        took = time.monotonic() - start
        assert 0.45 < took < 2.0, took
        # The grandchild (a member of the hook's group) got SIGKILL too; it is
        # a zombie of init's until someone reaps it, or already gone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{grandchild}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the hook's grandchild survived the timeout")
    finally:
        for p in (pid, grandchild):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_failing_and_missing_hooks_are_logged_not_fatal(capfd):
    loop = FakeLoop()
    h = make_hooks(loop, {"ready": "exit 3", "unready": ["/no/such/hook"]})
    h.fire("ready", 1, None, loop.now())
    h.fire("unready", 1, None, loop.now())
    loop.run_until(lambda: not h.busy())
    err = capfd.readouterr().err
    assert "initd: WARNING hook ready: exited 3" in err
    assert "initd: WARNING hook unready: command not found (exit 127)" in err
    assert not loop.errors


def test_hook_spawn_failure_is_logged():
    loop = FakeLoop()

    def broken(*args, **kwargs):
        raise OSError(24, "Too many open files")
    h = hooks.Hooks(hooks.parse_hooks({"ready": "true"}), "web", loop, {}, spawn=broken)
    assert h.fire("ready", 1, None, loop.now()) is None and not h.busy()


# --- metrics over HTTP ----------------------------------------------------

@pytest.fixture
def metrics_server():
    r = Running()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = metrics.MetricsServer(sock, lambda: SNAPSHOT, deadline=0.6)
    server.start(r.loop)
    r.start()
    yield server
    r.close()
    server.close()


def http(port, request, timeout=3.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


def test_get_metrics(metrics_server):
    head, body = http(metrics_server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                           b"Accept: text/plain\r\n\r\n")
    assert head.startswith("HTTP/1.0 200 OK")
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert f"Content-Length: {len(body)}" in head
    tool = shutil.which("promtool")
    assert tool, "promtool missing: apt-get install prometheus"
    check = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    assert b"initd_app_ready 1" in body


@pytest.mark.parametrize("request_line,status", [
    (b"GET / HTTP/1.0", "404"), (b"GET /metricsx HTTP/1.0", "404"),
    (b"POST /metrics HTTP/1.0", "405"), (b"nonsense", "400"),
])
def test_other_requests(metrics_server, request_line, status):
    head, _ = http(metrics_server.port, request_line + b"\r\n\r\n")
    assert head.split()[1] == status


def test_oversized_and_silent(metrics_server):
    head, _ = http(metrics_server.port, b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 8000)
    assert head.split()[1] == "400"
    silent = socket.create_connection(("127.0.0.1", metrics_server.port), timeout=5)
    start = time.monotonic()
    head, _ = http(metrics_server.port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert head.split()[1] == "200" and time.monotonic() - start < 0.5
    assert silent.recv(10) == b""
    assert 0.3 < time.monotonic() - start < 2.0
    silent.close()


def test_bad_address_is_one_line():
    from initd.errors import InitdError
    with pytest.raises(InitdError) as e:
        metrics.MetricsServer.open("localhost", lambda: SNAPSHOT)
    assert str(e.value).startswith("metrics: expected \"HOST:PORT\"")

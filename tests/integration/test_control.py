"""The control socket with real sockets: permissions, stale and symlinked
paths, slow and silent clients, the `initd health`/`status` client."""
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from initd import client, control
from initd.errors import InitdError
from serverthread import Running

SNAPSHOT = {"role": "web", "revision": "abc123", "state": "ready", "ready": True,
            "alive": True, "pids": {"initd": 1, "shim": 2, "app": 3}, "uptime": 3723,
            "health": {"state": "healthy", "failing_streak": 0,
                       "last": {"ok": True, "code": 0, "detail": "", "output": "pong\n",
                                "duration": 0.01, "at": 0}},
            "notify": {"status": "serving", "ready": True}, "restarts": [],
            "restarts_total": {"crash": 1}, "last_exit_code": 137,
            "counters": {"signals_received": {"SIGTERM": 1}, "signals_delivered": {},
                         "orphans_reaped": 2, "probes": 4, "probe_failures": 0},
            "stop_duration": None, "rss_bytes": 1}


@pytest.fixture
def served(tmp_path):
    """start(status=..., deadline=...) -> (server, path); stopped at the end."""
    running = []

    def start(status=lambda: SNAPSHOT, deadline=1.0, path=None):
        path = path or str(tmp_path / "run" / "initd.sock")
        server = control.ControlServer.open(path, status, deadline=deadline)
        r = Running()
        server.start(r.loop)
        r.start()
        running.append((r, server))
        return server, path

    yield start
    for r, server in running:
        r.close()
        server.close()


def ask_raw(path, data, timeout=3.0, shut=False):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_permissions(served):
    server, path = served()
    st, dst = os.lstat(path), os.lstat(os.path.dirname(path))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(dst.st_mode) == 0o700
    assert st.st_uid == dst.st_uid == os.geteuid()


def test_answers_status_and_health(served):
    _, path = served()
    assert json.loads(ask_raw(path, b'{"cmd": "status"}\n')) == SNAPSHOT
    assert json.loads(ask_raw(path, b"health\n"))["healthy"] is True
    assert json.loads(ask_raw(path, b"status", shut=True)) == SNAPSHOT  # EOF ends a request too
    assert "error" in json.loads(ask_raw(path, b'{"cmd": "reboot"}\n'))
    assert "error" in json.loads(ask_raw(path, b"{nope\n"))


def test_client_exit_codes(served, capsys):
    state = dict(SNAPSHOT)
    _, path = served(status=lambda: state)
    env = {}
    assert client.main(["health", "--control", path], env) == 0
    assert client.main(["health", "--ready", "--control", path], env) == 0
    state.update(ready=False, state="draining")
    assert client.main(["health", "--control", path], env) == 0
    assert client.main(["health", "--ready", "--control", path], env) == 1
    state["health"] = {"state": "unhealthy", "failing_streak": 3, "last": None}
    assert client.main(["health", "--control", path], env) == 1
    state.update(alive=False, health={"state": "none"})
    assert client.main(["health", "--control", path], env) == 1
    capsys.readouterr()
    assert client.main(["status", "--json", f"--control={path}"], env) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "draining"
    assert client.main(["status"], {"INITD_CONTROL": path}) == 0
    out = capsys.readouterr().out
    assert "role web (revision abc123): draining, not ready" in out and "last exit 137" in out
    assert client.main(["status", "--bogus"], env) == 2
    assert client.main(["frobnicate"], env) == 2


def test_client_when_no_initd_answers(tmp_path):
    path = str(tmp_path / "none.sock")
    result = subprocess.run([sys.executable, "-m", "initd.client", "health", "--control", path],
                            capture_output=True, timeout=10, text=True)
    assert result.returncode == client.NO_ANSWER == 3
    assert result.stderr.count("\n") == 1 and "no control socket" in result.stderr
    # A socket file nobody listens on: refused, the same code.
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    assert client.main(["status", "--control", path], {}) == 3


def test_client_times_out_on_a_mute_server(tmp_path, capsys):
    path = str(tmp_path / "mute.sock")
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen(1)  # accepts in the backlog, never answers
    try:
        start = time.monotonic()
        assert client.main(["health", "--control", path], {}) == 3
        assert time.monotonic() - start < client.TIMEOUT + 1
        assert "no answer within" in capsys.readouterr().err
    finally:
        mute.close()


def test_silent_client_closed_at_deadline_others_answered(served):
    server, path = served(deadline=0.6)
    silent = socket.socket(socket.AF_UNIX)
    silent.settimeout(5)
    silent.connect(path)
    start = time.monotonic()
    for _ in range(5):
        assert json.loads(ask_raw(path, b"health\n", timeout=1))["role"] == "web"
    assert time.monotonic() - start < 0.5   # not held up by the silent one
    assert silent.recv(10) == b""           # closed by initd...
    took = time.monotonic() - start
    assert 0.4 < took < 2.0, took           # ...at its deadline
    silent.close()


def test_client_that_never_reads(served):
    big = dict(SNAPSHOT, blob="x" * 900_000)  # more than the socket buffers hold
    server, path = served(status=lambda: big, deadline=0.6)
    lazy = socket.socket(socket.AF_UNIX)
    lazy.connect(path)
    lazy.sendall(b"status\n")
    time.sleep(0.1)
    start = time.monotonic()
    assert json.loads(ask_raw(path, b"health\n", timeout=1))["alive"] is True
    assert time.monotonic() - start < 0.5
    deadline = time.monotonic() + 3
    while server.conns and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.conns                  # dropped at its deadline
    lazy.settimeout(2)
    got = b""
    while chunk := lazy.recv(1 << 20):
        got += chunk
    assert 0 < len(got) < len(json.dumps(big))  # cut short, then EOF
    lazy.close()


def test_oversized_request(served):
    _, path = served()
    answer = json.loads(ask_raw(path, b"x" * 5000))
    assert "longer than 1024" in answer["error"]


def test_many_clients_at_once(served):
    server, path = served(deadline=0.5)
    held = []
    for _ in range(control.MAX_OPEN + 10):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        held.append(s)
    time.sleep(0.2)
    assert len(server.conns) <= control.MAX_OPEN
    for s in held:
        s.close()
    time.sleep(0.8)
    assert json.loads(ask_raw(path, b"health\n"))["ready"] is True


def test_stale_socket_replaced(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    path = str(d / "initd.sock")
    old = socket.socket(socket.AF_UNIX)
    old.bind(path)
    old.close()                               # a previous run's file, nobody listening
    sock = control.open_listener(path)
    try:
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(path)                   # the new listener is the one there
    finally:
        sock.close()


def test_live_initd_is_not_replaced(served):
    _, path = served()
    with pytest.raises(InitdError) as e:
        control.open_listener(path)
    assert "another initd is answering" in str(e.value)
    assert json.loads(ask_raw(path, b"health\n"))["alive"] is True  # untouched


def test_symlinks_and_strangers_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(InitdError, match="is a symlink"):
        control.open_listener(str(tmp_path / "link" / "initd.sock"))
    target = tmp_path / "elsewhere.sock"
    (real / "initd.sock").symlink_to(target)
    with pytest.raises(InitdError, match="is a symlink"):
        control.open_listener(str(real / "initd.sock"))
    assert not target.exists()
    os.unlink(real / "initd.sock")
    (real / "initd.sock").write_text("precious")
    with pytest.raises(InitdError, match="not a socket"):
        control.open_listener(str(real / "initd.sock"))
    assert (real / "initd.sock").read_text() == "precious"
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    with pytest.raises(InitdError, match="expected 0700"):
        control.open_listener(str(loose / "initd.sock"))
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(InitdError, match="owned by uid 65534"):
        control.open_listener(str(theirs / "initd.sock"))
    with pytest.raises(InitdError, match="must be absolute"):
        control.open_listener("relative.sock")


def test_default_paths():
    assert control.default_path({}, 0) == "/run/initd/initd.sock"
    assert control.default_path({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000) == \
        "/run/user/1000/initd/initd.sock"
    assert control.default_path({"XDG_RUNTIME_DIR": "rel"}, 1000) == "/tmp/initd-1000/initd.sock"
    assert control.path_from({"INITD_CONTROL": "/x.sock"}) == "/x.sock"
    assert control.path_from({"INITD_CONTROL": "/x.sock"}, "/y.sock") == "/y.sock"


def test_from_settings(tmp_path, capfd):
    assert control.ControlServer.from_settings(None, {}, dict, disabled=True) is None
    path = str(tmp_path / "run" / "initd.sock")
    server = control.ControlServer.from_settings(None, {"INITD_CONTROL": path}, dict)
    try:
        assert server.path == path
        with pytest.raises(InitdError, match="another initd"):   # chosen: fatal
            control.ControlServer.from_settings(path, {}, dict)
        # The default unusable (here: taken, as by a second initd sharing
        # the host's /run): a line (INFO here, not PID 1; WARNING as PID 1),
        # and no socket.
        euid = os.geteuid()
        default = control.default_path({}, euid)
        if euid != 0:
            pytest.skip("needs root for the default path")
        taken = None
        if not os.path.exists(default):
            taken = control.ControlServer.open(default, dict)
        from initd import log
        level, log.level = log.level, log.INFO
        try:
            assert control.ControlServer.from_settings(None, {}, dict) is None
            assert "running without a control socket" in capfd.readouterr().err
        finally:
            log.level = level
            if taken:
                taken.close()
                try:
                    os.rmdir(os.path.dirname(default))  # ours, if now empty
                except OSError:
                    pass
    finally:
        server.close()

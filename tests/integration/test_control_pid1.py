"""Issue 13 end to end, initd as PID 1 of fresh PID+mount namespaces: the
notify socket (real datagrams, systemd-notify), the watchdog, drain, linger,
the control socket and `initd health`/`status` asked from another process,
metrics checked by promtool, and hooks.

Every initd gets `--control <tmp_path>/run/initd.sock`: `unshare
--mount-proc` gives no private /run, so the default would be shared with
the host and the other tests. Every wait is bounded; every process is
killed by pid at the end (Watched.stop)."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request

import pytest

from helpers import PY, Initd, app, children, initd_env, run_initd, sleep_until, free_port

SYSTEMD_NOTIFY = shutil.which("systemd-notify")
PROMTOOL = shutil.which("promtool")


def control_path(tmp_path):
    return str(tmp_path / "run" / "initd.sock")


def start(started, tmp_path, role, args=()):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": role}))
    w = Initd(["-v", "--roles", str(roles), "--role", "web",
               "--control", control_path(tmp_path), *args])
    started.append(w)
    w.sock = control_path(tmp_path)
    return w


def ask(w, *args):
    """`initd health|status ...` from another process: (exit code, stdout)."""
    proc = subprocess.run([PY, "-m", "initd", *args, "--control", w.sock],
                          capture_output=True, text=True, timeout=10, env=initd_env())
    return proc.returncode, proc.stdout + proc.stderr


def status(w):
    code, out = ask(w, "status", "--json")
    assert code == 0, out
    return json.loads(out)


def notify_role(tmp_path, *args, **extra):
    return {"command": app("notify_app.py", *args), "notify": True, **extra}


def app_pid(w):
    """The app's host pid (the shim's child)."""
    def found():
        for shim in children(w.pid):
            kids = children(shim)
            if kids:
                return kids[0]
        return None
    pid = sleep_until(found, timeout=10)
    w.known.add(pid)
    return pid


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e]
    return {k.decode(): v.decode() for k, v in pairs}


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in {text}")


# --- notify -----------------------------------------------------------------

def test_python_app_ready_and_status(started, tmp_path):
    go = tmp_path / "go"
    w = start(started, tmp_path, notify_role(tmp_path, "--ready-when", str(go),
                                             "--status", "serving 3 req/s"))
    w.expect("ready pid=")
    sleep_until(lambda: os.path.exists(w.sock), timeout=10)
    assert ask(w, "health")[0] == 0              # alive...
    assert ask(w, "health", "--ready")[0] == 1   # ...but no READY=1 yet
    doc = status(w)
    assert doc["state"] == "running" and doc["notify"] == {"ready": False, "status": None}
    go.touch()
    w.expect("sent READY=1")
    sleep_until(lambda: ask(w, "health", "--ready")[0] == 0, timeout=5)
    doc = status(w)
    assert doc["state"] == "ready" and doc["notify"]["status"] == "serving 3 req/s"
    code, out = ask(w, "status")
    assert "STATUS=serving 3 req/s" in out
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify (Debian's systemd) missing")
def test_systemd_notify_run_by_the_app(started, tmp_path):
    # As root, systemd-notify sends on behalf of its parent (the app) and
    # waits for the answer to its BARRIER=1: initd closes that fd.
    w = start(started, tmp_path, notify_role(tmp_path, "--systemd-notify",
                                             "--status", "warm and ready"))
    start_time = time.monotonic()
    w.expect("systemd-notify exited 0")
    assert time.monotonic() - start_time < 4     # not systemd-notify's 5 s barrier timeout
    sleep_until(lambda: ask(w, "health", "--ready")[0] == 0, timeout=5)
    assert status(w)["notify"] == {"ready": True, "status": "warm and ready"}
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


SPOOF = r"""
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=spoofed", "\0" + sys.argv[1][1:])
print("sent", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_foreign_datagrams_ignored(started, tmp_path):
    w = start(started, tmp_path, notify_role(tmp_path, "--ready-when", str(tmp_path / "never")))
    w.expect("ready pid=")
    address = environ_of(app_pid(w))["NOTIFY_SOCKET"]
    assert address.startswith("@initd-notify-")
    # From outside initd's pid namespace: its pid reads as 0 there.
    subprocess.run([PY, "-c", SPOOF, address, "0"], timeout=10, check=True,
                   capture_output=True)
    # From inside the namespace, alive while judged, but not the app's family.
    sender = subprocess.Popen(["nsenter", "-t", str(w.pid), "-p", "--", PY, "-c", SPOOF,
                               address, "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert sender.stdout.readline() == "sent\n"
        time.sleep(0.5)
        doc = status(w)
        assert doc["notify"] == {"ready": False, "status": None}, doc
        assert ask(w, "health", "--ready")[0] == 1
    finally:
        sender.kill()
        sender.wait(10)
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


def test_watchdog_silence_restarts_the_app(started, tmp_path):
    stop_pinging = tmp_path / "quiet"
    w = start(started, tmp_path, notify_role(
        tmp_path, "--ping-until", str(stop_pinging), watchdog="400ms",
        on_unhealthy="restart", restart="on-failure", backoff={"initial": "100ms"}))
    first = w.expect("ready pid=")
    w.expect("sent READY=1")
    time.sleep(1.0)                              # pings keep it healthy past 2 periods
    assert ask(w, "health")[0] == 0
    assert status(w)["restarts"] == []
    stop_pinging.touch()
    # Missed: unhealthy; on_unhealthy restart stops the app (TERM) and starts it again.
    w.expect("got SIGTERM", timeout=5)
    second = w.expect("ready pid=", timeout=5)
    assert second != first
    w.expect("watchdog", stream="err")
    doc = status(w)
    assert doc["restarts"] and doc["restarts"][0]["reason"] == "unhealthy", doc
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


# --- drain, and the phases seen from another process -------------------------

def test_phases_seen_by_health_and_status(started, tmp_path):
    go = tmp_path / "go"
    port = free_port()
    w = start(started, tmp_path, notify_role(tmp_path, "--ready-when", str(go), drain="1s"),
              ["--metrics", f"127.0.0.1:{port}"])
    w.expect("ready pid=")
    sleep_until(lambda: os.path.exists(w.sock), timeout=10)
    # Starting: alive, not ready.
    assert (ask(w, "health")[0], ask(w, "health", "--ready")[0]) == (0, 1)
    assert metric(port, "initd_app_ready") == 0 and metric(port, "initd_app_up") == 1
    go.touch()
    # Running and ready.
    sleep_until(lambda: ask(w, "health", "--ready")[0] == 0, timeout=5)
    assert ask(w, "health")[0] == 0 and metric(port, "initd_app_ready") == 1
    # Draining: not ready at once, still alive, and the app has no signal yet.
    sent = time.monotonic()
    w.kill(signal.SIGTERM)
    assert ask(w, "health", "--ready")[0] == 1
    not_ready = time.monotonic() - sent
    assert ask(w, "health")[0] == 0
    assert metric(port, "initd_app_ready") == 0
    doc = status(w)
    assert doc["state"] == "draining" and doc["alive"] and not doc["ready"], doc
    w.expect("got SIGTERM", timeout=5)
    drained = time.monotonic() - sent
    assert not_ready < 0.9, not_ready           # well before the drain ends
    assert 0.9 <= drained < 2.5, drained
    # Stopped: no initd answers (exit 3).
    assert w.wait() == 0
    code, out = ask(w, "health")
    assert code == 3 and out.count("\n") == 1, out


def test_second_term_skips_the_drain(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "TERM:0"),
                                  "drain": "5s"})
    w.expect("ready pid=")
    w.kill(signal.SIGTERM)
    w.expect("draining web for 5s", stream="err")
    sent = time.monotonic()
    w.kill(signal.SIGTERM)
    w.expect("got SIGTERM", timeout=5)
    assert time.monotonic() - sent < 1.0
    assert w.wait() == 0


# --- linger -----------------------------------------------------------------

def test_linger_keeps_the_exit_code(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "USR1:3"),
                                  "exit_delay": "1s"})
    w.expect("ready pid=")
    w.kill(signal.SIGUSR1)
    w.expect("got SIGUSR1")
    gone = time.monotonic()
    assert w.wait() == 3
    lingered = time.monotonic() - gone
    assert 0.9 <= lingered < 2.5, lingered


def test_term_cuts_the_linger_short(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "USR1:3")},
              ["--exit-delay", "20s"])
    w.expect("ready pid=")
    w.kill(signal.SIGUSR1)
    w.expect("lingering 20s", stream="err")
    sent = time.monotonic()
    w.kill(signal.SIGTERM)
    assert w.wait() == 3
    assert time.monotonic() - sent < 1.5


# --- the control socket -----------------------------------------------------

def test_socket_permissions(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py")})
    w.expect("ready pid=")
    sleep_until(lambda: os.path.exists(w.sock), timeout=10)
    st, dst = os.lstat(w.sock), os.lstat(os.path.dirname(w.sock))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_ISDIR(dst.st_mode) and stat.S_IMODE(dst.st_mode) == 0o700
    w.kill(signal.SIGTERM)
    w.wait()
    assert not os.path.exists(w.sock)            # removed on exit


def test_stale_socket_replaced(started, tmp_path):
    path = control_path(tmp_path)
    os.makedirs(os.path.dirname(path), mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()                                # the file stays; nobody listens
    w = start(started, tmp_path, {"command": app("printsig.py")})
    w.expect("ready pid=")
    sleep_until(lambda: ask(w, "health")[0] == 0, timeout=10)
    w.kill(signal.SIGTERM)
    w.wait()


def test_live_socket_refused(started, tmp_path):
    first = start(started, tmp_path, {"command": app("printsig.py")})
    first.expect("ready pid=")
    sleep_until(lambda: ask(first, "health")[0] == 0, timeout=10)
    code, out, err = run_initd(["--control", control_path(tmp_path), "--", "true"])
    assert code == 2 and err.count("\n") == 1 and "another initd" in err, err
    assert ask(first, "health")[0] == 0          # the first one's socket is intact


def test_symlinked_socket_path_refused(tmp_path):
    path = control_path(tmp_path)
    os.makedirs(os.path.dirname(path), mode=0o700)
    target = tmp_path / "elsewhere"
    os.symlink(target, path)
    code, out, err = run_initd(["--control", path, "--", "true"])
    assert code == 2 and err.count("\n") == 1 and "symlink" in err, err
    assert "Traceback" not in err and not target.exists()


def test_silent_client_does_not_delay_signals(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "TERM:0")})
    w.expect("ready pid=")
    sleep_until(lambda: os.path.exists(w.sock), timeout=10)
    silent = socket.socket(socket.AF_UNIX)
    try:
        silent.connect(w.sock)
        connected = time.monotonic()
        for _ in range(3):
            sent = time.monotonic()
            w.kill(signal.SIGUSR1)
            w.expect("got SIGUSR1", timeout=5)
            assert time.monotonic() - sent < 0.5
        silent.settimeout(5)
        assert silent.recv(1) == b""             # closed at its 2 s deadline
        closed = time.monotonic() - connected
        assert 1.5 <= closed < 3.5, closed
        assert ask(w, "health")[0] == 0          # and the socket still answers
    finally:
        silent.close()
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


# --- metrics ----------------------------------------------------------------

@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) missing")
def test_metrics_pass_promtool(started, tmp_path):
    port = free_port()
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "TERM:0")},
              ["--metrics", f"127.0.0.1:{port}"])
    w.expect("ready pid=")
    w.kill(signal.SIGUSR1)
    w.expect("got SIGUSR1")
    text = sleep_until(lambda: _get(port), timeout=10)
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=20)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "initd_app_up 1" in text and "initd_app_ready 1" in text
    assert 'initd_signals_received_total{signal="SIGUSR1"} 1' in text
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


def _get(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None


# --- hooks ------------------------------------------------------------------

def test_hooks_with_their_environment(started, tmp_path):
    log = tmp_path / "events"
    line = f'echo "$INITD_EVENT role=$INITD_ROLE pid=$INITD_APP_PID code=$INITD_EXIT_CODE" >> {log}'
    w = start(started, tmp_path, {
        "command": app("printsig.py", "--exit-on", "TERM:7"),
        # The stopping and exited hooks outlast the app's stop: the sweep's
        # SIGTERM to the leftovers must not hit them (both once did).
        "hooks": {"ready": line, "stopping": f"sleep 0.5; {line}",
                  "exited": f"sleep 0.5; {line}", "timeout": "5s"}})
    ready = w.expect("ready pid=")
    sleep_until(lambda: log.exists() and "ready" in log.read_text(), timeout=10)
    w.kill(signal.SIGTERM)
    assert w.wait() == 7
    lines = log.read_text().splitlines()
    events = {e.split()[0]: e for e in lines}
    assert len(lines) == 3 and set(events) == {"ready", "stopping", "exited"}, lines
    app_ns_pid = ready.split("pid=")[1].split()[0]
    assert events["ready"] == f"ready role=web pid={app_ns_pid} code="
    assert events["stopping"] == f"stopping role=web pid={app_ns_pid} code="
    assert events["exited"] == "exited role=web pid= code=7"


def test_hanging_hook_killed_at_its_timeout(started, tmp_path):
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "TERM:0"),
                                  "hooks": {"exited": "sleep 60", "timeout": "1s"}})
    w.expect("ready pid=")
    sent = time.monotonic()
    w.kill(signal.SIGTERM)
    assert w.wait() == 0
    took = time.monotonic() - sent
    assert took < 1 + 2 + 1.5, took              # hook timeout + orphan grace, with slack
    w.drain("err")
    assert any("hook exited: killed after 1s" in line for line in w.seen["err"]), w.seen["err"]


def test_a_stop_signal_ends_the_wait_for_a_hook_with_a_huge_timeout(started, tmp_path):
    """Attacker's case: an exited hook that hangs, with a timeout of 1e10.
    initd waits for it (the documented budget), but a further TERM ends the
    wait at once: the hook's group is killed and initd exits with the app's
    code."""
    w = start(started, tmp_path, {"command": app("printsig.py", "--exit-on", "TERM:0"),
                                  "hooks": {"exited": "echo exited-hook-runs >&2; exec sleep 60",
                                            "timeout": 1e10}})
    w.expect("ready pid=")
    w.kill(signal.SIGTERM)
    w.expect("exited-hook-runs", stream="err")  # the sweep is done; the hook runs
    time.sleep(0.5)
    assert w.proc.poll() is None, "initd left without waiting for its hook"
    sent = time.monotonic()
    w.kill(signal.SIGTERM)
    assert w.wait(timeout=10) == 0
    assert time.monotonic() - sent < 2.0
    w.drain("err")
    assert any("not waiting for the running hooks" in line for line in w.seen["err"])

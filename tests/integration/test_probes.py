"""The probe runners against real processes and a real HTTP server on
127.0.0.1, driven by tests/probe_loop.py (the loop's interface, outside PID 1).
Every wait is bounded; every process started here is killed by pid."""
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from initd import health_config, probes
from probe_loop import TestLoop

HERE = os.path.dirname(os.path.abspath(__file__))
HTTP_APP = os.path.join(os.path.dirname(HERE), "apps", "http_app.py")


def alive(pid):
    """Running and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_if_alive(pid):
    """Cleanup after a failed assertion: a leaked grandchild is killed by pid."""
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def loop():
    lp = TestLoop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen([sys.executable, HTTP_APP], stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "http app did not start within 10 s"
        yield int(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Results(list):
    def __call__(self, ok, code, detail, output, duration, now):
        self.append({"ok": ok, "code": code, "detail": detail, "output": output,
                     "duration": duration, "now": now})


def probe(loop, raw, count=1, timeout=10, workdir="/tmp"):
    """Run the probe `raw` (a roles.json health object, started now) until
    `count` results; returns (results, prober)."""
    raw = {"interval": 0.01, "timeout": 5, **raw}
    spec = health_config.parse_health(raw, "t.health")
    results = Results()
    prober = probes.Prober(spec, loop, dict(os.environ), workdir, None, results, now=loop.now())
    loop.add(prober)
    loop.run_until(lambda: len(results) >= count, timeout)
    return results, prober


# --- exec ----------------------------------------------------------------

def test_exec_success_and_output(loop):
    r, _ = probe(loop, {"exec": "echo hello; echo err >&2"})
    assert r[0]["ok"] and r[0]["code"] == 0 and r[0]["detail"] == "exit code 0"
    assert r[0]["output"] == "hello\nerr\n"


@pytest.mark.parametrize("code", [1, 2, 3, 42, 126, 200, 255])
def test_exec_exit_codes_reported_exactly(loop, code):
    r, _ = probe(loop, {"exec": ["sh", "-c", f"exit {code}"]})
    assert r[0]["ok"] is False and r[0]["code"] == code


def test_exec_signal_death_is_128_plus_n(loop):
    r, _ = probe(loop, {"exec": ["sh", "-c", "kill -TERM $$"]})
    assert r[0]["code"] == 128 + signal.SIGTERM and not r[0]["ok"]


def test_exec_not_found_is_127(loop):
    r, _ = probe(loop, {"exec": ["/nonexistent/probe"]})
    assert r[0]["code"] == 127 and not r[0]["ok"] and "cannot run /nonexistent/probe" in r[0]["detail"]


def test_exec_runs_in_its_own_group_in_workdir_with_env(loop, tmp_path):
    env_file = tmp_path / "out"
    r, _ = probe(loop, {"exec": ["sh", "-c", f'echo "$(ps -o pgid= -p $$) $$ $PWD" > {env_file}']},
                 workdir=str(tmp_path))
    assert r[0]["ok"]
    pgid, pid, cwd = env_file.read_text().split()
    assert pgid == pid and cwd == str(tmp_path)


def test_exec_output_is_capped_and_drained(loop):
    """A chatty probe (1 MB, more than a pipe holds) never stalls: the rest is read and dropped."""
    r, _ = probe(loop, {"exec": ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; exit 3"]})
    assert r[0]["code"] == 3 and r[0]["output"] == "x" * probes.MAX_OUTPUT


def test_exec_timeout_kills_the_group(loop, tmp_path):
    pids = tmp_path / "pids"
    started = loop.now()
    r, _ = probe(loop, {"exec": ["sh", "-c", f"sleep 30 & echo $! > {pids}; echo waiting; sleep 30"],
                        "timeout": 0.3})
    took = r[0]["now"] - started
    assert r[0]["ok"] is False and r[0]["code"] is None
    assert r[0]["detail"] == "timed out after 0.3s" and r[0]["output"] == "waiting\n"
    assert 0.3 <= took < 1.5, took
    assert r[0]["duration"] == pytest.approx(0.3, abs=0.2)
    grandchild = int(pids.read_text())
    try:
        assert wait_for(lambda: not alive(grandchild), 5), "the probe's grandchild outlived the timeout"
    finally:
        kill_if_alive(grandchild)
    loop.run_until(lambda: loop.exits, 5)  # the killed shell is reaped too
    shell = loop.exits[0][0]
    assert loop.exits[0][1] == 128 + signal.SIGKILL and not alive(shell)


def test_grandchild_that_outlives_a_finished_probe_is_killed(loop, tmp_path):
    """The probe exits at once, leaving a grandchild holding its output pipe:
    the result comes at once, and the grandchild is killed."""
    pids = tmp_path / "pids"
    started = loop.now()
    r, _ = probe(loop, {"exec": ["sh", "-c", f"sleep 30 & echo $! > {pids}; echo done; exit 0"]})
    assert r[0]["ok"] and r[0]["output"] == "done\n"
    assert r[0]["now"] - started < 2.0
    grandchild = int(pids.read_text())
    try:
        assert wait_for(lambda: not alive(grandchild), 5), "the probe's grandchild is still running"
    finally:
        kill_if_alive(grandchild)


def test_prober_repeats_on_interval_and_stop_kills_running_probe(loop, tmp_path):
    pids = tmp_path / "pids"
    r, prober = probe(loop, {"exec": ["sh", "-c", f"echo $$ >> {pids}; sleep 0.05"], "interval": 0.1},
                      count=3)
    gaps = [b["now"] - a["now"] for a, b in zip(r, r[1:])]
    assert all(0.14 <= g < 1.0 for g in gaps), gaps  # interval after each finish + 0.05 s run
    # now one that hangs, stopped mid-run
    prober.stop()
    assert prober.next_deadline() is None
    spec = health_config.parse_health({"exec": ["sleep", "30"], "interval": 0.01}, "t")
    hang = probes.Prober(spec, loop, dict(os.environ), "/", None, Results(), now=loop.now())
    loop.add(hang)
    loop.run_until(lambda: hang.running is not None and hang.running.pid, 5)
    pid = hang.running.pid
    hang.stop()
    loop.run_until(lambda: any(p == pid for p, _ in loop.exits), 5)
    assert not alive(pid)


# --- http ----------------------------------------------------------------

def test_http_ok(loop, server):
    r, _ = probe(loop, {"http": f"http://127.0.0.1:{server}/ok"})
    assert r[0]["ok"] and r[0]["code"] == 200 and r[0]["detail"] == "HTTP 200" and r[0]["output"] == "ok\n"


def test_http_redirect_is_healthy(loop, server):
    r, _ = probe(loop, {"http": f"http://127.0.0.1:{server}/redirect"})
    assert r[0]["ok"] and r[0]["code"] == 302


@pytest.mark.parametrize("status", [404, 500, 503])
def test_http_error_status_is_unhealthy(loop, server, status):
    r, _ = probe(loop, {"http": f"http://127.0.0.1:{server}/status/{status}"})
    assert not r[0]["ok"] and r[0]["code"] == status and r[0]["output"] == "status body\n"


def test_http_expected_status(loop, server):
    r, _ = probe(loop, {"http": {"url": f"http://127.0.0.1:{server}/status/503", "status": 503}})
    assert r[0]["ok"] and r[0]["code"] == 503
    r, _ = probe(loop, {"http": {"url": f"http://127.0.0.1:{server}/ok", "status": 204}})
    assert not r[0]["ok"] and r[0]["detail"] == "HTTP 200 (expected 204)"


def test_http_body_substring_and_host_header(loop, server):
    r, _ = probe(loop, {"http": {"url": f"http://127.0.0.1:{server}/host", "body": f"127.0.0.1:{server}"}})
    assert r[0]["ok"], r[0]
    r, _ = probe(loop, {"http": {"url": f"http://localhost:{server}/body/hello", "body": "nope"}})
    assert not r[0]["ok"] and r[0]["code"] == 200 and "does not contain 'nope'" in r[0]["detail"]


def test_http_reads_at_most_64k(loop, server):
    """The needle sits after 1 MiB: not read, so not found; and promptly."""
    started = loop.now()
    r, _ = probe(loop, {"http": {"url": f"http://127.0.0.1:{server}/big", "body": "needle"}})
    assert not r[0]["ok"] and r[0]["now"] - started < 2.0
    assert len(r[0]["output"]) == probes.MAX_OUTPUT


def test_http_refused(loop):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        r, _ = probe(loop, {"http": f"http://127.0.0.1:{port}/"})
    assert not r[0]["ok"] and r[0]["code"] is None
    assert r[0]["detail"] == f"connect to 127.0.0.1:{port}: connection refused"


def _never_answers():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    return s


@pytest.mark.parametrize("path", ["silent", "hang"])
def test_http_server_that_never_answers_times_out_without_blocking_the_loop(loop, server, path):
    silent = _never_answers()
    try:
        url = (f"http://127.0.0.1:{silent.getsockname()[1]}/" if path == "silent"
               else f"http://127.0.0.1:{server}/hang")
        # Meanwhile another fd the loop watches must be served at once, as a
        # signal would be by the real loop.
        r_fd, w_fd = os.pipe2(os.O_NONBLOCK)
        latencies = []
        loop.watch(r_fd, lambda fd, ev, now: latencies.append(now - float(os.read(fd, 64))))
        spec = health_config.parse_health({"http": url, "interval": 0.01, "timeout": 0.5}, "t")
        results = Results()
        loop.add(probes.Prober(spec, loop, {}, "/", None, results, now=loop.now()))
        started = loop.now()

        class Poke:  # writes to the pipe every 50 ms while the probe hangs
            at = started

            def next_deadline(self):
                return self.at + 0.05

            def on_tick(self, now):
                if now >= self.at + 0.05 and not results:
                    self.at = now
                    os.write(w_fd, repr(time.monotonic()).encode())
        loop.add(Poke())
        loop.run_until(lambda: results, 5)
        took = results[0]["now"] - started
        assert not results[0]["ok"] and results[0]["detail"] == "timed out after 0.5s"
        assert 0.5 <= took < 1.5, took
        assert len(latencies) >= 3 and max(latencies) < 0.05, latencies
        loop.unwatch(r_fd)
        os.close(r_fd)
        os.close(w_fd)
    finally:
        silent.close()


# --- tcp -----------------------------------------------------------------

def test_tcp_ok_and_refused(loop, server):
    r, _ = probe(loop, {"tcp": f"127.0.0.1:{server}"})
    assert r[0]["ok"] and r[0]["detail"] == f"connected to 127.0.0.1:{server}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r, _ = probe(loop, {"tcp": port})
    assert not r[0]["ok"] and "connection refused" in r[0]["detail"]


def test_tcp_ipv6_loopback(loop):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with s:
        s.listen(1)
        r, _ = probe(loop, {"tcp": f"[::1]:{s.getsockname()[1]}"})
    assert r[0]["ok"]


def test_no_fd_leak_after_many_probes(loop, server):
    before = len(os.listdir("/proc/self/fd"))
    for raw in ({"http": f"http://127.0.0.1:{server}/ok"}, {"exec": ["true"]}, {"tcp": server}):
        _, prober = probe(loop, {**raw, "interval": 0.001}, count=20)
        prober.stop()
    loop.run_until(lambda: not loop.pidfds, 5)  # the killed last exec probe is reaped
    assert len(os.listdir("/proc/self/fd")) == before


# --- Prober + HealthState, as the supervisor wires them ----------------------

def test_prober_feeds_health_state_through_every_transition(loop, tmp_path):
    """A probe controlled by a file: fail, fail (unhealthy), succeed (healthy).
    start_interval applies while starting inside the start period."""
    from initd import health
    flag = tmp_path / "healthy"
    spec = health_config.parse_health(
        {"exec": ["sh", "-c", f"test -e {flag}"], "interval": 0.3, "timeout": 2, "retries": 2,
         "start_period": 0.15, "start_interval": 0.05}, "t")
    start = loop.now()
    state = health.HealthState(spec.retries, spec.start_period, start)
    transitions, seen = [], []

    def on_result(ok, code, detail, output, duration, now):
        seen.append((now, code))
        t = state.record(ok, code, detail, output, duration, now)
        if t:
            transitions.append((t.old, t.new))
            if t.new == health.UNHEALTHY:
                flag.write_text("")

    prober = probes.Prober(spec, loop, dict(os.environ), "/", None, on_result,
                           status=lambda: state.state, now=start)
    loop.add(prober)
    loop.run_until(lambda: state.state == health.HEALTHY, 10)
    assert transitions == [("starting", "unhealthy"), ("unhealthy", "healthy")]
    # First probe start_interval after start; failures inside the start period
    # are not counted, so it took at least the period plus `retries` probes.
    assert seen[0][0] - start == pytest.approx(0.05, abs=0.2)
    assert all(code == 1 for _, code in seen[:-1]) and seen[-1][1] == 0
    counted = [t for t, _ in seen[:-1] if t - start >= spec.start_period]
    assert len(counted) >= 2
    prober.stop()

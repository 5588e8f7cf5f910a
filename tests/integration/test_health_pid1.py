"""Health checks end to end, initd as PID 1 of fresh PID+mount namespaces
(issue 12.7): a real HTTP server app on 127.0.0.1, intervals compressed to
100 ms. Every wait is bounded; every process is killed by pid at the end
(Watched.stop kills every descendant it has seen)."""
import json
import signal
import time


from helpers import Initd, PY, app, children, sleep_until, free_port

FAST = {"interval": "100ms", "timeout": "1s", "retries": 2}


def start(started, tmp_path, role, env=None):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"web": role}))
    w = Initd(["-v", "--roles", str(path), "--role", "web"], env=env)
    started.append(w)
    return w


def http_role(tmp_path, port, health=None, **extra):
    """The HTTP app on `port`, probed on /health (503 while tmp_path/sick exists)."""
    env = {"HTTP_APP_UNHEALTHY": str(tmp_path / "sick"), "HTTP_APP_SIGNALS": "1",
           **extra.pop("app_env", {})}
    probe = {"http": f"http://127.0.0.1:{port}/health", **FAST, **(health or {})}
    return {"command": app("http_app.py", "127.0.0.1", str(port)), "env": env,
            "health": probe, **extra}


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def shim_and_app(w):
    """(shim, app) host pids: the ppidshim is initd's child (probes are too)."""
    def found():
        shims = [p for p in children(w.pid) if comm(p) == "ppidshim"]
        kids = children(shims[0]) if len(shims) == 1 else []
        return (shims[0], kids[0]) if kids else None
    pair = sleep_until(found, timeout=10)
    w.known.update(pair)
    return pair


def ended(w, timeout):
    """initd's exit code and how long it took to come, from now."""
    t0 = time.monotonic()
    code = w.wait(timeout=timeout)
    return code, time.monotonic() - t0


def no_leftover(w, name):
    """No process called `name` (running or zombie) is left under initd."""
    return not [p for p in w.descendants() if comm(p) == name]


def test_healthy(started, tmp_path):
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port))
    line = w.expect("web: health starting -> healthy", "err")
    assert "code 200" in line and "HTTP 200" in line and "output: ok" in line
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


def test_failing_then_recovery(started, tmp_path):
    (tmp_path / "sick").write_text("db down\nsecond line\n")
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port))
    line = w.expect("web: health starting -> unhealthy", "err")
    assert line.startswith("initd: WARNING ")
    assert "code 503" in line and "HTTP 503" in line and "failing streak 2" in line
    assert line.endswith("output: db down"), line  # the first line only
    (tmp_path / "sick").unlink()
    line = w.expect("web: health unhealthy -> healthy", "err")
    assert "code 200" in line
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


def test_hanging_exec_probe_times_out_and_its_group_is_killed(started, tmp_path):
    """The first probe hangs (sleep, with a background sleep in its group);
    later ones succeed at once. After the timeout no sleep is left."""
    flag = tmp_path / "hung"
    probe = (f"if [ -e {flag} ]; then exit 0; fi; touch {flag}; echo hanging; "
             "sleep 30 & exec sleep 30")
    w = start(started, tmp_path, {"command": ["sleep", "60"],
                                  "health": {"exec": probe, "interval": "100ms",
                                             "timeout": "300ms", "retries": 1}})
    sleep_until(lambda: [p for p in w.descendants() if comm(p) == "sleep"][1:], timeout=10)
    line = w.expect("web: health starting -> unhealthy", "err")
    assert "timed out after 0.3s" in line and "output: hanging" in line
    w.expect("web: health unhealthy -> healthy", "err")
    # Only the app (one sleep, the shim's child) may be left: the probe's
    # sleep and its background sleep were killed with the group and reaped.
    shim, app_pid = shim_and_app(w)
    sleep_until(lambda: [p for p in w.descendants() if comm(p) == "sleep"] == [app_pid],
                timeout=5)
    w.kill(signal.SIGTERM)
    assert w.wait() == 143


def test_probe_grandchild_that_outlives_the_probe_is_killed_and_reaped(started, tmp_path):
    flag = tmp_path / "forked"
    probe = f"if [ ! -e {flag} ]; then touch {flag}; sleep 30 & fi; exit 0"
    w = start(started, tmp_path, {"command": app("http_app.py"),
                                  "health": {"exec": probe, **FAST}})
    w.expect("web: health starting -> healthy", "err")
    assert flag.exists()
    # The grandchild would run 30 s; killed with the probe's group, it must
    # also be reaped (a zombie keeps its comm "sleep").
    sleep_until(lambda: no_leftover(w, "sleep"), timeout=5)
    w.kill(signal.SIGTERM)
    assert w.wait() == 143


def test_server_that_never_answers_does_not_delay_signals_or_the_stop(started, tmp_path):
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port, health={"http": {
        "url": f"http://127.0.0.1:{port}/hang"}, "timeout": "3s"}))
    w.expect("HANG")  # a probe is in flight and will hang for 3 s
    latencies = []
    for _ in range(10):
        t0 = time.monotonic()
        w.kill(signal.SIGUSR1)
        t1 = float(w.expect("SIG USR1", timeout=5).split()[2])
        latencies.append(t1 - t0)
        time.sleep(0.02)
    latencies.sort()
    print(f"USR1 latency while a probe hangs: median {latencies[5] * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")
    # Typically ~1 ms; the bound is generous for a loaded shared machine.
    assert latencies[-1] < 0.5, latencies
    t0 = time.monotonic()
    w.kill(signal.SIGTERM)
    assert float(w.expect("SIG TERM", timeout=5).split()[2]) - t0 < 0.5
    code, took = ended(w, 5)
    assert code == 0 and took < 1.5, took


def test_on_unhealthy_restart_starts_a_new_app_under_a_new_shim(started, tmp_path):
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port, on_unhealthy="restart"))
    w.expect("web: health starting -> healthy", "err")
    shim1, app1 = shim_and_app(w)
    assert ppid(shim1) == w.pid and ppid(app1) == shim1
    (tmp_path / "sick").write_text("broken\n")
    w.expect("web is unhealthy; restarting it: SIGTERM", "err")
    (tmp_path / "sick").unlink()
    w.expect("SIG TERM")  # the old app was stopped gracefully
    w.expect("started web again", "err")
    w.expect("web: health starting -> healthy", "err")
    shim2, app2 = shim_and_app(w)
    assert app2 != app1 and shim2 != shim1
    # The restarted app's parent is a shim, initd's child; never initd.
    assert ppid(app2) == shim2 and ppid(shim2) == w.pid and comm(shim2) == "ppidshim"
    w.kill(signal.SIGTERM)
    assert w.wait() == 0


def test_on_unhealthy_exit_stops_gracefully_and_exits_69(started, tmp_path):
    (tmp_path / "sick").write_text("gone\n")
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port, on_unhealthy="exit"))
    w.expect("web is unhealthy; stopping it to exit with code 69: SIGTERM", "err")
    w.expect("SIG TERM")  # graceful: the app got its stop signal and exited 0
    assert w.wait() == 69


def starts_role(tmp_path, code, **extra):
    """An app that records its start time (CLOCK_MONOTONIC, like the
    probes' clock) and exits with `code` at once."""
    script = (f"import time; open({str(tmp_path / 'starts')!r}, 'a')"
              f".write(f'{{time.monotonic()}}\\n'); raise SystemExit({code})")
    return {"command": [PY, "-c", script], **extra}


def starts(tmp_path):
    try:
        return [float(t) for t in (tmp_path / "starts").read_text().split()]
    except FileNotFoundError:
        return []


def test_restart_on_failure_backoff_grows_and_is_capped(started, tmp_path):
    w = start(started, tmp_path, starts_role(
        tmp_path, 3, restart="on-failure", give_up=False,
        backoff={"initial": "100ms", "max": "400ms", "reset_after": "10s"}))
    times = sleep_until(lambda: (lambda t: t if len(t) >= 7 else None)(starts(tmp_path)),
                        timeout=20)
    # The 7th start has written its time but may not have exited yet: wait
    # for initd to say it is in backoff after it, so the TERM lands there
    # (not on a running app, which would die of it: 143).
    for _ in range(len(times)):
        w.expect("restarting it in", stream="err", timeout=5)
    w.kill(signal.SIGTERM)
    code, took = ended(w, 5)
    assert code == 3 and took < 1.0, took
    gaps = [b - a for a, b in zip(times, times[1:])][:6]
    print("gaps between starts (s):", " ".join(f"{g:.3f}" for g in gaps))
    # Delays 0.1, 0.2, 0.4, 0.4... each +-20% (never above max), plus the
    # start-up of the app itself (a Python interpreter, ~20-100 ms loaded).
    assert gaps[0] < gaps[2] and gaps[1] < gaps[3], gaps
    assert all(g >= 0.32 for g in gaps[2:]), gaps        # grown to the cap
    assert all(g < 0.4 + 0.35 for g in gaps[2:]), gaps   # and capped there
    assert gaps[0] >= 0.08, gaps


def test_give_up_is_one_line_and_exits_with_the_last_status(started, tmp_path):
    w = start(started, tmp_path, starts_role(
        tmp_path, 5, restart="always", backoff={"initial": "50ms", "max": "50ms"},
        give_up={"restarts": 3, "within": "60s"}))
    code, _ = ended(w, 15)
    assert code == 5
    err = w.drain("err")
    give_up = [line for line in err if "giving up" in line]
    assert len(give_up) == 1 and give_up[0].startswith("initd: ERROR web: giving up: 3 restarts"), err
    assert len(starts(tmp_path)) == 4  # the first start and 3 restarts


def test_term_during_backoff_exits_at_once_with_the_last_status(started, tmp_path):
    w = start(started, tmp_path, starts_role(tmp_path, 7, restart="on-failure",
                                             backoff={"initial": "20s", "max": "30s"}))
    w.expect("web exited with code 7; restarting it in", "err")
    w.kill(signal.SIGTERM)
    code, took = ended(w, 5)
    assert code == 7 and took < 1.0, took
    assert len(starts(tmp_path)) == 1


def test_term_during_a_restarts_stop_phase_is_not_lost(started, tmp_path):
    port = free_port()
    w = start(started, tmp_path, http_role(tmp_path, port, on_unhealthy="restart",
                                           stop_timeout="5s",
                                           app_env={"HTTP_APP_TERM_DELAY": "0.5"}))
    w.expect("web: health starting -> healthy", "err")
    (tmp_path / "sick").write_text("broken\n")
    w.expect("restarting it: SIGTERM", "err")
    w.expect("SIG TERM")  # the app is stopping (it takes 0.5 s)
    w.kill(signal.SIGTERM)
    w.expect("SIGTERM during a restart: web will not be started again", "err")
    code, took = ended(w, 5)
    # initd waited for the app to finish stopping, then exited with its code.
    assert code == 0 and 0.1 < took < 3.0, took
    assert not [line for line in w.drain("err") if "started web again" in line]


def test_exec_probe_runs_as_the_roles_user(started, tmp_path):
    w = start(started, tmp_path, {"command": ["sleep", "60"], "user": "nobody",
                                  "health": {"exec": ["id", "-u"], **FAST}})
    line = w.expect("web: health starting -> healthy", "err")
    import pwd
    assert line.endswith(f"output: {pwd.getpwnam('nobody').pw_uid}"), line
    w.kill(signal.SIGTERM)
    assert w.wait() == 143

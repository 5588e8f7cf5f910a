"""Prometheus text rendered from a status snapshot, checked by promtool."""
import shutil
import socket
import subprocess

import pytest

from initd import metrics

SNAPSHOT = {
    "role": "web", "revision": 'abc"1\\2\n', "state": "ready", "ready": True, "alive": True,
    "pids": {"initd": 1, "shim": 2, "app": 3}, "started_at": 1700000000.0, "uptime": 12.5,
    "health": {"state": "healthy", "failing_streak": 0,
               "last": {"ok": True, "code": 0, "detail": "", "output": "ok\n",
                        "duration": 0.0123, "at": 1700000010.0}},
    "notify": {"status": "serving", "ready": True},
    "restarts": [{"at": 1700000005.0, "reason": "crash", "exit_code": 137}],
    "restarts_total": {"crash": 1, "unhealthy": 2}, "last_exit_code": 137,
    "counters": {"signals_received": {"SIGTERM": 1, "SIGHUP": 2},
                 "signals_delivered": {"SIGQUIT": 1}, "orphans_reaped": 5, "probes": 9,
                 "probe_failures": 2},
    "stop_duration": 0.25, "rss_bytes": 12345678}

EMPTY = {"role": "web", "revision": None, "state": "starting", "ready": False, "alive": False,
         "pids": {"initd": 1, "shim": None, "app": None}, "health": {"state": "none",
         "failing_streak": 0, "last": None}, "notify": None, "restarts": [],
         "restarts_total": {}, "last_exit_code": None, "counters": {}, "stop_duration": None}


def promtool(text):
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool missing: apt-get install prometheus (Debian ships it)")
    result = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=30)
    return result.returncode, (result.stdout + result.stderr).decode()


@pytest.mark.parametrize("snapshot", [SNAPSHOT, EMPTY], ids=["full", "empty"])
def test_promtool_accepts_it_without_lint_problems(snapshot):
    code, output = promtool(metrics.render(snapshot, rss=4096))
    assert code == 0 and output.strip() == "", output


def test_promtool_would_catch_a_broken_exposition():
    # The check above can fail: promtool rejects a counter without _total.
    code, _ = promtool("# HELP x_count a\n# TYPE x_count counter\nx_count 1\n")
    assert code != 0


def test_values_and_labels():
    text = metrics.render(SNAPSHOT, rss=4096)
    lines = set(text.splitlines())
    assert "initd_app_up 1" in lines and "initd_app_ready 1" in lines
    assert 'initd_health_state{state="healthy"} 1' in lines
    assert 'initd_health_state{state="unhealthy"} 0' in lines
    assert 'initd_restarts_total{reason="unhealthy"} 2' in lines
    assert 'initd_signals_received_total{signal="SIGHUP"} 2' in lines
    assert 'initd_signals_delivered_total{signal="SIGQUIT"} 1' in lines
    assert "initd_orphans_reaped_total 5" in lines
    assert "initd_probe_duration_seconds 0.0123" in lines
    assert "initd_probe_failures_total 2" in lines
    assert "initd_stop_duration_seconds 0.25" in lines
    assert "initd_process_resident_memory_bytes 4096" in lines
    assert 'initd_info{role="web",revision="abc\\"1\\\\2\\n"} 1' in lines


def test_unknown_values_have_no_sample():
    text = metrics.render(EMPTY, rss=1)
    assert "\ninitd_stop_duration_seconds " not in text
    assert "# TYPE initd_stop_duration_seconds gauge" in text
    assert "initd_app_up 0" in text


def test_own_rss_is_real():
    assert metrics.own_rss() > 1 << 20


@pytest.mark.parametrize("value,expected", [
    ("127.0.0.1:9102", (socket.AF_INET, "127.0.0.1", 9102)),
    (":9102", (socket.AF_INET, "0.0.0.0", 9102)),
    ("localhost:1", (socket.AF_INET, "127.0.0.1", 1)),
    ("[::1]:65535", (socket.AF_INET6, "::1", 65535)),
])
def test_parse_address(value, expected):
    assert metrics.parse_address(value) == expected


@pytest.mark.parametrize("value", [
    "9102", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "1.2.3:80", "::1:80",
    "[nope]:80", "example.com:80", "127.0.0.1:٣", 9102, None, "1.2.3.4:-1"])
def test_parse_address_refuses(value):
    with pytest.raises(ValueError) as e:
        metrics.parse_address(value)
    assert "HOST:PORT" in str(e.value) and "\n" not in str(e.value)

"""health_config: every key of health, on_unhealthy, restart, backoff and
give_up validated, with one-line messages naming the key."""
import pytest

from initd import health_config as hc
from initd.restart import RestartSpec


def test_defaults_are_dockers():
    s = hc.parse_health({"exec": ["true"]}, "web.health")
    assert (s.interval, s.timeout, s.retries, s.start_period, s.start_interval) == (30.0, 30.0, 3, 0.0, 5.0)
    assert s.kind == "exec" and s.argv == ("true",)


def test_absent_health_is_none():
    assert hc.parse_health(None, "web.health") is None


def test_exec_string_runs_through_sh():
    s = hc.parse_health({"exec": "curl -f http://x || exit 1"}, "k")
    assert s.argv == ("/bin/sh", "-c", "curl -f http://x || exit 1")


def test_durations_and_retries():
    s = hc.parse_health({"tcp": "127.0.0.1:5432", "interval": "500ms", "timeout": 2,
                         "retries": "5", "start_period": "1m", "start_interval": 0.1}, "k")
    assert (s.interval, s.timeout, s.retries, s.start_period, s.start_interval) == (0.5, 2.0, 5, 60.0, 0.1)
    assert (s.kind, s.host, s.port) == ("tcp", "127.0.0.1", 5432)


@pytest.mark.parametrize("url,host,port,path,header", [
    ("http://127.0.0.1:8080/healthz", "127.0.0.1", 8080, "/healthz", "127.0.0.1:8080"),
    ("http://localhost/", "127.0.0.1", 80, "/", "localhost"),
    ("http://[::1]:81/a?b=c", "::1", 81, "/a?b=c", "[::1]:81"),
    ("HTTP://10.0.0.2", "10.0.0.2", 80, "/", "10.0.0.2"),
])
def test_http_urls(url, host, port, path, header):
    s = hc.parse_health({"http": url}, "k")
    assert (s.kind, s.host, s.port, s.path, s.host_header) == ("http", host, port, path, header)
    assert s.status is None and s.body is None


def test_http_object_with_status_and_body():
    s = hc.parse_health({"http": {"url": "http://127.0.0.1:1/", "status": 204, "body": "ok"}}, "k")
    assert (s.status, s.body) == (204, "ok")


@pytest.mark.parametrize("raw,message", [
    ({"exec": ["true"], "interval": "x"},
     'web.health.interval: expected a duration such as 5, "500ms" or "30s", got "x"'),
    ({"exec": ["true"], "timeout": -1},
     'web.health.timeout: expected a duration such as 5, "500ms" or "30s", got -1'),
    ({"exec": ["true"], "interval": 0},
     "web.health.interval: expected a duration of at least 1ms, got 0"),
    ({"exec": ["true"], "retries": 0},
     "web.health.retries: expected a whole number 1-1000000, got 0"),
    ({"exec": ["true"], "retries": True},
     "web.health.retries: expected a whole number 1-1000000, got true"),
    ({"exec": ["true"], "intervall": 1},
     'web.health.intervall: unknown key (did you mean "interval"?); known keys: exec, http, tcp, '
     "interval, timeout, retries, start_period, start_interval"),
    ({}, "web.health: expected exactly one of exec, http or tcp, got none"),
    ({"exec": "true", "tcp": 1}, "web.health: expected exactly one of exec, http or tcp, got exec and tcp"),
    ({"exec": []}, "web.health.exec: expected a command string or a non-empty list of strings, got []"),
    ({"exec": "  "}, 'web.health.exec: expected a command string or a non-empty list of strings, got "  "'),
    ({"exec": [1]}, "web.health.exec: expected a command string or a non-empty list of strings, got [1]"),
    ({"http": "https://127.0.0.1/"},
     'web.health.http.url: expected a URL such as "http://127.0.0.1:8080/healthz", got '
     '"https://127.0.0.1/" (https is not supported: probe the plain port, or use exec with curl)'),
    ({"http": "http://example.com/"},
     'web.health.http.url: expected an IP address such as 127.0.0.1 or [::1], or localhost, got '
     '"example.com" (a host name would need a DNS lookup, which blocks initd: use its address, '
     "or an exec probe)"),
    ({"http": "http://127.0.0.1:99999/"}, 'web.health.http.url: expected a port 1-65535, got "99999"'),
    ({"http": {"status": 200}}, 'web.health.http: missing "url"'),
    ({"http": {"url": "http://127.0.0.1/", "status": 99}},
     "web.health.http.status: expected an HTTP status 100-599, got 99"),
    ({"http": {"url": "http://127.0.0.1/", "body": ""}},
     'web.health.http.body: expected a non-empty string to find in the response body, got ""'),
    ({"http": {"url": "http://127.0.0.1/", "satus": 200}},
     'web.health.http.satus: unknown key (did you mean "status"?); known keys: url, status, body'),
    ({"http": 5}, 'web.health.http: expected an object such as {"url": "http://127.0.0.1:8080/healthz", '
     '"status": 200}, got a number'),
    ({"tcp": "5432"}, 'web.health.tcp: expected "HOST:PORT" such as "127.0.0.1:5432" or a port number, got "5432"'),
    ({"tcp": 0}, "web.health.tcp: expected a port 1-65535, got 0"),
    ({"tcp": "db:5432"}, 'web.health.tcp: expected an IP address such as 127.0.0.1 or [::1], or '
     'localhost, got "db" (a host name would need a DNS lookup, which blocks initd: use its address, '
     "or an exec probe)"),
    ("curl", 'web.health: expected an object such as {"exec": ["pg_isready"], "interval": "10s"}, got a string'),
])
def test_health_errors(raw, message):
    with pytest.raises(ValueError) as e:
        hc.parse_health(raw, "web.health")
    assert str(e.value) == message


def test_tcp_forms():
    assert hc.parse_tcp(8080, "k") == ("127.0.0.1", 8080)
    assert hc.parse_tcp("[::1]:22", "k") == ("::1", 22)
    assert hc.parse_tcp("localhost:22", "k") == ("127.0.0.1", 22)


def test_on_unhealthy():
    assert hc.parse_on_unhealthy(None, "k") == "none"
    for v in ("none", "restart", "exit"):
        assert hc.parse_on_unhealthy(v, "k") == v
    with pytest.raises(ValueError, match=r'^web.on_unhealthy: expected "none", "restart" or "exit", got "reboot"$'):
        hc.parse_on_unhealthy("reboot", "web.on_unhealthy")


def test_restart_defaults_and_values():
    assert hc.parse_restart({}, "web") == RestartSpec()
    s = hc.parse_restart({"restart": "on-failure", "backoff": {"initial": "1s", "max": "2m", "reset_after": 30},
                          "give_up": {"restarts": 5, "within": "5m"}}, "web")
    assert s == RestartSpec("on-failure", 1.0, 120.0, 30.0, 5, 300.0)
    assert hc.parse_restart({"restart": "always", "give_up": False}, "web").give_up_restarts is None
    assert hc.parse_restart({"restart": False}, "web").policy == "no"


@pytest.mark.parametrize("raw,message", [
    ({"restart": "sometimes"}, 'web.restart: expected "no", "on-failure" or "always", got "sometimes"'),
    ({"restart": True}, 'web.restart: expected "no", "on-failure" or "always", got true'),
    ({"backoff": {"initial": "1x"}},
     'web.backoff.initial: expected a duration such as 5, "500ms" or "30s", got "1x"'),
    ({"backoff": {"initial": "10s", "max": "1s"}}, 'web.backoff.max: expected at least initial (10s), got "1s"'),
    ({"backoff": {"inital": 1}},
     'web.backoff.inital: unknown key (did you mean "initial"?); known keys: initial, max, reset_after'),
    ({"backoff": 5}, 'web.backoff: expected an object such as {"initial": "100ms", "max": "30s", '
     '"reset_after": "10s"}, got a number'),
    ({"give_up": {"restarts": 0}}, "web.give_up.restarts: expected a whole number 1-1000000, got 0"),
    ({"give_up": {"within": 0}}, "web.give_up.within: expected a duration of at least 1ms, got 0"),
    ({"give_up": {"after": 3}}, "web.give_up.after: unknown key; known keys: restarts, within"),
    ({"give_up": True}, 'web.give_up: expected an object such as {"restarts": 10, "within": "60s"}, got a boolean'),
])
def test_restart_errors(raw, message):
    with pytest.raises(ValueError) as e:
        hc.parse_restart(raw, "web")
    assert str(e.value) == message


def test_describe_plan():
    spec = hc.parse_health({"http": {"url": "http://127.0.0.1:8080/h", "body": "ok"}, "interval": "10s"}, "k")
    lines = hc.describe(spec, "restart", hc.parse_restart({"restart": "on-failure"}, "web"))
    assert lines == [
        "health: http GET http://127.0.0.1:8080/h expecting 2xx/3xx and body containing 'ok'; every 10s, "
        "timeout 30s, unhealthy after 3 failures, start period 0s (probing every 5s in it)",
        "on unhealthy: restart",
        "restart: on-failure; backoff 0.1s doubling to 30s (±20%), reset after 10s running; "
        "give up after 10 restarts within 60s",
    ]

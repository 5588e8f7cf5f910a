"""roles.json's health, on_unhealthy, restart, backoff and give_up keys ->
frozen records. Pure: no OS calls (no DNS either: an http or tcp probe's host
must be an IP address or "localhost", since a name lookup would block PID 1's
loop). Every error is a ValueError("KEY: message") for config.py to prefix
with the file.
"""
from initd import health, restart, values
from initd.record import record

# kind: "exec" | "http" | "tcp".
# exec: argv (a string becomes /bin/sh -c STRING).
# http: host (IP text), port, path, host_header, status (None: any 2xx/3xx), body (None: any).
# tcp: host, port.
HealthSpec = record("HealthSpec", [
    "kind", "argv", "host", "port", "path", "host_header", "status", "body",
    "interval", "timeout", "retries", "start_period", "start_interval",
], defaults=(None, None, None, "/", None, None, None,
             health.DEFAULT_INTERVAL, health.DEFAULT_TIMEOUT, health.DEFAULT_RETRIES,
             health.DEFAULT_START_PERIOD, health.DEFAULT_START_INTERVAL))

HEALTH_KEYS = ("exec", "http", "tcp", "interval", "timeout", "retries", "start_period",
               "start_interval")
HTTP_KEYS = ("url", "status", "body")
ON_UNHEALTHY = ("none", "restart", "exit")
BACKOFF_KEYS = ("initial", "max", "reset_after")
GIVE_UP_KEYS = ("restarts", "within")
MIN_PERIOD = 0.001  # Docker refuses intervals and timeouts under 1 ms
MAX_RETRIES = 1_000_000

_DURATION = 'expected a duration such as 5, "500ms" or "30s"'


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _unknown(obj, known, key):
    extra = sorted(k for k in obj if k not in known)
    if extra:
        import difflib  # only on the error path
        hints = difflib.get_close_matches(extra[0], known, n=1)
        hint = f' (did you mean "{hints[0]}"?)' if hints else ""
        raise ValueError(f"{key}.{extra[0]}: unknown key{hint}; known keys: {', '.join(known)}")


def _object(raw, key, example):
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: expected an object such as {example}, got {_kind(raw)}")
    return raw


def _duration(raw, key, positive=False):
    try:
        seconds = values.duration(raw)
    except ValueError:
        raise ValueError(f"{key}: {_DURATION}, got {values.shown(raw)}") from None
    if positive and seconds < MIN_PERIOD:
        raise ValueError(f"{key}: expected a duration of at least 1ms, got {values.shown(raw)}")
    return seconds


def _whole(raw, key, low, high, what):
    try:
        return values.whole(raw, low, high, what)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None


def parse_host(text, key):
    """An IPv4 or IPv6 address (or "localhost", which is 127.0.0.1) -> IP text."""
    import ipaddress  # only when a probe is configured
    if text == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise ValueError(f"{key}: expected an IP address such as 127.0.0.1 or [::1], or localhost, "
                         f"got {values.shown(text)} (a host name would need a DNS lookup, which "
                         f"blocks initd: use its address, or an exec probe)") from None


def parse_url(url, key):
    """http://HOST[:PORT][/PATH] -> (host, port, path, host_header)."""
    if not isinstance(url, str):
        raise ValueError(f'{key}: expected a URL such as "http://127.0.0.1:8080/healthz", got {_kind(url)}')
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "http":
        hint = " (https is not supported: probe the plain port, or use exec with curl)" \
            if scheme.lower() == "https" else ""
        raise ValueError(f'{key}: expected a URL such as "http://127.0.0.1:8080/healthz", '
                         f"got {values.shown(url)}{hint}")
    authority, slash, path = rest.partition("/")
    path = "/" + path if slash else "/"
    if any(c in path for c in " \r\n\t") or "@" in authority or "#" in path:
        raise ValueError(f"{key}: expected a URL without spaces, user or fragment, got {values.shown(url)}")
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text[1:] if port_text.startswith(":") else port_text
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError(f"{key}: expected a host in the URL, got {values.shown(url)}")
    ip = parse_host(host, key)
    port = _whole(port_text, key, 1, 65535, "a port") if port_text else 80
    return ip, port, path, authority


def parse_tcp(raw, key):
    """"HOST:PORT", "[V6]:PORT" or a port number (on 127.0.0.1) -> (host, port)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return "127.0.0.1", _whole(raw, key, 1, 65535, "a port")
    if isinstance(raw, str):
        host, sep, port = raw.rpartition(":")
        if sep and host and port:
            return parse_host(host, key), _whole(port, key, 1, 65535, "a port")
    raise ValueError(f'{key}: expected "HOST:PORT" such as "127.0.0.1:5432" or a port number, '
                     f"got {values.shown(raw)}")


def parse_health(raw, key):
    """A role's `health` object -> HealthSpec (None when absent or null)."""
    if raw is None:
        return None
    _object(raw, key, '{"exec": ["pg_isready"], "interval": "10s"}')
    _unknown(raw, HEALTH_KEYS, key)
    kinds = [k for k in ("exec", "http", "tcp") if k in raw]
    if len(kinds) != 1:
        raise ValueError(f"{key}: expected exactly one of exec, http or tcp, got "
                         f"{' and '.join(kinds) if kinds else 'none'}")
    kind = kinds[0]
    where = f"{key}.{kind}"
    spec = {"kind": kind}
    if kind == "exec":
        command = raw["exec"]
        if isinstance(command, str) and command.strip():
            spec["argv"] = ("/bin/sh", "-c", command)
        elif (isinstance(command, list) and command and command[0]
              and all(isinstance(a, str) for a in command)):
            spec["argv"] = tuple(command)
        else:
            raise ValueError(f'{where}: expected a command string or a non-empty list of strings, '
                             f"got {values.shown(command)}")
    elif kind == "http":
        http = raw["http"]
        if isinstance(http, str):
            http = {"url": http}
        _object(http, where, '{"url": "http://127.0.0.1:8080/healthz", "status": 200}')
        _unknown(http, HTTP_KEYS, where)
        if "url" not in http:
            raise ValueError(f'{where}: missing "url"')
        spec["host"], spec["port"], spec["path"], spec["host_header"] = parse_url(http["url"], where + ".url")
        if http.get("status") is not None:
            spec["status"] = _whole(http["status"], where + ".status", 100, 599, "an HTTP status")
        if http.get("body") is not None:
            body = http["body"]
            if not isinstance(body, str) or not body:
                raise ValueError(f"{where}.body: expected a non-empty string to find in the response "
                                 f"body, got {values.shown(body)}")
            spec["body"] = body
    else:
        spec["host"], spec["port"] = parse_tcp(raw["tcp"], where)
    for name in ("interval", "timeout", "start_interval"):
        if name in raw:
            spec[name] = _duration(raw[name], f"{key}.{name}", positive=True)
    if "start_period" in raw:
        spec["start_period"] = _duration(raw["start_period"], f"{key}.start_period")
    if "retries" in raw:
        spec["retries"] = _whole(raw["retries"], f"{key}.retries", 1, MAX_RETRIES, "a whole number")
    return HealthSpec(**spec)


def parse_on_unhealthy(raw, key):
    """"none" (the default: report only, as Docker does), "restart" or "exit"."""
    if raw is None:
        return "none"
    if raw not in ON_UNHEALTHY:
        raise ValueError(f'{key}: expected "none", "restart" or "exit", got {values.shown(raw)}')
    return raw


def parse_restart(raw, key):
    """A role's restart, backoff and give_up keys -> RestartSpec.

    raw: the role's object (the three keys are read from it, each optional);
    key: the role's name, so messages read `web.backoff.max: ...`."""
    policy = raw.get("restart")
    if policy is None:
        policy = restart.NO
    elif policy is False:  # "restart": false reads naturally; YAML-minded users write it
        policy = restart.NO
    if policy not in restart.POLICIES:
        raise ValueError(f'{key}.restart: expected "no", "on-failure" or "always", got {values.shown(policy)}')
    spec = {"policy": policy}
    backoff = raw.get("backoff")
    if backoff is not None:
        where = f"{key}.backoff"
        _object(backoff, where, '{"initial": "100ms", "max": "30s", "reset_after": "10s"}')
        _unknown(backoff, BACKOFF_KEYS, where)
        for name in BACKOFF_KEYS:
            if name in backoff:
                spec[name] = _duration(backoff[name], f"{where}.{name}")
        initial = spec.get("initial", restart.DEFAULT_INITIAL)
        most = spec.get("max", restart.DEFAULT_MAX)
        if most < initial:
            raise ValueError(f"{where}.max: expected at least initial ({initial:g}s), got "
                             f"{values.shown(backoff['max'])}")
    give_up = raw.get("give_up")
    if give_up is False:
        spec["give_up_restarts"] = None  # never give up
    elif give_up is not None:
        where = f"{key}.give_up"
        _object(give_up, where, '{"restarts": 10, "within": "60s"}')
        _unknown(give_up, GIVE_UP_KEYS, where)
        if "restarts" in give_up:
            spec["give_up_restarts"] = _whole(give_up["restarts"], f"{where}.restarts", 1,
                                              MAX_RETRIES, "a whole number")
        if "within" in give_up:
            spec["give_up_within"] = _duration(give_up["within"], f"{where}.within", positive=True)
    return restart.RestartSpec(**spec)


def describe(spec, on_unhealthy, restart_spec):
    """The resolved plan for `initd check`: one line per concern."""
    lines = []
    if spec is not None:
        if spec.kind == "exec":
            what = "exec " + " ".join(spec.argv)
        elif spec.kind == "http":
            host = f"[{spec.host}]" if ":" in spec.host else spec.host
            what = f"http GET http://{host}:{spec.port}{spec.path}"
            what += f" expecting status {spec.status}" if spec.status else " expecting 2xx/3xx"
            if spec.body:
                what += f" and body containing {spec.body!r}"
        else:
            host = f"[{spec.host}]" if ":" in spec.host else spec.host
            what = f"tcp connect {host}:{spec.port}"
        lines.append(f"health: {what}; every {spec.interval:g}s, timeout {spec.timeout:g}s, "
                     f"unhealthy after {spec.retries} failures, start period {spec.start_period:g}s "
                     f"(probing every {spec.start_interval:g}s in it)")
    lines.append(f"on unhealthy: {on_unhealthy}")
    r = restart_spec
    give_up = ("never give up" if r.give_up_restarts is None
               else f"give up after {r.give_up_restarts} restarts within {r.give_up_within:g}s")
    lines.append(f"restart: {r.policy}; backoff {r.initial:g}s doubling to {r.max:g}s (±20%), "
                 f"reset after {r.reset_after:g}s running; {give_up}")
    return lines

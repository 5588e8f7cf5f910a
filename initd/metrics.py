"""Prometheus metrics: the status snapshot in the text exposition format
(version 0.0.4, the one `promtool check metrics` checks), served over a tiny
HTTP/1.0 server inside PID 1's loop.

Only `GET /metrics` is answered (200); any other path is 404, any other
method 405, a malformed or oversized request 400. One request per
connection, then close; the same non-blocking, bounded, deadline-per-
connection rules as the control socket (control.StreamServer). Nothing
listens unless `metrics: "HOST:PORT"` or --metrics asks for it.
"""
import ipaddress
import os
import socket

from initd import control
from initd.errors import InitdError
from initd.values import shown

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST = 4096  # a request line and headers; Prometheus sends a few hundred bytes
HEALTH_STATES = ("none", "starting", "healthy", "unhealthy")


def parse_address(value):
    """"HOST:PORT" -> (family, host, port). HOST is an IP address ("[::1]"
    for IPv6), "localhost", or empty for every IPv4 address (":9102").
    ValueError saying what was expected."""
    expected = 'expected "HOST:PORT" such as "127.0.0.1:9102", ":9102" or "[::]:9102"'
    if not isinstance(value, str):
        raise ValueError(f"{expected}, got {shown(value)}")
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{expected}, got {shown(value)} (the port must be 1-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{expected}, got {shown(value)} (not an IPv6 address)")
        return socket.AF_INET6, host, int(port)
    if host in ("", "localhost"):
        return socket.AF_INET, "0.0.0.0" if host == "" else "127.0.0.1", int(port)
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"{expected}, got {shown(value)} (the host must be an IP address, "
                         "\"localhost\" or empty; IPv6 in brackets)")
    return socket.AF_INET, host, int(port)


# --- rendering (pure but for initd's own RSS) -----------------------------

def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class _Text:
    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text, samples):
        """samples: [(labels dict, value)]; a family with none still gets
        its HELP and TYPE so dashboards see it exists."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if value is None:
                continue
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text
                              else f"{name} {_number(value)}")


def own_rss(statm="/proc/self/statm"):
    """initd's resident set size in bytes: one small read of /proc."""
    try:
        with open(statm, "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def render(s, rss=None):
    """The status snapshot as Prometheus text. rss: initd's own RSS in bytes
    (own_rss() when None)."""
    t = _Text()
    role = s.get("role") or ""
    t.family("initd_info", "gauge", "The role initd runs and its revision (always 1).",
             [({"role": role, "revision": s.get("revision") or ""}, 1)])
    t.family("initd_app_up", "gauge", "1 when the app process is alive.",
             [({}, bool(s.get("alive")))])
    t.family("initd_app_ready", "gauge", "1 when the role is ready for traffic.",
             [({}, bool(s.get("ready")))])
    health = s.get("health") or {}
    current = health.get("state", "none")
    t.family("initd_health_state", "gauge",
             "1 for the current health state of the role, 0 for the others.",
             [({"state": state}, state == current) for state in HEALTH_STATES])
    t.family("initd_uptime_seconds", "gauge", "Seconds since the app was last started.",
             [({}, s.get("uptime"))])
    t.family("initd_restarts_total", "counter", "Restarts of the app, by reason.",
             [({"reason": r}, n) for r, n in sorted((s.get("restarts_total") or {}).items())])
    t.family("initd_last_exit_code", "gauge", "The app's last exit code (128+N: signal N).",
             [({}, s.get("last_exit_code"))])
    last = health.get("last") or {}
    t.family("initd_probe_duration_seconds", "gauge", "Duration of the last health probe.",
             [({}, last.get("duration"))])
    counters = s.get("counters") or {}
    t.family("initd_probes_total", "counter", "Health probes run.",
             [({}, counters.get("probes", 0))])
    t.family("initd_probe_failures_total", "counter", "Health probes that failed.",
             [({}, counters.get("probe_failures", 0))])
    t.family("initd_signals_received_total", "counter", "Signals initd received, by signal.",
             [({"signal": k}, v) for k, v in sorted((counters.get("signals_received")
                                                     or {}).items())])
    t.family("initd_signals_delivered_total", "counter",
             "Signals initd delivered to the app, by signal (after translation).",
             [({"signal": k}, v) for k, v in sorted((counters.get("signals_delivered")
                                                     or {}).items())])
    t.family("initd_orphans_reaped_total", "counter",
             "Processes other than the app and the shim that initd reaped.",
             [({}, counters.get("orphans_reaped", 0))])
    t.family("initd_stop_duration_seconds", "gauge",
             "Seconds the last stop took, from the stop signal to the app's exit.",
             [({}, s.get("stop_duration"))])
    t.family("initd_process_resident_memory_bytes", "gauge",
             "Resident memory of initd itself.", [({}, own_rss() if rss is None else rss)])
    return "\n".join(t.lines) + "\n"


# --- the HTTP server ------------------------------------------------------

def _http(status, body, content_type="text/plain; charset=utf-8"):
    body = body.encode() if isinstance(body, str) else body
    head = (f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class MetricsServer(control.StreamServer):
    max_request = MAX_REQUEST
    name = "metrics"

    def __init__(self, sock, status, deadline=control.DEADLINE):
        super().__init__(sock, deadline)
        self.status = status

    @classmethod
    def open(cls, address, status, deadline=control.DEADLINE):
        """Listen on "HOST:PORT". InitdError (one line) when it cannot."""
        try:
            family, host, port = parse_address(address)
        except ValueError as e:
            raise InitdError(f"metrics: {e}")
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                             | socket.SOCK_CLOEXEC)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(16)
        except OSError as e:
            sock.close()
            raise InitdError(f"metrics: cannot listen on {address}: {e.strerror}")
        return cls(sock, status, deadline)

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def complete(self, inbuf):
        return b"\r\n\r\n" in inbuf or b"\n\n" in inbuf

    def too_long(self):
        return _http("400 Bad Request", "request too long\n")

    def failed(self):
        return _http("500 Internal Server Error", "initd could not render its metrics\n")

    def answer(self, request, now):
        parts = request.split(b"\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _http("400 Bad Request", "expected GET /metrics\n")
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return _http("405 Method Not Allowed", "only GET /metrics\n")
        if target != b"/metrics":
            return _http("404 Not Found", "only /metrics is served here\n")
        response = _http("200 OK", render(self.status()), CONTENT_TYPE)
        if method == b"HEAD":
            response = response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        return response

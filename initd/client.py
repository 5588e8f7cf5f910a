"""`initd health` and `initd status`: ask a running initd over its control
socket. Works from `docker exec`, a Docker HEALTHCHECK or a Kubernetes exec
probe, whether initd is PID 1 or not; never waits longer than TIMEOUT.

Exit codes:
  0  health: alive and not unhealthy; health --ready: ready; status: answered
  1  health: dead or unhealthy; health --ready: not ready
  2  bad command line
  3  no initd answered (no socket, nobody listening, timeout, bad answer)
"""
import json
import os
import socket
import sys
import time

from initd import control

NO_ANSWER = 3
TIMEOUT = 3.0          # whole exchange, below Docker's default 30 s probe timeout
MAX_ANSWER = 4 << 20

USAGE = """usage: initd health [--ready] [--control PATH]
       initd status [--json] [--control PATH]

  health          exit 0 when the app is alive and not unhealthy, else 1
  health --ready  exit 0 only when the role is ready for traffic, else 1
  status          a summary of the role; --json: the full document
  --control PATH  the control socket (default: $INITD_CONTROL, else
                  /run/initd/initd.sock as root, $XDG_RUNTIME_DIR/initd/initd.sock
                  or /tmp/initd-UID/initd.sock)
exit 3 when no initd answers"""


class NoAnswer(Exception):
    pass


def ask(path, cmd, timeout=TIMEOUT):
    """The JSON answer of initd at path to cmd; NoAnswer with a reason."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise NoAnswer(f"{path}: no control socket (is initd running, with its "
                           "control socket on? try --control PATH)")
        except ConnectionRefusedError:
            raise NoAnswer(f"{path}: nobody is listening (initd has exited?)")
        except PermissionError:
            raise NoAnswer(f"{path}: permission denied (the control socket is private "
                           "to initd's user; run as that user)")
        except OSError as e:
            raise NoAnswer(f"{path}: {e.strerror or e}")
        try:
            sock.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
            data = b""
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_ANSWER:
                    raise NoAnswer(f"{path}: answer too long")
        except socket.timeout:
            raise NoAnswer(f"{path}: no answer within {timeout:g}s")
        except OSError as e:
            raise NoAnswer(f"{path}: {e.strerror or e}")
    finally:
        sock.close()
    try:
        answer = json.loads(data)
    except ValueError:
        raise NoAnswer(f"{path}: not an initd answer")
    if not isinstance(answer, dict):
        raise NoAnswer(f"{path}: not an initd answer")
    if "error" in answer:
        raise NoAnswer(f"{path}: initd says: {answer['error']}")
    return answer


def _span(seconds):
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    text = "".join(f"{n}{u}" for n, u in parts if n)
    return text or "0s"


def _counts(mapping):
    return ", ".join(f"{k} {v}" for k, v in sorted((mapping or {}).items())) or "none"


def summary(s):
    """The human view of a status snapshot."""
    revision = f" (revision {s['revision']})" if s.get("revision") else ""
    state = s.get("state")
    readiness = "" if state == "ready" else (", ready" if s.get("ready") else ", not ready")
    lines = [f"role {s.get('role')}{revision}: {state}{readiness}"]
    pids = s.get("pids") or {}
    lines.append("  pids      " + ", ".join(f"{k} {v}" for k, v in pids.items() if v is not None))
    lines.append(f"  uptime    {_span(s.get('uptime'))}")
    health = s.get("health") or {}
    text = health.get("state", "none")
    if health.get("failing_streak"):
        text += f", failing {health['failing_streak']} in a row"
    last = health.get("last")
    if last:
        text += (f"; last probe {'ok' if last.get('ok') else 'failed'}"
                 f" in {last.get('duration') or 0:.3f}s")
        detail = last.get("detail") or ""
        if last.get("code") is not None and not detail.startswith("HTTP"):
            text += f", exit {last['code']}"  # an HTTP probe's detail names its status
        if detail:
            text += f": {last['detail']}"
    lines.append(f"  health    {text}")
    if last and last.get("output"):
        tail = last["output"].rstrip("\n").splitlines()[-3:]
        lines.extend(f"            | {line}" for line in tail)
    notify = s.get("notify")
    if notify:
        lines.append(f"  notify    {'READY=1' if notify.get('ready') else 'not ready'}"
                     + (f"; STATUS={notify['status']}" if notify.get("status") else ""))
    restarts = s.get("restarts_total") or {}
    lines.append(f"  restarts  {sum(restarts.values())}"
                 + (f" ({_counts(restarts)})" if restarts else ""))
    if s.get("last_exit_code") is not None:
        lines.append(f"  last exit {s['last_exit_code']}")
    counters = s.get("counters") or {}
    lines.append(f"  signals   received: {_counts(counters.get('signals_received'))}; "
                 f"delivered: {_counts(counters.get('signals_delivered'))}")
    lines.append(f"  orphans   {counters.get('orphans_reaped', 0)} reaped")
    if counters.get("probes"):
        lines.append(f"  probes    {counters['probes']} run, "
                     f"{counters.get('probe_failures', 0)} failed")
    return "\n".join(lines)


def _out(text, stream=None):
    stream = stream or sys.stdout
    try:
        stream.write(text + "\n")
        stream.flush()
    except (BrokenPipeError, OSError):
        pass  # `initd status | head -1`: the reader left; the exit code still says it


def main(argv, environ):
    """argv without the program name, e.g. ["health", "--ready"]. Returns
    the exit code."""
    args = list(argv)
    if not args or args[0] not in ("health", "status") or "-h" in args or "--help" in args:
        _out(USAGE, sys.stdout if ("-h" in args or "--help" in args) else sys.stderr)
        return 0 if ("-h" in args or "--help" in args) else 2
    command, rest = args[0], args[1:]
    flags, path = set(), None
    allowed = {"health": {"--ready"}, "status": {"--json"}}[command]
    while rest:
        arg = rest.pop(0)
        if arg == "--control" and rest:
            path = rest.pop(0)
        elif arg.startswith("--control="):
            path = arg.partition("=")[2]
        elif arg in allowed:
            flags.add(arg)
        else:
            _out(f"initd: ERROR {command}: unknown option {arg!r}\n{USAGE}", sys.stderr)
            return 2
    path = control.path_from(environ, path)
    try:
        answer = ask(path, "health" if command == "health" else "status")
    except NoAnswer as e:
        _out(f"initd: ERROR {e}", sys.stderr)
        return NO_ANSWER
    if command == "health":
        ok = answer.get("ready") if "--ready" in flags else answer.get("healthy")
        what = "ready" if "--ready" in flags else "healthy"
        _out(f"{answer.get('role')}: {answer.get('state')}, health {answer.get('health')}"
             f", {'' if answer.get('ready') else 'not '}ready"
             f" -> {'' if ok else 'not '}{what}")
        return 0 if ok else 1
    if "--json" in flags:
        _out(json.dumps(answer, indent=2, sort_keys=True))
    else:
        _out(summary(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))

"""The probe runners, inside the one wait loop (see loop.py): nothing here
blocks or waits, and nothing is read without a bound.

- exec: a child made by spawn.child (clean mask and dispositions, the role's
  env, user and workdir, fds >= 3 closed) in a process group of its own, its
  stdout and stderr on one non-blocking pipe of which the first 4 KiB are
  kept (Docker keeps 4096 bytes) and the rest read and dropped, so a chatty
  probe never stalls on a full pipe. Its status comes from the loop's reaper
  (loop.on_exit), never from waitpid here. At its timeout, and also once it
  has exited, its whole group gets SIGKILL: no grandchild it left behind
  outlives it (moby#43737 left such zombies under Docker). The pgid cannot
  name a stranger then: Linux does not reuse a pid while a process group of
  that id still has members.
- http: GET on a non-blocking socket; connect, send and receive are each
  driven by poll events, and the whole exchange is bounded by the timeout
  (the Prober kills it) and by MAX_HTTP bytes read. 2xx/3xx is healthy, or
  exactly the expected status; optionally the body must contain a string.
- tcp: a non-blocking connect; healthy once it completes.

A Prober is a loop component: next_deadline() / on_tick(now). It asks its
health.Schedule when to begin a probe and when one has timed out, and gives
every result to on_result(ok, code, detail, output, duration, now), where the
supervisor feeds it to health.HealthState.record().

Loop interface used: loop.watch(fd, on_ready, events) with a poll event mask
(POLLOUT is needed to see a connect complete), loop.unwatch(fd),
loop.on_exit(pid, cb).
"""
import errno
import os
import select
import socket

from initd import health, spawn

MAX_OUTPUT = health.MAX_OUTPUT   # kept of an exec probe's output
READ_CHUNK = 65536               # read per wake: a pipe's whole buffer
MAX_HTTP = 65536                 # read of an HTTP response, at most
IN = select.POLLIN
OUT = select.POLLOUT
KILL = 9


class Prober:
    """Runs spec's probe on its schedule. status(): the health state now
    (Docker's start_interval applies only while still starting)."""

    def __init__(self, spec, loop, env, workdir, account, on_result, status=None, now=None):
        self.spec = spec
        self.loop = loop
        self.env = env
        self.workdir = workdir
        self.account = account
        self.on_result = on_result
        self.status = status or (lambda: health.STARTING)
        self.schedule = health.Schedule(spec.interval, spec.timeout, spec.start_period,
                                        spec.start_interval, 0.0)
        self.running = None
        self.active = False
        self.generation = 0
        if now is not None:
            self.start(now)

    def start(self, now):
        """The app started (or restarted) at `now`: probe from here."""
        self.cancel()
        self.generation += 1
        self.active = True
        self.schedule.restart(now, self.status())

    def stop(self):
        """The app is stopping or gone: kill any running probe, run no more."""
        self.cancel()
        self.generation += 1
        self.active = False

    def cancel(self):
        runner, self.running = self.running, None
        if runner is not None:
            runner.cancel()
        self.schedule.running_since = None

    def next_deadline(self, now=None):
        # loop.Loop calls component.next_deadline(now); without the argument
        # every role with a health check died at start with a TypeError
        # (tests/probe_loop.py calls it bare, so `now` stays optional).
        return self.schedule.next_deadline() if self.active else None

    def on_tick(self, now):
        if not self.active:
            return
        if self.running is not None:
            if self.schedule.expired(now):
                # RUNNING -> TIMED OUT: the group (or socket) is killed now;
                # the reaper's later report of the exit is ignored.
                began, output = self.schedule.running_since, self.running.output()
                self.cancel()
                self.schedule.running_since = began  # cancel() cleared it; _report needs it
                self._report(False, None, f"timed out after {self.spec.timeout:g}s", output, now)
        elif self.schedule.due(now):
            self._begin(now)

    def _begin(self, now):
        kind = self.spec.kind
        if kind == "exec":
            runner = ExecRunner(self, self.spec.argv)
        elif kind == "http":
            runner = HttpRunner(self, self.spec)
        else:
            runner = TcpRunner(self, self.spec)
        self.schedule.begin(now)
        self.running = runner
        try:
            runner.start()
        except Exception as e:  # noqa: BLE001 - a probe must never take PID 1 down
            # fork failed, no fds left, no such address family: a failed
            # probe, never a dead PID 1.
            runner.cancel()
            self.running = runner
            reason = getattr(e, "strerror", None) or e
            self.done(runner, False, None, f"cannot start the probe: {reason}", "", now)

    def done(self, runner, ok, code, detail, output, now):
        """A runner's result (ignored when it was cancelled meanwhile)."""
        if runner is not self.running:
            return
        self.running = None
        if self.schedule.overran(now):
            # It finished after its deadline (the loop woke late): Docker
            # counts a probe longer than its timeout as failed.
            ok, detail = False, f"timed out after {self.spec.timeout:g}s ({detail})"
        self._report(ok, code, detail, output, now)

    def _report(self, ok, code, detail, output, now):
        generation = self.generation
        duration = self.schedule.end(now, self.status())  # provisional, see below
        try:
            self.on_result(ok, code, detail, output, duration, now)
        finally:
            # Docker picks the next gap with the state the result left. Unless
            # on_result restarted or stopped us meanwhile.
            if self.generation == generation and self.active:
                self.schedule.next_due = now + self.schedule.gap(now, self.status())


class ExecRunner:
    def __init__(self, prober, argv):
        self.prober = prober
        self.argv = argv
        self.pid = None
        self.fd = None
        self.kept = bytearray()
        self.finished = False

    def start(self):
        p = self.prober
        r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            self.pid = spawn.child(self.argv, env=p.env, workdir=p.workdir, account=p.account,
                                   stdout=w, stderr=w)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.fd = r
        p.loop.watch(r, self._readable, IN)
        p.loop.on_exit(self.pid, self._exited)

    def output(self):
        return self.kept.decode("utf-8", "replace")

    def _read(self, reads):
        """Up to `reads` chunks; keep the first MAX_OUTPUT bytes. Returns
        False at end of file."""
        for _ in range(reads):
            try:
                data = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            room = MAX_OUTPUT - len(self.kept)
            if room > 0:
                self.kept += data[:room]
        return True

    def _readable(self, fd, revents, now):
        if self.fd is None:
            return
        if not self._read(1):
            self._close()

    def _exited(self, pid, code, now):
        if self.finished:
            return  # cancelled (timed out): its status is of no interest now
        self._kill_group()
        if self.fd is not None:
            self._read(4)  # what it wrote before it exited is in the pipe
            self._close()
        ok = code == 0
        detail = f"exit code {code}"
        if code == 127:
            detail += f" (cannot run {self.argv[0]})"
        self.finish(ok, code, detail, self.output(), now)

    def finish(self, ok, code, detail, output, now):
        self.finished = True
        self.prober.done(self, ok, code, detail, output, now)

    def _kill_group(self):
        if self.pid is not None:
            try:
                os.killpg(self.pid, KILL)
            except OSError:
                pass  # the group is already empty

    def _close(self):
        if self.fd is not None:
            self.prober.loop.unwatch(self.fd)
            os.close(self.fd)
            self.fd = None

    def cancel(self):
        self.finished = True
        self._kill_group()
        self._close()


class _SocketRunner:
    """Shared by http and tcp: a non-blocking connect, then what follows."""

    def __init__(self, prober, spec):
        self.prober = prober
        self.spec = spec
        self.sock = None
        self.fd = None
        self.events = None
        self.connected = False
        self.finished = False

    def start(self):
        family = socket.AF_INET6 if ":" in self.spec.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        self.fd = self.sock.fileno()
        err = self.sock.connect_ex((self.spec.host, self.spec.port))
        if err not in (0, errno.EINPROGRESS):
            self.fail(err, self.prober.loop.now())
            return
        self.events = OUT
        self.prober.loop.watch(self.fd, self._ready, OUT)

    def output(self):
        return ""

    def where(self):
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"{host}:{self.spec.port}"

    def fail(self, err, now, doing="connect to"):
        reason = os.strerror(err).lower() if err else "connection closed"
        self.finish(False, None, f"{doing} {self.where()}: {reason}", self.output(), now)

    def _ready(self, fd, revents, now):
        if self.finished:
            return
        if not self.connected:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(err, now)
                return
            self.connected = True
            self.on_connected(now)
        else:
            self.on_io(revents, now)

    def rewatch(self, events):
        if events != self.events:
            self.prober.loop.unwatch(self.fd)
            self.events = events
            self.prober.loop.watch(self.fd, self._ready, events)

    def finish(self, ok, code, detail, output, now):
        self.cancel()
        self.prober.done(self, ok, code, detail, output, now)

    def cancel(self):
        self.finished = True
        if self.sock is not None:
            if self.events is not None:
                self.prober.loop.unwatch(self.fd)
                self.events = None
            self.sock.close()
            self.sock = None


class TcpRunner(_SocketRunner):
    def on_connected(self, now):
        self.finish(True, None, f"connected to {self.where()}", "", now)


class HttpRunner(_SocketRunner):
    def start(self):
        spec = self.spec
        request = (f"GET {spec.path} HTTP/1.1\r\nHost: {spec.host_header}\r\n"
                   "User-Agent: initd-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        self.pending = request.encode("latin-1", "replace")
        self.response = bytearray()
        super().start()

    def output(self):
        head, sep, body = bytes(getattr(self, "response", b"")).partition(b"\r\n\r\n")
        return (body if sep else b"")[:MAX_OUTPUT].decode("utf-8", "replace")

    def on_connected(self, now):
        self._send(now)

    def _send(self, now):
        try:
            sent = self.sock.send(self.pending)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(e.errno, now, "send to")
            return
        self.pending = self.pending[sent:]
        if not self.pending:
            self.rewatch(IN)

    def on_io(self, revents, now):
        if self.pending:
            self._send(now)
            return
        try:
            data = self.sock.recv(min(READ_CHUNK, MAX_HTTP - len(self.response)))
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(e.errno, now, "read from")
            return
        self.response += data
        self._judge(now, end=not data or len(self.response) >= MAX_HTTP)

    def _complete(self, response):
        """The whole response is here: its headers and Content-Length bytes
        of body, or a chunked body's last chunk. Otherwise the server's close
        (we asked for Connection: close) or MAX_HTTP ends it."""
        head, sep, body = response.partition(b"\r\n\r\n")
        if not sep:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length" and value.strip().isdigit():
                return len(body) >= int(value.strip())
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return body.endswith(b"0\r\n\r\n")
        return False

    def _judge(self, now, end):
        """Decide once the response is complete (see _complete), or at the
        end; a body check decides as soon as the string has arrived."""
        response = bytes(self.response)
        line_end = response.find(b"\r\n")
        if line_end < 0:
            if end:
                self.finish(False, None, f"no HTTP response from {self.where()}", self.output(), now)
            return
        parts = response[:line_end].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self.finish(False, None, f"not an HTTP response from {self.where()}: "
                        f"{response[:line_end][:80].decode('latin-1')!r}", self.output(), now)
            return
        status = int(parts[1])
        expected = self.spec.status
        status_ok = status == expected if expected else 200 <= status < 400
        body = self.spec.body
        found = body is not None and body.encode() in response.partition(b"\r\n\r\n")[2]
        if not (end or self._complete(response) or (status_ok and found)):
            return
        if not status_ok:
            want = f" (expected {expected})" if expected else ""
            self.finish(False, status, f"HTTP {status}{want}", self.output(), now)
        elif body is None:
            self.finish(True, status, f"HTTP {status}", self.output(), now)
        elif found:
            self.finish(True, status, f"HTTP {status}, body contains {body!r}", self.output(), now)
        else:
            self.finish(False, status, f"HTTP {status}, body does not contain {body!r}",
                        self.output(), now)

"""The control socket: read-only questions about the role, answered from
inside PID 1's loop without ever blocking it.

Protocol (one exchange per connection): the client sends one line, a JSON
object such as {"cmd": "status"} (a bare word `status` is accepted too, for
`nc -U`), of at most MAX_REQUEST bytes; initd answers one JSON document and
a newline, then closes. Commands:
  status   the whole status() snapshot (README: Control socket)
  health   {"role", "state", "alive", "ready", "health", "healthy"}
  ready    the same as health (the client decides what to check)
An error is {"error": "..."}. Nothing is ever executed on a request.

Every connection has a deadline (DEADLINE seconds from accept): a peer that
connects and never speaks, or never reads, is closed then. Reads and writes
are non-blocking and bounded; at most MAX_ACCEPT connections are accepted
per wake and at most MAX_OPEN are open at once (more are closed at once).

The socket file is mode 0600 in a directory of mode 0700 owned by initd's
user, created without following symlinks (see open_listener).
"""
import os
import select
# The C module: socket.py's enums and selectors cost ~3 ms at every
# container start, and the server needs nothing of it (json, ~1.5 ms, is
# imported when a request arrives).
import _socket as socket
import stat

from initd import log
from initd.errors import InitdError

SOCKET_NAME = "initd.sock"
MAX_REQUEST = 1024     # bytes of one request line
MAX_RESPONSE = 1 << 20  # a snapshot is a few KiB; anything this big is a bug
MAX_ACCEPT = 8         # accepted per wake
MAX_OPEN = 32          # open connections at once
DEADLINE = 2.0         # seconds a connection may live


def default_path(environ, euid=None):
    """/run/initd/initd.sock as root; else $XDG_RUNTIME_DIR/initd/initd.sock,
    else /tmp/initd-<uid>/initd.sock."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return f"/run/initd/{SOCKET_NAME}"
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        return os.path.join(runtime, "initd", SOCKET_NAME)
    return f"/tmp/initd-{euid}/{SOCKET_NAME}"


def path_from(environ, flag=None, euid=None):
    """The socket path the client and the server agree on: --control, then
    INITD_CONTROL, then the default."""
    return flag or environ.get("INITD_CONTROL") or default_path(environ, euid)


def _private_dir(directory):
    """Create directory (mode 0700) or check an existing one: a real
    directory (not a symlink), owned by us, with no group or other access.
    A directory someone else made (/tmp/initd-0 by another user) could be
    swapped under us, so it is refused, not repaired."""
    euid = os.geteuid()
    parent = os.path.dirname(directory)
    if parent and not os.path.isdir(parent):
        try:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        except OSError as e:
            raise InitdError(f"{parent}: cannot create the control socket's directory: "
                             f"{e.strerror} (use --control PATH or --no-control)")
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise InitdError(f"{directory}: cannot create the control socket's directory: "
                         f"{e.strerror} (use --control PATH or --no-control)")
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode):
        raise InitdError(f"{directory}: is a symlink; the control socket's directory must be "
                         "a real directory (initd never follows a symlink here)")
    if not stat.S_ISDIR(st.st_mode):
        raise InitdError(f"{directory}: not a directory")
    if st.st_uid != euid:
        raise InitdError(f"{directory}: owned by uid {st.st_uid}, expected uid {euid} "
                         "(the control socket's directory must be initd's own)")
    if st.st_mode & 0o077:
        raise InitdError(f"{directory}: mode {stat.S_IMODE(st.st_mode):04o}, expected 0700 "
                         f"(run `chmod 700 {directory}` or choose another --control PATH)")


def _clear_stale(path):
    """Remove a socket file left by a dead initd; refuse anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise InitdError(f"{path}: is a symlink; refusing to use it as the control socket")
    if not stat.S_ISSOCK(st.st_mode):
        raise InitdError(f"{path}: exists and is not a socket; remove it or choose "
                         "another --control PATH")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                          | socket.SOCK_CLOEXEC)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        # Nobody listens: a previous run's socket. Only now is it removed.
        os.unlink(path)
        return
    except BlockingIOError:
        pass  # a listener with a full backlog: alive
    except OSError as e:
        raise InitdError(f"{path}: cannot check the existing control socket: {e.strerror}")
    finally:
        probe.close()
    raise InitdError(f"{path}: another initd is answering on this control socket "
                     "(use --control PATH or --no-control)")


def open_listener(path):
    """A listening, non-blocking unix stream socket at path, mode 0600 in a
    0700 directory. InitdError (one line) when that cannot be done safely."""
    if not path.startswith("/"):
        raise InitdError(f"{path}: the control socket path must be absolute")
    if len(path.encode()) > 107:
        raise InitdError(f"{path}: too long for a unix socket (at most 107 bytes)")
    _private_dir(os.path.dirname(path))
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                         | socket.SOCK_CLOEXEC)
    # The umask makes bind create the file 0600 at once: no moment when it
    # is wider. One thread, so changing it for a moment affects nothing else.
    old = os.umask(0o177)
    try:
        sock.bind(path)
        sock.listen(16)
    except OSError as e:
        sock.close()
        raise InitdError(f"{path}: cannot listen on the control socket: {e.strerror}")
    finally:
        os.umask(old)
    return sock


class _Conn:
    __slots__ = ("sock", "deadline", "inbuf", "outbuf", "writing")

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.inbuf = b""
        self.outbuf = None   # bytes once the answer is ready
        self.writing = False  # watched for POLLOUT


class StreamServer:
    """Accept, read one bounded request, answer, close; every step
    non-blocking, every connection with a deadline. Subclasses define
    complete(inbuf) -> bool and answer(request_bytes, now) -> bytes.

    Plug-in: server.start(loop) watches the listening fd and adds itself
    (next_deadline/on_tick) to the loop; server.close() stops it."""

    max_request = MAX_REQUEST
    name = "control socket"

    def __init__(self, sock, deadline=DEADLINE):
        self.sock = sock
        self.fd = sock.fileno()
        self.deadline = deadline
        self.conns = {}
        self.loop = None

    def start(self, loop):
        self.loop = loop
        loop.watch(self.fd, self.on_accept)
        loop.add(self)

    def close(self):
        for fd in list(self.conns):
            self._drop(fd)
        if self.sock is not None:
            if self.loop is not None:
                self.loop.unwatch(self.fd)
            self.sock.close()
            self.sock = None

    # -- loop callbacks --
    def on_accept(self, fd, revents, now):
        for _ in range(MAX_ACCEPT):
            try:
                # _accept (socket.socket has it too): accept4 with CLOEXEC,
                # without socket.py.
                fd, _ = self.sock._accept()
                conn = socket.socket(fileno=fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # EMFILE and friends: the client waits in the backlog; we
                # must not spin, so stop for this wake.
                log.warning(f"{self.name}: accept: {e.strerror}")
                return
            if len(self.conns) >= MAX_OPEN:
                conn.close()  # too many at once: refuse rather than queue
                continue
            conn.setblocking(False)
            self.conns[conn.fileno()] = _Conn(conn, now + self.deadline)
            self.loop.watch(conn.fileno(), self.on_readable)

    def on_readable(self, fd, revents, now):
        c = self.conns.get(fd)
        if c is None or c.outbuf is not None:
            return
        try:
            chunk = c.sock.recv(self.max_request + 1 - len(c.inbuf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        c.inbuf += chunk
        if len(c.inbuf) > self.max_request:
            self._reply(fd, c, self.too_long(), now)
        elif not chunk or self.complete(c.inbuf):
            # EOF also ends a request: `printf status | nc -U` need not send \n.
            try:
                answer = self.answer(c.inbuf, now)
            except Exception as e:  # noqa: BLE001 - PID 1 never crashes on a client
                log.warning(f"{self.name}: cannot answer: {e!r}")
                answer = self.failed()
            self._reply(fd, c, answer, now)

    def next_deadline(self, now=None):
        if not self.conns:
            return None
        return min(c.deadline for c in self.conns.values())

    def on_tick(self, now):
        for fd, c in list(self.conns.items()):
            if now >= c.deadline:
                self._drop(fd)  # never spoke, never read, or too slow

    # -- internals --
    def _reply(self, fd, c, data, now):
        self.loop.unwatch(fd)  # no more reading: the request is done
        c.outbuf = data
        self._send(fd, c, now)

    def _send(self, fd, c, now):
        try:
            # MSG_NOSIGNAL: a blocked SIGPIPE would stay pending and reach the
            # loop's signal wait as if someone had sent it to initd.
            sent = c.sock.send(c.outbuf, socket.MSG_NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(fd)  # the peer left (EPIPE, ECONNRESET)
            return
        c.outbuf = c.outbuf[sent:]
        if not c.outbuf:
            self._drop(fd)
        elif not c.writing:
            # The socket buffer is full (a peer that does not read): wait
            # for room, until the connection's deadline.
            c.writing = True
            self.loop.watch(fd, self.on_writable, select.POLLOUT)

    def on_writable(self, fd, revents, now):
        c = self.conns.get(fd)
        if c is not None and c.outbuf is not None:
            self._send(fd, c, now)

    def _drop(self, fd):
        c = self.conns.pop(fd, None)
        if c is None:
            return
        if (c.outbuf is None or c.writing) and self.loop is not None:
            self.loop.unwatch(fd)
        if c.outbuf is not None:
            # Unread input makes close() reset the connection (unix(7) and
            # TCP alike), and the peer would lose our answer: read what is
            # already there, bounded, first.
            for _ in range(16):
                try:
                    if not c.sock.recv(4096):
                        break
                except OSError:
                    break
        c.sock.close()


class ControlServer(StreamServer):
    """The control socket. status() returns the snapshot dict."""

    def __init__(self, sock, status, path=None, deadline=DEADLINE):
        super().__init__(sock, deadline)
        self.status = status
        self.path = path

    @classmethod
    def open(cls, path, status, deadline=DEADLINE):
        return cls(open_listener(path), status, path, deadline)

    @classmethod
    def from_settings(cls, flag, environ, status, disabled=False):
        """The server cli asks for: None with --no-control; an InitdError
        when a path given by --control or INITD_CONTROL cannot be used; and
        only a warning when the default cannot (a read-only /run, another
        initd on the same host's /run in a test, a user namespace where
        /run/initd belongs to nobody): a missing socket must not stop an
        app that ran fine before the control socket existed."""
        if disabled:
            return None
        chosen = flag or environ.get("INITD_CONTROL")
        path = path_from(environ, flag)
        try:
            return cls.open(path, status)
        except InitdError as e:
            if chosen:
                raise
            # Noteworthy in a container (PID 1, a read-only /run); not in a
            # shell, a test, or beside another initd on a shared /run.
            busy = "another initd" in str(e)
            (log.warning if os.getpid() == 1 and not busy else log.info)(
                f"{e}; running without a control socket")
            return None

    def close(self):
        super().close()
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def complete(self, inbuf):
        return b"\n" in inbuf

    def too_long(self):
        return _encode({"error": f"request longer than {MAX_REQUEST} bytes"})

    def failed(self):
        return _encode({"error": "initd could not build its answer; see its log"})

    def answer(self, request, now):
        cmd = parse_request(request)
        if cmd is None:
            return _encode({"error": 'expected one JSON line such as {"cmd": "status"}; '
                                     "commands: status, health, ready"})
        snapshot = self.status()
        if cmd == "status":
            return _encode(snapshot)
        return _encode(health_of(snapshot))


def parse_request(request):
    """The command of a request line, or None when it is not one we know."""
    line = request.split(b"\n", 1)[0].strip()
    if line.startswith(b"{"):
        import json
        try:
            data = json.loads(line)
        except ValueError:
            return None
        cmd = data.get("cmd") if isinstance(data, dict) else None
    else:
        cmd = line.decode("ascii", errors="replace")
    return cmd if cmd in ("status", "health", "ready") else None


def health_of(snapshot):
    """The few fields a probe needs."""
    health = (snapshot.get("health") or {}).get("state", "none")
    alive = bool(snapshot.get("alive"))
    return {"role": snapshot.get("role"), "state": snapshot.get("state"),
            "alive": alive, "ready": bool(snapshot.get("ready")), "health": health,
            "healthy": alive and health != "unhealthy"}


def _encode(document):
    import json
    data = (json.dumps(document, separators=(",", ":"), default=str) + "\n").encode()
    if len(data) > MAX_RESPONSE:
        data = _encode({"error": f"answer longer than {MAX_RESPONSE} bytes"})
    return data

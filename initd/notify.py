"""The sd_notify receiver: systemd's readiness protocol, spoken to initd.

With `notify: true` in a role, initd binds an AF_UNIX datagram socket and
gives the app its address as NOTIFY_SOCKET (and WATCHDOG_USEC with
`watchdog`). The app (sd_notify(3), `systemd-notify`, or a few lines of its
own) sends newline-separated KEY=VALUE datagrams: READY=1, STATUS=...,
WATCHDOG=1, ... (sd_notify(3) lists them). Unknown keys are ignored, as
systemd does.

Three pieces, each testable alone:
  parse(data)          bytes -> list of (event, value); pure
  Watchdog             the WATCHDOG=1 deadline; pure, takes `now`
  Receiver             the socket: non-blocking, at most MAX_PER_WAKE
                       datagrams per wake, sender judged by SCM_CREDENTIALS

The address is abstract ("@initd-notify-<random>"), not a file, because:
  - nothing is written to the filesystem, so a read-only root filesystem
    (Kubernetes' readOnlyRootFilesystem) or a missing /run does not matter,
    and no stale file is ever left behind;
  - the app may run as another user: a path would need a directory that
    user can traverse and a socket file it can write, which is exactly the
    0700 directory the control socket must not have;
  - file permissions would admit every process of the app's uid anyway; the
    credential check below is what decides, and it applies either way.
Abstract names live in the network namespace, so with host networking other
processes on the host could reach it: the random suffix avoids collisions,
and their pid, seen from our pid namespace, is 0, which is never ours.
sd_notify(3), systemd-notify, go-systemd and python-sdnotify all accept
"@name"; a path (an absolute address) works too, for apps that do not.

Whose datagrams count (family_check): systemd's NotifyAccess=all, in
container terms. The kernel stamps every datagram with the sender's pid and
uid (SO_PASSCRED); a sender with CAP_SYS_ADMIN may name another pid, which
is how systemd-notify (252+, as root) sends on behalf of its parent shell.
  1. pid 0 (a process outside our pid namespace): never.
  2. the sender still exists: ours when it is the app, a descendant of the
     app (walking PPid up at most 64 steps), or a member of the process
     group or session the app leads (a daemon that double-forked was
     reparented to initd, but keeps its group and session).
  3. the sender is gone when we read its datagram (a short-lived
     `systemd-notify --no-block`, a one-shot script): ours when its uid is
     the app's uid. We cannot look at a dead process; a process of the app's
     own uid could ptrace the app and say anything anyway, so this admits no
     one who could not already speak for the app. systemd itself drops these
     (systemd issue #2739) and made systemd-notify wait for a barrier
     instead; we close the barrier's fd only after judging the datagrams
     before it, so a blocking systemd-notify is still alive when judged.
Anything else is logged at debug level and dropped.
"""
import array
import os
import secrets
import socket
import struct

from initd import log

MAX_PER_WAKE = 16          # datagrams read per wake: bounded work per handler
MAX_DATAGRAM = 4096        # systemd's own limit is larger; ours is plenty for
                           # READY/STATUS; a longer one is truncated, not fatal
MAX_FDS = 8                # SCM_RIGHTS room; every received fd is closed
MAX_STATUS = 512           # STATUS= text kept, in characters
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def new_address():
    """A fresh abstract address, as NOTIFY_SOCKET spells it."""
    return "@initd-notify-" + secrets.token_hex(8)


def app_environ(address, watchdog=None):
    """The variables the app needs: NOTIFY_SOCKET, and WATCHDOG_USEC when a
    watchdog is set. No WATCHDOG_PID: the app's pid is not known before the
    shim forks it, and sd_watchdog_enabled(3) treats it as optional."""
    env = {"NOTIFY_SOCKET": address}
    if watchdog:
        env["WATCHDOG_USEC"] = str(max(1, int(watchdog * 1_000_000)))
    return env


# --- parsing (pure) -------------------------------------------------------

def _usec(value):
    """A microsecond count -> seconds, or None when it is not one."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value) / 1_000_000


def parse(data):
    """One datagram -> [(event, value), ...] in the order sent.

    Events: ("ready", True), ("status", text), ("watchdog", None) for a ping,
    ("watchdog_trigger", None) for WATCHDOG=trigger, ("watchdog_usec",
    seconds), ("stopping", True), ("reloading", True), ("mainpid", pid),
    ("extend_timeout", seconds), ("barrier", True). Unknown keys, bad values
    and lines without "=" are skipped (systemd ignores them as well)."""
    events = []
    text = data.decode("utf-8", errors="replace")
    for line in text.split("\n"):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "READY" and value == "1":
            events.append(("ready", True))
        elif key == "STATUS":
            events.append(("status", value[:MAX_STATUS]))
        elif key == "WATCHDOG" and value == "1":
            events.append(("watchdog", None))
        elif key == "WATCHDOG" and value == "trigger":
            events.append(("watchdog_trigger", None))
        elif key == "WATCHDOG_USEC":
            seconds = _usec(value)
            if seconds:
                events.append(("watchdog_usec", seconds))
        elif key == "STOPPING" and value == "1":
            events.append(("stopping", True))
        elif key == "RELOADING" and value == "1":
            events.append(("reloading", True))
        elif key == "MAINPID":
            value = value.strip()
            if value.isascii() and value.isdigit() and 0 < int(value) < 2**22 + 1:
                events.append(("mainpid", int(value)))
        elif key == "EXTEND_TIMEOUT_USEC":
            seconds = _usec(value)
            if seconds is not None:
                events.append(("extend_timeout", seconds))
        elif key == "BARRIER" and value == "1":
            events.append(("barrier", True))
    return events


# --- the watchdog deadline (pure) ----------------------------------------

class Watchdog:
    """WATCHDOG=1 must come every `timeout` seconds once armed. A missed
    deadline calls on_miss(now) once and re-arms, so an app that stays
    silent fails again each period (each counts as a failed check)."""

    def __init__(self, timeout, on_miss):
        self.timeout = timeout
        self.on_miss = on_miss
        self.deadline = None
        self.misses = 0

    def arm(self, now):
        """The app has started (or been restarted): the first ping is due
        within one period, as systemd counts from the start."""
        self.deadline = now + self.timeout if self.timeout else None

    def disarm(self):
        """Stopping, draining or exited: silence is expected now."""
        self.deadline = None

    def ping(self, now):
        if self.deadline is not None:
            self.deadline = now + self.timeout

    def set_timeout(self, seconds, now):
        """WATCHDOG_USEC=... from the app: a new period, counted from now."""
        self.timeout = seconds
        if self.deadline is not None:
            self.deadline = now + seconds

    def next_deadline(self, now=None):
        return self.deadline

    def on_tick(self, now):
        if self.deadline is not None and now >= self.deadline:
            self.misses += 1
            self.deadline = now + self.timeout
            self.on_miss(now)


# --- who may speak for the app -------------------------------------------

def _stat_fields(pid, proc):
    """(ppid, pgid, sid) of a live pid, or None when it is gone."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read(1024)
    except OSError:
        return None
    # comm (field 2) may contain spaces and ')': split after the last ')'.
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return int(rest[1]), int(rest[2]), int(rest[3])
    except (IndexError, ValueError):
        return None


def family_check(app_pid, app_uid, proc="/proc"):
    """is_ours(pid, uid) for Receiver: the rule in this module's docstring.
    app_pid and app_uid are callables (the app changes on every restart);
    app_pid() returns None while no app runs."""
    def is_ours(pid, uid):
        app = app_pid()
        if pid <= 0 or app is None:
            return False
        if pid == app:
            return True
        fields = _stat_fields(pid, proc)
        if fields is None:  # gone before we read it: judged by its uid
            return uid == app_uid()
        app_fields = _stat_fields(app, proc)
        if app_fields is not None:
            _, app_pgid, app_sid = app_fields
            _, pgid, sid = fields
            # Only a group or session the app leads: otherwise it may be
            # initd's own, shared with hooks' parents and docker exec.
            if (app_pgid == app and pgid == app) or (app_sid == app and sid == app):
                return True
        current = fields[0]
        for _ in range(64):
            if current == app:
                return True
            if current <= 1:
                return False
            parent = _stat_fields(current, proc)
            if parent is None:
                return False
            current = parent[0]
        return False
    return is_ours


# --- the socket -----------------------------------------------------------

def _sockaddr(address):
    return "\0" + address[1:] if address.startswith("@") else address


class Receiver:
    """The datagram socket. on_event(event, value, now) gets each parsed
    event of each honoured datagram; is_ours(pid, uid) judges the sender.

    Plug into the loop: loop.watch(receiver.fd, receiver.on_ready).
    """

    def __init__(self, address, is_ours, on_event):
        self.address = address
        self.is_ours = is_ours
        self.on_event = on_event
        self.dropped = 0
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                             | socket.SOCK_NONBLOCK)
        try:
            # Before bind, so that no datagram arrives without credentials.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(_sockaddr(address))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.fd = sock.fileno()
        self._anc = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(MAX_FDS * 4)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if not self.address.startswith("@"):
                try:
                    os.unlink(self.address)
                except OSError:
                    pass

    def on_ready(self, fd, revents, now):
        for _ in range(MAX_PER_WAKE):
            try:
                data, ancdata, _flags, _addr = self.sock.recvmsg(MAX_DATAGRAM, self._anc)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning(f"notify socket: {e.strerror}")
                return
            self._handle(data, ancdata, now)

    def _handle(self, data, ancdata, now):
        pid, uid, fds = 0, None, []
        for level, kind, payload in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            if kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                pid, uid, _gid = _UCRED.unpack_from(payload)
            elif kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[:len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
        try:
            if uid is not None and self.is_ours(pid, uid):
                for event, value in parse(data):
                    # BARRIER=1 is answered by closing its fd, below.
                    if event != "barrier":
                        self.on_event(event, value, now)
            else:
                self.dropped += 1
                log.debug(f"notify: ignored a datagram from pid {pid} (not the app's)")
        finally:
            # We keep no fd (no FDSTORE); closing is also the answer to
            # BARRIER=1, which releases a waiting systemd-notify.
            for received in fds:
                try:
                    os.close(received)
                except OSError:
                    pass

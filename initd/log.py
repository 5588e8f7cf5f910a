"""One voice: every line initd writes goes to stderr as `initd: LEVEL message`.

Written with os.write on fd 2, not through sys.stderr, so nothing is buffered
and a line is never split or held back when PID 1 exits.

Logging must never kill or block PID 1 (issue 10.3): a stderr pipe nobody
reads would otherwise stop the loop in pipe_write(), so nothing is reaped and
no signal forwarded. So a line is written only when it can be written at
once, and dropped (and counted in `dropped`) when it cannot; the next line
that does get through says how many were lost. No error of the write
(EPIPE, EBADF, EFBIG, ENOSPC, EAGAIN) ever raises.

O_NONBLOCK is never set on fd 2 itself: the flag lives on the open file
description, which the app shares (it inherited our stderr), and an app
whose write(2) suddenly fails with EAGAIN breaks; toggling it around each
write races with the app's own writes. Instead:
- a pipe or FIFO (docker's usual stderr) or a terminal is reopened through
  /proc/self/fd/2: a description of our own on the same pipe, with
  O_NONBLOCK on it alone. A write of at most PIPE_BUF bytes to a
  non-blocking pipe is all or nothing (pipe(7)), so a line is never torn;
- anything else (a regular file, a socket, /dev/null, or no /proc) is fd 2
  itself, and poll(2) with a timeout of 0 comes before each write (before
  every write on every path, in fact: see _writable): POLLOUT on a pipe means at
  least one free page, and our lines are shorter than one, so the write
  that follows does not block (only another writer filling the pipe in
  between could make it; that is the fallback's residual risk).
"""
import os

ERROR, WARNING, INFO, DEBUG = 0, 1, 2, 3
_NAMES = ("ERROR", "WARNING", "INFO", "DEBUG")

# Set once by cli from --verbose; WARNING and ERROR are always shown.
level = WARNING

# PIPE_BUF (pipe(7)): writes up to this size are atomic; a longer line is cut
# to fit, so every line is one write that either happens whole or not at all.
MAX_LINE = 4096

dropped = 0     # lines that could not be written, since start
_reported = 0   # how many of them a later line has already owned up to

_fd = None      # where lines go: 2, or our own non-blocking description of it
_poll = None    # a select.poll on _fd


def _line(lvl, message):
    data = f"initd: {_NAMES[lvl]} {message}".encode(errors="replace")
    if len(data) >= MAX_LINE:
        # Cut on a character boundary, and say so.
        data = data[:MAX_LINE - 5].decode(errors="ignore").encode() + b" ..."
    return data + b"\n"


def _target():
    """Decided on the first line (most runs never log, and start-up must stay
    fast): our own non-blocking description of fd 2 when fd 2 is a pipe or a
    terminal, else fd 2 with a poll(0) before each write."""
    global _fd, _poll
    fd = 2
    try:
        import stat
        mode = os.fstat(2).st_mode
        if stat.S_ISFIFO(mode) or os.isatty(2):
            # O_NOCTTY: a terminal reopened by a session leader without one
            # would otherwise become its controlling terminal.
            fd = os.open("/proc/self/fd/2",
                         os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            if fd < 3:
                # Never one of the standard numbers (they were closed when
                # we started): move it up and give the number back.
                high = _dup_high(fd)
                os.close(fd)
                fd = high
    except OSError:
        # No /proc, a pipe with no reader left (ENXIO), fd 2 closed (EBADF):
        # fd 2 itself, guarded by poll.
        fd = 2
    _fd = fd
    import select
    _poll = select.poll()
    _poll.register(fd, select.POLLOUT)
    return fd


def _dup_high(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _writable():
    """Whether _fd takes a line now: POLLOUT and no error or invalid
    descriptor. Asked on every path, not only the fallback: a pipe whose
    reader is gone polls POLLERR, and not writing to it at all spares PID 1
    the SIGPIPE that write(2) would raise (EPIPE sends it to the writer,
    and a blocked SIGPIPE waits in the queue for the loop to take)."""
    import select
    try:
        events = _poll.poll(0)
    except OSError:
        return False
    return any(ev & select.POLLOUT and not ev & (select.POLLERR | select.POLLNVAL)
               for _, ev in events)


def _send(data):
    """Write data whole, or not at all: True if written."""
    fd = _fd if _fd is not None else _target()
    if not _writable():
        return False
    try:
        return os.write(fd, data) > 0
    except OSError:
        # EAGAIN (pipe full), EPIPE (no reader), EBADF (closed), EFBIG
        # (RLIMIT_FSIZE: SIGXFSZ is ignored, so the write fails instead),
        # ENOSPC, EIO: PID 1 carries on regardless.
        return False


def _write(lvl, message):
    global dropped, _reported
    if lvl > level:
        return
    data = _line(lvl, message)
    missed = dropped - _reported
    if missed:
        # One write for both, so the count cannot be lost on its own.
        note = _line(WARNING, f"{missed} earlier log line{'s' if missed != 1 else ''} "
                              "dropped: stderr was not writable")
        if len(note) + len(data) <= MAX_LINE:
            data = note + data
        elif _send(note):
            _reported += missed
            missed = 0
    if _send(data):
        _reported += missed
    else:
        dropped += 1


def wants(lvl):
    """Whether lines of this level are shown: check before building a costly one."""
    return lvl <= level


def error(message):
    _write(ERROR, message)


def warning(message):
    _write(WARNING, message)


def info(message):
    _write(INFO, message)


def debug(message):
    _write(DEBUG, message)

"""signalfd(2): blocked signals read from a descriptor, so the loop can wait
for signals and sockets in one poll(). The stdlib has no signalfd: initd
ships a tiny C extension for it (shim/sigfd_module.c) and falls back to
libc's through ctypes (about 1.5 ms to import, once) where that is missing.

The signals must stay blocked (cli blocks them first thing); signalfd then
dequeues them as sigwaitinfo would. Standard signals coalesce while pending,
as the kernel defines; real-time ones queue.
"""
import os
import sys

SFD_NONBLOCK = os.O_NONBLOCK
SFD_CLOEXEC = os.O_CLOEXEC
INFO_SIZE = 128          # struct signalfd_siginfo
READ_AT_ONCE = 16        # signals per read(); more pending wake poll again at once


def open_signalfd(signums):
    """A non-blocking, close-on-exec signalfd for these signals: through
    initd's small C extension (built with the package), else ctypes."""
    try:
        from initd import native
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "_sigfd.so")
        return native.load("_sigfd", path).open_signalfd(sorted(signums))
    except (ImportError, OSError, AttributeError):
        pass  # not built, or for another interpreter: the ctypes way
    return _open_with_ctypes(signums)


def _open_with_ctypes(signums):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mask = 0
    for signum in signums:
        mask |= 1 << (signum - 1)
    sigset = ctypes.create_string_buffer(mask.to_bytes(128, sys.byteorder), 128)  # sigset_t
    fd = libc.signalfd(-1, sigset, SFD_NONBLOCK | SFD_CLOEXEC)
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"signalfd: {os.strerror(errno)}")
    return fd


# Read into one buffer allocated at start: a fresh 8 KiB bytes object per
# wake (os.read) cost a cold PID 1 about 10 µs before the first delivery.
_BUFFER = bytearray(INFO_SIZE * READ_AT_ONCE)
_WORDS = memoryview(_BUFFER).cast("I")


# As native uint32s: ssi_signo is the first, ssi_pid the fourth of each
# 128-byte record (signalfd(2)), STRIDE words apart.
WORDS = _WORDS
STRIDE = INFO_SIZE // 4


def read_words(fd):
    """Reads what is pending into WORDS; how many words were filled (0: none).
    The loop walks WORDS itself, so no list or tuple is made per signal."""
    try:
        return os.readv(fd, (_BUFFER,)) // 4
    except (BlockingIOError, InterruptedError):
        return 0


def read_signals(fd):
    """[(signum, sender pid), ...] pending now; [] when none."""
    n = read_words(fd)
    words = _WORDS
    return [(words[i], words[i + 3]) for i in range(0, n, STRIDE)]

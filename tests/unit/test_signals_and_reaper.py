import os
import signal

import pytest

from initd import reaper, signals


@pytest.mark.parametrize("text, expected", [
    ("TERM", signal.SIGTERM), ("SIGTERM", signal.SIGTERM), ("term", signal.SIGTERM),
    ("15", 15), ("RTMIN+2", signal.SIGRTMIN + 2), ("SIGRTMAX", signal.SIGRTMAX),
])
def test_parse(text, expected):
    assert signals.parse(text) == expected


def test_parse_drop_only_where_allowed():
    assert signals.parse("none", allow_drop=True) == signals.parse("0", allow_drop=True) == 0
    with pytest.raises(ValueError):
        signals.parse("0")


def test_unknown_signal_suggests():
    with pytest.raises(ValueError, match=r'unknown signal "QUITE" \(try QUIT\)'):
        signals.parse("QUITE")


def test_forwardable_excludes_kill_stop_chld_and_faults():
    for s in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGSEGV, signal.SIGABRT):
        assert s not in signals.FORWARDABLE
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH, signal.SIGTSTP, signal.SIGRTMIN):
        assert s in signals.FORWARDABLE


def test_map_entry():
    assert signals.parse_map_entry("TERM:QUIT") == (signal.SIGTERM, signal.SIGQUIT)
    assert signals.parse_map_entry("usr1:0") == (signal.SIGUSR1, 0)
    for bad in ("TERM", "TERM:", ":QUIT", "KILL:TERM"):
        with pytest.raises(ValueError):
            signals.parse_map_entry(bad)


@pytest.mark.parametrize("code", range(256))
def test_exit_code_of_exit(code):
    assert reaper.exit_code(code << 8) == code


@pytest.mark.parametrize("sig", [1, 9, 11, 15, 31])
def test_exit_code_of_signal_death_is_128_plus_n(sig):
    assert reaper.exit_code(sig) == 128 + sig          # WTERMSIG
    assert reaper.exit_code(sig | 0x80) == 128 + sig   # with a core dump


def test_reap_all_reports_every_exited_child():
    watched = os.fork()
    if watched == 0:
        os._exit(7)
    other = os.fork()
    if other == 0:
        os._exit(0)
    # Wait until both are zombies without reaping them.
    os.waitid(os.P_PID, watched, os.WEXITED | os.WNOWAIT)
    os.waitid(os.P_PID, other, os.WEXITED | os.WNOWAIT)
    assert sorted(reaper.reap_all()) == sorted([(watched, 7), (other, 0)])
    assert reaper.reap_all() == []


def test_is_child_does_not_consume_the_status():
    """Regression: the adoption check once used waitpid(app, WNOHANG), which
    collected an app that had exited a moment before, and its exit code was lost."""
    pid = os.fork()
    if pid == 0:
        os._exit(42)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert reaper.is_child(pid) and reaper.is_child(pid)
    assert reaper.reap_all() == [(pid, 42)]
    assert not reaper.is_child(pid) and not reaper.is_child(1)


def test_signalfd_through_the_extension_and_through_ctypes_agree():
    """The C extension (built with the package) and the ctypes fallback open
    the same kind of descriptor: a pending blocked signal reads back."""
    import signal as pysignal
    from initd import native, sigfd
    path = os.path.join(os.path.dirname(sigfd.__file__), "_bin", "_sigfd.so")
    assert os.path.exists(path), "the package build makes it"
    old = pysignal.pthread_sigmask(pysignal.SIG_BLOCK, {pysignal.SIGUSR2})
    try:
        for fd in (native.load("_sigfd", path).open_signalfd([pysignal.SIGUSR2]),
                   sigfd._open_with_ctypes([pysignal.SIGUSR2])):
            try:
                os.kill(os.getpid(), pysignal.SIGUSR2)
                assert sigfd.read_signals(fd) == [(pysignal.SIGUSR2, os.getpid())]
                assert sigfd.read_signals(fd) == []
            finally:
                os.close(fd)
    finally:
        pysignal.pthread_sigmask(pysignal.SIG_SETMASK, old)

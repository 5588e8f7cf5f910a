"""Issue 10.3, initd/log.py alone: logging never blocks or kills PID 1 and
never raises, whatever stderr is. Each case runs log in a fresh Python
(stderr must be set up before log's first line), bounded by a timeout."""
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO, PY


def run_log(code, timeout=10, prefix=()):
    """Run code (with `from initd import log` done) in a fresh Python: its
    stdout, after asserting it exited 0."""
    script = "import os, sys, signal\nsys.path.insert(0, %r)\nfrom initd import log\n" % REPO
    done = subprocess.run([*prefix, PY, "-c", script + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


FULL_PIPE = """
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)  # as the app shares it: blocking
    os.dup2(w, 2)
"""


def test_full_pipe_drops_and_counts_without_blocking():
    out = run_log(FULL_PIPE + """
    import time
    start = time.monotonic()
    for i in range(1000):
        log.warning(f"line {i}")
    print(log.dropped, round(time.monotonic() - start, 1) < 2)
    # The description the app shares is still blocking: we never touched it.
    print(os.get_blocking(2))
    os.set_blocking(r, False)
    try:
        while os.read(r, 65536):  # drain what the filler wrote
            pass
    except BlockingIOError:
        pass
    os.set_blocking(r, True)
    log.warning("after the drain")
    print(os.read(r, 65536).decode().replace("\\n", "|"))
    log.warning("and the next")
    print(os.read(r, 65536).decode().replace("\\n", "|"))
    """)
    dropped, blocking, first, second = out.splitlines()
    assert dropped == "1000 True" and blocking == "True"
    assert first == ("initd: WARNING 1000 earlier log lines dropped: stderr was not writable|"
                     "initd: WARNING after the drain|")
    assert second == "initd: WARNING and the next|"  # reported once


def test_closed_pipe_neither_raises_nor_kills_with_sigpipe_default():
    out = run_log("""
    r, w = os.pipe()
    os.dup2(w, 2)
    log.warning("reader still there")
    os.close(r)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a write with EPIPE would kill us
    for i in range(10):
        log.error("no reader")
    print(log.dropped)
    """)
    assert out.split() == ["10"]


def test_closed_stderr_never_raises():
    out = run_log("""
    os.close(2)
    log.error("nowhere to go")
    print(log.dropped)
    """)
    assert out.split() == ["1"]


def test_enospc_never_raises():
    out = run_log("""
    fd = os.open("/dev/full", os.O_WRONLY)
    os.dup2(fd, 2)
    log.error("disk full")
    print(log.dropped)
    """)
    assert out.split() == ["1"]


def test_efbig_under_ulimit_f_0_never_raises(tmp_path):
    # Python ignores SIGXFSZ, as initd must (the lead's part): then the
    # write fails with EFBIG instead of killing.
    out = run_log(f"""
    import resource
    fd = os.open({str(tmp_path / 'err')!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    log.error("file too large")
    print(log.dropped)
    """)
    assert out.split() == ["1"]
    assert (tmp_path / "err").read_bytes() == b""


def test_regular_file_appends_and_counts_nothing(tmp_path):
    path = tmp_path / "err"
    path.write_bytes(b"app line\n")
    run_log(f"""
    fd = os.open({str(path)!r}, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)
    log.warning("one")
    log.warning("two")
    assert log.dropped == 0
    """)
    assert path.read_bytes() == b"app line\ninitd: WARNING one\ninitd: WARNING two\n"


def test_long_line_is_cut_under_pipe_buf():
    out = run_log("""
    r, w = os.pipe()
    os.dup2(w, 2)
    log.warning("é" * 10000)
    data = os.read(r, 65536)
    print(len(data), data.endswith(b" ...\\n"), data.decode().count("\\n"))
    """)
    size, cut, lines = out.split()
    assert int(size) <= 4096 and cut == "True" and lines == "1"


def test_full_pipe_without_proc_falls_back_to_poll():
    # No /proc: fd 2 cannot be reopened; poll(0) before each write still
    # keeps a full pipe from blocking us.
    out = run_log("""
    import subprocess
    """ + FULL_PIPE + """
    import time
    start = time.monotonic()
    for i in range(100):
        log.warning("x")
    print(log.dropped, time.monotonic() - start < 2, log._fd)
    """, prefix=["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none /proc && exec "$@"', "sh"])
    assert out.split() == ["100", "True", "2"]

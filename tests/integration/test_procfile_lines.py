"""Compound Procfile lines, for real: the script procfile.plan_line makes is
run by dash and by bash, then by initd as PID 1 (today's main code path:
config.parse_command stores plan_line's argv as the role's argv).

The last command is tests/apps/printsig.py: it prints its pid, so "its pid is
the shell's pid" shows it replaced the shell, and it prints every signal it
gets, so "got SIGQUIT" shows the stop signal reached the app, not /bin/sh.
"""
import json
import os
import select
import shlex
import signal
import subprocess
import time

import pytest

from helpers import APPS, PY, Initd, _kill, sleep_until
from initd import procfile

SHELLS = ["/usr/bin/dash", "/usr/bin/bash"]
PRINTSIG = f"{shlex.quote(PY)} {shlex.quote(os.path.join(APPS, 'printsig.py'))}"


class Shell:
    """SHELL -c SCRIPT under us, its stdout read line by line, every read bounded."""

    def __init__(self, shell, script):
        self.proc = subprocess.Popen([shell, "-c", script], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE)
        self.buffer = b""

    def line(self, timeout=10.0):
        """The next line, or "" once stdout is closed."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"no line in {timeout}s: {self.buffer!r}")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode() + ("\n" if _ else "")

    def ready(self):
        """(pid, ppid) the last command printed."""
        line = self.line()
        assert line.startswith("ready "), line
        fields = dict(w.split("=") for w in line.split()[1:])
        return int(fields["pid"]), int(fields["ppid"])

    def stop(self):
        _kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def shells():
    started = []

    def start(shell, script):
        s = Shell(shell, script)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def script(line):
    argv, receiver = procfile.plan_line(line)
    assert receiver is None and argv[:2] == ("/bin/sh", "-c")
    return argv[2]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("line", [
    f"true && {PRINTSIG} --exit-on TERM:7",
    f"false; {PRINTSIG} --exit-on TERM:7",
    f"cd / && X=1 true && GREETING='a b' {PRINTSIG} --exit-on TERM:7",
    f"true; true && {PRINTSIG} --exit-on TERM:7 # && not this",
])
def test_the_last_command_replaces_the_shell_and_gets_the_signal(shells, shell, line):
    s = shells(shell, script(line))
    pid, _ = s.ready()
    assert pid == s.proc.pid  # the app replaced the shell: no /bin/sh left to catch TERM
    os.kill(s.proc.pid, signal.SIGTERM)
    assert s.line() == "got SIGTERM\n"
    assert s.proc.wait(timeout=10) == 7  # its exit code, passed through


@pytest.mark.parametrize("shell", SHELLS)
def test_a_signal_death_of_the_last_command_is_the_shell_s(shells, shell):
    s = shells(shell, script(f"true && {PRINTSIG}"))
    assert s.ready()[0] == s.proc.pid
    os.kill(s.proc.pid, signal.SIGKILL)
    assert s.proc.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.parametrize("shell", SHELLS)
def test_a_failing_first_step_stops_before_the_app(shells, shell, tmp_path):
    marker = tmp_path / "started"
    s = shells(shell, script(f"false && touch {marker} && {PRINTSIG}"))
    assert s.proc.wait(timeout=10) == 1
    assert s.line() == "" and not marker.exists()


def test_as_written_dash_keeps_itself_between_and_the_app_misses_the_signal(shells):
    """Why the rewrite exists: the line as written leaves dash as the app's
    parent; TERM kills dash (143) and the app never hears it."""
    s = shells("/usr/bin/dash", f"true && {PRINTSIG}")
    pid, ppid = s.ready()
    assert (pid != s.proc.pid, ppid) == (True, s.proc.pid)
    try:
        os.kill(s.proc.pid, signal.SIGTERM)
        assert s.proc.wait(timeout=10) == -signal.SIGTERM
        assert os.path.exists(f"/proc/{pid}")  # the app still runs, told nothing
    finally:
        _kill(pid, signal.SIGKILL)


# -- initd itself, as PID 1 ------------------------------------------------------------

def roles(tmp_path, entries):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(entries))
    return str(path)


@pytest.fixture
def initd():
    started = []

    def start(args):
        proc = Initd(args, mode="pid1")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.mark.parametrize("line", [
    f"true && {PRINTSIG} --exit-on QUIT:0",
    f"cd / && RAILS_ENV=production {PRINTSIG} --exit-on QUIT:0",
    f"false; {PRINTSIG} --exit-on QUIT:0",
])
def test_initd_delivers_the_stop_signal_to_the_last_command(initd, tmp_path, line):
    """The issue's Unicorn case: docker stop's TERM, translated to QUIT,
    reaches the app at PID 3 (parent: the shim at PID 2), not /bin/sh."""
    run = initd(["--roles", roles(tmp_path, {"web": {"command": line, "signals": {"TERM": "QUIT"}}}),
                 "--role", "web"])
    assert run.expect("ready ") == "ready pid=3 ppid=2"
    run.kill(signal.SIGTERM)
    assert run.expect("got ") == "got SIGQUIT"
    assert run.wait() == 0


def test_initd_passes_on_the_last_command_s_signal_death(initd, tmp_path):
    run = initd(["--roles", roles(tmp_path, {"web": f"true && {PRINTSIG}"}), "--role", "web"])
    run.expect("ready pid=3 ppid=2")
    app = sleep_until(lambda: [p for p in run.descendants() if _is_printsig(p)])
    assert len(app) == 1  # no shell running printsig.py around it
    os.kill(app[0], signal.SIGKILL)
    assert run.wait() == 128 + signal.SIGKILL


def test_initd_false_and_app_exits_1_without_the_app(initd, tmp_path):
    run = initd(["--roles", roles(tmp_path, {"web": f"false && {PRINTSIG}"}), "--role", "web"])
    assert run.wait() == 1
    assert run.drain("out") == []


def test_initd_still_runs_a_pipeline_as_written(initd, tmp_path):
    """Not rewritten: the shell (PID 3) stays the parent, as before."""
    run = initd(["--roles", roles(tmp_path, {"web": f"true | {PRINTSIG}"}), "--role", "web"])
    line = run.expect("ready ")
    assert line.endswith("ppid=3") and line != "ready pid=3 ppid=2"


def _is_printsig(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[1:2] == [os.path.join(APPS, "printsig.py").encode()]
    except OSError:
        return False

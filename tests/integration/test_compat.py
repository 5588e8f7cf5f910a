"""initd as tini and as dumb-init, side by side with the real programs.

Each behaviour test runs the real tini or dumb-init (when installed) and initd
under that name (INITD_AS, or a real symlink in the install-compat tests), as
PID 1 of fresh namespaces and as a plain process outside one, and checks the
same observable result: exit codes, which processes get which signal, the
session and terminal the app gets, job control. Where initd deliberately
differs, the test says so and checks initd's behaviour alone. initd's own
long options for the same features run through the same tests.
"""
import os
import pty
import select
import shutil
import signal
import subprocess
import time

import pytest

from helpers import APPS, MODES, PY, REPO, Watched, _descendants, _kill, children, sleep_until

APP = os.path.join(APPS, "compat_app.py")
JOBSHELL = os.path.join(APPS, "jobshell.py")
REAL = {"tini": shutil.which("tini"), "dumb-init": shutil.which("dumb-init")}
BOTH_MODES = ["pid1", "subreaper"]
# Variables of any of the three programs must come from the test alone.
OWN_VARIABLES = ("INITD_", "TINI_", "DUMB_INIT_", "POSIXLY_CORRECT")


def app(*args):
    return [PY, APP, *args]


def way(who, impl, args=(), env=None):
    """One way of asking for a behaviour: WHO's command line (tini,
    dumb-init, or initd's own) run by the real program or by initd."""
    return (who, impl, list(args), dict(env or {}))


def both(who, args=(), env=None):
    """The real program and initd under its name, asked the same way."""
    return [way(who, "real", args, env), way(who, "initd", args, env)]


def cases(rows):
    """Parametrize rows whose first item is a way: skipped when it needs a
    real program that is not installed, named after it."""
    result = []
    for row in rows:
        row = row if isinstance(row, tuple) and isinstance(row[0], tuple) else (row,)
        who, impl, args, env = row[0]
        name = f"{impl}-{who}:{' '.join(args)}" + "".join(f" {k}={v}" for k, v in env.items())
        rest = "-".join(str(x) for x in row[1:])
        marks = [pytest.mark.skipif(impl == "real" and not REAL.get(who),
                                    reason=f"{who} is not installed")]
        result.append(pytest.param(*row, marks=marks, id=f"{name}-{rest}" if rest else name))
    return result


def command(how, tail):
    """argv and environment for one run."""
    who, impl, args, extra = how
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env["PYTHONPATH"] = REPO
    env.update(extra)
    if impl == "real":
        return [REAL[who], *args, *tail], env
    env["INITD_AS"] = who
    return [PY, "-m", "initd", *args, *tail], env


class Run(Watched):
    """One init under test (the real program or initd under its name)."""

    def __init__(self, how, tail, mode="subreaper", prefix=None):
        argv, env = command(how, tail)
        super().__init__(argv, env, mode, prefix=prefix)

    def app_pid(self):
        """The app's pid as we see it: the descendant running compat_app.py
        whose parent does not (the kid's parent does)."""
        def find():
            tree = self.descendants()
            apps = [p for p in tree if _is_app(p) and not _is_app(_ppid(p))]
            return apps[0] if apps else None
        return sleep_until(find)

def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_app(pid):
    """Runs compat_app.py (itself, not an init with it on its command line)."""
    return _cmdline(pid).split(" ")[1:2] == [APP]


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _fields(line):
    """"app ready pid=3 ppid=2 ..." -> {"pid": "3", ...}"""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


@pytest.fixture
def start():
    runs = []

    def run(how, tail, mode="subreaper", prefix=None):
        r = Run(how, tail, mode, prefix)
        runs.append(r)
        return r

    yield run
    for r in runs:
        r.stop()


def finish(how, tail, mode="subreaper", timeout=20):
    """Run to the end: (exit code, stdout, stderr)."""
    argv, env = command(how, tail)
    proc = subprocess.run(MODES[mode] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)
    return proc.returncode, proc.stdout, proc.stderr


# -- exit codes ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, script, expected", cases([
    *[(h, "exit 3", 0) for h in both("tini", ["-s", "-e", "3", "--"])],
    *[(h, "exit 4", 0) for h in both("tini", ["-s", "-e", "3", "-e4", "--"])],
    *[(h, "exit 5", 5) for h in both("tini", ["-s", "-e", "3", "--"])],
    *[(h, "kill -TERM $$", 0) for h in both("tini", ["-s", "-e", "143", "--"])],
    *[(h, "kill -TERM $$", 143) for h in both("tini", ["-s", "--"])],
    (way("initd", "initd", ["--exit-zero", "3", "--"]), "exit 3", 0),
    (way("initd", "initd", ["--"], {"INITD_EXIT_ZERO": "4 3"}), "exit 3", 0),
    (way("initd", "initd", ["--exit-zero", "3", "--"]), "exit 2", 2),
    *[(h, "exit 3", 3) for h in both("dumb-init", ["--"])],
    *[(h, "kill -TERM $$", 143) for h in both("dumb-init", ["--"])],
]))
def test_exit_code_and_its_remapping(how, script, expected, mode):
    code, out, err = finish(how, ["sh", "-c", script], mode)
    assert code == expected, err


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, expected", cases([
    *[(h, 0) for h in both("tini", ["-s", "-e", "143", "--"])],
    *[(h, 143) for h in both("tini", ["-s", "--"])],
    (way("initd", "initd", ["--exit-zero", "143", "--"]), 0),
]))
def test_exit_zero_for_a_term_death(start, how, expected, mode):
    """`tini -e 143`: the app killed by the SIGTERM it was passed reports 0."""
    run = start(how, app(), mode)
    run.expect("app ready")
    run.kill(signal.SIGTERM)
    run.expect("app got SIGTERM")
    assert run.wait() == expected


@pytest.mark.parametrize("who, target, expected", [
    ("tini", "/nonexistent/app", 127), ("tini", "/etc/passwd", 126),
    ("dumb-init", "/nonexistent/app", 2), ("dumb-init", "/etc/passwd", 2),
])
@pytest.mark.parametrize("impl", ["real", "initd"])
def test_exec_failure(who, impl, target, expected):
    if impl == "real" and not REAL[who]:
        pytest.skip(f"{who} is not installed")
    code, _, err = finish((who, impl, ["-s"] if who == "tini" else [], {}), [target])
    assert code == expected
    assert target in err


@pytest.mark.parametrize("how, argv, code, stream, text", cases([
    *[(h, ["-h"], 0, "out", "Usage: tini") for h in both("tini")],
    *[(h, ["--version"], 0, "out", "tini version 0.19.0") for h in both("tini")],
    *[(h, ["-l"], 0, "out", "MIT License") for h in both("tini")],
    *[(h, [], 1, "err", "tini") for h in both("tini")],
    *[(h, ["-x", "true"], 1, "err", "invalid option") for h in both("tini")],
    *[(h, ["-e", "300", "true"], 1, "err", "300") for h in both("tini")],
    *[(h, ["-p", "KILL", "true"], 1, "err", "KILL") for h in both("tini")],
    *[(h, ["--help"], 0, "err", "[option] command [[arg] ...]") for h in both("dumb-init")],
    *[(h, ["-V"], 0, "err", "dumb-init v1.2.5") for h in both("dumb-init")],
    *[(h, [], 1, "err", "dumb-init") for h in both("dumb-init")],
    *[(h, ["--nope", "true"], 1, "err", "unrecognized option '--nope'") for h in both("dumb-init")],
    *[(h, ["-r", "99:1", "true"], 1, "err", "-r") for h in both("dumb-init")],
]))
def test_help_version_and_bad_command_lines(how, argv, code, stream, text):
    result = finish(how, argv)
    assert result[0] == code
    assert text in (result[1] if stream == "out" else result[2])


@pytest.mark.parametrize("how", cases(both("tini", ["-s"])))
def test_tini_double_dash_after_the_program(how):
    """tini's documented form `tini PROGRAM -- ARGS`: the -- is not passed on."""
    assert finish(how, ["sh", "--", "-c", "exit 7"])[0] == 7


# -- which processes get the signal ----------------------------------------------------

GROUP_WAYS = [
    *[(h, True) for h in both("tini", ["-s", "-g", "--"])],
    *[(h, True) for h in both("tini", ["-s", "--"], {"TINI_KILL_PROCESS_GROUP": ""})],
    *[(h, False) for h in both("tini", ["-s", "--"])],
    *[(h, True) for h in both("dumb-init", ["--"])],
    *[(h, False) for h in both("dumb-init", ["-c", "--"])],
    *[(h, False) for h in both("dumb-init", ["--"], {"DUMB_INIT_SETSID": "0"})],
    (way("initd", "initd", ["--process-group", "--"]), True),
    (way("initd", "initd", ["--process-group", "--single-child", "--"]), False),
]


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, group", cases(GROUP_WAYS))
def test_signals_reach_the_group_or_the_app_alone(start, how, group, mode):
    run = start(how, app("--kid"), mode)
    run.expect("kid ready")
    run.expect("app ready")
    run.kill(signal.SIGUSR1)
    run.expect("app got SIGUSR1")
    if group:
        run.expect("kid got SIGUSR1")
    else:
        # USR2 straight to the kid: had USR1 reached it, that line would come
        # first (pending signals are delivered lowest number first).
        kid = sleep_until(lambda: [p for p in run.descendants()
                                   if _is_app(p) and _is_app(_ppid(p))])[0]
        os.kill(kid, signal.SIGUSR2)
        assert run.expect("kid got") == "kid got SIGUSR2"


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, received, delivered", cases([
    *[(h, signal.SIGUSR1, "SIGUSR2") for h in both("dumb-init", ["-r", "10:12", "--"])],
    *[(h, signal.SIGUSR1, "SIGUSR2") for h in both("dumb-init", ["--rewrite=10:12", "--"])],
    *[(h, signal.SIGUSR1, None) for h in both("dumb-init", ["-r", "10:0", "--"])],
    *[(h, signal.SIGTERM, "SIGQUIT") for h in both("dumb-init", ["-c", "-r", "15:3", "--"])],
]))
def test_dumb_init_rewrite(start, how, received, delivered, mode):
    run = start(how, app(), mode)
    run.expect("app ready")
    run.kill(received)
    if delivered:
        assert run.expect("app got") == f"app got {delivered}"
    else:
        run.kill(signal.SIGHUP)  # dropped: the next line is the HUP
        assert run.expect("app got") == "app got SIGHUP"


# -- sessions -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, own_session, own_group", cases([
    *[(h, True, True) for h in both("dumb-init", ["--"])],
    *[(h, False, True) for h in both("tini", ["-s", "--"])],
    # Deliberate difference: under dumb-init -c the app stays in dumb-init's
    # process group; initd gives it one of its own, as tini does.
    (way("dumb-init", "real", ["-c", "--"]), False, False),
    (way("dumb-init", "initd", ["-c", "--"]), False, True),
    (way("dumb-init", "real", ["--"], {"DUMB_INIT_SETSID": "0"}), False, False),
    (way("dumb-init", "initd", ["--"], {"DUMB_INIT_SETSID": "0"}), False, True),
    (way("initd", "initd", ["--setsid", "--"]), True, True),
    (way("initd", "initd", ["--"], {"INITD_SETSID": "1"}), True, True),
    (way("initd", "initd", ["--"]), False, True),
]))
def test_app_session(start, how, own_session, own_group, mode):
    """dumb-init's default: the app leads a session (and so a group) of its own."""
    run = start(how, app(), mode)
    fields = _fields(run.expect("app ready"))
    assert (fields["sid"] == fields["pid"]) is own_session
    assert (fields["pgid"] == fields["pid"]) is own_group


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("who", ["tini", "dumb-init"])
def test_process_tree_is_theirs(start, who, mode):
    """Under their names initd keeps their tree exactly (issue 11.1): the app
    is the init's own child, no ppidshim between them."""
    run = start((who, "initd", ["-s"] if who == "tini" else [], {}), app(), mode)
    run.expect("app ready")
    assert children(run.pid) == [run.app_pid()]
    assert not _cmdline(run.app_pid()).startswith("ppidshim:")


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("who", ["tini", "dumb-init"])
def test_initd_shim_asks_for_the_ppidshim(start, who, mode):
    """INITD_SHIM=1: initd -> ppidshim -> app under their names too; the
    app's parent is never PID 1."""
    run = start((who, "initd", ["-s"] if who == "tini" else [], {"INITD_SHIM": "1"}), app(), mode)
    fields = _fields(run.expect("app ready"))
    assert fields["ppid"] != "1"
    shim = sleep_until(lambda: children(run.pid))[0]
    assert _cmdline(shim).startswith("ppidshim:")
    assert children(shim) == [run.app_pid()]
    if who == "dumb-init":
        assert os.getpgid(shim) == shim  # out of initd's group: tty signals reach initd once


# -- orphans ------------------------------------------------------------------------------

@pytest.mark.parametrize("how, adopts, warns", cases([
    *[(h, True, False) for h in both("tini", ["-s", "--"])],
    *[(h, True, False) for h in both("tini", ["--"], {"TINI_SUBREAPER": ""})],
    *[(h, False, True) for h in both("tini", ["--"])],
    *[(h, False, False) for h in both("tini", ["--"], {"TINI_VERBOSITY": "0"})],
    (way("initd", "initd", ["--"]), True, False),
    (way("initd", "initd", ["--subreaper", "--"]), True, False),
    (way("initd", "initd", ["--no-subreaper", "--"]), False, False),
    (way("initd", "initd", ["--"], {"INITD_SUBREAPER": "0"}), False, False),
    (way("dumb-init", "initd", ["--"]), True, False),
]))
def test_subreaper_outside_a_namespace(start, how, adopts, warns):
    run = start(how, app("--orphan"), "subreaper")
    orphan = _fields(run.expect("orphan pid="))
    assert (int(orphan["ppid"]) == run.pid) is adopts
    run.expect("app ready")
    run.kill(signal.SIGTERM)
    run.wait()
    warning = [line for line in run.drain("err") if "subreaper" in line]
    assert bool(warning) is warns
    if warns:  # and says how to fix it
        assert "TINI_SUBREAPER" in " ".join(run.seen["err"])


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, warns", cases([
    *[(h, True) for h in both("tini", ["-s", "-w", "--"])],
    *[(h, False) for h in both("tini", ["-s", "--"])],
    (way("initd", "initd", ["--warn-on-reap", "--"]), True),
    (way("initd", "initd", ["--"], {"INITD_WARN_ON_REAP": "1"}), True),
    (way("initd", "initd", ["--"]), False),
]))
def test_warn_on_reap(start, how, warns, mode):
    run = start(how, app("--orphan"), mode)
    orphan = _fields(run.expect("orphan pid="))["pid"]
    if warns:
        line = run.expect(f"pid={orphan}", "err")
        assert "reaped zombie process" in line.lower()
    run.expect("app ready")
    run.kill(signal.SIGTERM)
    run.wait()
    assert any(f"zombie process with pid={orphan}" in line.lower()
               for line in run.drain("err")) is warns


# -- parent death --------------------------------------------------------------------------

PARENT = {
    # The init's parent, killed by the test: unshare as PID 1's parent
    # (without --kill-child, which would set a parent-death signal itself),
    # or a shell outside a namespace.
    "pid1": ["unshare", "--pid", "--fork", "--mount-proc"],
    "subreaper": ["sh", "-c", '"$@" & wait', "sh"],
}


@pytest.mark.parametrize("mode", BOTH_MODES)
@pytest.mark.parametrize("how, signalled", cases([
    *[(h, True) for h in both("tini", ["-s", "-p", "SIGTERM", "--"])],
    *[(h, False) for h in both("tini", ["-s", "--"])],
    (way("initd", "initd", ["--parent-death-signal", "TERM", "--"]), True),
    (way("initd", "initd", ["--"], {"INITD_PARENT_DEATH_SIGNAL": "SIGTERM"}), True),
    (way("initd", "initd", ["--"]), False),
]))
def test_parent_death_signal(start, how, signalled, mode):
    run = start(how, app(), mode, prefix=PARENT[mode])
    run.expect("app ready")
    run.descendants()  # remembered for the cleanup: the init outlives its parent
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=10)
    if signalled:
        run.expect("app got SIGTERM")
        sleep_until(lambda: not os.path.exists(f"/proc/{run.pid}") or _state(run.pid) == "Z")
    else:
        run.kill(signal.SIGUSR1)  # the next line: no SIGTERM came first
        assert run.expect("app got") == "app got SIGUSR1"


# -- verbosity --------------------------------------------------------------------------------

@pytest.mark.parametrize("how, quiet", cases([
    *[(h, True) for h in both("dumb-init", ["--"])],
    *[(h, False) for h in both("dumb-init", ["-v", "--"])],
    *[(h, False) for h in both("dumb-init", ["--"], {"DUMB_INIT_DEBUG": "1"})],
    *[(h, True) for h in both("tini", ["-s", "--"])],
    *[(h, True) for h in both("tini", ["--"], {"TINI_VERBOSITY": "0"})],
]))
def test_quiet_unless_asked(how, quiet):
    code, out, err = finish(how, ["sh", "-c", "exit 0"])
    assert code == 0
    assert (err == "") is quiet, err


@pytest.mark.parametrize("args, env, levels", [
    (["-v"], {}, {"INFO"}), (["-vv"], {}, {"INFO", "DEBUG"}),
    (["-vvv"], {"TINI_VERBOSITY": "2"}, {"INFO"}),  # the variable replaces the count
])
def test_tini_verbosity_levels(start, args, env, levels):
    """Deliberate difference: every line on stderr as `initd: LEVEL` (tini
    prints INFO and DEBUG on stdout, as `[INFO  tini (pid)]`)."""
    run = start(("tini", "initd", ["-s", *args, "--"], env), app("--orphan"))
    run.expect("orphan pid=")
    run.expect("app ready")
    time.sleep(0.3)  # the orphan exits and is reaped: a DEBUG line
    run.kill(signal.SIGTERM)
    assert run.wait() == 143
    shown = {line.split()[1] for line in run.drain("err") if line.startswith("initd: ")}
    assert shown == levels
    assert not [line for line in run.drain("out") if "initd" in line]


# -- job control ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", cases([
    *both("dumb-init", ["--"]),
    *both("dumb-init", ["-c", "--"]),
    way("initd", "initd", ["--setsid", "--process-group", "--job-control", "--"]),
    way("initd", "initd", ["--"], {"INITD_JOB_CONTROL": "1", "INITD_SETSID": "1"}),
]))
def test_job_control_signals_suspend_init_and_app(start, how):
    """dumb-init: TSTP is passed on (as STOP to a setsid app, whose orphaned
    group would ignore TSTP) and then the init stops itself; SIGCONT
    continues it and is passed on. Outside a namespace: PID 1 cannot stop."""
    run = start(how, app(), "subreaper")
    app_pid = int(_fields(run.expect("app ready"))["pid"])
    run.kill(signal.SIGTSTP)
    sleep_until(lambda: _state(run.pid) == "T" and _state(app_pid) == "T")
    run.kill(signal.SIGCONT)
    run.expect("app got SIGCONT")
    sleep_until(lambda: _state(run.pid) != "T" and _state(app_pid) != "T")


@pytest.mark.parametrize("how", cases([
    way("tini", "initd", ["-s", "--"]),
    way("initd", "initd", ["--setsid", "--"]),
]))
def test_no_job_control_no_suspension(start, how):
    run = start(how, app(), "subreaper")
    app_pid = int(_fields(run.expect("app ready"))["pid"])
    run.kill(signal.SIGTSTP)
    sleep_until(lambda: _state(app_pid) == "T")  # passed on (as STOP under --setsid)
    time.sleep(0.2)
    assert _state(run.pid) != "T"
    run.kill(signal.SIGCONT)
    run.expect("app got SIGCONT")


class Terminal:
    """A program on a pseudo-terminal, as its session leader."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: nothing of pytest's may run here
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buffer = b""
        self.lines = []

    def expect(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            *complete, self.buffer = self.buffer.split(b"\n")
            for raw in complete:
                # Without the terminal's echo of what the test typed.
                line = raw.decode(errors="replace").strip("\r").replace("^Z", "").replace("^C", "")
                self.lines.append(line)
            for i, line in enumerate(self.lines):
                if text in line:
                    del self.lines[i]  # the others stay for later expects
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} on the terminal in {timeout}s: {self.lines[-20:]}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: every process left the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {text!r}: {self.lines[-20:]}")
                self.buffer += chunk

    def type(self, data):
        os.write(self.fd, data)

    def close(self):
        tree = _descendants(self.pid)
        for pid in [self.pid, *tree]:
            _kill(pid, signal.SIGKILL)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


@pytest.fixture
def terminal():
    opened = []

    def open_(how, tail, shell=False):
        argv, env = command(how, tail)
        t = Terminal([PY, JOBSHELL, *argv] if shell else argv, env)
        opened.append(t)
        return t

    yield open_
    for t in opened:
        t.close()


@pytest.mark.parametrize("how", cases([
    *both("dumb-init", ["--"]),
    way("initd", "initd", ["--setsid", "--process-group", "--job-control", "--"]),
]))
def test_ctrl_z_in_a_shell_suspends_the_job_and_fg_resumes_it(terminal, how):
    """dumb-init run from an interactive shell: Ctrl-Z reaches the init (the
    app's session has no terminal), which stops the app and itself, so the
    shell sees its job stop; `fg` continues both; Ctrl-C reaches the app once."""
    term = terminal(how, app(), shell=True)
    app_pid = int(_fields(term.expect("app ready"))["pid"])
    term.type(b"\x1a")
    assert term.expect("shell:") == f"shell: stopped {int(signal.SIGSTOP)}"
    assert sleep_until(lambda: _state(app_pid) == "T", timeout=5)  # SIGSTOP lands asynchronously
    term.type(b"fg\n")
    term.expect("app got SIGCONT")
    assert term.expect("shell:") == "shell: continued"
    term.type(b"\x03")
    assert term.expect("app got") == "app got SIGINT"
    assert term.expect("shell:") == "shell: exited 130"


@pytest.mark.parametrize("how, own_session", cases([
    *[(h, True) for h in both("dumb-init", ["--"])],
    *[(h, False) for h in both("tini", ["-s", "--"])],
    (way("initd", "initd", ["--setsid", "--"]), True),
]))
def test_terminal_as_session_leader(terminal, how, own_session):
    """`docker run -it`: the init leads the terminal's session. dumb-init
    hands the terminal to the app's new session (TIOCNOTTY, setsid,
    TIOCSCTTY); tini makes the app's group the foreground. Either way Ctrl-C
    goes to the app, and the app sees no SIGHUP or SIGCONT from the hand-over."""
    term = terminal(how, app())
    fields = _fields(term.expect("app ready"))
    assert fields["tty"] == "yes"
    assert fields["fg"] == fields["pgid"]
    assert (fields["sid"] == fields["pid"]) is own_session
    term.type(b"\x03")
    assert term.expect("app got") == "app got SIGINT"  # nothing before it


# -- install-compat and the real symlinks ------------------------------------------------------

@pytest.fixture
def console_script(tmp_path):
    """A stand-in for pip's `initd` console script, on a PATH of its own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "initd"
    script.write_text(f"#!{PY}\nimport sys\nsys.path.insert(0, {REPO!r})\n"
                      "from initd.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def install(directory, path_dir, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env.update(PYTHONPATH=REPO, PATH=f"{path_dir}:/usr/bin:/bin")
    return subprocess.run([PY, "-m", "initd", "install-compat", str(directory), *extra],
                          capture_output=True, text=True, timeout=20, env=env, cwd=REPO)


def test_install_compat_links_dispatch_by_name(tmp_path, console_script):
    target = tmp_path / "sbin"
    target.mkdir()
    done = install(target, console_script.parent)
    assert done.returncode == 0, done.stderr
    for name in ("tini", "dumb-init"):
        link = target / name
        assert os.readlink(link) == str(console_script)
        assert f"{link} -> {console_script}" in done.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    # Only tini knows -e; only dumb-init exits 2 when exec fails.
    tini = subprocess.run([str(target / "tini"), "-s", "-e", "3", "--", "sh", "-c", "exit 3"],
                          capture_output=True, text=True, timeout=20, env=env)
    assert tini.returncode == 0, tini.stderr
    dumb = subprocess.run([str(target / "dumb-init"), "/nonexistent/app"],
                          capture_output=True, text=True, timeout=20, env=env)
    assert dumb.returncode == 2, dumb.stderr
    again = install(target, console_script.parent)
    assert again.returncode == 0 and again.stdout.count("already there") == 2


def test_install_compat_replaces_an_old_link(tmp_path, console_script):
    (tmp_path / "tini").symlink_to("/usr/bin/tini")
    done = install(tmp_path, console_script.parent)
    assert done.returncode == 0, done.stderr
    assert os.readlink(tmp_path / "tini") == str(console_script)
    assert "(was -> /usr/bin/tini)" in done.stdout


def test_install_compat_never_overwrites_a_file(tmp_path, console_script):
    (tmp_path / "dumb-init").write_text("the real one")
    done = install(tmp_path, console_script.parent)
    assert done.returncode == 2
    assert f"{tmp_path / 'dumb-init'}: exists and is not a symlink" in done.stderr
    assert (tmp_path / "dumb-init").read_text() == "the real one"
    assert not os.path.lexists(tmp_path / "tini")  # nothing half done


def test_install_compat_needs_an_initd_program(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = install(tmp_path, empty)
    assert done.returncode == 2
    assert "no initd program to link to" in done.stderr
    assert os.listdir(tmp_path) == ["empty"]


@pytest.mark.skipif(not shutil.which("initd"), reason="initd is not installed on PATH")
def test_installed_console_script_as_tini(tmp_path):
    link = tmp_path / "tini"
    link.symlink_to(shutil.which("initd"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    done = subprocess.run([str(link), "-s", "-e", "3", "--", "sh", "-c", "exit 3"],
                          capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 0, done.stderr

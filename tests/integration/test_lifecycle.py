"""Exit statuses, the stop sequence, orphans and zombies."""
import os
import signal
import subprocess

import pytest

from helpers import APPS, app, children, proc_status, run_initd, sleep_until

FATAL = [s for s in range(1, 32) if s not in (
    signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
    signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)]


def test_every_exit_code_passes_through():
    """0-255 in one namespace each would take minutes; one initd per code in a
    shell loop inside one namespace keeps it real and quick."""
    script = ('for c in $(seq 0 255); do '
              f'"{os.sys.executable}" -m initd -- sh -c "exit $c"; echo "$c $?"; done')
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                           "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(APPS)[:-len("/tests")]})
    pairs = [line.split() for line in proc.stdout.splitlines()]
    assert len(pairs) == 256, proc.stderr
    assert all(want == got for want, got in pairs), [p for p in pairs if p[0] != p[1]]


@pytest.mark.parametrize("exit_code", [0, 1, 2, 42, 126, 127, 128, 255])
def test_exit_code_as_pid1(mode, exit_code):
    code, _, err = run_initd(["--", "sh", "-c", f"exit {exit_code}"], mode=mode)
    assert code == exit_code, err


@pytest.mark.parametrize("sig", FATAL, ids=lambda s: signal.Signals(s).name)
def test_signal_death_is_128_plus_n(sig):
    code, _, err = run_initd(["--", app("printsig.py")[0], "-c",
                              # Python itself ignores PIPE and XFSZ: undo that first.
                              f"import os, signal; signal.signal(signal.SIGPIPE, signal.SIG_DFL); "
                              f"signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "
                              f"os.kill(os.getpid(), {int(sig)})"])
    assert code == 128 + sig, err


def test_exec_failures(tmp_path):
    code, _, err = run_initd(["--", str(tmp_path / "missing")])
    assert code == 127
    assert err.strip() == f"initd: ERROR cannot run {tmp_path / 'missing'}: No such file or directory"
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    code, _, err = run_initd(["--", str(script)])
    assert code == 126
    assert "Permission denied" in err and str(script) in err


def test_stop_timeout_escalates_to_sigkill(initd, mode):
    printsig = " ".join(app("printsig.py", "--ignore", "QUIT"))
    proc = initd(["--map", "TERM:QUIT", "--stop-timeout", "1", "--",
                  "sh", "-c", f"{printsig} & exec {printsig} --ignore QUIT"], mode=mode)
    proc.expect("ready")
    proc.expect("ready")
    proc.kill(signal.SIGTERM)
    assert proc.wait(timeout=15) == 128 + signal.SIGKILL
    err = proc.drain("err")
    assert any("still running 1s after SIGQUIT; sending SIGKILL" in line for line in err), err


def test_graceful_stop_within_timeout_is_not_killed(initd, mode):
    proc = initd(["--map", "TERM:QUIT", "--"] + app("printsig.py", "--exit-on", "QUIT:0"),
                 mode=mode)
    proc.expect("ready")
    proc.kill(signal.SIGTERM)
    proc.expect("got SIGQUIT")
    assert proc.wait() == 0
    assert not any("SIGKILL" in line for line in proc.drain("err"))


ORPHAN = """
import os, signal, sys, time
def on_term(*_):
    time.sleep(0.5)                      # needs time to finish its work
    open(sys.argv[1], "w").write("finished after SIGTERM\\n")
    os._exit(0)
if os.fork() == 0:
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, on_term)
        open(sys.argv[1] + ".ready", "w").close()
        while True:
            signal.pause()
    os._exit(0)
os.wait()
while not os.path.exists(sys.argv[1] + ".ready"):
    time.sleep(0.01)
sys.exit(3)                              # the app exits on its own
"""


def test_orphans_get_sigterm_and_time_to_finish(tmp_path, mode):
    marker = tmp_path / "orphan.out"
    code, _, err = run_initd(["--", app("printsig.py")[0], "-c", ORPHAN, str(marker)], mode=mode)
    assert code == 3, err
    assert marker.read_text() == "finished after SIGTERM\n"


def test_orphan_ignoring_sigterm_is_killed_after_grace(tmp_path, mode):
    script = ("trap '' TERM; (trap '' TERM; exec sleep 60) & "
              f"echo $! > {tmp_path}/orphan.pid; exit 4")
    code, _, err = run_initd(["--orphan-grace", "0.5", "--", "sh", "-c", script], mode=mode)
    assert code == 4, err
    assert "still running 0.5s after SIGTERM; sending SIGKILL" in err


def test_zombie_storm_leaves_no_zombie(initd, mode, tmp_path):
    storm = tmp_path / "storm"
    subprocess.run(["gcc", "-O2", "-o", str(storm), os.path.join(APPS, "storm.c")], check=True)
    proc = initd(["--", str(storm), "20000"], mode=mode)
    proc.expect("storm done", timeout=120)

    def zombies():
        return [p for p in children(proc.pid) if proc_status(p)["State"].startswith("Z")]

    sleep_until(lambda: not zombies(), timeout=30)
    proc.kill(signal.SIGTERM)
    assert proc.wait() == 128 + signal.SIGTERM


def test_shim_death_stops_the_app_gracefully(initd, mode):
    proc = initd(["--map", "TERM:QUIT", "--"] + app("printsig.py", "--exit-on", "QUIT:5"),
                 mode=mode)
    proc.expect("ready")
    shim = sleep_until(lambda: children(proc.pid))[0]
    os.kill(shim, signal.SIGKILL)
    proc.expect("got SIGQUIT")
    assert proc.wait() == 5
    assert any("ppidshim died unexpectedly" in line for line in proc.drain("err"))


def test_app_exiting_as_its_shim_dies_keeps_its_own_code():
    """Regression (issue 9): the adoption check once consumed the app's status
    with waitpid(app, WNOHANG) when the app exited between the drain and that
    call, and initd reported the shim's 137 instead. The app kills its shim
    and exits at once, 60 times, to make that window likely (Python, not sh:
    its start-up leaves the shim time to report the app's pid first)."""
    app_code = "import os; os.kill(os.getppid(), 9); os._exit(7)"
    script = ('for i in $(seq 1 60); do '
              f'"{os.sys.executable}" -m initd --map TERM:none -- '
              f'"{os.sys.executable}" -S -c "{app_code}" 2>/dev/null; echo "$?"; done')
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                           "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(APPS)[:-len("/tests")]})
    codes = proc.stdout.split()
    assert len(codes) == 60, proc.stderr
    assert set(codes) == {"7"}, codes

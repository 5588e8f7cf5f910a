"""The ppidshim (shim/ppidshim.c) and its one build (shim/Makefile).

Which signals it forwards: only initd's, all of them (faults and real-time
signals included), and the parent-death signal once initd is gone; never an
app's own `kill -TERM -1`. As a subreaper it adopts and reaps what the app
leaves behind. PID 1 cases run in fresh namespaces (tests/helpers.py).
"""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from helpers import PY, REPO, Initd, Watched, initd_env, sleep_until

SHIM_SRC = os.path.join(REPO, "shim")
SHIM = os.path.join(REPO, "initd", "_bin", "ppidshim")
SIGAPP = [PY, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigapp.py")]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: PID namespaces"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]


def run(argv, timeout=60, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


# --- the build -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_makefile_builds_into_the_given_directory_only(tmp_path):
    before = sorted(os.listdir(SHIM_SRC))
    r = run(["make", "-s", "-C", SHIM_SRC, f"OUT={tmp_path}", f"PYTHON={sys.executable}"],
            timeout=120)
    assert r.returncode == 0, r.stderr
    # _sigfd.so: signalfd as an extension for this interpreter (its headers are here).
    assert sorted(os.listdir(tmp_path)) == ["_sigfd.so", "initd", "libinitd_fqdn.so", "ppidshim"]
    assert sorted(os.listdir(SHIM_SRC)) == before  # nothing written into the source tree
    # The same flags for every target, from the one place.
    flags = run(["make", "-s", "-C", SHIM_SRC, "print-CFLAGS"]).stdout.split()
    assert {"-Wall", "-Wextra", "-Werror"} <= set(flags)


def test_shim_refuses_the_old_protocol_without_mode():
    r = run([SHIM, "-1", "0", "15", "--", "true"])
    assert r.returncode == 2
    assert r.stderr.startswith("initd: ERROR ppidshim is started by initd")


@pytest.mark.parametrize("args", [["x", "0", "15", "pgrp"], ["-1", "2", "15", "pgrp"],
                                  ["-1", "0", "65", "pgrp"], ["-1", "0", "15", "pgrp,nope"],
                                  ["-1", "0", "15", "exec-error=0"]])
def test_shim_refuses_bad_arguments_in_one_line(args):
    r = run([SHIM, *args, "--", "true"])
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("initd: ERROR ppidshim"), r.stderr


# --- signals from others are not forwarded --------------------------------------

KILL_ALL = "kill -TERM -1; sleep 0.5; echo survived"


@pytest.mark.parametrize("init", ["initd", "tini"])
def test_app_running_kill_minus_one_survives(init):
    """`kill -TERM -1` reaches every process but the sender and PID 1: the
    shim too. It must not hand the app its own TERM back (tini: no shim, the
    app survives)."""
    if init == "tini" and shutil.which("tini") is None:
        pytest.skip("tini not installed")
    argv = ["--", "sh", "-c", KILL_ALL]
    proc = (Initd(argv) if init == "initd"
            else Watched(["tini", *argv], initd_env(), "pid1"))
    try:
        assert proc.wait() == 0
        assert proc.drain("out") == ["survived"]
    finally:
        proc.stop()


# --- every signal initd sends is forwarded ---------------------------------------

@pytest.mark.parametrize("target", ["SEGV", "ABRT", "BUS", "FPE", "ILL", "TRAP", "SYS",
                                    "RTMIN", "RTMIN+3", "RTMAX"])
def test_usr1_mapped_to_a_fault_or_realtime_signal_reaches_the_app(target):
    proc = Initd(["--map", f"USR1:{target}", "--", *SIGAPP])
    try:
        proc.expect("ready")
        proc.kill(signal.SIGUSR1)
        names = {"RTMIN": signal.SIGRTMIN, "RTMAX": signal.SIGRTMAX}
        want = (signal.SIGRTMIN + 3 if target == "RTMIN+3"
                else names.get(target) or getattr(signal, "SIG" + target))
        assert proc.expect("got") == f"got {int(want)}"
        # The shim is alive: TERM still reaches the app, which exits 0.
        proc.kill(signal.SIGTERM)
        assert proc.expect("got") == f"got {int(signal.SIGTERM)}"
        assert proc.wait() == 0
        assert not [line for line in proc.drain("err") if "died unexpectedly" in line]
    finally:
        proc.stop()


# --- the parent-death signal -------------------------------------------------------

def test_initd_death_passes_a_fault_stop_signal_on():
    """Not PID 1 and SIGKILLed, initd cannot stop the app: the kernel sends
    the shim its parent-death signal (here the stop signal is ABRT, a fault
    signal), which the shim passes on instead of dying of it."""
    proc = Initd(["--map", "TERM:ABRT", "--", *SIGAPP], mode="subreaper")
    try:
        proc.expect("ready")
        shim = proc.descendants()[0]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.expect("got") == f"got {int(signal.SIGABRT)}"
        # The shim lived through it (a dead one stays a zombie until reaped).
        assert _state(shim) not in (None, "Z", "X")
    finally:
        proc.stop()


# --- MODE subreaper ------------------------------------------------------------------

@pytest.mark.parametrize("subreaper", [True, False])
def test_subreaper_mode_adopts_and_reaps_what_the_app_leaves(subreaper):
    mode = "pgrp,subreaper" if subreaper else "pgrp"
    proc = subprocess.Popen(["ppidshim: test", "-1", "0", "0", mode, "--", "sh", "-c",
                             'sh -c "sleep 1 & echo orphan \\$! \\$\\$"; sleep 2; echo done'],
                            executable=SHIM, stdout=subprocess.PIPE, text=True)
    try:
        _, orphan, first_parent = proc.stdout.readline().split()
        orphan, first_parent = int(orphan), int(first_parent)
        # Re-parented once its first parent (the inner sh) has exited.
        ppid = sleep_until(lambda: _ppid(orphan) not in (None, first_parent) and _ppid(orphan),
                           timeout=5)
        assert (ppid == proc.pid) == subreaper
        if subreaper:
            # Reaped by the shim when it exits, while the app still runs.
            sleep_until(lambda: not os.path.exists(f"/proc/{orphan}"), timeout=5)
            assert proc.poll() is None
        assert proc.stdout.readline() == "done\n"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None

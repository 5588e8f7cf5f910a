"""Every forwardable signal reaches the app, translated by the map, or dropped."""
import json
import os
import signal
import sys

import pytest

from helpers import app, children, proc_status, signal_set, sleep_until

NON_STOP = [s for s in range(1, 32) if s not in (
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTERM, signal.SIGINT,
    signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT,
    signal.SIGTRAP, signal.SIGSYS,
    # Job control: printsig's handler catches them, but sending TSTP/TTIN/TTOU
    # to a catching app is fine; CONT is included too.
)]


def test_every_forwardable_signal_is_delivered(initd, mode):
    proc = initd(["--stop-timeout", "30", "--"] + app("printsig.py", "--exit-on", "TERM:0"),
                 mode=mode)
    proc.expect("ready")
    for sig in NON_STOP + [signal.SIGINT]:
        proc.kill(sig)
        proc.expect(f"got {signal.Signals(sig).name}")
    proc.kill(signal.SIGTERM)
    proc.expect("got SIGTERM")
    assert proc.wait() == 0


def test_map_translates_and_drops(initd, mode):
    proc = initd(["--map", "TERM:QUIT", "--map", "SIGUSR1:usr2", "--map", "HUP:none", "--"]
                 + app("printsig.py", "--exit-on", "QUIT:0"), mode=mode)
    proc.expect("ready")
    proc.kill(signal.SIGHUP)       # dropped: the next line must be the USR2
    proc.kill(signal.SIGUSR1)
    assert proc.expect("got") == "got SIGUSR2"
    proc.kill(signal.SIGTERM)
    assert proc.expect("got") == "got SIGQUIT"
    assert proc.wait() == 0
    assert "got SIGHUP" not in proc.drain("out")


def test_role_map_from_roles_json_and_map_override(initd, tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {
        "command": app("printsig.py", "--exit-on", "QUIT:0"),
        "signals": {"TERM": "QUIT", "USR1": "WINCH", "USR2": 0}}}))
    proc = initd(["--roles", str(roles), "--role", "web", "--map", "USR1:HUP"])
    proc.expect("ready")
    proc.kill(signal.SIGUSR2)      # dropped by the role
    proc.kill(signal.SIGUSR1)      # the command line wins over the role
    assert proc.expect("got") == "got SIGHUP"
    proc.kill(signal.SIGTERM)
    assert proc.expect("got") == "got SIGQUIT"
    assert proc.wait() == 0


@pytest.mark.parametrize("group", [True, False])
def test_process_group_delivery(initd, mode, group):
    printsig = " ".join(app("printsig.py"))
    args = ["--process-group"] if group else []
    proc = initd(args + ["--", "sh", "-c", f"{printsig} & exec {printsig} --exit-on TERM:0"],
                 mode=mode)
    proc.expect("ready")
    proc.expect("ready")
    proc.kill(signal.SIGUSR1)
    proc.expect("got SIGUSR1")
    if group:
        proc.expect("got SIGUSR1")
    proc.kill(signal.SIGTERM)
    assert proc.wait() == (0 if not group else 0)
    out = proc.drain("out")
    assert out.count("got SIGUSR1") == (2 if group else 1)


def test_signal_during_startup_is_not_lost(initd, mode):
    """Sent before the app exists: delivered once it does (sleep dies of it)."""
    proc = initd(["--", "sleep", "30"], mode=mode)
    # Before initd blocks its signals no one can take them (as PID 1 the
    # kernel discards them); from then on none may be lost.
    sleep_until(lambda: signal.SIGUSR1 in signal_set(proc_status(proc.pid)["SigBlk"]), 10, 0.001)
    proc.kill(signal.SIGUSR1)
    assert proc.wait(timeout=10) == 128 + signal.SIGUSR1


def test_signal_flood_is_survived(initd, mode):
    proc = initd(["--"] + app("printsig.py", "--exit-on", "TERM:0"), mode=mode)
    proc.expect("ready")
    for _ in range(5000):
        proc.kill(signal.SIGUSR1)
    proc.expect("got SIGUSR1")
    proc.kill(signal.SIGTERM)
    proc.expect("got SIGTERM", timeout=20)
    assert proc.wait() == 0


def test_every_forwardable_signal_can_be_translated(initd, mode):
    """Each source mapped to USR2: the app sees only USR2s, one per signal."""
    sources = [s for s in NON_STOP if s != signal.SIGUSR2]
    maps = [arg for s in sources for arg in ("--map", f"{int(s)}:USR2")]
    proc = initd(maps + ["--map", "TERM:QUIT", "--"]
                 + app("printsig.py", "--exit-on", "QUIT:0"), mode=mode)
    proc.expect("ready")
    for sig in sources:
        proc.kill(sig)
        assert proc.expect("got") == "got SIGUSR2", signal.Signals(sig).name
    proc.kill(signal.SIGTERM)
    assert proc.expect("got") == "got SIGQUIT"
    assert proc.wait() == 0


def test_initd_death_outside_a_namespace_stops_the_app(initd):
    """Not PID 1, initd can be SIGKILLed: the shim's parent-death signal (the
    translated stop signal) reaches it and it passes it on to the app."""
    proc = initd(["--map", "TERM:QUIT", "--"] + app("printsig.py", "--exit-on", "QUIT:0"),
                 mode="subreaper")
    proc.expect("ready")
    os.kill(proc.pid, signal.SIGKILL)
    proc.expect("got SIGQUIT")


def test_no_process_group_overrides_the_role(initd, tmp_path):
    printsig = " ".join(app("printsig.py"))
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {
        "command": f"{printsig} & exec {printsig} --exit-on TERM:0", "process_group": True}}))
    proc = initd(["--roles", str(roles), "--role", "web"], env={"INITD_PROCESS_GROUP": "0"})
    proc.expect("ready")
    proc.expect("ready")
    proc.kill(signal.SIGUSR1)
    proc.expect("got SIGUSR1")
    proc.kill(signal.SIGTERM)
    assert proc.wait() == 0
    assert proc.drain("out").count("got SIGUSR1") == 1


SENDER_APP = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGQUIT])
print("ready", flush=True)
while True:
    info = signal.sigwaitinfo([signal.SIGUSR1, signal.SIGQUIT])
    print(f"signal {info.si_signo} from {info.si_pid}", flush=True)
    if info.si_signo == signal.SIGQUIT:
        sys.exit(0)
"""


def test_signals_reach_the_app_straight_from_initd(initd, mode):
    """Issue 15.1: initd delivers through a pidfd straight to the app, not
    through the shim: the sender the app sees is initd itself, translated or
    not; the shim is still the app's parent."""
    proc = initd(["--map", "TERM:QUIT", "--", sys.executable, "-c", SENDER_APP], mode=mode)
    proc.expect("ready")
    shim = sleep_until(lambda: children(proc.pid))[0]
    init_pid_inside = 1 if mode != "subreaper" else proc.pid
    proc.kill(signal.SIGUSR1)
    assert proc.expect("signal 10 from") == f"signal {int(signal.SIGUSR1)} from {init_pid_inside}"
    proc.kill(signal.SIGTERM)
    assert proc.expect("signal 3 from") == f"signal {int(signal.SIGQUIT)} from {init_pid_inside}"
    assert proc.wait() == 0
    assert shim != proc.pid

"""sd_notify: message parsing, the watchdog deadline and the sender rule, pure."""
import os

import pytest

from initd import notify


def test_parse_every_known_key_in_order():
    data = (b"READY=1\nSTATUS=Listening on :8080\nWATCHDOG=1\nWATCHDOG_USEC=2500000\n"
            b"STOPPING=1\nRELOADING=1\nMAINPID=42\nEXTEND_TIMEOUT_USEC=3000000\n"
            b"WATCHDOG=trigger\nBARRIER=1")
    assert notify.parse(data) == [
        ("ready", True), ("status", "Listening on :8080"), ("watchdog", None),
        ("watchdog_usec", 2.5), ("stopping", True), ("reloading", True), ("mainpid", 42),
        ("extend_timeout", 3.0), ("watchdog_trigger", None), ("barrier", True)]


@pytest.mark.parametrize("data", [
    b"READY=0", b"READY", b"FOO=1", b"X_BOGUS=READY=1", b"MAINPID=abc", b"MAINPID=0",
    b"MAINPID=\xd9\xa3", b"WATCHDOG_USEC=-5", b"WATCHDOG_USEC=0", b"WATCHDOG=0",
    b"EXTEND_TIMEOUT_USEC=1e6", b"", b"\n\n", b"ERRNO=2", b"FDSTORE=1",
])
def test_parse_ignores_unknown_and_bad(data):
    assert notify.parse(data) == []


def test_parse_status_may_contain_equals_and_is_bounded():
    assert notify.parse(b"STATUS=a=b") == [("status", "a=b")]
    [(_, text)] = notify.parse(b"STATUS=" + b"x" * 10000)
    assert len(text) == notify.MAX_STATUS
    assert notify.parse(b"STATUS=\xff") == [("status", "\ufffd")]


def test_app_environ():
    assert notify.app_environ("@x") == {"NOTIFY_SOCKET": "@x"}
    assert notify.app_environ("@x", 10)["WATCHDOG_USEC"] == "10000000"
    assert notify.new_address().startswith("@initd-notify-")
    assert notify.new_address() != notify.new_address()


def test_watchdog_misses_counted_each_period_and_pings_push_back():
    misses = []
    w = notify.Watchdog(10.0, misses.append)
    assert w.next_deadline() is None
    w.on_tick(1000.0)
    assert misses == []                      # not armed: silence is fine
    w.arm(100.0)
    assert w.next_deadline() == 110.0
    w.ping(105.0)
    w.on_tick(112.0)
    assert misses == [] and w.next_deadline() == 115.0
    w.on_tick(115.0)
    assert misses == [115.0] and w.next_deadline() == 125.0
    w.on_tick(125.5)
    assert misses == [115.0, 125.5]
    w.set_timeout(2.0, 126.0)
    assert w.next_deadline() == 128.0
    w.disarm()
    w.on_tick(500.0)
    assert len(misses) == 2 and w.next_deadline() is None
    w.ping(501.0)                             # a ping does not arm it
    assert w.next_deadline() is None


def write_proc(root, pid, ppid, pgid, sid, comm="app"):
    d = root / str(pid)
    d.mkdir()
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pgid} {sid} 0 -1 4194560 0 0\n")


@pytest.fixture
def proc(tmp_path):
    # 1 initd; 2 shim; 3 app (leads group and session 3); 4 child of the app;
    # 5 grandchild with a ") S 1" in its name; 6 a daemon reparented to initd
    # but still in the app's group; 7 a docker exec'd shell; 8 its child.
    write_proc(tmp_path, 1, 0, 1, 1, "initd")
    write_proc(tmp_path, 2, 1, 1, 1, "ppidshim")
    write_proc(tmp_path, 3, 2, 3, 3, "app")
    write_proc(tmp_path, 4, 3, 3, 3, "worker")
    write_proc(tmp_path, 5, 4, 9, 9, "evil) S 1 1 1")
    write_proc(tmp_path, 6, 1, 3, 3, "daemon")
    write_proc(tmp_path, 7, 0, 7, 7, "bash")
    write_proc(tmp_path, 8, 7, 7, 7, "python3")
    return str(tmp_path)


def test_family_check(proc):
    ours = notify.family_check(lambda: 3, lambda: 1000, proc)
    assert ours(3, 1000)
    assert ours(4, 1000) and ours(5, 1000)     # descendants, whatever their comm
    assert ours(6, 1000)                       # reparented, same group/session
    assert not ours(7, 1000) and not ours(8, 1000)   # foreign, though same uid
    assert not ours(1, 0) and not ours(2, 0)   # initd and the shim never speak for it
    assert not ours(0, 1000)                   # outside our pid namespace
    assert ours(99, 1000)                      # gone: judged by its uid
    assert not ours(99, 0)
    assert not notify.family_check(lambda: None, lambda: 1000, proc)(3, 1000)


def test_family_check_group_not_led_by_app(proc, tmp_path):
    # An app that shares initd's group (no --process-group): group 1 is not
    # the app's, so initd's other children are not let in by it.
    write_proc(tmp_path, 10, 2, 1, 1, "app2")
    write_proc(tmp_path, 11, 1, 1, 1, "hook")
    ours = notify.family_check(lambda: 10, lambda: 0, proc)
    assert not ours(11, 0)


def test_family_check_on_real_proc():
    ours = notify.family_check(os.getppid, os.getuid)
    assert ours(os.getpid(), os.getuid())       # our parent is an ancestor of ours
    assert not ours(1, 0) or os.getppid() == 1

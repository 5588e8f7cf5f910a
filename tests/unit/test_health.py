"""health.HealthState and health.Schedule with a fake clock: Docker's counting
and Docker's probe timing, transition by transition."""
import pytest

from initd import health
from initd.health import HEALTHY, STARTING, UNHEALTHY, HealthState, Schedule


def fail(h, now, duration=0.1, code=1):
    return h.record(False, code, f"exit code {code}", "boom\nmore", duration, now)


def ok(h, now, duration=0.1):
    return h.record(True, 0, "exit code 0", "fine", duration, now)


def test_starts_starting_and_one_success_makes_healthy():
    h = HealthState(retries=3, start_period=0, started_at=100.0)
    assert h.state == STARTING
    t = ok(h, 101.0)
    assert (t.old, t.new) == (STARTING, HEALTHY)
    assert ok(h, 102.0) is None  # no transition, no log line


def test_retries_consecutive_failures_make_unhealthy_and_one_success_heals():
    h = HealthState(retries=3, start_period=0, started_at=0.0)
    ok(h, 1.0)
    assert fail(h, 2.0) is None and h.failing_streak == 1
    assert fail(h, 3.0) is None and h.failing_streak == 2
    t = fail(h, 4.0)
    assert (t.old, t.new, t.failing_streak) == (HEALTHY, UNHEALTHY, 3)
    assert fail(h, 5.0) is None and h.failing_streak == 4 and h.state == UNHEALTHY
    t = ok(h, 6.0)
    assert (t.old, t.new) == (UNHEALTHY, HEALTHY) and h.failing_streak == 0


def test_a_success_resets_the_streak():
    h = HealthState(retries=2, start_period=0, started_at=0.0)
    fail(h, 1.0)
    ok(h, 2.0)
    assert fail(h, 3.0) is None and h.state == HEALTHY


def test_starting_to_unhealthy_without_start_period():
    h = HealthState(retries=2, start_period=0, started_at=0.0)
    assert fail(h, 1.0) is None
    t = fail(h, 2.0)
    assert (t.old, t.new) == (STARTING, UNHEALTHY)


def test_failures_inside_start_period_do_not_count():
    h = HealthState(retries=1, start_period=10.0, started_at=0.0)
    for now in (1.0, 5.0, 9.9):
        assert fail(h, now, duration=0.05) is None
    assert h.failing_streak == 0 and h.state == STARTING
    t = fail(h, 10.2, duration=0.1)  # began at 10.1, after the start period
    assert (t.old, t.new) == (STARTING, UNHEALTHY)


def test_start_period_ends_mid_probe_the_failure_does_not_count():
    """Docker compares the probe's start time with the start period."""
    h = HealthState(retries=1, start_period=10.0, started_at=0.0)
    assert fail(h, 12.0, duration=3.0) is None  # began at 9.0, ended at 12.0
    assert h.failing_streak == 0 and h.state == STARTING


def test_probe_beginning_exactly_at_start_period_end_counts():
    h = HealthState(retries=1, start_period=10.0, started_at=0.0)
    t = fail(h, 10.5, duration=0.5)  # began at 10.0: not "less than" the start period
    assert t.new == UNHEALTHY


def test_a_success_inside_start_period_makes_failures_count():
    h = HealthState(retries=2, start_period=60.0, started_at=0.0)
    ok(h, 1.0)
    assert fail(h, 2.0) is None and h.failing_streak == 1
    t = fail(h, 3.0)
    assert (t.old, t.new) == (HEALTHY, UNHEALTHY)


def test_restart_resets_to_starting_with_a_new_start_period():
    h = HealthState(retries=1, start_period=5.0, started_at=0.0)
    fail(h, 6.0)
    assert h.state == UNHEALTHY
    h.restart(100.0)
    assert h.state == STARTING and h.failing_streak == 0
    assert fail(h, 102.0) is None  # inside the new start period


def test_external_failure_counts_like_a_probe():
    """The sd_notify watchdog of issue 13 feeds the same state."""
    h = HealthState(retries=1, start_period=0, started_at=0.0)
    t = h.record(False, None, "watchdog missed", "", 0.0, 5.0)
    assert t.new == UNHEALTHY and t.result.detail == "watchdog missed"


def test_output_is_capped_and_snapshot_is_wall_time():
    h = HealthState(retries=3, start_period=0, started_at=0.0)
    h.record(False, 1, "exit code 1", "y" * 10000, 0.25, 50.0)
    snap = h.snapshot(now=60.0, wall_now=1_000_000.0)
    assert snap["state"] == STARTING and snap["failing_streak"] == 1
    last = snap["last"]
    assert len(last["output"]) == health.MAX_OUTPUT
    assert last["at"] == 1_000_000.0 - 10.0 and last["duration"] == 0.25
    assert last["ok"] is False and last["code"] == 1


def test_describe_names_code_and_first_output_line():
    h = HealthState(retries=1, start_period=0, started_at=0.0)
    line = health.describe("web", fail(h, 1.0, code=7))
    assert line == "web: health starting -> unhealthy, code 7, exit code 7, failing streak 1, output: boom"


# --- Schedule -----------------------------------------------------------

def test_first_probe_one_interval_after_start_and_then_after_each_finish():
    s = Schedule(interval=30, timeout=5, start_period=0, start_interval=5, started_at=100.0)
    assert s.next_deadline() == 130.0
    assert not s.due(129.999) and s.due(130.0)
    assert s.begin(130.0) == 135.0
    assert s.next_deadline() == 135.0 and not s.due(131.0)
    assert s.end(132.0, HEALTHY) == 2.0
    assert s.next_deadline() == 162.0  # interval after it *finished*


def test_start_interval_applies_inside_start_period_while_starting():
    s = Schedule(interval=30, timeout=1, start_period=20, start_interval=2, started_at=0.0)
    assert s.next_deadline() == 2.0
    s.begin(2.0)
    s.end(2.5, STARTING)
    assert s.next_deadline() == 4.5
    s.begin(4.5)
    s.end(5.0, HEALTHY)  # healthy: back to the long interval even inside the period
    assert s.next_deadline() == 35.0


def test_start_interval_unused_without_start_period():
    s = Schedule(interval=30, timeout=1, start_period=0, start_interval=2, started_at=0.0)
    assert s.next_deadline() == 30.0


def test_interval_after_start_period_ends():
    s = Schedule(interval=30, timeout=1, start_period=20, start_interval=2, started_at=0.0)
    s.begin(19.0)
    s.end(20.0, STARTING)  # period over at 20.0: the long interval
    assert s.next_deadline() == 50.0


def test_timeout_deadline_and_exact_edge():
    s = Schedule(interval=10, timeout=3, start_period=0, start_interval=5, started_at=0.0)
    s.begin(10.0)
    assert not s.expired(12.999)
    assert s.expired(13.0)          # not finished by its deadline: timed out
    assert not s.overran(13.0)      # but a result reported exactly at it counts
    assert s.overran(13.001)
    assert s.end(13.0, STARTING) == 3.0
    assert not s.expired(13.0) and s.next_deadline() == 23.0


def test_restart_cancels_a_running_probe():
    s = Schedule(interval=10, timeout=3, start_period=5, start_interval=1, started_at=0.0)
    s.begin(10.0)
    s.restart(50.0)
    assert s.running_since is None and s.next_deadline() == 51.0


@pytest.mark.parametrize("status,gap", [(STARTING, 1.0), (HEALTHY, 10.0), (UNHEALTHY, 10.0)])
def test_gap_by_status_inside_start_period(status, gap):
    s = Schedule(interval=10, timeout=3, start_period=5, start_interval=1, started_at=0.0)
    assert s.gap(4.999, status) == gap
    assert s.gap(5.0, status) == 10.0

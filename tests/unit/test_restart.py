"""restart.RestartPolicy with a fake clock and a scripted random source."""
import pytest

from initd.restart import RestartPolicy, RestartSpec


def policy(rand=0.5, **kw):
    values = iter(rand) if isinstance(rand, list) else None
    return RestartPolicy(RestartSpec(**kw), random=(lambda: next(values)) if values else (lambda: rand))


@pytest.mark.parametrize("name,code,forced,restarts", [
    ("no", 1, False, False), ("no", 0, False, False), ("no", 1, True, True),
    ("on-failure", 0, False, False), ("on-failure", 1, False, True),
    ("on-failure", 143, False, True), ("on-failure", 0, True, True),
    ("always", 0, False, True), ("always", 2, False, True),
])
def test_policy(name, code, forced, restarts):
    p = policy(policy=name)
    p.started(0.0)
    d = p.exited(1.0, code, forced=forced)
    assert d.action == ("restart" if restarts else "exit")


def test_backoff_doubles_and_is_capped_without_jitter():
    p = policy(0.5, policy="always", initial=0.1, max=1.0, reset_after=10.0, give_up_restarts=None)
    gaps, now = [], 0.0
    for _ in range(8):
        p.started(now)
        now += 0.01  # fails at once: never reaches reset_after
        d = p.exited(now, 1)
        gaps.append(round(d.delay, 9))
        now += d.delay
    assert gaps == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("r,factor", [(0.0, 0.8), (0.999999, 1.2), (0.25, 0.9)])
def test_jitter_bounds(r, factor):
    p = policy(r, policy="always", initial=1.0, max=100.0)
    p.started(0.0)
    assert p.exited(0.5, 1).delay == pytest.approx(1.0 * factor, rel=1e-5)


def test_jitter_never_exceeds_max():
    p = policy(0.999999, policy="always", initial=1.0, max=2.0, give_up_restarts=None)
    now = 0.0
    for _ in range(5):
        p.started(now)
        d = p.exited(now + 0.1, 1)
        assert 0.8 <= d.delay <= 2.0
        now += 0.1 + d.delay
    assert d.delay == 2.0


def test_reset_after_returns_to_initial():
    p = policy(0.5, policy="on-failure", initial=0.1, max=10.0, reset_after=5.0, give_up_restarts=None)
    now = 0.0
    for expected in (0.1, 0.2, 0.4):
        p.started(now)
        d = p.exited(now + 1.0, 1)
        assert d.delay == pytest.approx(expected)
        now += 1.0 + d.delay
    p.started(now)
    d = p.exited(now + 4.999, 1)  # not quite reset_after
    assert d.delay == pytest.approx(0.8)
    now += 4.999 + d.delay
    p.started(now)
    d = p.exited(now + 5.0, 1)  # ran exactly reset_after: recovered
    assert d.delay == pytest.approx(0.1)


def test_give_up_after_more_than_n_restarts_within_window():
    p = policy(0.5, policy="always", initial=0.001, max=0.001, give_up_restarts=3, give_up_within=10.0)
    now = 0.0
    for _ in range(3):
        p.started(now)
        assert p.exited(now + 1.0, 1).action == "restart"
        now += 1.0
    p.started(now)
    d = p.exited(now + 1.0, 1)  # a 4th restart within 10 s
    assert d.action == "give_up" and "3 restarts within 10s" in d.reason


def test_give_up_window_slides():
    p = policy(0.5, policy="always", initial=0.001, max=0.001, give_up_restarts=2, give_up_within=10.0)
    for t in (0.0, 5.0):
        p.started(t)
        assert p.exited(t + 0.5, 1).action == "restart"   # at 0.5 and 5.5
    p.started(9.0)
    assert p.exited(10.4, 1).action == "give_up"           # 0.5 still inside (10.4 - 0.5 < 10)
    p2 = policy(0.5, policy="always", initial=0.001, max=0.001, give_up_restarts=2, give_up_within=10.0)
    for t in (0.0, 5.0):
        p2.started(t)
        p2.exited(t + 0.5, 1)
    p2.started(9.0)
    assert p2.exited(10.5, 1).action == "restart"          # 0.5 has left the window
    assert len(p2.recent) <= 2                              # bounded


def test_never_give_up():
    p = policy(0.5, policy="always", initial=0.001, max=0.001, give_up_restarts=None)
    for i in range(1000):
        p.started(float(i))
        assert p.exited(i + 0.001, 1).action == "restart"
    assert p.total == 1000


def test_exit_decision_leaves_counters_alone():
    p = policy(policy="on-failure")
    p.started(0.0)
    assert p.exited(1.0, 0).action == "exit"
    assert p.total == 0 and p.recent == []


def test_defaults_are_the_documented_ones():
    s = RestartSpec()
    assert (s.policy, s.initial, s.max, s.reset_after, s.give_up_restarts, s.give_up_within) == \
        ("no", 0.1, 30.0, 10.0, 10, 60.0)


def test_default_random_source_is_bounded():
    p = RestartPolicy(RestartSpec(policy="always", initial=1.0, max=100.0, give_up_restarts=None))
    for i in range(200):
        p.started(i * 1000.0)
        assert 0.8 <= p.exited(i * 1000.0 + 20, 1).delay < 1.2

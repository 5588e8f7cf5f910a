"""The lifecycle replayed with a fake clock: event histories in, actions out."""
import signal

from initd import lifecycle as lc

TERM, QUIT, INT, KILL = signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGKILL


def make(**kwargs):
    args = dict(name="web", signal_map={TERM: QUIT}, stop_timeout=8.0, orphan_grace=2.0,
                app_pid=3)
    args.update(kwargs)
    return lc.Lifecycle(**args)


def kinds(actions):
    """The actions without their log lines, which other tests check."""
    return [a for a in actions if a[0] != lc.LOG]


def logs(actions, level=None):
    return [a[2] for a in actions if a[0] == lc.LOG and (level is None or a[1] == level)]


def test_term_is_translated_and_starts_the_stop_timer():
    life = make()
    assert kinds(life.on_signal(TERM, 99, now=100.0)) == [(lc.DELIVER, QUIT)]
    assert life.state == lc.STOPPING and life.next_deadline(100.0) == 108.0
    assert life.on_tick(107.99) == []


def test_stop_timeout_then_kill_then_shim_kill():
    life = make()
    life.on_signal(TERM, 99, now=0.0)
    actions = life.on_tick(8.0)
    assert kinds(actions) == [(lc.KILL_APP,)] and life.state == lc.KILLING
    assert "still running 8s after SIGQUIT" in logs(actions, lc.WARNING)[0]
    assert life.next_deadline(8.0) == 10.0
    assert kinds(life.on_tick(10.0)) == [(lc.KILL_SHIM,)]
    assert life.next_deadline(10.0) is None


def test_second_term_is_delivered_again_without_resetting_the_timer():
    life = make()
    life.on_signal(TERM, 99, now=0.0)
    assert kinds(life.on_signal(TERM, 99, now=5.0)) == [(lc.DELIVER, QUIT)]
    assert life.next_deadline(5.0) == 8.0


def test_term_mapped_to_nothing_starts_no_timer():
    life = make(signal_map={TERM: 0})
    actions = life.on_signal(TERM, 99, now=0.0)
    assert kinds(actions) == [] and life.state == lc.RUNNING and life.next_deadline(0.0) is None


def test_int_is_a_stop_signal_too_and_other_signals_are_not():
    life = make()
    assert kinds(life.on_signal(signal.SIGUSR1, 99, now=0.0)) == [(lc.DELIVER, signal.SIGUSR1)]
    assert life.state == lc.RUNNING
    life.on_signal(INT, 99, now=1.0)
    assert life.state == lc.STOPPING and life.stop_sent == INT


def test_sigchld_only_wakes():
    assert make().on_signal(signal.SIGCHLD, 5, now=0.0) == []


def test_app_exit_through_the_shim_then_sweep_nothing_left():
    life = make(exit_zero=frozenset())
    assert life.on_shim_exit(42, app_is_child=False, now=1.0) == []
    assert life.state == lc.SWEEPING
    assert life.on_leftovers(0, now=1.0) == [] and life.done()
    assert life.exit_code() == 42


def test_sweep_term_grace_kill_then_survivors_named():
    life = make()
    life.on_shim_exit(0, app_is_child=False, now=0.0)
    actions = life.on_leftovers(3, now=0.0)
    assert kinds(actions) == [(lc.SWEEP, TERM)]
    assert "sending SIGTERM to 3 leftover processes and giving them 2s" in logs(actions)[0]
    assert life.on_leftovers(2, now=1.0) == []
    actions = life.on_leftovers(2, now=2.0)
    assert kinds(actions) == [(lc.SWEEP, KILL)]
    assert life.on_leftovers(1, now=6.9) == []
    actions = life.on_leftovers(1, now=7.0)
    assert life.done() and "survived SIGKILL" in logs(actions, lc.WARNING)[0]


def test_sweep_ends_as_soon_as_nothing_is_left():
    life = make()
    life.on_shim_exit(0, app_is_child=False, now=0.0)
    life.on_leftovers(3, now=0.0)
    assert life.on_leftovers(0, now=0.5) == [] and life.done()


def test_uncounted_leftovers_are_still_swept():
    life = make()
    life.on_shim_exit(0, app_is_child=False, now=0.0)
    assert kinds(life.on_leftovers(None, now=0.0)) == [(lc.SWEEP, TERM)]
    assert not life.done()


def test_shim_dies_first_the_app_is_adopted_and_supervised():
    life = make()
    actions = life.on_shim_exit(137, app_is_child=True, now=0.0)
    assert kinds(actions) == [] and life.adopted and life.state == lc.RUNNING
    assert "adopted it" in logs(actions, lc.WARNING)[0]
    # It is still supervised: TERM is translated and starts the timer.
    assert kinds(life.on_signal(TERM, 99, now=1.0)) == [(lc.DELIVER, QUIT)]
    assert life.state == lc.STOPPING
    life.on_app_exit(0, now=2.0)
    assert life.state == lc.SWEEPING
    life.on_leftovers(0, now=2.0)
    assert life.exit_code() == 0


def test_shim_killed_after_the_stop_timeout_is_not_killed_again():
    life = make()
    life.on_signal(TERM, 99, now=0.0)
    life.on_tick(8.0)
    life.on_shim_exit(137, app_is_child=True, now=8.5)
    assert life.on_tick(10.0) == []  # no KILL_SHIM: it is gone


def test_app_exits_during_adoption():
    """The shim and the app are both reaped: the app's own code is the exit code."""
    life = make()
    life.on_shim_exit(137, app_is_child=True, now=0.0)
    life.on_app_exit(3, now=0.0)
    life.on_leftovers(0, now=0.0)
    assert life.exit_code() == 3


def test_exit_zero():
    life = make(exit_zero=frozenset({143}))
    life.on_shim_exit(143, app_is_child=False, now=0.0)
    life.on_leftovers(0, now=0.0)
    assert life.code == 143 and life.exit_code() == 0


def test_job_control_suspends_after_delivering():
    life = make(signal_map={}, job_control=True)
    assert kinds(life.on_signal(signal.SIGTSTP, 0, now=0.0)) == [
        (lc.DELIVER, signal.SIGTSTP), (lc.SUSPEND,)]
    assert kinds(make(signal_map={}).on_signal(signal.SIGTSTP, 0, now=0.0)) == [
        (lc.DELIVER, signal.SIGTSTP)]


def test_signals_after_the_app_exited_are_not_delivered():
    life = make(chatty=True)
    life.on_shim_exit(0, app_is_child=False, now=0.0)
    actions = life.on_signal(TERM, 99, now=0.1)
    assert kinds(actions) == [] and "has exited" in logs(actions)[0]


def test_info_lines_only_when_chatty():
    assert logs(make().on_signal(signal.SIGUSR1, 7, now=0.0)) == []
    assert logs(make(chatty=True).on_signal(signal.SIGUSR1, 7, now=0.0)) == [
        "received SIGUSR1 from pid 7; passing it on"]


def test_subreaper_rescans_while_sweeping():
    life = make(rescan=0.1)
    assert life.next_deadline(0.0) is None
    life.on_shim_exit(0, app_is_child=False, now=0.0)
    life.on_leftovers(1, now=0.0)
    assert life.next_deadline(0.0) == 0.1


def test_passthrough_is_on_signal_for_the_signals_that_change_nothing():
    """The fast path must deliver exactly what on_signal would, and step
    aside for everything on_signal decides."""
    life = make(signal_map={signal.SIGUSR1: signal.SIGUSR2, signal.SIGHUP: 0})
    for signum in (signal.SIGUSR1, signal.SIGHUP, signal.SIGWINCH, 40):
        expected = kinds(make(signal_map=life.signal_map).on_signal(signum, 1, now=0.0))
        fast = life.passthrough(signum)
        assert ([(lc.DELIVER, fast)] if fast else []) == expected
    for signum in (TERM, INT, signal.SIGTSTP, signal.SIGCHLD):
        assert life.passthrough(signum) is None
    assert make(chatty=True).passthrough(signal.SIGUSR1) is None
    life.on_signal(TERM, 1, now=0.0)
    assert life.passthrough(signal.SIGUSR1) is None  # STOPPING: on_signal decides

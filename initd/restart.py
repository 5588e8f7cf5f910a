"""The restart policy: whether the app is started again after it exits, after
how long, and when to give up. Pure: takes `now` (time.monotonic()) and the
exit, returns a Decision; jitter comes from an injectable random source so
tests are exact (tests/unit/test_restart.py).

- policy `no` (the default: initd exits with the app), `on-failure` (a
  non-zero exit code, which includes death by a signal, 128+N), `always`.
  A restart the health check forced (on_unhealthy: restart) restarts whatever
  the policy, with the same backoff and give-up accounting, so a flapping app
  cannot restart in a tight loop.
- backoff: the n-th consecutive restart waits initial * 2**(n-1), at most
  max, times a jitter factor in [0.8, 1.2) (so containers restarted together
  do not hammer a shared dependency in step), and never more than max. When
  the app ran at least reset_after before it exited, it counts as having
  recovered: the next delay is initial again. Docker's values: 100ms
  doubling, reset after 10s; our max is 30s.
- give_up: more than `restarts` restarts within the last `within` seconds:
  give up (initd exits with the app's last status). The record of restart
  times is bounded by `restarts`, so it never grows.
"""
from initd.record import record

NO, ON_FAILURE, ALWAYS = "no", "on-failure", "always"
POLICIES = (NO, ON_FAILURE, ALWAYS)

DEFAULT_INITIAL = 0.1
DEFAULT_MAX = 30.0
DEFAULT_RESET_AFTER = 10.0
DEFAULT_GIVE_UP_RESTARTS = 10
DEFAULT_GIVE_UP_WITHIN = 60.0
JITTER = 0.2

# give_up_restarts None: never give up.
RestartSpec = record("RestartSpec", "policy initial max reset_after give_up_restarts give_up_within",
                     defaults=(NO, DEFAULT_INITIAL, DEFAULT_MAX, DEFAULT_RESET_AFTER,
                               DEFAULT_GIVE_UP_RESTARTS, DEFAULT_GIVE_UP_WITHIN))

# action: "restart" (after `delay` seconds), "exit" (the policy does not
# restart this exit) or "give_up" (too many restarts; `reason` says so).
Decision = record("Decision", "action delay reason")


def _random():
    import random  # only when a restart is actually decided: ~1 ms at start-up saved
    return random.random()


class RestartPolicy:
    def __init__(self, spec, random=_random):
        self.spec = spec
        self.random = random
        self.started_at = None
        self.attempt = 0          # consecutive restarts since the app last ran reset_after
        self.recent = []          # monotonic times of the last give_up_restarts restarts
        self.total = 0

    def started(self, now):
        """The app (re)started at `now`."""
        self.started_at = now

    def wants(self, exit_code, forced=False):
        """Whether the policy restarts this exit at all."""
        if forced or self.spec.policy == ALWAYS:
            return True
        return self.spec.policy == ON_FAILURE and exit_code != 0

    def delay(self, attempt):
        """The jittered delay before restart number `attempt` (1, 2, ...)."""
        spec = self.spec
        base = min(spec.max, spec.initial * 2.0 ** min(attempt - 1, 1000))
        factor = 1.0 - JITTER + 2 * JITTER * self.random()
        return min(spec.max, base * factor)

    def exited(self, now, exit_code, forced=False):
        """The app exited at `now` with exit_code (forced: the health check
        asked for the restart). Returns a Decision."""
        spec = self.spec
        if not self.wants(exit_code, forced):
            return Decision("exit", None, f"restart policy {spec.policy!r}: not restarting after exit code {exit_code}")
        if self.started_at is not None and now - self.started_at >= spec.reset_after:
            self.attempt = 0  # it ran reset_after without failing: back to initial
        limit, window = spec.give_up_restarts, spec.give_up_within
        if limit is not None:
            self.recent = [t for t in self.recent if now - t < window]
            if len(self.recent) >= limit:
                return Decision("give_up", None,
                                f"giving up: {len(self.recent)} restarts within {window:g}s "
                                f"(give_up: {limit} within {window:g}s)")
            self.recent.append(now)
        self.attempt += 1
        self.total += 1
        return Decision("restart", self.delay(self.attempt),
                        "unhealthy" if forced else f"exit code {exit_code}")

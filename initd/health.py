"""Health: the state machine and the probe schedule. Pure: every method takes
`now` (time.monotonic()) and no method makes an OS call, so both are driven
by a fake clock in tests (tests/unit/test_health.py).

Both follow Docker's HEALTHCHECK exactly (moby daemon/health.go, `monitor` and
`handleProbeResult`), so a role moved from a Dockerfile behaves the same:

- The state starts as `starting`. One success makes it `healthy`, whatever it
  was. `retries` consecutive failures make it `unhealthy`.
- A failure does not count while the state is still `starting` and the probe
  *began* less than `start_period` after the app started (Docker compares the
  probe's start time, so a probe that begins inside the start period and
  fails after it ends does not count). Once one probe has succeeded, failures
  inside the start period count.
- The first probe runs one interval after the app starts; each next one an
  interval after the previous one *finished* (probes never overlap). The
  interval is `start_interval` while the app is inside its start period and
  still `starting`, else `interval`; with start_period 0 it is always
  `interval`.
- A probe that takes longer than `timeout` has failed. One that finishes
  exactly at its timeout has not taken longer: its own result counts.

A failure can also come from elsewhere (the sd_notify watchdog of issue 13):
HealthState.record() takes any result, probe or not.
"""
from initd.record import record

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"

# Docker's defaults (moby: defaultProbeInterval, defaultProbeTimeout,
# defaultStartPeriod, defaultStartInterval, defaultProbeRetries).
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_PERIOD = 0.0
DEFAULT_START_INTERVAL = 5.0

# on_unhealthy "exit": initd stops the app and exits with this, so the
# orchestrator replaces the container and the cause is plain (sysexits.h
# EX_UNAVAILABLE, "service unavailable"; no shell or signal code collides).
UNHEALTHY_EXIT_CODE = 69

# Docker keeps the first 4096 bytes of a probe's output; so do we.
MAX_OUTPUT = 4096

# One probe's outcome. code: the exec probe's exit code (128+N for signal N)
# or the HTTP status; None for a timeout or a connection that failed.
# began/at: monotonic times the probe started and finished.
Result = record("Result", "ok code detail output duration began at")

# A change of state, and the result that caused it.
Transition = record("Transition", "old new result failing_streak")


class HealthState:
    """starting -> healthy <-> unhealthy, counted as Docker counts."""

    def __init__(self, retries=DEFAULT_RETRIES, start_period=DEFAULT_START_PERIOD, started_at=0.0):
        self.retries = retries
        self.start_period = start_period
        self.started_at = started_at
        self.state = STARTING
        self.failing_streak = 0
        self.last = None

    def restart(self, now):
        """The app was started again: a fresh start period, back to starting."""
        # ANY -> STARTING (Docker resets health when a container restarts)
        self.started_at = now
        self.state = STARTING
        self.failing_streak = 0

    def in_start_period(self, moment):
        return moment - self.started_at < self.start_period

    def record(self, ok, code, detail, output, duration, now):
        """One result that finished at `now` after `duration` seconds.
        Returns a Transition when the state changed, else None."""
        began = now - duration
        result = Result(ok, code, detail, output[:MAX_OUTPUT], duration, began, now)
        self.last = result
        old = self.state
        if ok:
            # ANY -> HEALTHY: one success is enough
            self.failing_streak = 0
            self.state = HEALTHY
        elif old == STARTING and self.in_start_period(began):
            pass  # a failure while starting, inside the start period: not counted
        else:
            self.failing_streak += 1
            if self.failing_streak >= self.retries:
                # STARTING/HEALTHY -> UNHEALTHY
                self.state = UNHEALTHY
        if self.state != old:
            return Transition(old, self.state, result, self.failing_streak)
        return None

    def snapshot(self, now, wall_now):
        """The `health` part of status(): `at` as unix time (wall_now is
        time.time() taken with `now`), so the pure part never reads a clock."""
        last = self.last
        if last is not None:
            last = {"ok": last.ok, "code": last.code, "detail": last.detail,
                    "output": last.output, "duration": round(last.duration, 6),
                    "at": wall_now - (now - last.at)}
        return {"state": self.state, "failing_streak": self.failing_streak, "last": last}


def describe(role, transition):
    """The one log line for a transition: the probe's exit code or HTTP
    status, and the first line of its output."""
    r = transition.result
    parts = [f"{role}: health {transition.old} -> {transition.new}"]
    if r.code is not None:
        parts.append(f"code {r.code}")
    if r.detail:
        parts.append(r.detail)
    if not r.ok:
        parts.append(f"failing streak {transition.failing_streak}")
    first = r.output.strip().split("\n", 1)[0].strip() if r.output else ""
    if first:
        parts.append(f"output: {first[:200]}")
    return ", ".join(parts)


class Schedule:
    """When the next probe runs and when the running one times out.

    next_deadline() is what the loop waits for; due() says a probe should
    begin; expired() says the running one has timed out.
    """

    def __init__(self, interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
                 start_period=DEFAULT_START_PERIOD, start_interval=DEFAULT_START_INTERVAL,
                 started_at=0.0):
        self.interval = interval
        self.timeout = timeout
        self.start_period = start_period
        self.start_interval = start_interval
        self.running_since = None
        self.next_due = None
        self.restart(started_at)

    def restart(self, now, status=STARTING):
        """The app (re)started at `now`: no probe running, the first one
        due one (start) interval from now."""
        self.started_at = now
        self.running_since = None
        self.next_due = now + self.gap(now, status)

    def gap(self, now, status):
        """Docker's getInterval(): start_interval inside the start period
        while still starting, else interval."""
        if now - self.started_at >= self.start_period:
            return self.interval
        return self.start_interval if status == STARTING else self.interval

    def next_deadline(self):
        if self.running_since is not None:
            return self.running_since + self.timeout
        return self.next_due

    def due(self, now):
        return self.running_since is None and now >= self.next_due

    def begin(self, now):
        """A probe starts now; returns its deadline."""
        self.running_since = now
        return now + self.timeout

    def expired(self, now):
        """The running probe has not finished by its deadline."""
        return self.running_since is not None and now >= self.running_since + self.timeout

    def overran(self, now):
        """A result arriving now took longer than the timeout (the loop
        woke late): Docker counts such a probe as failed."""
        return self.running_since is not None and now - self.running_since > self.timeout

    def end(self, now, status):
        """The running probe finished (or was killed) at `now`, leaving the
        health in `status`: the next one is due one gap later. Returns the
        probe's duration."""
        began = self.running_since if self.running_since is not None else now
        self.running_since = None
        self.next_due = now + self.gap(now, status)
        return now - began

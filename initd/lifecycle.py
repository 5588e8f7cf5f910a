"""The app's life as a pure state machine: events in, actions out.

No OS calls and no clock of its own: the driver (loop.py) passes `now` and
carries out the actions, so every history (the shim dying first, a second
TERM, the stop timeout running out) replays in a unit test with a fake clock.

    RUNNING     the app runs; signals are translated and delivered
    DRAINING    a stop signal came and the role has `drain`: initd reports
                not-ready at once and the app keeps serving for the drain
                time; then its stop signal (a second stop signal: at once)
    STOPPING    a stop signal (TERM, INT) was delivered, or the health check
                asked for a restart or an exit: the app has stop_timeout
                seconds (`then` says what follows: exit or restart)
    KILLING     the timeout ran out: SIGKILL went to the app's process group;
                the shim gets orphan_grace seconds to leave, then SIGKILL
    BACKOFF     the app exited and the restart policy starts it again after
                a delay; a stop signal now ends the run at once
    SWEEPING    the app is gone for good: every leftover process gets SIGTERM,
                then after orphan_grace SIGKILL, until none is left
    LINGERING   all gone; initd waits exit_delay (log shippers read the last
                lines); a stop signal cuts it short
    DONE        initd exits with exit_code()

status() names STOPPING/KILLING on the way to a restart "restarting".

Actions are tuples: (DELIVER, signum), (KILL_APP,), (KILL_SHIM,),
(SWEEP, signum), (SUSPEND,), (START,), (LOG, level, message).
"""
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start

from initd import signals

RUNNING, DRAINING, STOPPING, KILLING, BACKOFF, SWEEPING, LINGERING, DONE = (
    "running", "draining", "stopping", "killing", "backoff", "sweeping", "lingering", "done")

DELIVER, KILL_APP, KILL_SHIM, SWEEP, SUSPEND, START, LOG = (
    "deliver", "kill-app", "kill-shim", "sweep", "suspend", "start", "log")

# What follows the app's exit in STOPPING/KILLING.
EXIT, RESTART = "exit", "restart"

# The exit code when the health check ends the run (on_unhealthy: exit):
# EX_UNAVAILABLE, distinct from any shell or signal code.
UNHEALTHY_EXIT_CODE = 69
ERROR, WARNING, INFO, DEBUG = 0, 1, 2, 3  # log.py's levels

# Signals on_signal itself must look at: they stop, suspend or only wake.
_DECIDED = signals.STOP | signals.JOB_CONTROL | {signal.SIGCHLD}

# How long leftovers may take to die after SIGKILL before initd names them
# and exits anyway (a process stuck in the kernel, D state, ignores it).
KILL_WAIT = 5.0


class Lifecycle:
    def __init__(self, name, signal_map, stop_timeout, orphan_grace, exit_zero=frozenset(),
                 job_control=False, app_pid=None, chatty=False, rescan=None,
                 restart_policy=None, on_unhealthy="none", drain=0.0, linger=0.0):
        self.name = name
        self.signal_map = signal_map
        self.stop_timeout = stop_timeout
        self.orphan_grace = orphan_grace
        self.exit_zero = exit_zero
        self.job_control = job_control
        self.app_pid = app_pid      # for log lines only
        self.chatty = chatty        # build INFO lines (the hot path skips them otherwise)
        self.rescan = rescan        # SWEEPING: look for leftovers this often, not only on SIGCHLD
        self.state = RUNNING
        self.deadline = None        # when on_tick/on_leftovers has something to do
        self.code = None            # the app's exit code, once known
        self.shim_alive = True
        self.adopted = False        # the shim died; the app is initd's own child now
        self.stop_sent = None       # the signal that asked the app to stop
        self.sweep_signal = None    # SWEEPING: the last signal sent to the leftovers
        self.policy = restart_policy  # restart.RestartPolicy, or None: exit with the app
        self.on_unhealthy_action = on_unhealthy
        self.drain = drain          # seconds of not-ready serving before the stop signal
        self.linger = linger        # seconds to wait after everything is gone
        self.drained = None         # DRAINING: the stop signal to deliver after it
        self.then = EXIT            # STOPPING/KILLING: what follows the app's exit
        self.exit_override = None   # the container's code when not the app's (69)
        self.restarts = []          # (reason, exit code) of every restart, for status
        stop = signal_map.get(signal.SIGTERM, signal.SIGTERM)
        # A restart must stop the app even when TERM is mapped to nothing.
        self.restart_signal = stop or signal.SIGTERM

    # -- events ----------------------------------------------------------------

    def on_signal(self, signum, sender, now):
        """A signal arrived for PID 1 (SIGCHLD only wakes the driver to reap)."""
        if signum == signal.SIGCHLD:
            return []
        delivered = self.signal_map.get(signum, signum)
        actions = []
        if self.state == BACKOFF:
            if signum in signals.STOP:
                # BACKOFF -> SWEEPING: nothing runs to stop; end with the
                # app's last status
                actions.append((LOG, INFO, f"{signals.name(signum)} during backoff: not "
                                f"restarting {self.name}; exiting with its last code {self.code}"))
                self.state, self.deadline, self.sweep_signal = SWEEPING, None, None
            elif self.chatty:
                actions.append((LOG, INFO, f"{signals.name(signum)} from pid {sender} dropped: "
                                f"{self.name} is not running (backoff)"))
            return actions
        if self.state == LINGERING:
            if signum in signals.STOP:
                self.state, self.deadline = DONE, None  # LINGERING -> DONE, cut short
            return actions
        if self.state == DRAINING and signum in signals.STOP and delivered != signals.DROP:
            # DRAINING -> STOPPING: a second stop signal skips the rest of the drain
            return [(LOG, INFO, f"{signals.name(signum)} while draining: stopping {self.name} "
                     "now"), *self._stop_now(self.drained, now)]
        if self.state in (SWEEPING, DONE):
            if self.chatty:
                actions.append((LOG, INFO, f"{signals.name(signum)} from pid {sender} ignored: "
                                f"{self.name} has exited, initd is finishing"))
            return actions
        if self.chatty:
            if delivered == signals.DROP:
                text = f"dropped {signals.name(signum)} from pid {sender} (mapped to nothing)"
            elif delivered == signum:
                text = f"received {signals.name(signum)} from pid {sender}; passing it on"
            else:
                text = (f"received {signals.name(signum)} from pid {sender}; "
                        f"delivering {signals.name(delivered)}")
            actions.append((LOG, INFO, text))
        if (delivered != signals.DROP and signum in signals.STOP and self.state == RUNNING
                and self.drain > 0):
            # RUNNING -> DRAINING: not ready at once; the stop signal waits
            self.state, self.drained = DRAINING, delivered
            self.deadline = now + self.drain
            actions.append((LOG, INFO, f"draining {self.name} for {self.drain:g}s, then "
                            f"{signals.name(delivered)}"))
        elif delivered != signals.DROP:
            actions.append((DELIVER, delivered))
            if signum in signals.STOP and self.then == RESTART:
                # A stop during a restart's stop phase is not lost: the app
                # still has the time left, and then initd exits.
                self.then = EXIT
                actions.append((LOG, INFO, f"{signals.name(signum)} during a restart: "
                                f"{self.name} will not be started again"))
            if signum in signals.STOP and self.state == RUNNING:
                # RUNNING -> STOPPING (a stop signal mapped to nothing starts
                # no timer: nothing is killed that was not asked to stop)
                self.state = STOPPING
                self.stop_sent = delivered
                self.deadline = now + self.stop_timeout
                actions.append((LOG, INFO, f"stopping {self.name}: it has {self.stop_timeout:g}s "
                                f"to exit after {signals.name(delivered)}"))
        if self.job_control and signum in signals.JOB_CONTROL:
            actions.append((SUSPEND,))
        return actions

    def _stop_now(self, stop, now):
        # DRAINING -> STOPPING
        self.state, self.stop_sent = STOPPING, stop
        self.deadline = now + self.stop_timeout
        return [(DELIVER, stop), (LOG, INFO, f"stopping {self.name}: it has "
                 f"{self.stop_timeout:g}s to exit after {signals.name(stop)}")]

    def extend_stop(self, until):
        """EXTEND_TIMEOUT_USEC from the app while it stops: the stop timer
        runs to `until` if that is later."""
        if self.state == STOPPING and self.deadline is not None and until > self.deadline:
            self.deadline = until
            return True
        return False

    def passthrough(self, signum):
        """The fast path of on_signal, for the signals that change nothing
        but the app (USR1, HUP, WINCH... while RUNNING, nothing to log): the
        signal to deliver (signals.DROP: none). None when on_signal must
        decide (a stop or job-control signal, another state, -v)."""
        if self.state != RUNNING or self.chatty or signum in _DECIDED:
            return None
        return self.signal_map.get(signum, signum)

    def on_shim_exit(self, code, app_is_child, now):
        """The ppidshim was reaped. app_is_child: the app was re-parented to
        initd (alive, or dead and not yet reaped), so the shim died first."""
        self.shim_alive = False
        if not app_is_child:
            return self._app_exited(code, now)  # the shim left with the app's status
        self.adopted = True
        return [(LOG, WARNING, f"ppidshim died unexpectedly (exit {code}) while {self.name} "
                 f"(pid {self.app_pid}) was running; initd adopted it and goes on supervising "
                 "it, delivering signals to it directly")]

    def on_app_exit(self, code, now):
        """The app itself was reaped by initd (adopted, or run without a shim)."""
        return self._app_exited(code, now)

    def _app_exited(self, code, now):
        if self.state in (SWEEPING, DONE, BACKOFF):
            return []
        self.code = code
        self.deadline = None
        actions = []
        stopping = self.state in (DRAINING, STOPPING, KILLING)
        if self.policy is not None and (not stopping or self.then == RESTART):
            forced = stopping  # a restart the health check asked for
            decision = self.policy.exited(now, code, forced=forced)
            if decision.action == "restart":
                # RUNNING/STOPPING/KILLING -> BACKOFF
                self.state, self.then = BACKOFF, EXIT
                self.deadline = now + decision.delay
                self.restarts.append((decision.reason, code))
                return [(LOG, WARNING, f"{self.name} exited with code {code}; restarting it in "
                         f"{decision.delay:.3g}s ({decision.reason})")]
            if decision.action == "give_up":
                actions.append((LOG, ERROR, f"{self.name}: {decision.reason}; exiting with its "
                                f"last code {code}"))
        # RUNNING/STOPPING/KILLING -> SWEEPING
        self.state = SWEEPING
        self.sweep_signal = None
        return actions

    def on_started(self, app_pid, now):
        """The driver started the app again (after START)."""
        # BACKOFF -> RUNNING
        self.app_pid = app_pid
        self.state, self.deadline, self.then = RUNNING, None, EXIT
        self.adopted = False
        if self.policy is not None:
            self.policy.started(now)
        return [(LOG, INFO, f"started {self.name} again (pid {app_pid})")]

    def on_unhealthy(self, now):
        """The health check found the app unhealthy: act as on_unhealthy says."""
        if self.state != RUNNING or self.on_unhealthy_action == "none":
            return []
        stop = self.restart_signal
        if self.on_unhealthy_action == "restart":
            self.then = RESTART
            what = f"restarting it: {signals.name(stop)}"
        else:
            self.then, self.exit_override = EXIT, UNHEALTHY_EXIT_CODE
            what = (f"stopping it to exit with code {UNHEALTHY_EXIT_CODE}: "
                    f"{signals.name(stop)}")
        # RUNNING -> STOPPING
        self.state, self.stop_sent = STOPPING, stop
        self.deadline = now + self.stop_timeout
        return [(LOG, WARNING, f"{self.name} is unhealthy; {what}, then "
                 f"{self.stop_timeout:g}s before SIGKILL"), (DELIVER, stop)]

    def on_leftovers(self, left, now):
        """SWEEPING: the driver looked; `left` is how many processes remain
        (None: some, uncounted). Decides TERM, KILL, or done."""
        if self.state != SWEEPING:
            return []
        if not left and left is not None:
            return self._finish(now, [])
        many = "the processes left" if left is None else \
            f"{left} leftover process{'es' if left != 1 else ''}"
        if self.sweep_signal is None:
            self.sweep_signal = signal.SIGTERM
            self.deadline = now + self.orphan_grace
            return [(LOG, INFO, f"{self.name} exited with code {self.code}; sending SIGTERM to "
                     f"{many} and giving them {self.orphan_grace:g}s"),
                    (SWEEP, signal.SIGTERM)]
        if now < self.deadline:
            return []
        if self.sweep_signal == signal.SIGTERM:
            self.sweep_signal = signal.SIGKILL
            self.deadline = now + KILL_WAIT
            return [(LOG, WARNING, f"{many} still running {self.orphan_grace:g}s after SIGTERM; "
                     "sending SIGKILL"), (SWEEP, signal.SIGKILL)]
        # SWEEPING -> DONE, with survivors named
        return self._finish(now, [(LOG, WARNING, f"{many} survived SIGKILL for {KILL_WAIT:g}s; "
                                   "exiting anyway")])

    def _finish(self, now, actions):
        if self.linger > 0:
            # SWEEPING -> LINGERING
            self.state, self.deadline = LINGERING, now + self.linger
            actions.append((LOG, INFO, f"lingering {self.linger:g}s before exiting "
                            f"(exit_delay)"))
        else:
            self.state, self.deadline = DONE, None  # SWEEPING -> DONE
        return actions

    def on_tick(self, now):
        """Deadlines of the stop sequence and of the backoff."""
        if self.deadline is None or now < self.deadline:
            return []
        if self.state == BACKOFF:
            self.deadline = None  # BACKOFF -> (START) -> RUNNING, in on_started
            return [(START,)]
        if self.state == DRAINING:
            return self._stop_now(self.drained, now)
        if self.state == LINGERING:
            self.state, self.deadline = DONE, None  # LINGERING -> DONE
            return []
        if self.state == STOPPING:
            # STOPPING -> KILLING
            self.state = KILLING
            self.deadline = now + self.orphan_grace
            return [(LOG, WARNING, f"{self.name} (pid {self.app_pid}) still running "
                     f"{self.stop_timeout:g}s after {signals.name(self.stop_sent)}; "
                     "sending SIGKILL to its process group"), (KILL_APP,)]
        if self.state == KILLING:
            self.deadline = None
            if self.shim_alive:
                return [(LOG, WARNING, "ppidshim did not exit after its app was killed; "
                         "sending it SIGKILL"), (KILL_SHIM,)]
        return []

    # -- questions ---------------------------------------------------------------

    def next_deadline(self, now):
        if self.state == SWEEPING and self.rescan is not None:
            rescan = now + self.rescan
            return rescan if self.deadline is None else min(self.deadline, rescan)
        return self.deadline

    def done(self):
        return self.state == DONE

    def exit_code(self):
        """The container's exit code: the app's, or 0 when listed in exit_zero
        (or 69 when the health check ended the run)."""
        if self.exit_override is not None:
            return self.exit_override
        return 0 if self.code in self.exit_zero else self.code

    def public_state(self):
        """The state as status() names it."""
        if self.state in (STOPPING, KILLING) and self.then == RESTART:
            return "restarting"
        return {SWEEPING: "exited", LINGERING: "exited", DONE: "exited"}.get(self.state, self.state)

"""The app's life as a pure state machine: events in, actions out.

No OS calls and no clock of its own: the driver (loop.py) passes `now` and
carries out the actions, so every history (the shim dying first, a second
TERM, the stop timeout running out) replays in a unit test with a fake clock.

    RUNNING   the app runs; signals are translated and delivered
    STOPPING  a stop signal (TERM, INT) was delivered: the app has
              stop_timeout seconds
    KILLING   the timeout ran out: SIGKILL went to the app's process group;
              the shim gets orphan_grace seconds to leave, then SIGKILL
    SWEEPING  the app is gone: every leftover process gets SIGTERM, then
              after orphan_grace SIGKILL, until none is left
    DONE      initd exits with exit_code()

Actions are tuples: (DELIVER, signum), (KILL_APP,), (KILL_SHIM,),
(SWEEP, signum), (SUSPEND,), (LOG, level, message).
"""
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start

from initd import signals

RUNNING, STOPPING, KILLING, SWEEPING, DONE = "running", "stopping", "killing", "sweeping", "done"

DELIVER, KILL_APP, KILL_SHIM, SWEEP, SUSPEND, LOG = (
    "deliver", "kill-app", "kill-shim", "sweep", "suspend", "log")
ERROR, WARNING, INFO, DEBUG = 0, 1, 2, 3  # log.py's levels

# How long leftovers may take to die after SIGKILL before initd names them
# and exits anyway (a process stuck in the kernel, D state, ignores it).
KILL_WAIT = 5.0


class Lifecycle:
    def __init__(self, name, signal_map, stop_timeout, orphan_grace, exit_zero=frozenset(),
                 job_control=False, app_pid=None, chatty=False, rescan=None):
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

    # -- events ----------------------------------------------------------------

    def on_signal(self, signum, sender, now):
        """A signal arrived for PID 1 (SIGCHLD only wakes the driver to reap)."""
        if signum == signal.SIGCHLD:
            return []
        delivered = self.signal_map.get(signum, signum)
        actions = []
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
        if delivered != signals.DROP:
            actions.append((DELIVER, delivered))
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
        if self.state in (SWEEPING, DONE):
            return []
        # RUNNING/STOPPING/KILLING -> SWEEPING
        self.code = code
        self.state = SWEEPING
        self.deadline = None
        self.sweep_signal = None
        return []

    def on_leftovers(self, left, now):
        """SWEEPING: the driver looked; `left` is how many processes remain
        (None: some, uncounted). Decides TERM, KILL, or done."""
        if self.state != SWEEPING:
            return []
        if not left and left is not None:
            self.state, self.deadline = DONE, None  # SWEEPING -> DONE
            return []
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
        self.state, self.deadline = DONE, None  # SWEEPING -> DONE, with survivors named
        return [(LOG, WARNING, f"{many} survived SIGKILL for {KILL_WAIT:g}s; exiting anyway")]

    def on_tick(self, now):
        """Deadlines of the stop sequence."""
        if self.deadline is None or now < self.deadline:
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
        """The container's exit code: the app's, or 0 when listed in exit_zero."""
        return 0 if self.code in self.exit_zero else self.code

"""The single wait loop of PID 1.

One thread, one blocking wait: every signal is blocked (cli does that before
any child exists) and taken here with sigtimedwait, whose timeout is the next
deadline. After every wake-up, whatever woke us, all exited children are
reaped. No Python signal handlers, no threads.

Life of a run:
  RUNNING   the app runs; signals are translated and handed to the ppidshim,
            which passes them on to the app
  STOPPING  a stop signal (TERM, INT) arrived: the app has stop_timeout
            seconds, then its process group gets SIGKILL
  SWEEPING  the app is gone: every other process left gets SIGTERM, a short
            grace, then SIGKILL, and everything is reaped
  then initd exits with the app's exit code (128+N for signal N).
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import time

from initd import log, reaper, signals


def wait_for_signal(deadline):
    """The next signal, or None when the deadline (monotonic) passes first."""
    if deadline is None:
        return signal.sigwaitinfo(signals.WAITED)
    timeout = deadline - time.monotonic()
    if timeout <= 0:
        return None
    return signal.sigtimedwait(signals.WAITED, timeout)


def _earliest(*deadlines):
    pending = [d for d in deadlines if d is not None]
    return min(pending) if pending else None


def _kill(pid, signum):
    """kill() that tolerates a target that has just gone away."""
    try:
        os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as e:
        log.warning(f"cannot send {signals.name(signum)} to pid {pid}: {e.strerror}")
        return False


class Init:
    def __init__(self, name, shim_pid, app_pid, signal_map, stop_timeout,
                 orphan_grace, process_group=False, exit_zero=frozenset(),
                 warn_on_reap=False, job_control=False):
        self.name = name
        self.shim = shim_pid        # None once reaped
        self.app = app_pid          # None if the shim could not start it
        self.adopted = False        # the shim died first and the app became our child
        self.signal_map = signal_map
        self.stop_timeout = stop_timeout
        self.orphan_grace = orphan_grace
        self.process_group = process_group
        self.exit_zero = exit_zero        # app exit codes reported as 0 (tini -e)
        self.warn_on_reap = warn_on_reap  # a warning per orphan reaped (tini -w)
        self.job_control = job_control    # stop ourselves after TSTP/TTIN/TTOU (dumb-init)
        self.code = None            # the app's exit code, once known
        self.stop_deadline = None   # STOPPING: when the app's group gets SIGKILL
        self.kill_deadline = None   # after SIGKILL: when the shim itself gets it
        self.stop_signal = None     # what the app was sent to stop it

    def run(self):
        """Run until the app is gone and the namespace swept; the exit code."""
        while self.code is None:
            info = wait_for_signal(_earliest(self.stop_deadline, self.kill_deadline))
            # PID 1 must not die of its own bug: say so and keep serving.
            try:
                if info is not None:
                    self.on_signal(info.si_signo, info.si_pid)
                    self.suspend_for_job_control(info.si_signo)
                self.reap()
                self.check_deadlines()
            except Exception as e:  # noqa: BLE001
                log.error(f"internal error, carrying on: {type(e).__name__}: {e}")
        self.sweep()
        if self.code in self.exit_zero:
            log.info(f"{self.name} exited with code {self.code}, reported as 0 (--exit-zero)")
            return 0
        log.info(f"exiting with code {self.code}")
        return self.code

    # -- signals ----------------------------------------------------------

    def on_signal(self, signum, sender):
        if signum == signal.SIGCHLD:
            return  # reap() runs after every wake-up anyway
        delivered = self.signal_map.get(signum, signum)
        if log.wants(log.INFO):  # the hot path of a signal flood: no formatting unless shown
            if delivered == signals.DROP:
                log.info(f"dropped {signals.name(signum)} from pid {sender} (mapped to nothing)")
            elif delivered == signum:
                log.info(f"received {signals.name(signum)} from pid {sender}; passing it on")
            else:
                log.info(f"received {signals.name(signum)} from pid {sender}; "
                         f"delivering {signals.name(delivered)}")
        if delivered == signals.DROP:
            return
        self.deliver(delivered)
        if signum in signals.STOP and self.stop_deadline is None and self.kill_deadline is None:
            # RUNNING -> STOPPING
            self.stop_signal = delivered
            self.stop_deadline = time.monotonic() + self.stop_timeout
            log.info(f"stopping {self.name}: it has {self.stop_timeout:g}s to exit "
                     f"after {signals.name(delivered)}")

    def suspend_for_job_control(self, signum):
        """--job-control (dumb-init): once TSTP, TTIN or TTOU has been passed
        on (or dropped), stop ourselves too, so the shell that started us
        sees its job stop; its SIGCONT then continues us and is passed on
        like any other signal. As PID 1 the kernel ignores a SIGSTOP we send
        ourselves, as it does dumb-init's."""
        if self.job_control and signum in signals.JOB_CONTROL:
            log.debug(f"job control: {signals.name(signum)}: stopping initd until SIGCONT")
            _kill(os.getpid(), signal.SIGSTOP)

    def deliver(self, signum):
        if (signum in (signal.SIGSTOP, signal.SIGKILL) and self.app is not None
                and (self.shim is not None or self.adopted)):
            # The shim cannot pass these on (they would stop or kill the shim
            # itself), so they go straight to the app: a map to STOP (dumb-init
            # delivers TSTP as STOP to a setsid app) or KILL. The app is the
            # live shim's child or our adopted one, so its pid is not reused.
            # Its group may not exist yet (setsid runs in the app): then the app.
            if not (self.process_group and _kill(-self.app, signum)):
                _kill(self.app, signum)
            return
        if self.shim is not None:
            # The shim is our unreaped child, so its pid cannot have been
            # reused; it passes the signal on to the app (or its group).
            _kill(self.shim, signum)
        elif self.adopted:
            _kill(-self.app if self.process_group else self.app, signum)

    # -- children ----------------------------------------------------------

    def reap(self):
        watched = {p for p in (self.shim, self.app) if p is not None}
        found, others = reaper.reap_all(watched, self._warn_reaped if self.warn_on_reap else None)
        if others:
            log.debug(f"reaped {others} orphaned process(es)")
        if self.shim in found:
            shim_code, self.shim = found[self.shim], None
            if self.app in found:
                # The app was re-parented to us, so the shim died first; the
                # app's own death (its parent-death signal) was reaped with it.
                self.adopt(shim_code, alive=False)
                self.code = found[self.app]
            elif self.app is not None and self._is_our_child(self.app):
                self.adopt(shim_code, alive=True)
            else:
                self.code = shim_code  # the shim left with the app's status
        elif self.adopted and self.app in found:
            self.code = found[self.app]

    @staticmethod
    def _warn_reaped(pid, code):
        log.warning(f"reaped zombie process with pid={pid} (exit code {code})")

    @staticmethod
    def _is_our_child(pid):
        # waitpid answers ECHILD for anything that is not our child, whatever
        # /proc is mounted; WNOHANG keeps it from blocking.
        try:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def adopt(self, shim_code, alive):
        """The ppidshim died while the app ran: the kernel re-parented the app
        to us and sent it the parent-death signal. Stop it gracefully, unless
        it is already gone (then its pid may not be signalled again)."""
        self.adopted = True
        stop = self.signal_map.get(signal.SIGTERM, signal.SIGTERM) or signal.SIGTERM
        state = f"stopping it with {signals.name(stop)}" if alive else "it has exited too"
        log.warning(f"ppidshim died unexpectedly (exit {shim_code}) while {self.name} "
                    f"(pid {self.app}) was running; {state}")
        if not alive:
            return
        self.deliver(stop)
        if self.stop_deadline is None and self.kill_deadline is None:
            self.stop_signal = stop
            self.stop_deadline = time.monotonic() + self.stop_timeout

    def check_deadlines(self):
        now = time.monotonic()
        if self.stop_deadline is not None and now >= self.stop_deadline:
            # STOPPING -> KILLING
            self.stop_deadline = None
            log.warning(f"{self.name} (pid {self.app}) still running {self.stop_timeout:g}s "
                        f"after {signals.name(self.stop_signal)}; sending SIGKILL to its process group")
            if self.app is not None:
                _kill(-self.app, signal.SIGKILL)
                _kill(self.app, signal.SIGKILL)  # in case it left its group
            self.kill_deadline = now + self.orphan_grace
        elif self.kill_deadline is not None and now >= self.kill_deadline:
            self.kill_deadline = None
            if self.shim is not None:
                log.warning("ppidshim did not exit after its app was killed; sending it SIGKILL")
                _kill(self.shim, signal.SIGKILL)

    # -- the end -------------------------------------------------------------

    def sweep(self):
        """SWEEPING: TERM, grace, KILL for every process still alive, then reap
        them all: when PID 1 exits the kernel SIGKILLs whatever is left, with
        no chance to finish, so we do it gracefully first."""
        left = _leftovers()
        if not left:
            reaper.reap_all(())
            return
        log.info(f"{self.name} exited with code {self.code}; sending SIGTERM to "
                 f"{_count(left)} and giving them {self.orphan_grace:g}s")
        _signal_leftovers(left, signal.SIGTERM)
        left = _wait_until_gone(time.monotonic() + self.orphan_grace)
        if left:
            log.warning(f"{_count(left)} still running {self.orphan_grace:g}s after SIGTERM; "
                        "sending SIGKILL")
            _signal_leftovers(left, signal.SIGKILL)
            # SIGKILL is prompt unless a process is stuck in the kernel.
            left = _wait_until_gone(time.monotonic() + 5)
            if left:
                log.warning(f"{_count(left)} survived SIGKILL for 5s; exiting anyway")


def _wait_until_gone(deadline):
    """Reap until no leftover remains or the deadline passes; what is left.

    Wakes on SIGCHLD, but also every 50 ms: a subreaper gets no SIGCHLD when a
    grandchild exits, so the leftovers are looked at again."""
    while True:
        reaper.reap_all(())
        left = _leftovers()
        now = time.monotonic()
        if not left or now >= deadline:
            return left
        wait_for_signal(min(deadline, now + 0.05))


def _leftovers():
    """The processes to sweep: as PID 1, everything else in our namespace
    (["all"] when there is something but /proc is not ours to count it); as a
    subreaper, our descendants only, never the host's processes."""
    if os.getpid() == 1:
        try:
            os.kill(-1, 0)
        except ProcessLookupError:
            return []
        try:
            if os.readlink("/proc/self") == "1":
                return [int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1"] or ["all"]
        except OSError:
            pass
        return ["all"]
    import psutil  # 20 ms to import: only here, only when not PID 1
    try:
        return [p.pid for p in psutil.Process().children(recursive=True)
                if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return []


def _signal_leftovers(left, signum):
    if os.getpid() == 1:
        _kill(-1, signum)  # everything in the namespace but us
    else:
        for pid in left:
            _kill(pid, signum)


def _count(left):
    if left == ["all"]:
        return "the processes left"
    return f"{len(left)} leftover process{'es' if len(left) != 1 else ''}"

"""The supervisor: runs the plan's app inside the loop. It feeds signals,
exits and time to the pure Lifecycle (lifecycle.py), the health results to
the pure HealthState (health.py), and carries out what they decide: deliver,
kill, sweep, start again. It also keeps the counters and the status() that
the control socket and the metrics read.
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import time

from initd import lifecycle as lc
from initd import log, reaper, signals
from initd.errors import InitdError

_LOG = {lc.ERROR: log.error, lc.WARNING: log.warning, lc.INFO: log.info, lc.DEBUG: log.debug}


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


class Supervisor:
    """Runs the plan's app in the loop: carries out the Lifecycle's actions."""

    def __init__(self, loop, plan):
        self.loop = loop
        self.plan = plan
        role = plan.role
        self.shim = None            # None once reaped
        self.app = None             # None if the shim could not start it
        self.app_code = None        # the app's code, reaped before the shim's
        self.app_fd = None          # a pidfd for the app: signals go straight to it
        self.report_fd = None       # pid_file: the shim's "exit PID STATUS" lines
        self.report_buffer = b""
        self.lookup = None          # pid_file: (deadline, old app pid, its code) while
                                    # looking for a successor
        self.started_at = None      # monotonic, of the current app
        self.wall_started_at = None
        self.counters = {"orphans_reaped": 0, "probes": 0, "probe_failures": 0}
        self.received = {}          # signal number -> count
        self.delivered = {}
        self.stop_began = None
        self.stop_duration = None
        policy = None
        restart_spec = getattr(role, "restart", None)
        on_unhealthy = getattr(role, "on_unhealthy", None) or "none"
        if restart_spec is not None and (restart_spec.policy != "no" or on_unhealthy == "restart"):
            from initd.restart import RestartPolicy
            policy = RestartPolicy(restart_spec)
        self.life = lc.Lifecycle(plan.name, plan.signal_map, plan.stop_timeout,
                                 plan.orphan_grace, plan.exit_zero, plan.job_control,
                                 chatty=log.wants(log.INFO),
                                 # As a subreaper a leftover's exit may reach us
                                 # late; look again now and then while sweeping.
                                 rescan=None if os.getpid() == 1 else 0.1,
                                 restart_policy=policy, on_unhealthy=on_unhealthy,
                                 drain=plan.drain, linger=plan.exit_delay)
        self.policy = policy
        now = loop.now()
        self.notify_ready = False   # READY=1 seen (when the role has notify)
        self.notify_status = None   # the app's last STATUS=
        self.notify_receiver = None
        self.watchdog = None
        if plan.notify:
            self._open_notify()
        self.health = None
        self.prober = None
        spec = getattr(role, "health", None)
        if spec is not None or plan.watchdog:
            from initd import health
            self.health = (health.HealthState(spec.retries, spec.start_period, now) if spec
                           else health.HealthState(1, 0.0, now))  # the watchdog alone
        if spec is not None:
            from initd import probes
            self.prober = probes.Prober(spec, loop, self.plan.env, plan.workdir, plan.account,
                                        self.on_probe_result, status=lambda: self.health.state)
            loop.add(self.prober)
        self.hooks = None
        if plan.hooks is not None:
            from initd import hooks
            self.hooks = hooks.Hooks(plan.hooks, plan.name, loop, self.plan.env, plan.workdir,
                                     plan.account)
            loop.add(self.hooks)
        self.was_ready = False
        self.exited_fired = False
        loop.on_signal = self.on_signal
        loop.on_orphan = self.on_orphan
        loop.add(self)

    def _open_notify(self):
        """The sd_notify socket, before the app exists: its address goes into
        the app's environment as NOTIFY_SOCKET."""
        from initd import notify
        address = notify.new_address()
        env = {**self.plan.env, **notify.app_environ(address, self.plan.watchdog or None)}
        self.plan = self.plan._replace(env=env)
        uid = self.plan.account.uid if self.plan.account else os.getuid()
        try:
            self.notify_receiver = notify.Receiver(
                address, notify.family_check(lambda: self.app, lambda: uid), self.on_notify)
        except OSError as e:
            raise InitdError(f"cannot open the notify socket: {e.strerror or e}")
        self.loop.watch(self.notify_receiver.fd, self.notify_receiver.on_ready)
        if self.plan.watchdog:
            self.watchdog = notify.Watchdog(self.plan.watchdog, self.on_watchdog_miss)
            self.loop.add(self.watchdog)

    def begin(self):
        """Start the app the first time (set-up: failures are InitdError)."""
        now = self.loop.now()
        self.start(now, first=True)
        if self.policy is not None:
            self.policy.started(now)

    # -- starting ----------------------------------------------------------------

    def start(self, now, first=False):
        """Start the app under a new shim. Raises InitdError on the first
        start (set-up); later, a failure counts as the app exiting 126."""
        from initd import spawn
        try:
            if self.plan.use_shim:
                self.shim, self.app, report = spawn.start(self.plan)
                if report is not None:
                    self._close_report()
                    self.report_fd = report
                    self.loop.watch(report, self.on_report)
            else:
                self.shim, self.app = None, spawn.start_direct(self.plan)
        except InitdError as e:
            if first:
                raise
            log.error(str(e))
            self.carry_out(self.life.on_started(None, now))
            self.carry_out(self.life.on_app_exit(e.exit_code, now))
            return
        self.app_code = None
        self._open_app_fd()
        self.started_at, self.wall_started_at = now, time.time()
        if self.shim is not None:
            self.loop.on_exit(self.shim, self.on_shim_exit)
        self.life.shim_alive = self.shim is not None
        if self.app is not None:
            # The app is the shim's child: we can only ever reap it once the
            # shim has died and the kernel has re-parented it to us.
            self.loop.on_exit(self.app, self.on_app_exit)
        if first:
            self.life.app_pid = self.app
            under = f"under ppidshim (pid {self.shim})" if self.shim else "as initd's child"
            log.info(f"started {self.plan.name} (pid {self.app}) {under}: "
                     f"{' '.join(self.plan.argv)}")
        else:
            self.carry_out(self.life.on_started(self.app, now))
        self.notify_ready = False
        if self.health is not None and not first:
            self.health.restart(now)
        if self.prober is not None:
            self.prober.start(now)
        if self.watchdog is not None:
            self.watchdog.arm(now)
        # A role without notify or a health check is ready now; nothing may
        # wake the loop for a long time (no deadline), so say it here.
        self._readiness_hooks(now)

    # -- events -----------------------------------------------------------------

    def on_signal(self, signum, sender, now):
        if signum != signal.SIGCHLD:
            # Counted by number on this hot path; status() names them.
            received = self.received
            received[signum] = received.get(signum, 0) + 1
        delivered = self.life.passthrough(signum)
        if delivered is None:
            self.carry_out(self.life.on_signal(signum, sender, now))
        elif delivered:
            self.deliver(delivered)
        if (self.life.done() and signum in signals.STOP and self.hooks is not None
                and self.hooks.busy()):
            # Only a hook keeps initd now (an exited hook with a long
            # timeout): a further stop signal ends the wait, as it ends linger.
            log.warning(f"{signals.name(signum)}: not waiting for the running hooks")
            self.hooks.kill_all()

    def on_shim_exit(self, pid, code, now):
        if pid != self.shim:
            return  # a shim of an earlier start, already accounted for
        if self.report_fd is not None:
            self.on_report(self.report_fd, 0, now)  # what it said before it went
            self._close_report()
        self.shim = None
        if self.lookup is not None:
            # It left because no child was left: no successor can come.
            self._end_lookup(now, _successor(self.plan.pid_file, self.lookup[1], None)[1])
            return
        if self.app_code is not None:
            # Both reaped, the app first: it had been adopted.
            app_code, self.app_code = self.app_code, None
            self.carry_out(self.life.on_shim_exit(code, True, now))
            self.carry_out(self.life.on_app_exit(app_code, now))
            return
        # Non-consuming: if the app exited a moment ago its status stays for
        # the next reap (a consuming check here once lost the app's code).
        adopted = self.app is not None and (self.app in self.loop.batch
                                            or reaper.is_child(self.app))
        if not adopted:
            self.app = None
            self._close_app_fd()
        self.carry_out(self.life.on_shim_exit(code, adopted, now))

    def on_app_exit(self, pid, code, now):
        if pid != self.app:
            return
        self.app = None
        self._close_app_fd()
        if self.shim is not None:
            # Re-parented to us, so the shim has died, but its own status has
            # not been reaped yet (this drain's later entry, or the next one).
            self.app_code = code
            return
        self.carry_out(self.life.on_app_exit(code, now))

    # -- pid_file: following a successor (Unicorn's USR2, nginx's upgrade) --------

    def on_report(self, fd, revents, now):
        """The shim's "exit PID STATUS" lines (subreaper mode, pid_file)."""
        ended = False
        for _ in range(16):  # bounded work per wake
            try:
                chunk = os.read(fd, 4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                ended = True  # the shim is gone: parse what it said, then close
                break
            self.report_buffer += chunk
        *lines, self.report_buffer = self.report_buffer.split(b"\n")
        self.report_buffer = self.report_buffer[-256:]  # a partial line, never unbounded
        if ended:
            self._close_report()
        for line in lines:
            words = line.split()
            if len(words) == 3 and words[0] == b"exit" and words[1].isdigit() \
                    and words[2].lstrip(b"-").isdigit():
                self._shim_reaped(int(words[1]), int(words[2]), now)

    def _close_report(self):
        if self.report_fd is not None:
            self.loop.unwatch(self.report_fd)
            os.close(self.report_fd)
            self.report_fd = None
            self.report_buffer = b""

    def _shim_reaped(self, pid, status, now):
        if pid != self.app:
            return  # an orphan the shim adopted and reaped
        code = reaper.exit_code(status)
        self.app = None
        self._close_app_fd()
        self.lookup = (now + PID_FILE_GRACE, pid, code)
        self._look_for_successor(now)

    def _look_for_successor(self, now):
        deadline, old, code = self.lookup
        pid, why = _successor(self.plan.pid_file, old, self.shim)
        if pid is not None:
            self.lookup = None
            self.app = pid
            self.life.app_pid = pid
            self._open_app_fd()
            log.warning(f"{self.plan.name} (pid {old}) exited with code {code}; following its "
                        f"successor pid {pid} named in {self.plan.pid_file}")
            if self.life.state in (lc.STOPPING, lc.KILLING) and self.life.stop_sent:
                self.deliver(self.life.stop_sent)  # a stop that came meanwhile
            self._readiness_hooks(now)
            return
        if now >= deadline:
            self._end_lookup(now, why)

    def _end_lookup(self, now, why):
        _deadline, old, code = self.lookup
        self.lookup = None
        # A file that names something else is worth a warning; a missing one,
        # or one still naming the app that exited, is the usual plain exit.
        (log.warning if why.startswith(("names", "cannot")) else log.info)(
            f"{self.plan.pid_file}: {why}; {self.plan.name} (pid {old}) has exited with "
            f"code {code} and has no successor")
        self.carry_out(self.life.on_app_exit(code, now))

    def on_orphan(self, pid, code, now):
        self.counters["orphans_reaped"] += 1
        if self.plan.warn_on_reap:
            log.warning(f"reaped zombie process with pid={pid} (exit code {code})")
        elif log.wants(log.DEBUG):
            log.debug(f"reaped orphaned process {pid} (exit code {code})")

    def on_notify(self, event, value, now):
        """A datagram from the app over NOTIFY_SOCKET (sd_notify(3))."""
        try:
            self._on_notify(event, value, now)
        finally:
            self._readiness_hooks(now)  # READY=1, RELOADING=1 change readiness

    def _on_notify(self, event, value, now):
        if event == "ready":
            if not self.notify_ready:
                log.info(f"{self.plan.name} says it is ready (READY=1)")
            self.notify_ready = True
        elif event == "reloading":
            self.notify_ready = False  # until the next READY=1, as systemd
        elif event == "status":
            self.notify_status = value
        elif event == "watchdog":
            if self.watchdog is not None:
                self.watchdog.ping(now)
                if self.prober is None and self.health.state != "healthy":
                    # The watchdog alone: a ping is a passing check.
                    self.on_probe_result(True, None, "watchdog: WATCHDOG=1", "", 0.0, now,
                                         probe=False)
        elif event == "watchdog_usec":
            if self.watchdog is not None and value:
                self.watchdog.set_timeout(value, now)
        elif event == "watchdog_trigger":
            self.on_watchdog_miss(now)
        elif event == "extend_timeout":
            if value and self.life.extend_stop(now + value):
                log.info(f"{self.plan.name} asked for {value:g}s more to stop "
                         "(EXTEND_TIMEOUT_USEC)")
        elif event == "stopping":
            log.info(f"{self.plan.name} says it is stopping (STOPPING=1)")
        elif event == "mainpid":
            log.info(f"{self.plan.name} names its main pid {value} (MAINPID=)")

    def on_watchdog_miss(self, now):
        """No WATCHDOG=1 in time: a failed health check."""
        if self.life.state != lc.RUNNING or self.health is None:
            return
        timeout = self.watchdog.timeout if self.watchdog else 0
        self.on_probe_result(False, None, f"watchdog: no WATCHDOG=1 within {timeout:g}s", "",
                             0.0, now, probe=False)

    def on_probe_result(self, ok, code, detail, output, duration, now, probe=True):
        from initd import health
        if probe:
            self.counters["probes"] += 1
            if not ok:
                self.counters["probe_failures"] += 1
        change = self.health.record(ok, code, detail, output, duration, now)
        if change is None:
            return
        (log.warning if change.new == health.UNHEALTHY else log.info)(
            health.describe(self.plan.name, change))
        if change.new == health.UNHEALTHY:
            self.carry_out(self.life.on_unhealthy(now))
        self._readiness_hooks(now)

    # -- the component protocol ---------------------------------------------------

    def next_deadline(self, now):
        deadline = self.life.next_deadline(now)
        if self.lookup is not None:
            # A pid file is rewritten, not signalled: look again shortly.
            again = min(self.lookup[0], now + PID_FILE_POLL)
            deadline = again if deadline is None else min(deadline, again)
        return deadline

    def on_tick(self, now):
        life = self.life
        if (life.state == lc.RUNNING and self.lookup is None
                and (life.deadline is None or now < life.deadline)):
            return  # the steady state: nothing is due (readiness is looked at where it changes)
        if self.lookup is not None:
            self._look_for_successor(now)
        self.carry_out(self.life.on_tick(now))
        if self.life.state == lc.SWEEPING:
            left = _leftovers(self._hook_groups())
            self.carry_out(self.life.on_leftovers(None if left == ["all"] else len(left), now))
        self._readiness_hooks(now)
        if self.life.state in (lc.LINGERING, lc.DONE):
            if self.stop_began is not None and self.stop_duration is None:
                self.stop_duration = now - self.stop_began
            if self.hooks is not None and not self.exited_fired:
                # After the sweep, so the sweep's SIGTERM never hits the hook.
                self.exited_fired = True
                self.hooks.fire("exited", None, self.life.code, now)
        if self.life.done() and not (self.hooks is not None and self.hooks.busy()):
            # A running hook keeps initd only until its own timeout.
            self.loop.running = False

    def _readiness_hooks(self, now):
        ready = self.ready()
        if ready != self.was_ready:
            self.was_ready = ready
            log.info(f"{self.plan.name} is {'ready' if ready else 'not ready'}")
            if self.hooks is not None:
                self.hooks.fire("ready" if ready else "unready", self.app, None, now)

    # -- actions ------------------------------------------------------------------

    def carry_out(self, actions):
        for action in actions:
            kind = action[0]
            if kind == lc.DELIVER:
                self.deliver(action[1])
            elif kind == lc.LOG:
                _LOG[action[1]](action[2])
            elif kind == lc.KILL_APP:
                if self.app is not None:
                    _kill(-self.app, signal.SIGKILL)
                    _kill(self.app, signal.SIGKILL)  # in case it left its group
            elif kind == lc.KILL_SHIM:
                if self.shim is not None:
                    _kill(self.shim, signal.SIGKILL)
            elif kind == lc.SWEEP:
                _signal_leftovers(action[1], self._hook_groups())
            elif kind == lc.START:
                self.start(self.loop.now())
            elif kind == lc.SUSPEND:
                # dumb-init's job control: the shell that started us sees its
                # job stop; its SIGCONT continues us and is passed on. As PID 1
                # the kernel ignores a SIGSTOP we send ourselves, as dumb-init's.
                _kill(os.getpid(), signal.SIGSTOP)
        if self.life.state != lc.RUNNING:
            if self.stop_began is None and self.life.state in (lc.DRAINING, lc.STOPPING,
                                                               lc.SWEEPING):
                self.stop_began = self.loop.now()
                if self.hooks is not None and self.life.then == lc.EXIT:
                    self.hooks.fire("stopping", self.app, None, self.stop_began)
            if self.prober is not None and self.prober.active:
                self.prober.stop()  # no probes while the app stops or is down
            if self.watchdog is not None:
                self.watchdog.disarm()
            self._readiness_hooks(self.loop.now())  # draining: not ready at once

    def _hook_groups(self):
        """The process groups of running hooks: the sweep spares them (a
        `stopping` hook deregistering the app must not die of the SIGTERM
        meant for the app's leftovers); their own timeout bounds them."""
        return frozenset(self.hooks.running) if self.hooks is not None else frozenset()

    def deliver(self, signum):
        if self.app is None:
            return
        delivered = self.delivered
        delivered[signum] = delivered.get(signum, 0) + 1
        if self.shim is not None and self.app_fd is None and signum not in _SHIM_CANNOT:
            # No pidfd for the app (no /proc to prove it is the shim's child):
            # the shim, our unreaped child (its pid cannot have been reused),
            # passes the signal on to the app or its group.
            _kill(self.shim, signum)
            return
        # Straight to the app: one hop less than through the shim. Its
        # process group first when the plan says so; the group may not exist
        # yet (setsid runs in the app), then the app alone.
        if self.plan.to_group and self._app_alive() and _kill(-self.app, signum):
            return
        self._signal_app(signum)

    def _open_app_fd(self):
        """A pidfd for the app, opened while it is provably the shim's child
        (its parent in /proc is the shim, which has no other child), so a
        signal through it can never reach a process that reused the pid.
        None when that cannot be shown: signals then go through the shim."""
        self._close_app_fd()
        if self.app is None or self.shim is None:
            return
        try:
            fd = os.pidfd_open(self.app)
        except OSError:
            return
        if _parent_of(self.app) != self.shim:
            os.close(fd)
            return
        self.app_fd = fd

    def _close_app_fd(self):
        if self.app_fd is not None:
            os.close(self.app_fd)
            self.app_fd = None

    def _signal_app(self, signum):
        if self.app_fd is None:
            # Without a shim (or adopted) the app is our own unreaped child:
            # its pid cannot have been reused.
            _kill(self.app, signum)
            return
        try:
            signal.pidfd_send_signal(self.app_fd, signum)
        except ProcessLookupError:
            pass  # it has just exited; its status is on its way
        except PermissionError as e:
            log.warning(f"cannot send {signals.name(signum)} to pid {self.app}: {e.strerror}")

    def _app_alive(self):
        """Not yet reaped, so its pid (and its group's id) is still its own."""
        if self.app_fd is None:
            return True  # our own child, or the shim's while the shim lives
        try:
            signal.pidfd_send_signal(self.app_fd, 0)
            return True
        except OSError:
            return False

    # -- what the control socket and the metrics read -------------------------------

    def ready(self):
        """May it take traffic: running (not draining, stopping, restarting
        or in backoff), READY=1 given when the role has notify, and healthy
        when it has a health check."""
        if self.life.state != lc.RUNNING or self.app is None:
            return False
        if self.plan.notify and not self.notify_ready:
            return False
        if self.health is None:
            return True
        if self.prober is None:  # the watchdog alone: ready unless it missed
            return self.health.state != "unhealthy"
        return self.health.state == "healthy"

    def status(self):
        now, wall = self.loop.now(), time.time()
        life = self.life
        restarts_total = {}
        for reason, _code in life.restarts:
            key = "unhealthy" if reason == "unhealthy" else "exit"
            restarts_total[key] = restarts_total.get(key, 0) + 1
        state = life.public_state()
        # Draining is alive by definition: the app keeps serving (a liveness
        # probe failing then would have the platform kill it mid-drain).
        alive = self.app is not None and state in ("running", "draining", "stopping", "killing",
                                                   "restarting")
        health_state = self.health.snapshot(now, wall) if self.health else {
            "state": "none", "failing_streak": 0, "last": None}
        ready = self.ready()
        return {
            "role": self.plan.name,
            "revision": _revision(),
            "state": "ready" if ready else state,
            "ready": ready,
            "alive": alive and health_state["state"] != "unhealthy",
            "pids": {"initd": os.getpid(), "shim": self.shim, "app": self.app},
            "started_at": self.wall_started_at,
            "uptime": None if self.started_at is None else now - self.started_at,
            "health": health_state,
            "notify": ({"ready": self.notify_ready, "status": self.notify_status}
                       if self.plan.notify else None),
            "restarts": [{"reason": r, "exit_code": c} for r, c in life.restarts[-20:]],
            "restarts_total": restarts_total,
            "last_exit_code": life.code,
            "counters": {**self.counters,
                         "signals_received": {signals.name(n): c for n, c in self.received.items()},
                         "signals_delivered": {signals.name(n): c
                                               for n, c in self.delivered.items()}},
            "stop_duration": self.stop_duration,
            "rss_bytes": _rss(),
        }


# pid_file: how long after the app's exit its successor may take to write
# the file, and how often initd looks meanwhile.
PID_FILE_GRACE = 1.0
PID_FILE_POLL = 0.05


def _successor(path, old, shim):
    """(pid, None) when the pid file names a live successor: a process whose
    parent is the shim (re-parented there when the old app exited; so never
    initd, the shim, a probe, a hook or a `docker exec`). Else (None, why)."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, "no such file"
    except OSError as e:
        return None, f"cannot read it: {e.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, "names nothing: not a regular file"
        data = os.read(fd, 64)
    except OSError as e:
        return None, f"cannot read it: {e.strerror}"
    finally:
        os.close(fd)
    text = data.strip()
    if not (text.isdigit() and len(text) <= 10):
        return None, f"names no pid: {data[:20]!r}"
    pid = int(text)
    if pid == old:
        return None, "still names the app that exited"
    if pid <= 1 or pid in (os.getpid(), shim):
        return None, f"names pid {pid}, which is not a successor"
    if shim is None or _parent_of(pid) != shim:
        return None, f"names pid {pid}, which is not a live child of the app's shim"
    return pid, None


# The shim cannot pass these on: they would stop or kill the shim itself.
_SHIM_CANNOT = frozenset({signal.SIGSTOP, signal.SIGKILL})


def _parent_of(pid):
    """The parent pid /proc gives for pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _revision():
    """The git SHA the image was built from (/app/REVISION, the write-up's
    convention), or None."""
    try:
        fd = os.open("/app/REVISION", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        import stat
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 256).decode(errors="replace").strip()
        return text.splitlines()[0] if text else None
    finally:
        os.close(fd)


def _rss():
    """initd's own resident memory, from /proc/self/statm (cheap)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _pgid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def _leftovers(spare=frozenset()):
    """The processes to sweep: as PID 1, everything else in our namespace
    (["all"] when there is something but /proc is not ours to count it); as a
    subreaper, our descendants only, never the host's processes. Zombies
    count: one whose parent is alive is still that parent's to reap, and
    becomes ours once the parent dies."""
    if os.getpid() == 1:
        try:
            os.kill(-1, 0)
        except ProcessLookupError:
            return []
        try:
            if os.readlink("/proc/self") == "1":
                pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1"]
                if spare:
                    return [p for p in pids if _pgid(p) not in spare]
                return pids or ["all"]
        except OSError:
            pass
        return ["all"]
    return [p for p in _descendants(os.getpid()) if not spare or _pgid(p) not in spare]


def _descendants(pid):
    """Every descendant of pid, read from /proc/PID/task/*/children (psutil
    would cost 20 ms to import at the end of every run)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(p) for p in f.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def _signal_leftovers(signum, spare=frozenset()):
    if os.getpid() == 1 and not spare:
        _kill(-1, signum)  # everything in the namespace but us
        return
    if spare:
        # Hooks run: by pid, sparing their groups (new leftovers forked
        # meanwhile are found on the next look, as for a subreaper).
        left = _leftovers(spare)
        if left == ["all"]:  # /proc is not ours to sort them: all, as before
            _kill(-1, signum)
        for pid in ([] if left == ["all"] else left):
            _kill(pid, signum)
        return
    # A subreaper cannot kill(-1): that would reach the host. Signal every
    # descendant by pid; new ones forked meanwhile are found on the next
    # look, which the lifecycle repeats until none is left.
    for pid in _descendants(os.getpid()):
        _kill(pid, signum)



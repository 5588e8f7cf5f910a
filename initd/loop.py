"""The single wait loop of PID 1, and the driver that runs the app in it.

One thread, one blocking wait. Every signal initd handles is blocked (cli
does that before any child exists) and read from a signalfd, which sits in
one poll() beside every other descriptor a component watches (probe
sockets, the control socket, the notify socket). poll's timeout is the
earliest deadline any component has (stop timeout, probe, backoff), so
nothing polls on a short timer. After every wake-up, whatever woke us, every
exited child is reaped and its status handed to whoever asked for that pid.
No Python signal handlers, no threads, no asyncio.

A component plugs in with
    loop.watch(fd, on_ready)      on_ready(fd, revents, now); fd non-blocking
    loop.on_exit(pid, callback)   callback(pid, exit_code, now) when reaped
    loop.add(component)           component.next_deadline(now), .on_tick(now)
and must never block: bounded reads, a deadline for every peer.

AppDriver is the component that owns the app: it feeds signals, exits and
time to the pure Lifecycle (lifecycle.py) and carries out what it decides.
"""
import os
import select
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import time

from initd import lifecycle as lc
from initd import log, reaper, sigfd, signals

_LOG = {lc.ERROR: log.error, lc.WARNING: log.warning, lc.INFO: log.info, lc.DEBUG: log.debug}

# Signals initd raises on itself by writing (its stderr a closed pipe, a
# file-size limit): about initd's own write, never to be passed to the app.
_SELF_INFLICTED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


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


class Loop:
    def __init__(self):
        self.poller = select.poll()
        self.handlers = {}        # fd -> on_ready(fd, revents, now)
        self.exit_callbacks = {}  # pid -> callback(pid, exit_code, now)
        self.components = []
        self.on_signal = None     # (signum, sender pid, now) -> None
        self.on_orphan = None     # (pid, exit_code, now) for reaped pids nobody asked for
        self.running = True
        self.batch = {}           # pid -> exit code of the drain being dispatched
        self.self_pid = os.getpid()
        self.signal_fd = sigfd.open_signalfd(signals.WAITED)
        self.poller.register(self.signal_fd, select.POLLIN)

    # -- what components call ----------------------------------------------------

    def watch(self, fd, on_ready, events=select.POLLIN):
        self.handlers[fd] = on_ready
        self.poller.register(fd, events)

    def unwatch(self, fd):
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def on_exit(self, pid, callback):
        self.exit_callbacks[pid] = callback

    def add(self, component):
        self.components.append(component)

    @staticmethod
    def now():
        return time.monotonic()

    # -- the loop ------------------------------------------------------------------

    def run(self):
        """Wait, dispatch, reap, tick; until a component sets running False."""
        while self.running:
            now = time.monotonic()
            deadline = None
            for component in self.components:
                d = component.next_deadline(now)
                if d is not None and (deadline is None or d < deadline):
                    deadline = d
            if deadline is None:
                timeout = None
            else:
                # poll takes milliseconds: round up, or we would wake just
                # before the deadline and spin until it passes.
                timeout = max(0, min(int((deadline - now) * 1000) + 1, 2 ** 31 - 1))
            try:
                ready = self.poller.poll(timeout)
            except InterruptedError:
                ready = []
            self._dispatch(ready)

    def _dispatch(self, ready):
        now = time.monotonic()
        for fd, revents in ready:
            if fd == self.signal_fd:
                handler = self._read_signals
            else:
                handler = self.handlers.get(fd)
            if handler is not None:
                _guarded(handler, fd, revents, now)
        _guarded(self.reap, now)
        for component in list(self.components):
            _guarded(component.on_tick, now)

    def _read_signals(self, fd, revents, now):
        for signum, sender in sigfd.read_signals(fd):
            if signum in _SELF_INFLICTED and sender == self.self_pid:
                continue
            _guarded(self.on_signal, signum, sender, now)

    def reap(self, now):
        # The whole drain first: a callback may need to know what else was
        # reaped with its pid (the shim and its adopted app together).
        self.batch = dict(reaper.reap_all())
        for pid, code in self.batch.items():
            callback = self.exit_callbacks.pop(pid, None)
            if callback is not None:
                callback(pid, code, now)
            elif self.on_orphan is not None:
                self.on_orphan(pid, code, now)


def _guarded(function, *args):
    """PID 1 must not die of its own bug, nor one component stop the others:
    say so and keep serving."""
    try:
        function(*args)
    except Exception as e:  # noqa: BLE001
        log.error(f"internal error in {getattr(function, '__qualname__', function)}, "
                  f"carrying on: {type(e).__name__}: {e}")


class AppDriver:
    """Runs the plan's app in the loop: carries out the Lifecycle's actions."""

    def __init__(self, loop, plan, shim_pid, app_pid):
        self.loop = loop
        self.plan = plan
        self.shim = shim_pid        # None once reaped
        self.app = app_pid          # None if the shim could not start it
        self.orphans = 0
        self.life = lc.Lifecycle(plan.name, plan.signal_map, plan.stop_timeout,
                                 plan.orphan_grace, plan.exit_zero, plan.job_control,
                                 app_pid=app_pid, chatty=log.wants(log.INFO),
                                 # As a subreaper a leftover's exit may reach us
                                 # late; look again now and then while sweeping.
                                 rescan=None if os.getpid() == 1 else 0.1)
        loop.on_signal = self.on_signal
        loop.on_orphan = self.on_orphan
        self.app_code = None        # the app's code, reaped before the shim's
        loop.on_exit(shim_pid, self.on_shim_exit)
        if app_pid is not None:
            # The app is the shim's child: we can only ever reap it once the
            # shim has died and the kernel has re-parented it to us.
            loop.on_exit(app_pid, self.on_app_exit)
        loop.add(self)

    # -- events -----------------------------------------------------------------

    def on_signal(self, signum, sender, now):
        self.carry_out(self.life.on_signal(signum, sender, now))

    def on_shim_exit(self, pid, code, now):
        self.shim = None
        if self.app_code is not None:
            # Both reaped, the app first: it had been adopted.
            self.carry_out(self.life.on_shim_exit(code, True, now))
            self.carry_out(self.life.on_app_exit(self.app_code, now))
            return
        # Non-consuming: if the app exited a moment ago its status stays for
        # the next reap (a consuming check here once lost the app's code).
        adopted = self.app is not None and (self.app in self.loop.batch
                                            or reaper.is_child(self.app))
        self.carry_out(self.life.on_shim_exit(code, adopted, now))

    def on_app_exit(self, pid, code, now):
        self.app = None
        if self.shim is not None:
            # Re-parented to us, so the shim has died, but its own status has
            # not been reaped yet (this drain's later entry, or the next one).
            self.app_code = code
            return
        self.carry_out(self.life.on_app_exit(code, now))

    def on_orphan(self, pid, code, now):
        self.orphans += 1
        if self.plan.warn_on_reap:
            log.warning(f"reaped zombie process with pid={pid} (exit code {code})")
        elif log.wants(log.DEBUG):
            log.debug(f"reaped orphaned process {pid} (exit code {code})")

    # -- the component protocol ---------------------------------------------------

    def next_deadline(self, now):
        return self.life.next_deadline(now)

    def on_tick(self, now):
        self.carry_out(self.life.on_tick(now))
        if self.life.state == lc.SWEEPING:
            left = _leftovers()
            self.carry_out(self.life.on_leftovers(None if left == ["all"] else len(left), now))
        if self.life.done():
            self.loop.running = False

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
                _signal_leftovers(action[1])
            elif kind == lc.SUSPEND:
                # dumb-init's job control: the shell that started us sees its
                # job stop; its SIGCONT continues us and is passed on. As PID 1
                # the kernel ignores a SIGSTOP we send ourselves, as dumb-init's.
                _kill(os.getpid(), signal.SIGSTOP)

    def deliver(self, signum):
        if self.app is None:
            return
        if signum in (signal.SIGSTOP, signal.SIGKILL) and self.shim is not None:
            # The shim cannot pass these on (they would stop or kill the shim
            # itself), so they go straight to the app: a map to STOP (dumb-init
            # delivers TSTP as STOP to a setsid app) or KILL. The app is the
            # live shim's child, so its pid is not reused. Its group may not
            # exist yet (setsid runs in the app): then the app.
            if not (self.plan.to_group and _kill(-self.app, signum)):
                _kill(self.app, signum)
            return
        if self.shim is not None:
            # The shim is our unreaped child, so its pid cannot have been
            # reused; it passes the signal on to the app (or its group).
            _kill(self.shim, signum)
        elif self.life.adopted:
            # Our own unreaped child now: its pid cannot have been reused.
            if not (self.plan.to_group and _kill(-self.app, signum)):
                _kill(self.app, signum)


def _leftovers():
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
                return [int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1"] or ["all"]
        except OSError:
            pass
        return ["all"]
    return _descendants(os.getpid())


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


def _signal_leftovers(signum):
    if os.getpid() == 1:
        _kill(-1, signum)  # everything in the namespace but us
        return
    # A subreaper cannot kill(-1): that would reach the host. Signal every
    # descendant by pid; new ones forked meanwhile are found on the next
    # look, which the lifecycle repeats until none is left.
    for pid in _descendants(os.getpid()):
        _kill(pid, signum)


def run(plan):
    """Start the plan's app and run until it is gone and the leftovers are
    swept; the exit code. The loop exists before the app, so a failure to
    set it up stops nothing that was started."""
    from initd import spawn
    loop = Loop()
    shim_pid, app_pid = spawn.start(plan)
    log.info(f"started {plan.name} (pid {app_pid}) under ppidshim (pid {shim_pid}): "
             f"{' '.join(plan.argv)}")
    driver = AppDriver(loop, plan, shim_pid, app_pid)
    loop.run()
    life = driver.life
    code = life.exit_code()
    if code != life.code:
        log.info(f"{plan.name} exited with code {life.code}, reported as 0 (--exit-zero)")
    else:
        log.info(f"exiting with code {code}")
    return code

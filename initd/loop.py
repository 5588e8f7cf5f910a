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

supervisor.Supervisor is the component that owns the app: it feeds signals,
exits and time to the pure Lifecycle (lifecycle.py) and carries out what it
decides.
"""
import os
import select
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import time

from initd import log, reaper, sigfd, signals

# Signals initd raises on itself by writing (its stderr a closed pipe, a
# file-size limit): about initd's own write, never to be passed to the app.
_SELF_INFLICTED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


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
                try:
                    d = component.next_deadline(now)
                except Exception as e:  # noqa: BLE001 - a component's bug must not stop PID 1
                    log.error(f"internal error in {type(component).__name__}.next_deadline, "
                              f"carrying on: {type(e).__name__}: {e}")
                    d = now + 1.0  # look again soon rather than never
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
        # Signals first, whatever order poll listed the fds in: forwarding
        # is the latency that matters most. No wrapper calls on this path
        # (each costs a cold PID 1 microseconds); the guards are inline.
        for fd, revents in ready:
            if fd == self.signal_fd:
                self._read_signals(fd, revents, now)
                break
        for fd, revents in ready:
            if fd != self.signal_fd:
                handler = self.handlers.get(fd)
                if handler is not None:
                    _guarded(handler, fd, revents, now)
        try:
            self.reap(now)
        except Exception as e:  # noqa: BLE001 - PID 1 must not die of its own bug
            log.error(f"internal error while reaping, carrying on: {type(e).__name__}: {e}")
        for component in self.components:
            try:
                component.on_tick(now)
            except Exception as e:  # noqa: BLE001
                log.error(f"internal error in {type(component).__name__}.on_tick, "
                          f"carrying on: {type(e).__name__}: {e}")

    def _read_signals(self, fd, revents, now):
        on_signal = self.on_signal
        try:
            filled = sigfd.read_words(fd)
        except Exception as e:  # noqa: BLE001
            log.error(f"internal error reading signals, carrying on: {type(e).__name__}: {e}")
            return
        words = sigfd.WORDS
        for i in range(0, filled, sigfd.STRIDE):
            signum, sender = words[i], words[i + 3]
            if signum in _SELF_INFLICTED and sender == self.self_pid:
                continue
            try:  # one signal's trouble must not lose the rest of the batch
                on_signal(signum, sender, now)
            except Exception as e:  # noqa: BLE001
                log.error(f"internal error handling signal {signum}, carrying on: "
                          f"{type(e).__name__}: {e}")

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


def _servers(loop, plan, status):
    """The control socket (on unless --no-control) and the metrics endpoint
    (only when asked), open before the app starts: a path or address the user
    chose that cannot be used is a set-up error, one line and exit 2."""
    servers = []
    if not plan.no_control:
        from initd import control
        server = control.ControlServer.from_settings(plan.control, os.environ, status)
        if server is not None:
            server.start(loop)
            servers.append(server)
    if plan.metrics:
        from initd import metrics
        server = metrics.MetricsServer.open(plan.metrics, status)
        server.start(loop)
        servers.append(server)
    return servers


def run(plan):
    """Start the plan's app and run until it is gone and the leftovers are
    swept; the exit code. The loop exists before the app, so a failure to
    set it up stops nothing that was started."""
    from initd.supervisor import Supervisor
    loop = Loop()
    supervisor = Supervisor(loop, plan)
    servers = _servers(loop, plan, supervisor.status)
    supervisor.begin()
    try:
        loop.run()
    finally:
        for server in servers:
            server.close()  # the control socket's file goes with it
    if supervisor.hooks is not None:
        supervisor.hooks.kill_all()
    life = supervisor.life
    code = life.exit_code()
    if code != life.code and life.exit_override is None:
        log.info(f"{plan.name} exited with code {life.code}, reported as 0 (--exit-zero)")
    else:
        log.info(f"exiting with code {code}")
    return code

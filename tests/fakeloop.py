"""A test-only stand-in for initd.loop's plug-in interface (INTERFACES.md):
watch/unwatch/on_exit/add/now, one poll() whose timeout is the earliest
component deadline, and os.waitpid on the watched pids only (never -1, so
pytest's own children are left alone). Used until the lead's loop lands."""
import os
import select
import time


class FakeLoop:
    def __init__(self):
        self.poller = select.poll()
        self.handlers = {}
        self.exits = {}
        self.components = []
        self.errors = []

    def now(self):
        return time.monotonic()

    def watch(self, fd, on_ready, events=select.POLLIN):
        self.handlers[fd] = on_ready
        self.poller.register(fd, events)

    def unwatch(self, fd):
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def on_exit(self, pid, callback):
        self.exits[pid] = callback

    def add(self, component):
        self.components.append(component)

    def once(self, limit=0.05):
        deadlines = [d for d in (c.next_deadline(self.now()) for c in self.components) if d is not None]
        timeout = limit
        if deadlines:
            timeout = max(0.0, min(limit, min(deadlines) - self.now()))
        for fd, revents in self.poller.poll(timeout * 1000):
            handler = self.handlers.get(fd)
            if handler:
                self._call(handler, fd, revents, self.now())
        for pid in list(self.exits):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                self._call(self.exits.pop(pid), pid, code if code >= 0 else 128 - code,
                           self.now())
        for c in self.components:
            self._call(c.on_tick, self.now())

    def _call(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - recorded so a test can fail on it
            self.errors.append(e)

    def run_until(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
            self.once()
        return True

    def run_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.once(min(0.05, max(0.0, end - time.monotonic())))

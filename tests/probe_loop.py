"""A tiny stand-in for initd/loop.py with the same component interface
(watch/unwatch/on_exit/add/now), for testing components such as probes.Prober
outside PID 1. Exits are seen through pidfds (readable when the process
exits), so nothing here polls on a timer and only the pids a component asked
about are reaped (other tests' children are left alone).

Like the real loop: after every wake, exits are dispatched first, then fd
handlers, then every component's on_tick(now).
"""
import os
import select
import time


def exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class TestLoop:
    __test__ = False  # not a pytest class

    def __init__(self):
        self.poll = select.poll()
        self.handlers = {}
        self.pidfds = {}     # pidfd -> (pid, callback)
        self.components = []
        self.exits = []      # (pid, code) of every pid reaped, for assertions

    def now(self):
        return time.monotonic()

    def watch(self, fd, on_ready, events=select.POLLIN):
        assert fd not in self.handlers, f"fd {fd} watched twice"
        self.poll.register(fd, events)
        self.handlers[fd] = on_ready

    def unwatch(self, fd):
        self.poll.unregister(fd)
        del self.handlers[fd]

    def on_exit(self, pid, callback):
        fd = os.pidfd_open(pid)
        self.pidfds[fd] = (pid, callback)
        self.poll.register(fd, select.POLLIN)

    def add(self, component):
        self.components.append(component)

    def run_until(self, predicate, timeout):
        """Run the loop until predicate() is true; AssertionError after timeout."""
        end = time.monotonic() + timeout
        while not predicate():
            now = time.monotonic()
            assert now < end, f"loop: not done within {timeout}s"
            wake = end
            for c in self.components:
                d = c.next_deadline()
                if d is not None:
                    wake = min(wake, d)
            ms = max(0, int((wake - now) * 1000 + 0.999))
            ready = self.poll.poll(ms)
            now = time.monotonic()
            for fd, revents in ready:
                if fd in self.pidfds:
                    pid, callback = self.pidfds.pop(fd)
                    self.poll.unregister(fd)
                    os.close(fd)
                    _, status = os.waitpid(pid, 0)  # it has exited: does not block
                    self.exits.append((pid, exit_code(status)))
                    callback(pid, exit_code(status), now)
            for fd, revents in ready:
                if fd in self.handlers:
                    self.handlers[fd](fd, revents, now)
            for c in self.components:
                c.on_tick(now)

    def close(self):
        """Kill and reap what is still watched (a failed test must leave nothing)."""
        for fd, (pid, _) in list(self.pidfds.items()):
            try:
                os.killpg(pid, 9)
            except OSError:
                pass
            try:
                os.kill(pid, 9)
            except OSError:
                pass
            os.waitpid(pid, 0)
            os.close(fd)
        self.pidfds.clear()

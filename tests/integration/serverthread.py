"""Run a FakeLoop in a thread of the test process, so the test's own
blocking clients can talk to the servers under test."""
import threading

from fakeloop import FakeLoop


class Running:
    def __init__(self):
        self.loop = FakeLoop()
        self.stop = threading.Event()
        self.thread = None

    def start(self):
        def run():
            while not self.stop.is_set():
                self.loop.once(0.02)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        if self.thread:
            self.thread.join(5)
        assert not self.loop.errors, self.loop.errors

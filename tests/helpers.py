"""Run initd for real: as PID 1 of fresh namespaces, or as a subreaper.

Every wait is bounded; every process a test starts is killed by pid.
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "tests", "apps")
PY = sys.executable

# How initd is run: as PID 1 of new PID+mount namespaces (root, or rootless
# through a user namespace), or not PID 1 at all (a subreaper under us).
MODES = {
    "pid1": ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
    "rootless": ["unshare", "--user", "--map-root-user", "--pid", "--fork",
                 "--mount-proc", "--kill-child"],
    "subreaper": [],
}


def app(name, *args):
    return [PY, os.path.join(APPS, name), *args]


def sleep_until(predicate, timeout=10.0, interval=0.01):
    """Poll predicate until it is truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def proc_status(pid):
    """/proc/PID/status as a dict."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def signal_set(hex_mask):
    mask = int(hex_mask, 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


class Initd:
    """initd under test, with its stdout/stderr read line by line."""

    def __init__(self, args, mode="pid1", env=None, cwd=REPO, stdin=subprocess.DEVNULL):
        self.mode = mode
        full_env = dict(os.environ)
        full_env.pop("INITD_ROLE", None)
        full_env["PYTHONPATH"] = REPO
        full_env.update(env or {})
        cmd = MODES[mode] + [PY, "-m", "initd", *args]
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, cwd=cwd)
        self.lines = {"out": queue.Queue(), "err": queue.Queue()}
        self.seen = {"out": [], "err": []}
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, self.lines[name]),
                             daemon=True).start()
        self._pid = None

    @staticmethod
    def _read(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line.decode(errors="replace").rstrip("\n"))
        q.put(None)

    @property
    def pid(self):
        """initd's pid as we see it (the child of unshare, or the process itself)."""
        if self._pid is None:
            if self.mode == "subreaper":
                self._pid = self.proc.pid
            else:
                self._pid = sleep_until(lambda: (children(self.proc.pid) or [None])[0], 10)
        return self._pid

    def expect(self, text, stream="out", timeout=10.0):
        """The first new line containing text (earlier lines are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} on std{stream} within {timeout}s; "
                                     f"saw {self.seen[stream][-20:]}")
            try:
                line = self.lines[stream].get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.lines[stream].put(None)
                raise AssertionError(f"std{stream} closed before {text!r}; saw {self.seen[stream][-20:]}")
            self.seen[stream].append(line)
            if text in line:
                return line

    def drain(self, stream):
        """All lines of a stream until it closes (call after wait)."""
        while True:
            try:
                line = self.lines[stream].get(timeout=10)
            except queue.Empty:
                break
            if line is None:
                self.lines[stream].put(None)
                break
            self.seen[stream].append(line)
        return self.seen[stream]

    def kill(self, signum):
        os.kill(self.pid, signum)

    def wait(self, timeout=20.0):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        """Cleanup: kill by pid whatever is still running."""
        if self.proc.poll() is None:
            try:
                if self.mode == "subreaper":
                    for child in _descendants(self.proc.pid):
                        _kill(child, signal.SIGKILL)
                _kill(self.proc.pid, signal.SIGKILL)  # --kill-child takes the namespace down
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def _descendants(pid):
    result = []
    for child in children(pid):
        result.append(child)
        result.extend(_descendants(child))
    return result


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def run_initd(args, mode="pid1", timeout=20.0, env=None, cwd=REPO):
    """Run initd to completion: (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.pop("INITD_ROLE", None)
    full_env["PYTHONPATH"] = REPO
    full_env.update(env or {})
    proc = subprocess.run(MODES[mode] + [PY, "-m", "initd", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr

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


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Watched:
    """A process under test (initd or another init, as PID 1 of fresh
    namespaces or not), its stdout and stderr read line by line."""

    def __init__(self, argv, env, mode="pid1", prefix=None, cwd=REPO,
                 stdin=subprocess.DEVNULL):
        self.prefix = MODES[mode] if prefix is None else prefix
        self.mode = mode
        # A process group of its own under us, in our session: never an
        # orphaned group (whose members the kernel does not stop with TSTP),
        # whatever group pytest itself was started in.
        self.proc = subprocess.Popen(self.prefix + argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd, process_group=0)
        self.queues = {"out": queue.Queue(), "err": queue.Queue()}
        self.seen = {"out": [], "err": []}
        self.pending = {"out": [], "err": []}
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, self.queues[name]),
                             daemon=True).start()
        self._pid = None
        self.known = set()  # every descendant seen, for the cleanup

    @staticmethod
    def _read(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line.decode(errors="replace").rstrip("\n"))
        q.put(None)

    @property
    def pid(self):
        """The init's pid as we see it: the process itself, or the child of
        unshare (or of whatever stands in front of it)."""
        if self._pid is None:
            self._pid = (sleep_until(lambda: (children(self.proc.pid) or [None])[0])
                         if self.prefix else self.proc.pid)
        return self._pid

    def expect(self, text, stream="out", timeout=10.0):
        """The first line not yet taken that contains text; the lines before
        it stay for later expects (two processes' lines may interleave)."""
        pending = self.pending[stream]
        for i, line in enumerate(pending):
            if text in line:
                del pending[i]
                return line
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} on std{stream} in {timeout}s: "
                                     f"{self.seen[stream][-20:]}")
            try:
                line = self.queues[stream].get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.queues[stream].put(None)
                raise AssertionError(f"std{stream} closed before {text!r}: {self.seen[stream][-20:]}")
            self.seen[stream].append(line)
            if text in line:
                return line
            pending.append(line)

    def drain(self, stream):
        """Every line of a stream until it closes (call after wait)."""
        while True:
            try:
                line = self.queues[stream].get(timeout=10)
            except queue.Empty:
                break
            if line is None:
                self.queues[stream].put(None)
                break
            self.seen[stream].append(line)
        return self.seen[stream]

    def kill(self, signum):
        os.kill(self.pid, signum)

    def wait(self, timeout=20.0):
        return self.proc.wait(timeout=timeout)

    def descendants(self):
        found = _descendants(self.pid)
        self.known.update(found)
        return found

    def stop(self):
        """Cleanup: SIGKILL by pid whatever of ours may still run."""
        if self.proc.poll() is None:
            self.descendants()
        for pid in [self.pid if self._pid or not self.prefix else None, *self.known]:
            if pid:
                _kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            _kill(self.proc.pid, signal.SIGKILL)  # --kill-child takes the namespace down
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def initd_env(env=None):
    full_env = dict(os.environ)
    full_env.pop("INITD_ROLE", None)
    full_env["PYTHONPATH"] = REPO
    full_env.update(env or {})
    return full_env


class Initd(Watched):
    """initd under test: initd(args, mode=...)."""

    def __init__(self, args, mode="pid1", env=None, cwd=REPO, stdin=subprocess.DEVNULL):
        super().__init__([PY, "-m", "initd", *args], initd_env(env), mode, cwd=cwd, stdin=stdin)


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
    proc = subprocess.run(MODES[mode] + [PY, "-m", "initd", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=initd_env(env),
                          cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr

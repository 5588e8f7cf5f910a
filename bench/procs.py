"""Containers: fresh PID namespaces started, watched and killed by pid.

Each container is `launch HARNESS_PID unshare --pid --fork --mount-proc
--kill-child INIT... APP...`, spawned in its own session. Its PID 1 (the
init) is unshare's child. Every wait here is bounded (poll on a pidfd with a
timeout) and every container is killed by pid when it is closed, when the
harness is interrupted, or, through the parent-death chain that `launch` sets
up, when the harness itself is killed.
"""
import os
import select
import signal
import time

UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")

# Every container not yet closed, so cleanup() can find it from anywhere.
_live = set()


class BenchError(Exception):
    """A benchmark could not run; the message says what to look at."""


class Timeout(BenchError):
    pass


def wait_readable(fd, timeout):
    """True when fd becomes readable (or hangs up) within timeout seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0, int(timeout * 1000))))


class Container:
    def __init__(self, name, argv, env, tools, log_fd):
        self.name = name
        self.argv = argv
        self.env = env
        self.tools = tools
        self.log_fd = log_fd
        self.pid = None          # unshare, our child
        self.pidfd = None        # of unshare
        self.status = None       # unshare's wait status once reaped
        self.init = None         # host pid of the namespace's PID 1
        self.init_fd = None      # pidfd of the init: race-free signals

    # -- life ----------------------------------------------------------------

    def start(self):
        """Spawn; returns as soon as unshare runs (posix_spawn uses vfork)."""
        argv = [self.tools.launch, str(os.getpid()), *UNSHARE, *self.argv]
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, self.log_fd, 1),
                   (os.POSIX_SPAWN_DUP2, self.log_fd, 2)]
        self.pid = os.posix_spawn(self.tools.launch, argv, self.env,
                                  file_actions=actions, setsid=True)
        _live.add(self)
        self.pidfd = os.pidfd_open(self.pid)
        return self

    def wait(self, timeout):
        """unshare's wait status (it passes on the init's); Timeout if still running."""
        if self.status is None:
            if not wait_readable(self.pidfd, timeout):
                raise Timeout(f"{self.name}: still running after {timeout:g}s")
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:  # readable but not yet waitable: cannot last
                pid, status = os.waitpid(self.pid, 0)
            self.status = status
        return self.status

    def exit_code(self, timeout):
        return os.waitstatus_to_exitcode(self.wait(timeout))

    def running(self):
        return self.status is None and not wait_readable(self.pidfd, 0)

    def find_init(self, timeout=10.0):
        """The init's host pid (unshare's only child) and a pidfd to it."""
        if self.init is not None:
            return self.init
        path = f"/proc/{self.pid}/task/{self.pid}/children"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    kids = f.read().split()
            except OSError:
                kids = []
            if kids:
                pid = int(kids[0])
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:
                    fd = None
                # The pidfd names the right process if it is still unshare's
                # child now that the pidfd exists.
                if fd is not None and ppid(pid) == self.pid:
                    self.init, self.init_fd = pid, fd
                    return pid
                if fd is not None:
                    os.close(fd)
            if not self.running():
                raise BenchError(f"{self.name}: exited (status {self.status}) before "
                                 f"its init could be found; see {self.tools.log_path}")
            if time.monotonic() > deadline:
                raise Timeout(f"{self.name}: no init under unshare after {timeout:g}s")
            time.sleep(0.0005)

    def signal_init(self, signum):
        signal.pidfd_send_signal(self.init_fd, signum)

    def wait_init_exit(self, timeout):
        """Block until the init has exited (its namespace is torn down by then)."""
        if not wait_readable(self.init_fd, timeout):
            raise Timeout(f"{self.name}: init still running {timeout:g}s after the signal")

    def close(self):
        """SIGKILL the init (the kernel then kills its namespace) and unshare's
        whole session, then reap unshare. Safe to call twice."""
        if self.init_fd is not None:
            try:
                signal.pidfd_send_signal(self.init_fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(self.init_fd)
            self.init_fd = None
        if self.pidfd is not None:
            if self.status is None:
                # unshare is our unreaped child: its pid, and so the group id
                # of its session, cannot have been reused.
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.wait(10)
                except Timeout:
                    pass  # stuck in the kernel; the pidfd is closed below anyway
            os.close(self.pidfd)
            self.pidfd = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def children(pid):
    """Host pids of pid's children (zombies included), [] if it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def zombie_children(pid):
    """How many of pid's children are zombies: unreaped orphans."""
    count = 0
    for kid in children(pid):
        try:
            fd = os.open(f"/proc/{kid}/stat", os.O_RDONLY)
        except OSError:
            continue  # reaped in between
        try:
            stat = os.read(fd, 512)
        except OSError:
            continue  # reaped between open and read (ESRCH)
        finally:
            os.close(fd)
        end = stat.rfind(b")")
        if stat[end + 2:end + 3] == b"Z":
            count += 1
    return count


def cleanup():
    """Kill every container still alive. Called on any exit of the harness."""
    for container in list(_live):
        try:
            container.close()
        except OSError:
            pass


def raise_on_signals():
    """SIGTERM and SIGHUP end the harness like Ctrl-C does, so every finally
    block runs and every container is killed."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)

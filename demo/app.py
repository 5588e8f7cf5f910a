"""A tiny unicorn-like app server, the example app initd runs (standard library only).

    python3 app.py web       a master that forks 2 workers and supervises them
    python3 app.py worker    one process that just waits for signals
    python3 app.py exit N    print who it is, then exit with status N

It behaves like unicorn (and many pre-fork servers) on signals, which is why it
needs an init that translates them:

    SIGQUIT          graceful stop: the master tells each worker to finish its
                     request, waits for them, and exits 0
    SIGTERM, SIGINT  immediate stop: the workers are killed and the master dies
                     of the same signal (exit status 143 for TERM)

`docker stop` sends SIGTERM. Run under initd with the role's signal map
{"TERM": "QUIT"}, the app gets SIGQUIT instead and stops gracefully.

Every signal is logged, one flushed line each, so a reader (or a test) can see
what arrived: "app[web] master pid=3: got SIGQUIT: graceful stop".
"""
import os
import signal
import socket
import sys
import time

WORKERS = 2
GRACE = 5.0  # seconds the master waits for workers to finish, then SIGKILL
# Every signal the app wants to hear about. They are blocked and read with
# sigtimedwait, so none interrupts the app midway (no handlers at all).
WATCHED = {
    signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGCHLD, signal.SIGALRM, signal.SIGCONT,
}

role = "app"
who = "app"


def log(message):
    # One write(2) per line: the master and its workers share stdout, and a
    # line written in pieces could be cut in two by another process's line.
    data = f"{who}: {message}\n".encode()
    while data:
        data = data[os.write(sys.stdout.fileno(), data):]


def describe():
    """Who am I and where: what initd arranged is visible here."""
    revision = ""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "REVISION")) as f:
            revision = f" revision={f.read().strip()}"
    except OSError:
        pass
    log(f"started: pid={os.getpid()} ppid={os.getppid()} "
        f"hostname={socket.gethostname()}{revision}")


def wait_signal(timeout):
    """The next watched signal, or None after `timeout` seconds."""
    info = signal.sigtimedwait(WATCHED, timeout)
    return info and signal.Signals(info.si_signo)


def die_of(sig):
    """Exit the way an unhandled signal would, so the parent sees a signal death."""
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # not reached


def worker(number):
    """A worker 'serves requests' until told to stop."""
    global who
    who = f"app[{role}] worker {number} pid={os.getpid()}"
    log("serving")
    while True:
        sig = wait_signal(3600)
        if sig is None or sig in (signal.SIGCHLD, signal.SIGWINCH, signal.SIGCONT):
            continue
        if sig == signal.SIGQUIT:
            log("got SIGQUIT: finishing the current request, then exiting 0")
            time.sleep(0.2)  # the request in flight
            log("done")
            os._exit(0)
        if sig in (signal.SIGTERM, signal.SIGINT):
            log(f"got {sig.name}: stopping now")
            die_of(sig)
        log(f"got {sig.name}: ignored")


def spawn_worker(number):
    pid = os.fork()
    if pid == 0:
        try:
            worker(number)
        finally:
            os._exit(70)
    return pid


def reap(workers):
    """Collect every exited worker; returns [(number, pid, exit code)]."""
    gone = []
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        number = workers.pop(pid, None)
        if number is not None:
            gone.append((number, pid, os.waitstatus_to_exitcode(status)))
    return gone


def stop_workers(workers, sig, grace):
    """Send `sig` to every worker, wait up to `grace` s, then SIGKILL the rest."""
    for pid in workers:
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while workers and time.monotonic() < deadline:
        for number, pid, code in reap(workers):
            log(f"worker {number} (pid {pid}) exited with {code}")
        if workers:
            wait_signal(max(0.0, min(0.1, deadline - time.monotonic())))
    for pid in list(workers):
        log(f"worker pid {pid} did not stop in {grace:.0f} s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        workers.pop(pid)


def master():
    global who
    who = f"app[{role}] master pid={os.getpid()}"
    describe()
    workers = {spawn_worker(n): n for n in range(1, WORKERS + 1)}
    log(f"ready: workers {sorted(workers)}")
    while True:
        sig = wait_signal(3600)
        if sig is None:
            continue
        if sig == signal.SIGCHLD:
            # A worker died without being asked: replace it, as unicorn does.
            for number, pid, code in reap(workers):
                log(f"worker {number} (pid {pid}) died with {code}: starting a new one")
                workers[spawn_worker(number)] = number
            continue
        if sig == signal.SIGQUIT:
            log("got SIGQUIT: graceful stop, letting the workers finish")
            stop_workers(workers, signal.SIGQUIT, GRACE)
            log("graceful stop complete: exit 0")
            return 0
        if sig in (signal.SIGTERM, signal.SIGINT):
            log(f"got {sig.name}: immediate stop, requests in flight are lost")
            stop_workers(workers, signal.SIGKILL, GRACE)
            log(f"dying of {sig.name}")
            die_of(sig)
        log(f"got {sig.name}: ignored")


def single():
    global who
    who = f"app[{role}] pid={os.getpid()}"
    describe()
    while True:
        sig = wait_signal(3600)
        if sig is None or sig == signal.SIGCHLD:
            continue
        if sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT):
            log(f"got {sig.name}: exiting 0")
            return 0
        log(f"got {sig.name}: ignored")


def main(argv):
    global role, who
    if not argv or argv[0] not in ("web", "worker", "exit"):
        print("usage:\n" + __doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    role = argv[0]
    # Block before any fork so no signal can arrive unwatched; workers inherit it.
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    if role == "web":
        return master()
    if role == "worker":
        return single()
    who = f"app[exit] pid={os.getpid()}"
    describe()
    code = int(argv[1]) if len(argv) > 1 else 0
    log(f"exiting with {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

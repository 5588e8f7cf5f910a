"""Test app for the differential tests: what a program can observe of its
init, printed as one JSON object per line (flushed).

  observer.py [--kid] [--orphan]
First line: {"event": "ready", "pid", "ppid", "pgid", "sid", "blocked",
"ignored", "caught"} (the last three: signal names from /proc/self/status
SigBlk/SigIgn/SigCgt, as the app starts, before it installs any handler of
its own), plus with --orphan: "orphan_ppid" (who adopted an orphan it made)
and "orphan_reaped" (its zombie was gone within 5 s).
On SIGTERM: {"event": "term", "kid_got_term": true|false} with --kid, then
it dies of SIGTERM the default way (status 143).
On SIGUSR1: exits with code 3; on SIGUSR2: exits with code 0.

--kid     fork a child in the app's process group that exits 0 on SIGTERM;
          "kid_got_term" says whether the init's TERM reached it (the app
          waits up to 0.5 s for it, then SIGKILLs it).
--orphan  a middle child forks a grandchild and exits; the grandchild waits
          (up to 5 s) to be re-parented, reports its new parent through a
          pipe and exits, leaving a zombie for whoever adopted it.
"""
import json
import os
import select
import signal
import sys
import time

NAMES = {s.value: s.name for s in signal.Signals}


def names(hex_mask):
    mask = int(hex_mask, 16)
    return sorted(NAMES.get(n, f"SIG{n}") for n in range(1, 65) if mask & (1 << (n - 1)))


def say(**fields):
    os.write(1, (json.dumps(fields, sort_keys=True) + "\n").encode())


def status():
    with open("/proc/self/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {"blocked": names(fields["SigBlk"]), "ignored": names(fields["SigIgn"]),
            "caught": names(fields["SigCgt"])}


def orphan():
    """(the orphan's new parent, whether its zombie was reaped)."""
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        middle = os.getpid()  # for the grandchild: the parent it waits to lose
        if os.fork() == 0:
            deadline = time.monotonic() + 5
            while os.getppid() == middle and time.monotonic() < deadline:
                time.sleep(0.005)
            os.write(w, f"{os.getpid()} {os.getppid()}".encode())
            os._exit(0)
        os._exit(0)
    os.close(w)
    os.waitpid(middle, 0)
    ready, _, _ = select.select([r], [], [], 10)
    pid, ppid = map(int, os.read(r, 100).split()) if ready else (0, 0)
    deadline = time.monotonic() + 5
    while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    return ppid, bool(pid) and not os.path.exists(f"/proc/{pid}")


def main():
    seen = status()  # before Python's own handlers below change SigCgt
    kid = None
    if "--kid" in sys.argv:
        r, w = os.pipe()
        kid = os.fork()
        if kid == 0:
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.write(w, b"k")  # handler in place: only now may the app say ready
            while True:
                time.sleep(0.05)
        os.close(w)
        select.select([r], [], [], 10)  # bounded; a kid that never got there reads as not reached
        os.close(r)
    extra = {}
    if "--orphan" in sys.argv:
        extra["orphan_ppid"], extra["orphan_reaped"] = orphan()

    def on_term(signum, frame):
        if kid:
            got = False
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                pid, code = os.waitpid(kid, os.WNOHANG)
                if pid:
                    got = os.waitstatus_to_exitcode(code) == 0
                    break
                time.sleep(0.01)
            else:
                os.kill(kid, signal.SIGKILL)
                os.waitpid(kid, 0)
            say(event="term", kid_got_term=got)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, lambda *_: os._exit(3))
    signal.signal(signal.SIGUSR2, lambda *_: os._exit(0))
    say(event="ready", pid=os.getpid(), ppid=os.getppid(), pgid=os.getpgid(0),
        sid=os.getsid(0), **seen, **extra)
    while True:
        time.sleep(0.05)  # not pause(): see printsig.py


main()

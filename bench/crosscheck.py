"""python -m bench.crosscheck: a second, minimal measurement of signal
forwarding, to check the harness against.

initd and tini, each PID 1 of a fresh namespace, with bench/apps/sigstamp.c
as the app: SIGUSR1 is sent to the init and the app's handler stamps
CLOCK_MONOTONIC on entry; the sender reads the same clock just before
pidfd_send_signal. For every signal it keeps both

  handler  sent -> the app's handler runs (what a user waits for)
  read     sent -> this process has read the app's record from the fifo
           (what bench/measure.py timed until issue 15)

interleaved init by init, optionally with a pause between signals (--gap-us)
and a CPU placement (--pin none|same|split: everything on CPU 0, or the
sender on CPU 0 and the container on CPU 1).
"""
import argparse
import os
import select
import shlex
import signal
import struct
import sys
import time

from bench import env
from bench.procs import BenchError, Container, children, cleanup, raise_on_signals
from bench.report import percentile

RECORD = struct.Struct("=qii")


def last_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return -1
    return int(stat[stat.rindex(b")") + 2:].split()[36])


def schedstat(pids):
    """(ns on CPU, ns waiting on a run queue) summed over pids."""
    run = wait = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                a, b, _ = f.read().split()
        except (OSError, ValueError):
            continue
        run, wait = run + int(a), wait + int(b)
    return run, wait


def tree(pid):
    """pid and its descendants (host pids)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.crosscheck")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--gap-us", type=int, default=0, help="pause before each signal")
    p.add_argument("--pin", choices=("none", "same", "split"), default="none")
    p.add_argument("--initd", default=env.default_initd())
    p.add_argument("--pythonpath", default=env.REPO,
                   help="where initd is imported from (a patched copy to compare)")
    p.add_argument("--extra", default="", help="extra initd options")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    raise_on_signals()
    tools = env.prepare_tools(args.pythonpath)
    clock = time.CLOCK_MONOTONIC
    variants = [("initd", [*shlex.split(args.initd), *shlex.split(args.extra), "--"]),
                ("tini", ["tini", "--"])]
    cpus = sorted(os.sched_getaffinity(0))
    boxes = []
    try:
        for name, argv_ in variants:
            fifo = tools.fifo()
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            if args.pin == "same":
                os.sched_setaffinity(0, {cpus[0]})
            elif args.pin == "split":
                os.sched_setaffinity(0, {cpus[1]})  # inherited by the container
            c = Container(name, [*argv_, tools.sigstamp, fifo, str(int(signal.SIGUSR1))],
                          tools.env, tools, tools.log_fd).start()
            c.find_init()
            os.sched_setaffinity(0, {cpus[0]} if args.pin != "none" else set(cpus))
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(30000) or os.read(fd, 1) != b"R":
                raise BenchError(f"{name}: app not ready; see {tools.log_path}")
            boxes.append((name, c, fd, poller, {"handler": [], "read": [], "cpus": {}}))
        for r in range(args.count + 50):
            if r == 50:
                for _, c, _, _, out in boxes:
                    out["pids"] = tree(c.init)
                    out["init_pids"] = out["pids"][:-1]  # the app is the leaf
                    out["cpu0"] = schedstat(out["init_pids"]), schedstat(out["pids"][-1:])
                    out["helper0"] = schedstat(out["init_pids"][1:])[0]
            for name, c, fd, poller, out in boxes[r % 2:] + boxes[:r % 2]:
                if args.gap_us:
                    time.sleep(args.gap_us / 1e6)
                t0 = time.clock_gettime_ns(clock)
                signal.pidfd_send_signal(c.init_fd, signal.SIGUSR1)
                if not poller.poll(5000):
                    raise BenchError(f"{name}: no record in 5 s")
                t2 = time.clock_gettime_ns(clock)
                ns, sig, app_cpu = RECORD.unpack(os.read(fd, RECORD.size))
                if r >= 50:  # warm-up dropped
                    out["handler"].append((ns - t0) / 1e3)
                    out["read"].append((t2 - t0) / 1e3)
                    key = (app_cpu, last_cpu(c.init))
                    out["cpus"][key] = out["cpus"].get(key, 0) + 1
        for _, c, _, _, out in boxes:
            (i_run, i_wait), (a_run, a_wait) = out["cpu0"]
            (i_run2, i_wait2), (a_run2, a_wait2) = (schedstat(out["init_pids"]),
                                                    schedstat(out["pids"][-1:]))
            n = args.count * 1e3
            helpers = out["init_pids"][1:]  # initd's ppidshim
            h = ""
            if helpers:
                h = f"(helper {(schedstat(helpers)[0] - out['helper0']) / n:5.1f}) "
            out["cpu"] = (f"init CPU {(i_run2 - i_run) / n:5.1f} {h}runq {(i_wait2 - i_wait) / n:5.1f} "
                          f"app CPU {(a_run2 - a_run) / n:5.1f} runq {(a_wait2 - a_wait) / n:5.1f} us/sig")
        print(f"count={args.count} gap_us={args.gap_us} pin={args.pin} "
              f"load={os.getloadavg()[0]:.2f}")
        base = {k: {q: percentile(boxes[1][4][k], q) for q in (50, 99)} for k in ("handler", "read")}
        for name, c, fd, poller, out in boxes:
            parts = []
            for k in ("handler", "read"):
                p50, p99 = percentile(out[k], 50), percentile(out[k], 99)
                parts.append(f"{k} p50 {p50:6.1f} ({p50 / base[k][50]:.2f}x) "
                             f"p99 {p99:6.1f} ({p99 / base[k][99]:.2f}x)")
            print(f"  {name:6} " + " | ".join(parts) + " | " + out["cpu"])
            if args.verbose:
                print("         (app cpu, init cpu): "
                      + ", ".join(f"{k}:{v}" for k, v in sorted(out['cpus'].items())))
    finally:
        for _, c, fd, _, _ in boxes:
            c.close()
            os.close(fd)
        cleanup()
        tools.close()


if __name__ == "__main__":
    sys.exit(main())

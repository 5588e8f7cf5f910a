"""The five benchmarks. Each runs every init in turn, round after round
(A B C D A B C D ...), so drift of a noisy machine hits all of them alike,
and returns raw samples per variant name."""
import json
import os
import shutil
import signal
import struct
import sys
import time

from bench.procs import BenchError, Container, Timeout, children, wait_readable, zombie_children

FLOOR = "python -I -S"       # the bare interpreter, the floor for start-up and memory
SITE = "python (site)"       # the interpreter with site: what this machine adds to any script
UNSHARE_ONLY = "unshare only"


def _progress(what, done, total):
    if sys.stderr.isatty():
        sys.stderr.write(f"\rbench: {what} {done}/{total}   ")
        if done == total:
            sys.stderr.write("\n")
    elif done == total:
        sys.stderr.write(f"bench: {what} done\n")
    sys.stderr.flush()


class App:
    """A container whose app reports on a fifo the harness reads."""

    def __init__(self, tools, name, argv_before_fifo, argv_after_fifo=(), env=None, role=None):
        """role: None, or (initd's argv before its options, {role keys}):
        then initd runs the app as the role "bench" of a roles.json written
        beside the fifo, with those keys (a health probe, say)."""
        self.fifo = tools.fifo()
        # Open our end first, non-blocking, so the app's open for writing
        # never blocks; no writer yet is not a hang-up (pipe(7)).
        self.fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.tools = tools
        argv = [*argv_before_fifo, self.fifo, *map(str, argv_after_fifo)]
        self.roles = None
        if role is not None:
            initd_argv, keys = role
            self.roles = self.fifo + ".json"
            with open(self.roles, "w") as f:
                json.dump({"bench": {**keys, "command": argv}}, f)
            argv = [*initd_argv, "--roles", self.roles, "--role", "bench"]
        self.container = Container(name, argv, env or tools.env, tools, tools.log_fd)

    def start(self):
        self.container.start()
        self.container.find_init()
        return self

    def read(self, timeout):
        """What the app wrote next, waiting at most timeout seconds."""
        if not wait_readable(self.fd, timeout):
            raise Timeout(f"{self.container.name}: the app said nothing for {timeout:g}s "
                          f"(see {self.tools.log_path})")
        data = os.read(self.fd, 4096)
        if not data:
            raise BenchError(f"{self.container.name}: the app closed its fifo (died?); "
                             f"see {self.tools.log_path}")
        return data

    def ready(self, timeout=30):
        data = self.read(timeout)
        if data != b"R":
            raise BenchError(f"{self.container.name}: expected the app's ready byte, got {data!r}")
        return self

    def close(self):
        self.container.close()
        os.close(self.fd)
        os.unlink(self.fifo)
        if self.roles:
            os.unlink(self.roles)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def warm_up(tools, inits):
    """Run each init once: fills the page cache and compiles initd's .pyc
    files, so that no benchmark's first sample pays for that."""
    for i in inits:
        container = Container(i.name, [*i.argv, "/bin/true"], i.env or tools.env, tools,
                              tools.log_fd)
        try:
            code = os.waitstatus_to_exitcode(container.start().wait(60))
        finally:
            container.close()
        if code != 0:
            raise BenchError(f"{i.name} -- /bin/true exited {code}; see {tools.log_path}")


# -- start-up and teardown -----------------------------------------------------

def startup(tools, inits, rounds):
    """Wall time of `unshare ... INIT -- /bin/true`, spawn to exit, in seconds."""
    variants = [(i.name, [*i.argv, "/bin/true"], i.env) for i in inits]
    variants.append((FLOOR, [sys.executable, "-I", "-S", "-c", "pass"], None))
    variants.append((SITE, [sys.executable, "-c", "pass"], None))
    variants.append((UNSHARE_ONLY, ["/bin/true"], None))
    samples = {name: [] for name, _, _ in variants}
    for r in range(rounds + 1):  # round 0 warms caches (.pyc, page cache) and is dropped
        for name, argv, env in rotate(variants, r):
            container = Container(name, argv, env or tools.env, tools, tools.log_fd)
            start = time.perf_counter()
            container.start()
            try:
                status = container.wait(30)
                took = time.perf_counter() - start
            finally:
                container.close()
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                raise BenchError(f"{name} -- /bin/true exited {code}; see {tools.log_path}")
            if r:
                samples[name].append(took)
        _progress("start-up", r, rounds)
    return samples


# -- signal forwarding ---------------------------------------------------------

RECORD = struct.Struct("=qii")  # sigstamp's record: CLOCK_MONOTONIC ns, signum, cpu


def forwarding(tools, inits, rounds, translate, blocks=1, gap=0.005):
    """Seconds from kill(init, SIG) to the app's handler running, and the
    CPU time the init (with its helpers: initd's ppidshim) spends per signal.

    What a user waits for is the app's handler: the app (sigstamp.c) reads
    CLOCK_MONOTONIC first thing in its handler and writes it to a fifo; the
    harness reads the same clock just before pidfd_send_signal. When the
    harness itself wakes up to read the fifo is not part of the figure (it
    was until issue 15: a constant 15-30 us on every init that made the
    ratios look smaller).

    gap: seconds of quiet before each signal, so that every signal finds the
    init asleep and its CPU caches cooled, as a real `docker stop` or
    `kill -HUP` does; back-to-back round trips (gap=0) keep the init's code
    hot in the caches and the CPUs awake, which flatters a big interpreter.

    translate=False: SIGUSR1 passed on as is.
    translate=True: SIGTERM delivered as SIGQUIT by the inits that can; the
    others get TERM -> TERM, kept as the reference (reported as n/a).

    An init with a role (env.Init.role: initd with a health probe, say)
    runs the app as a role of a roles.json with those keys.

    The rounds are split into blocks, each with fresh containers: where the
    scheduler happens to place a container's processes sticks for its life,
    and blocks average that out.
    """
    sent = signal.SIGTERM if translate else signal.SIGUSR1
    handled = (signal.SIGQUIT, signal.SIGTERM) if translate else (signal.SIGUSR1,)
    expect = {}
    for i in inits:
        expect[i.name] = signal.SIGQUIT if translate and i.translate else sent
    samples = {i.name: [] for i in inits}
    cpu = {i.name: 0 for i in inits}
    what = "TERM->QUIT" if translate else "USR1"
    per_block = -(-rounds // blocks)
    warmup = min(20, per_block)
    done = 0
    clock = time.CLOCK_MONOTONIC
    for b in range(blocks):
        apps = []
        try:
            for i in inits:
                argv = i.translate if translate and i.translate else i.argv
                role = None
                if i.role is not None:
                    keys = dict(i.role)
                    if translate:
                        keys.update(signals={"TERM": "QUIT"}, stop_timeout=86400)
                    role, argv = (i.base_argv, keys), []
                app = App(tools, i.name, [*argv, tools.sigstamp], [int(s) for s in handled],
                          env=i.env, role=role)
                app.own = i.own_children
                apps.append(app)
                app.start().ready()
            cpu_start = {}
            for r in range(warmup + per_block):
                if r == warmup:
                    cpu_start = {a.container.name: _cpu_ns(a) for a in apps}
                for app in rotate(apps, r):
                    name = app.container.name
                    if gap:
                        time.sleep(gap)
                    start = time.clock_gettime_ns(clock)
                    app.container.signal_init(sent)
                    data = app.read(5)
                    if len(data) != RECORD.size:
                        raise BenchError(f"{name}: expected one {RECORD.size}-byte record "
                                         f"from the app, got {len(data)} bytes")
                    handled_ns, got, _ = RECORD.unpack(data)
                    if got != expect[name]:
                        raise BenchError(f"{name}: sent {signal.Signals(sent).name}, expected "
                                         f"{signal.Signals(expect[name]).name}, the app got "
                                         f"{got}")
                    if r >= warmup:
                        samples[name].append((handled_ns - start) / 1e9)
            for app in apps:
                cpu[app.container.name] += _cpu_ns(app) - cpu_start[app.container.name]
        finally:
            for app in apps:
                app.close()
        done += per_block
        _progress(f"forwarding {what}", min(done, blocks * per_block), blocks * per_block)
    cpu_per_signal = {n: cpu[n] / 1e9 / len(samples[n]) for n in cpu if samples[n]}
    return samples, cpu_per_signal, {n: signal.Signals(s).name for n, s in expect.items()}


def _cpu_ns(app):
    """CPU time (ns) the init has used, with its own helper processes."""
    pids = [app.container.init]
    if app.own:
        pids += children(app.container.init)
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def rotate(seq, r):
    """Round r of an interleaved run: the same order, starting r places on,
    so no init always goes first (after the harness's own work) or last."""
    k = r % len(seq) if seq else 0
    return [*seq[k:], *seq[:k]]


# -- zombie reaping ------------------------------------------------------------

def reaping(tools, inits, count, rounds):
    """Per init and run: the app's seconds per orphan, the peak zombie count
    (from runs that sample /proc while the app works; the others are left
    unperturbed to time the app), the seconds from the app's last fork until
    no orphan is left, and how many were left after 10 s.

    Each round runs every init once unsampled (cost), then once sampled."""
    samples = {i.name: {"cost": [], "cost_sampled": [], "peak": [], "drain": [],
                     "left": [], "fork_retries": []}
               for i in inits}
    for r in range(rounds):
        for sampled in (False, True):
            for i in rotate(inits, r):
                with App(tools, i.name, [*i.argv, tools.orphans], [count], env=i.env) as app:
                    app.start()
                    _one_reaping_run(app, count, sampled, samples[i.name])
        _progress("reaping", r + 1, rounds)
    return samples


def _one_reaping_run(app, count, sampled, out):
    init = app.container.init
    deadline = time.monotonic() + 60 + count * 0.002
    peak, line = 0, b""
    while b"\n" not in line:
        # Sampling costs CPU the app and the init compete for: at most every
        # millisecond, and only in the sampled runs.
        if wait_readable(app.fd, 0.001 if sampled else 1.0):
            line += app.read(0)
        if sampled:
            peak = max(peak, zombie_children(init))
        if time.monotonic() > deadline:
            raise Timeout(f"{app.container.name}: {count} orphans not made in time")
    done = time.perf_counter()
    elapsed_ns, retries = (int(x) for x in line.split())
    # Drain: until the init has no child but the one it started (the app or
    # its shim): every orphan reaped. Bounded: 10 s, then count what is left.
    left = None
    drain = None
    while True:
        zombies = zombie_children(init)
        if sampled:
            peak = max(peak, zombies)
        if zombies == 0 and len(children(init)) <= 1:
            drain = time.perf_counter() - done
            left = 0
            break
        if time.perf_counter() - done > 10:
            left = zombies
            break
        time.sleep(0.0002)
    if sampled:
        out["peak"].append(peak)
        out["cost_sampled"].append(elapsed_ns / 1e9 / count)
    else:
        out["cost"].append(elapsed_ns / 1e9 / count)
    if drain is not None:
        out["drain"].append(drain)
    out["left"].append(left)
    out["fork_retries"].append(retries)


# -- memory --------------------------------------------------------------------

def smaps_rollup(pid):
    """{field: kB} from /proc/PID/smaps_rollup."""
    result = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                result[parts[0].rstrip(":")] = int(parts[1])
    return result


def pss_uss(pid):
    """(PSS, USS, RSS) of one process in kB: psutil's memory_full_info where
    psutil is installed (the harness may import it; initd may not), else
    the same figures from /proc/PID/smaps_rollup."""
    try:
        import psutil
    except ImportError:
        m = smaps_rollup(pid)
        return (m.get("Pss", 0), m.get("Private_Clean", 0) + m.get("Private_Dirty", 0),
                m.get("Rss", 0))
    info = psutil.Process(pid).memory_full_info()
    return info.pss // 1024, info.uss // 1024, info.rss // 1024


def _init_pids(container, init):
    """The init's own processes: PID 1 and, for initd, its ppidshim (PID 2)."""
    pids = [container.init]
    if init and init.own_children:
        pids += children(container.init)
    return pids


def memory(tools, inits, rounds, settle):
    """PSS, RSS and USS (kB) of each idle init, its own helpers included
    (initd's ppidshim), and of a bare idle interpreter as PID 1 (and one with
    site, for what this machine's site-packages add); for inits with a
    helper, PSS and USS of the init process and of the helper apart
    ("init_pss", "helper_pss", ...).

    One container at a time: PSS splits a shared page among the processes
    mapping it, so running initd beside the bare interpreter would make both
    look smaller (scale() measures exactly that, on purpose)."""
    idle = "import time; time.sleep(600)"
    variants = [(i.name, i, None) for i in inits]
    variants += [(FLOOR, None, [sys.executable, "-I", "-S", "-c", idle]),
                 (SITE, None, [sys.executable, "-c", idle])]
    keys = ("pss", "rss", "uss", "init_pss", "init_uss", "helper_pss", "helper_uss")
    samples = {n: {**{k: [] for k in keys}, "processes": 0} for n, _, _ in variants}
    for r in range(rounds):
        for name, i, argv in rotate(variants, r):
            if i:
                app = App(tools, name, [*i.argv, tools.sigecho], env=i.env)
                app.start().ready()
                container = app.container
            else:
                app = None
                container = Container(name, argv, tools.env, tools, tools.log_fd).start()
                container.find_init()
            try:
                time.sleep(settle)
                if not container.running():
                    raise BenchError(f"{name}: exited while idle; see {tools.log_path}")
                pids = _init_pids(container, i)
                figures = [pss_uss(pid) for pid in pids]
                out = samples[name]
                out["pss"].append(sum(f[0] for f in figures))
                out["uss"].append(sum(f[1] for f in figures))
                out["rss"].append(sum(f[2] for f in figures))
                out["init_pss"].append(figures[0][0])
                out["init_uss"].append(figures[0][1])
                if len(figures) > 1:
                    out["helper_pss"].append(sum(f[0] for f in figures[1:]))
                    out["helper_uss"].append(sum(f[1] for f in figures[1:]))
                out["processes"] = len(pids)
            finally:
                (app or container).close()
        _progress("memory", r + 1, rounds)
    return samples


# -- memory at scale -----------------------------------------------------------

def scale(tools, inits, counts, settle, timeout=90.0):
    """PSS per container (kB: the init and its helpers, not the app) with N
    containers idle side by side, for each N in counts: what a host with
    many containers pays per init once the pages they share (the
    interpreter's, the libraries') are split among them.

    Every container runs `INIT -- sleep 3600`. One N and one init at a
    time; all of them are killed by pid before the next. Bounded: starting
    and settling N containers has `timeout` seconds, or the benchmark fails."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    idle = "import time; time.sleep(3600)"
    variants = [(i.name, i, [*i.argv, sleep, "3600"]) for i in inits]
    variants.append((FLOOR, None, [sys.executable, "-I", "-S", "-c", idle]))
    samples = {name: {} for name, _, _ in variants}
    steps = len(counts) * len(variants)
    step = 0
    for n in counts:
        for name, i, argv in rotate(variants, n):
            containers = []
            try:
                deadline = time.monotonic() + timeout
                for _ in range(n):
                    c = Container(name, argv, tools.env, tools, tools.log_fd).start()
                    containers.append(c)
                for c in containers:
                    c.find_init(max(0.1, deadline - time.monotonic()))
                # Idle means started: initd's app (the sleep) exists, under
                # the ppidshim, so initd is past its start-up and waiting.
                for c in containers:
                    while not _app_started(c, i):
                        if not c.running():
                            raise BenchError(f"{name}: exited while idle; see {tools.log_path}")
                        if time.monotonic() > deadline:
                            raise Timeout(f"{name}: {n} containers not started in {timeout:g}s")
                        time.sleep(0.005)
                time.sleep(settle)
                total = 0
                for c in containers:
                    if not c.running():
                        raise BenchError(f"{name}: exited while idle; see {tools.log_path}")
                    total += sum(pss_uss(pid)[0] for pid in _init_pids(c, i))
                samples[name][str(n)] = total / n
            finally:
                for c in containers:
                    c.close()
            step += 1
            _progress("memory at scale", step, steps)
    return samples


def _app_started(container, init):
    """True once the container's app runs: the init has a child (initd: a
    child of the shim) that has exec'd."""
    level = [container.init]
    for _ in range(2 if init and init.own_children else 1):
        level = [k for p in level for k in children(p)]
    if init is None:
        return True  # the bare interpreter is its own app
    for pid in level:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "sleep":
                    return True
        except OSError:
            pass
    return False


# -- shutdown ------------------------------------------------------------------

def shutdown(tools, inits, rounds, settle):
    """Seconds from kill(init, SIGTERM) to the init's exit, the app dying at
    once of the TERM it is passed."""
    samples = {i.name: [] for i in inits}
    codes = {i.name: set() for i in inits}
    for r in range(rounds):
        for i in rotate(inits, r):
            with App(tools, i.name, [*i.argv, tools.sigecho], env=i.env) as app:
                app.start().ready()
                time.sleep(settle)  # let the init reach its wait loop
                container = app.container
                start = time.perf_counter()
                container.signal_init(signal.SIGTERM)
                container.wait_init_exit(30)
                samples[i.name].append(time.perf_counter() - start)
                codes[i.name].add(container.exit_code(10))
        _progress("shutdown", r + 1, rounds)
    return samples, {n: sorted(c) for n, c in codes.items()}

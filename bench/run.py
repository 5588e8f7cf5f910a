"""python -m bench [--quick]: initd against tini, dumb-init and catatonit."""
import argparse
import datetime
import json
import os
import shlex
import sys
import time

from bench import env, measure, report
from bench.procs import BenchError, cleanup, raise_on_signals

RESULTS = os.path.join(env.REPO, "bench", "results")
DOCS = os.path.join(env.REPO, "docs")

# How much of each benchmark a mode runs.
# gap: seconds of quiet before each forwarded signal (measure.forwarding);
# scale: how many idle containers side by side (measure.scale).
FULL = {"startup": 150, "usr1": 2000, "term": 1000, "blocks": 5, "gap": 0.005,
        "orphans": 20000, "orphan_rounds": 3, "memory": 7, "scale": (1, 10, 100),
        "shutdown": 60, "settle": 0.5, "scale_settle": 0.5}
QUICK = {"startup": 8, "usr1": 100, "term": 60, "blocks": 1, "gap": 0.005,
         "orphans": 2000, "orphan_rounds": 1, "memory": 1, "scale": (1, 5),
         "shutdown": 5, "settle": 0.3, "scale_settle": 0.05}

BENCHMARKS = ("startup", "forwarding", "reaping", "memory", "scale", "shutdown")

# The exec probe issue 12.8 measures forwarding beside (--exec-probe).
EXEC_PROBE = {"health": {"exec": ["true"], "interval": "100ms"}}


def _benchmarks(text):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(BENCHMARKS)}")
    return names


def _role_keys(text):
    try:
        keys = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object: {e}")
    if not isinstance(keys, dict) or "command" in keys:
        raise argparse.ArgumentTypeError("expected a JSON object of role keys, without "
                                         "\"command\" (the benchmark's app is the command)")
    return keys


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("--quick", action="store_true",
                   help="a few samples of everything: proves the harness works (CI), "
                        "in well under a minute; figures are rough")
    p.add_argument("--out", default=None,
                   help=f"directory for the JSON and the chart (default {RESULTS})")
    p.add_argument("--docs", dest="docs", action="store_true", default=None,
                   help="also write docs/bench.png and docs/benchmarks.md "
                        "(the default for a full run)")
    p.add_argument("--no-docs", dest="docs", action="store_false",
                   help="leave docs/ alone (the default for --quick)")
    p.add_argument("--initd", default=env.default_initd(),
                   help="how to start initd, before its options (default: the `initd` "
                        "console script beside this interpreter, as in an image, else "
                        "this interpreter with -m initd; either imports initd from "
                        "--pythonpath)")
    p.add_argument("--pythonpath", default=env.REPO,
                   help="where initd is imported from (default: this checkout); point it "
                        "at a patched copy to measure a fix")
    p.add_argument("--compare", metavar="DIR[::CMD]", action="append", default=[],
                   help="also run initd imported from DIR (a patched copy with its own "
                        "initd/_bin), started as CMD (default: as --initd), as the column "
                        "initd*: a fix measured against the checkout in the same run; "
                        "repeatable (initd**, ...)")
    p.add_argument("--only", default=",".join(BENCHMARKS), type=_benchmarks,
                   help=f"run only these benchmarks (comma-separated: {','.join(BENCHMARKS)}); "
                        "the docs are then left alone")
    p.add_argument("--signal-gap-ms", type=float, default=None,
                   help="quiet before each forwarded signal, so it finds the init asleep "
                        "as a real signal does (default 5; 0: back-to-back round trips, "
                        "which keep the init's code hot and flatter a big interpreter)")
    p.add_argument("--role-keys", metavar="JSON", default=None, type=_role_keys,
                   help="also run the forwarding benchmarks with initd running the app as a "
                        "role with these extra roles.json keys, as the column initd+role; "
                        "skipped with a note when initd rejects them")
    p.add_argument("--exec-probe", dest="role_keys", action="store_const",
                   const=EXEC_PROBE,
                   help="the same with an exec probe every 100 ms "
                        f"({json.dumps(EXEC_PROBE)}), as the column initd+probe")
    p.add_argument("--no-install", action="store_true",
                   help="do not apt-get install missing reference inits")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    python = "python"
    if os.path.abspath(sys.executable).startswith(env.REPO + os.sep):
        python = os.path.relpath(sys.executable, env.REPO)  # .venv/bin/python, as ./dev runs it
    args.command = " ".join([python, "-m", "bench", *map(shlex.quote, argv)])
    raise_on_signals()
    started = time.monotonic()
    tools = None
    try:
        env.check_unshare()
        env.ensure_shim(args.pythonpath)
        missing = env.ensure_reference_inits(install=not args.no_install)
        tools = env.prepare_tools(args.pythonpath)
        compare = []
        for spec in args.compare:
            where, _, command = spec.partition("::")
            compare.append((where, shlex.split(command or args.initd)))
        inits = env.inits(shlex.split(args.initd), missing, tools, compare)
        with_role = []
        if args.role_keys is not None and "forwarding" in args.only:
            name = "initd+probe" if args.role_keys == EXEC_PROBE else "initd+role"
            init, why = env.initd_with_role(name, shlex.split(args.initd), args.role_keys, tools)
            if init is None:
                print(f"bench: {name} skipped: initd rejects {json.dumps(args.role_keys)}: "
                      f"{why}", file=sys.stderr)
            else:
                init.version = inits[0].version
                with_role.append(init)
        return _run(args, inits, tools, started, with_role)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        if tools:
            _tail(tools.log_path)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; every container killed", file=sys.stderr)
        return 130
    finally:
        cleanup()
        if tools:
            tools.close()


def _sources(args, inits):
    """Where each initd column comes from, for the report's first line."""
    if os.path.abspath(args.pythonpath) == env.REPO:
        where = f"at {env.machine_commit()}"
    else:
        where = f"from {args.pythonpath}"
    parts = [f"{where}, started as `{args.initd} --`"]
    for i, spec in zip([i for i in inits if i.name.startswith("initd*")], args.compare):
        directory = spec.partition("::")[0]
        parts.append(f"{i.name} from {directory}, started as `{shlex.join(i.argv)}`")
    return "; ".join(parts)


def _tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            text = f.read().splitlines()[-lines:]
    except OSError:
        return
    if text:
        print("bench: last lines the containers wrote:", file=sys.stderr)
        for line in text:
            print(f"  {line}", file=sys.stderr)


def _run(args, inits, tools, started, with_role=()):
    n = dict(QUICK if args.quick else FULL)
    if args.signal_gap_ms is not None:
        n["gap"] = max(0.0, args.signal_gap_ms / 1000)
    names = [i.name for i in inits]
    # initd with extra role keys runs in the forwarding benchmarks only,
    # right after initd, so its column stands beside it.
    fwd_inits = [*inits[:1], *with_role, *inits[1:]]
    fwd_names = [i.name for i in fwd_inits]
    print(f"bench: {'quick' if args.quick else 'full'} run of {', '.join(args.only)} "
          f"for {', '.join(names)}", file=sys.stderr)
    partial = len(args.only) < len(BENCHMARKS)
    measure.warm_up(tools, inits)
    raw = {k: {} for k in ("startup", "forward_usr1", "cpu_usr1", "forward_term_quit",
                           "cpu_term_quit", "delivered_on_term", "reaping", "memory",
                           "scale", "shutdown", "shutdown_exit_codes")}
    if "startup" in args.only:
        raw["startup"] = measure.startup(tools, inits, n["startup"])
    if "forwarding" in args.only:
        raw["forward_usr1"], raw["cpu_usr1"], _ = measure.forwarding(
            tools, fwd_inits, n["usr1"], translate=False, blocks=n["blocks"], gap=n["gap"])
        raw["forward_term_quit"], raw["cpu_term_quit"], raw["delivered_on_term"] = \
            measure.forwarding(tools, fwd_inits, n["term"], translate=True,
                               blocks=n["blocks"], gap=n["gap"])
        names = fwd_names
    if "reaping" in args.only:
        raw["reaping"] = measure.reaping(tools, inits, n["orphans"], n["orphan_rounds"])
    if "memory" in args.only:
        raw["memory"] = measure.memory(tools, inits, n["memory"], n["settle"])
    if "scale" in args.only:
        raw["scale"] = measure.scale(tools, inits, n["scale"], n["scale_settle"])
    if "shutdown" in args.only:
        raw["shutdown"], raw["shutdown_exit_codes"] = measure.shutdown(
            tools, inits, n["shutdown"], settle=0.1)

    s = report.summarize(raw)
    ts = report.targets(s)
    compare = {n: report.targets(s, n) for n in names if n.startswith("initd*")}
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": ("quick" if args.quick else "full") + (" partial" if partial else ""),
        "command": args.command,
        "duration_s": time.monotonic() - started,
        "machine": env.machine(),
        "versions": {i.name: i.version for i in inits},
        "inits": {i.name: {"argv": i.argv, "translate": i.translate, "role": i.role}
                  for i in fwd_inits},
        "counts": n,
        "pythonpath": args.pythonpath,
        "initd_source": _sources(args, inits),
        "counts_text": (f"start-up {n['startup']} runs, USR1 {n['usr1']} and TERM {n['term']} "
                        f"signals, each after {n['gap'] * 1e3:g} ms of quiet, in "
                        f"{n['blocks']} block(s) of fresh containers, "
                        f"{n['orphan_rounds']}x2 runs of {n['orphans']} orphans, "
                        f"memory {n['memory']} runs, at scale "
                        f"{', '.join(map(str, n['scale']))} containers side by side, "
                        f"shutdown {n['shutdown']} runs per init"),
    }
    md = report.markdown(meta, s, ts, names, compare)

    out = args.out or RESULTS
    stem = "quick" if args.quick else "partial" if partial else "latest"
    report.write_json(os.path.join(out, f"{stem}.json"), meta, raw, s, ts, compare)
    written = [os.path.join(out, f"{stem}.json")]
    if report.chart(os.path.join(out, f"{stem}.png"), s, names):
        written.append(os.path.join(out, f"{stem}.png"))
    if args.docs if args.docs is not None else not (args.quick or partial):
        if report.chart(os.path.join(DOCS, "bench.png"), s, names):
            written.append(os.path.join(DOCS, "bench.png"))
        report.write_docs(os.path.join(DOCS, "benchmarks.md"), md)
        written.append(os.path.join(DOCS, "benchmarks.md"))
    print(md, flush=True)
    print(f"bench: wrote {', '.join(os.path.relpath(p) for p in written)} "
          f"in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0

"""python -m bench [--quick]: initd against tini, dumb-init and catatonit."""
import argparse
import datetime
import os
import shlex
import sys
import time

from bench import env, measure, report
from bench.procs import BenchError, cleanup, raise_on_signals

RESULTS = os.path.join(env.REPO, "bench", "results")
DOCS = os.path.join(env.REPO, "docs")

# How much of each benchmark a mode runs.
FULL = {"startup": 150, "usr1": 5000, "term": 3000, "blocks": 5, "orphans": 20000,
        "orphan_rounds": 3, "memory": 7, "shutdown": 60, "settle": 0.5}
QUICK = {"startup": 8, "usr1": 300, "term": 200, "blocks": 1, "orphans": 2000,
         "orphan_rounds": 1, "memory": 1, "shutdown": 5, "settle": 0.3}


BENCHMARKS = ("startup", "forwarding", "reaping", "memory", "shutdown")


def _benchmarks(text):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(BENCHMARKS)}")
    return names


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
        return _run(args, inits, tools, started)
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


def _run(args, inits, tools, started):
    n = QUICK if args.quick else FULL
    names = [i.name for i in inits]
    print(f"bench: {'quick' if args.quick else 'full'} run of {', '.join(args.only)} "
          f"for {', '.join(names)}", file=sys.stderr)
    partial = len(args.only) < len(BENCHMARKS)
    measure.warm_up(tools, inits)
    raw = {k: {} for k in ("startup", "forward_usr1", "cpu_usr1", "forward_term_quit",
                           "cpu_term_quit", "delivered_on_term", "reaping", "memory",
                           "shutdown", "shutdown_exit_codes")}
    if "startup" in args.only:
        raw["startup"] = measure.startup(tools, inits, n["startup"])
    if "forwarding" in args.only:
        raw["forward_usr1"], raw["cpu_usr1"], _ = measure.forwarding(
            tools, inits, n["usr1"], translate=False, blocks=n["blocks"])
        raw["forward_term_quit"], raw["cpu_term_quit"], raw["delivered_on_term"] = \
            measure.forwarding(tools, inits, n["term"], translate=True, blocks=n["blocks"])
    if "reaping" in args.only:
        raw["reaping"] = measure.reaping(tools, inits, n["orphans"], n["orphan_rounds"])
    if "memory" in args.only:
        raw["memory"] = measure.memory(tools, inits, n["memory"], n["settle"])
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
        "inits": {i.name: {"argv": i.argv, "translate": i.translate} for i in inits},
        "counts": n,
        "pythonpath": args.pythonpath,
        "initd_source": _sources(args, inits),
        "counts_text": (f"start-up {n['startup']} runs, USR1 {n['usr1']} and TERM {n['term']} "
                        f"round trips in {n['blocks']} block(s) of fresh containers, "
                        f"{n['orphan_rounds']}x2 runs of {n['orphans']} orphans, "
                        f"memory {n['memory']} runs, shutdown {n['shutdown']} runs per init"),
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

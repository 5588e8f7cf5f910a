"""Raw samples -> summaries, targets, the markdown table, the chart, JSON."""
import json
import math
import os

from bench.measure import FLOOR, SITE, UNSHARE_ONLY

BASE = "tini"
MARK_BEGIN = "<!-- bench:results:begin (written by `python -m bench`; edits here are lost) -->"
MARK_END = "<!-- bench:results:end -->"
MEMORY_KEYS = ("pss", "rss", "uss", "init_pss", "init_uss", "helper_pss", "helper_uss")

# Issue 15's targets, each a ratio measured in the same run.
FORWARD_P50, FORWARD_P99 = 1.3, 2.0     # x tini
STARTUP = 1.3                           # x the bare interpreter
PSS = 1.25                              # x the bare idle interpreter
ORPHAN = 1.05                           # x tini
SHUTDOWN = 3.0                          # x tini


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "mean": sum(values) / len(values),
            "min": min(values), "max": max(values)}


def summarize(raw):
    """The figures the table and the targets read, per benchmark and variant."""
    s = {}
    s["startup"] = {n: summary(v) for n, v in raw["startup"].items()}
    s["forward_usr1"] = {n: summary(v) for n, v in raw["forward_usr1"].items()}
    s["forward_term_quit"] = {n: summary(v) for n, v in raw["forward_term_quit"].items()}
    s["delivered_on_term"] = raw["delivered_on_term"]
    s["cpu_per_signal_usr1"] = raw["cpu_usr1"]
    s["cpu_per_signal_term_quit"] = raw["cpu_term_quit"]
    s["reaping"] = {n: {"cost": summary(v["cost"]), "cost_sampled": summary(v["cost_sampled"]),
                        "peak_zombies_max": max(v["peak"], default=None),
                        "peak_zombies": summary(v["peak"]),
                        "drain": summary(v["drain"]),
                        "left_max": max(v["left"], default=None),
                        "fork_retries_max": max(v["fork_retries"], default=None)}
                    for n, v in raw["reaping"].items()}
    s["memory"] = {n: {k: summary(v.get(k, [])) for k in MEMORY_KEYS}
                   | {"processes": v["processes"]}
                   for n, v in raw["memory"].items()}
    s["scale"] = raw.get("scale", {})
    s["shutdown"] = {n: summary(v) for n, v in raw["shutdown"].items()}
    s["shutdown_exit_codes"] = raw["shutdown_exit_codes"]
    return s


def _get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def targets(s, who="initd"):
    """Each target for `who`: what, the figure, the limit, met or missed."""
    out = []

    def add(what, value, base, limit, unit, scale, base_name=BASE):
        ratio = _ratio(value, base)
        met = None if ratio is None else ratio <= limit
        figure = ("n/a" if ratio is None else
                  f"{ratio:.2f}x ({_fmt(value, scale)} vs {_fmt(base, scale)} {unit} {base_name})")
        out.append({"target": what, "ratio": ratio, "limit": limit, "value": value,
                    "base": base, "met": met, "figure": figure})

    add(f"forwarding USR1 p50 <= {FORWARD_P50:g}x tini", _get(s, "forward_usr1", who, "p50"),
        _get(s, "forward_usr1", BASE, "p50"), FORWARD_P50, "µs", 1e6)
    add(f"forwarding USR1 p99 <= {FORWARD_P99:g}x tini", _get(s, "forward_usr1", who, "p99"),
        _get(s, "forward_usr1", BASE, "p99"), FORWARD_P99, "µs", 1e6)
    add(f"TERM delivered as QUIT p50 <= {FORWARD_P50:g}x tini (TERM->TERM)",
        _get(s, "forward_term_quit", who, "p50"),
        _get(s, "forward_term_quit", BASE, "p50"), FORWARD_P50, "µs", 1e6)
    add(f"TERM delivered as QUIT p99 <= {FORWARD_P99:g}x tini (TERM->TERM)",
        _get(s, "forward_term_quit", who, "p99"),
        _get(s, "forward_term_quit", BASE, "p99"), FORWARD_P99, "µs", 1e6)
    add(f"reaping cost per orphan <= {ORPHAN:g}x tini", _get(s, "reaping", who, "cost", "p50"),
        _get(s, "reaping", BASE, "cost", "p50"), ORPHAN, "µs/orphan", 1e6)
    left = _get(s, "reaping", who, "left_max")
    out.append({"target": "no zombie left", "value": left, "limit": 0,
                "met": None if left is None else left == 0,
                "figure": "n/a" if left is None else f"{left} left 10 s after the last fork"})
    peak = _get(s, "reaping", who, "peak_zombies_max")
    tini_peak = _get(s, "reaping", BASE, "peak_zombies_max")
    ratio = None if peak is None or tini_peak is None else peak / max(tini_peak, 1)
    out.append({"target": "peak zombies <= 4x tini", "value": peak, "base": tini_peak,
                "ratio": ratio, "limit": 4, "met": None if ratio is None else ratio <= 4,
                "figure": "n/a" if ratio is None else
                f"{ratio:.2f}x ({peak} vs {tini_peak} tini; ratio to max(tini, 1))"})
    add(f"start-up+teardown p50 <= {STARTUP:g}x bare interpreter", _get(s, "startup", who, "p50"),
        _get(s, "startup", FLOOR, "p50"), STARTUP, "ms", 1e3, FLOOR)
    add(f"idle PSS initd+shim <= {PSS:g}x bare idle interpreter",
        _get(s, "memory", who, "pss", "p50"),
        _get(s, "memory", FLOOR, "pss", "p50"), PSS, "MiB", 1 / 1024, FLOOR)
    add(f"shutdown p50 <= {SHUTDOWN:g}x tini", _get(s, "shutdown", who, "p50"),
        _get(s, "shutdown", BASE, "p50"), SHUTDOWN, "ms", 1e3)
    return out


def _fmt(value, scale):
    if value is None:
        return "–"
    v = value * scale
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(s, names):
    """The markdown table: one row per figure, one column per init (and the
    bare interpreter, the floor), each cell with its ratio to tini."""
    cols = [*names, FLOOR, SITE, UNSHARE_ONLY]
    rows = []

    def row(label, getter, scale, ratio_to=BASE, na=None):
        base = getter(ratio_to) if ratio_to else None
        cells = []
        for n in cols:
            v = getter(n)
            if na and n in na:
                cells.append(na[n](v))
                continue
            if v is None:
                cells.append("")
                continue
            text = _fmt(v, scale) if scale else str(v)
            r = _ratio(v, base)
            if r is not None and n != ratio_to:
                text += f" ({r:.2f}x)"
            cells.append(text)
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    delivered = s.get("delivered_on_term", {})
    untranslated = {n: (lambda v, n=n: "" if v is None else f"n/a (TERM->TERM {_fmt(v, 1e6)})")
                    for n in names if delivered.get(n) == "SIGTERM"}
    row("start-up + teardown p50, ms", lambda n: _get(s, "startup", n, "p50"), 1e3)
    row("start-up + teardown p99, ms", lambda n: _get(s, "startup", n, "p99"), 1e3)
    row("forward USR1 p50, µs", lambda n: _get(s, "forward_usr1", n, "p50"), 1e6)
    row("forward USR1 p99, µs", lambda n: _get(s, "forward_usr1", n, "p99"), 1e6)
    row("init CPU per USR1, µs", lambda n: _get(s, "cpu_per_signal_usr1", n), 1e6)
    row("TERM as QUIT p50, µs", lambda n: _get(s, "forward_term_quit", n, "p50"), 1e6, na=untranslated)
    row("TERM as QUIT p99, µs", lambda n: _get(s, "forward_term_quit", n, "p99"), 1e6, na=untranslated)
    row("init CPU per TERM as QUIT, µs", lambda n: _get(s, "cpu_per_signal_term_quit", n), 1e6,
        na={n: (lambda v: "") for n in untranslated})
    row("app's cost per orphan p50, µs", lambda n: _get(s, "reaping", n, "cost", "p50"), 1e6)
    row("peak zombies (max of runs)", lambda n: _get(s, "reaping", n, "peak_zombies_max"), None)
    row("last orphan reaped after, ms p50", lambda n: _get(s, "reaping", n, "drain", "p50"), 1e3)
    row("zombies left (max of runs)", lambda n: _get(s, "reaping", n, "left_max"), None, ratio_to=None)
    row("PSS idle, MiB", lambda n: _get(s, "memory", n, "pss", "p50"), 1 / 1024)
    row("USS idle, MiB", lambda n: _get(s, "memory", n, "uss", "p50"), 1 / 1024)
    row("RSS idle, MiB", lambda n: _get(s, "memory", n, "rss", "p50"), 1 / 1024)
    row("PSS idle, init process alone, MiB",
        lambda n: _get(s, "memory", n, "init_pss", "p50") if _get(s, "memory", n, "helper_pss") else None,
        1 / 1024, ratio_to=None)
    row("USS idle, init process alone, MiB",
        lambda n: _get(s, "memory", n, "init_uss", "p50") if _get(s, "memory", n, "helper_pss") else None,
        1 / 1024, ratio_to=None)
    row("PSS idle, its helper (initd's ppidshim), MiB",
        lambda n: _get(s, "memory", n, "helper_pss", "p50"), 1 / 1024, ratio_to=None)
    row("USS idle, its helper (initd's ppidshim), MiB",
        lambda n: _get(s, "memory", n, "helper_uss", "p50"), 1 / 1024, ratio_to=None)
    row("shutdown on TERM p50, ms", lambda n: _get(s, "shutdown", n, "p50"), 1e3)
    row("shutdown on TERM p99, ms", lambda n: _get(s, "shutdown", n, "p99"), 1e3)
    # Drop columns that are empty in every row (e.g. "unshare only" has start-up only).
    header = ["figure", *cols]
    matrix = [r.strip("|").split(" | ") for r in rows]
    matrix = [[c.strip() for c in r] for r in matrix]
    keep = [0] + [j for j in range(1, len(header)) if any(r[j] for r in matrix)]
    lines = ["| " + " | ".join(header[j] for j in keep) + " |",
             "|" + "|".join(["---"] + ["--:"] * (len(keep) - 1)) + "|"]
    lines += ["| " + " | ".join(r[j] for j in keep) + " |" for r in matrix]
    return "\n".join(lines)


def scale_table(s, names):
    """PSS per container (the init and its helper) with N idle side by side."""
    scale = s.get("scale") or {}
    cols = [n for n in [*names, FLOOR] if scale.get(n)]
    if not cols:
        return ""
    counts = sorted({int(k) for n in cols for k in scale[n]})
    lines = ["| PSS per container, MiB, with N idle side by side | "
             + " | ".join(f"N = {k}" for k in counts) + " |",
             "|---|" + "|".join(["--:"] * len(counts)) + "|"]
    for n in cols:
        cells = []
        for k in counts:
            v = scale[n].get(str(k))
            base = _get(scale, BASE, str(k))
            text = "" if v is None else _fmt(v, 1 / 1024)
            r = _ratio(v, base)
            if r is not None and n != BASE:
                text += f" ({r:.2f}x)"
            cells.append(text)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(ts, who="initd"):
    lines = [f"| target ({who}) | figure | result |", "|---|---|---|"]
    for t in ts:
        result = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
        lines.append(f"| {t['target']} | {t['figure']} | {result} |")
    return "\n".join(lines)


def markdown(meta, s, ts, names, compare=None):
    m = meta["machine"]
    versions = ", ".join(f"{n} `{v}`" for n, v in meta["versions"].items() if v)
    return "\n".join([
        f"Run {meta['date']} ({meta['mode']} mode, {meta['duration_s']:.0f} s) on "
        f"{m['cpu']} ({m['cpus']} CPUs), Linux {m['kernel']}, Python {m['python']} "
        f"(`{m['python_executable']}`), "
        f"initd {meta['initd_source']}.",
        "",
        f"Reproduce: `{meta['command']}` from the repository root (as root). "
        f"Versions: {versions}.",
        "",
        f"Every init runs as PID 1 of a fresh PID namespace (`unshare --pid --fork "
        f"--mount-proc INIT -- APP`), all of them interleaved round by round. Ratios in "
        f"brackets are to tini. Counts: {meta['counts_text']}.",
        "",
        table(s, names),
        "",
        *([scale_table(s, names), ""] if scale_table(s, names) else []),
        targets_table(ts),
        *[part for n, t in (compare or {}).items() for part in ("", targets_table(t, n))],
    ])


def write_json(path, meta, raw, s, ts, compare=None):
    # Thousands of forwarding samples add nothing the summaries lack.
    keep = {k: v for k, v in raw.items() if not k.startswith("forward_")}
    data = {"meta": meta, "summary": s, "targets": ts, "raw": keep}
    for n, t in (compare or {}).items():
        data[f"targets_{n}"] = t
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=list)
    os.replace(tmp, path)


def write_docs(path, block):
    """Replace the generated block of docs/benchmarks.md; keep the rest (the
    hand-written explanations)."""
    generated = f"{MARK_BEGIN}\n{block}\n{MARK_END}"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + generated + tail
    else:
        text = ("# Benchmarks\n\ninitd against tini, dumb-init and catatonit; see "
                "`bench/`.\n\n" + generated + "\n" + text)
    with open(path, "w") as f:
        f.write(text)


def chart(path, s, names):
    """The PNG; False (and a note) when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        import sys
        print(f"bench: matplotlib not installed: no chart at {path}", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # (title, summary getter, scale, columns, target: (reference, limit))
    panels = [
        ("start-up + teardown (ms, log)", lambda n: _get(s, "startup", n), 1e3,
         [*names, FLOOR, SITE], (FLOOR, STARTUP)),
        ("forward USR1 (µs)", lambda n: _get(s, "forward_usr1", n), 1e6, names, (BASE, FORWARD_P50)),
        ("TERM delivered as QUIT (µs)\nhatched: TERM->TERM, cannot translate",
         lambda n: _get(s, "forward_term_quit", n), 1e6, names, (BASE, FORWARD_P50)),
        ("app's cost per orphan (µs)", lambda n: _get(s, "reaping", n, "cost"), 1e6, names,
         (BASE, ORPHAN)),
        ("idle PSS (MiB)", lambda n: _get(s, "memory", n, "pss"), 1 / 1024,
         [*names, FLOOR, SITE], (FLOOR, PSS)),
        ("shutdown on TERM (ms)", lambda n: _get(s, "shutdown", n), 1e3, names, (BASE, SHUTDOWN)),
    ]
    colors = {"initd": "#d62728", "initd*": "#ff9896", "initd**": "#e377c2", "tini": "#1f77b4",
              "dumb-init": "#2ca02c", "catatonit": "#9467bd", FLOOR: "#7f7f7f", SITE: "#c7c7c7"}
    untranslated = {n for n, d in s.get("delivered_on_term", {}).items() if d == "SIGTERM"}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for ax, (title, getter, scale, cols, (ref, limit)) in zip(axes.flat, panels):
        xs, p50s, p99s, hatches, labels = [], [], [], [], []
        for j, n in enumerate(cols):
            st = getter(n)
            if not st:
                continue
            xs.append(j)
            p50s.append(st["p50"] * scale)
            p99s.append(st["p99"] * scale)
            hatches.append("//" if "QUIT" in title and n in untranslated else "")
            labels.append(n)
        ax.set_title(title, fontsize=10)
        if not xs:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        bars = ax.bar(xs, p50s, color=[colors.get(n, "#555") for n in labels], alpha=0.85)
        for bar, h in zip(bars, hatches):
            bar.set_hatch(h)
        ax.scatter(xs, p99s, marker="_", s=400, color="black", zorder=3,
                   label="p99")
        if getter(ref):
            ax.axhline(getter(ref)["p50"] * scale * limit, color="#d62728", linestyle="--",
                       linewidth=1, label=f"target: {limit:g}x {ref} p50")
        for x, v in zip(xs, p50s):
            ax.annotate(_fmt(v, 1), (x, v), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(xs, labels, rotation=20, fontsize=8)
        if "log" in title:
            ax.set_yscale("log")
            ax.set_ylim(top=ax.get_ylim()[1] * 4)
        else:
            ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("initd vs tini, dumb-init, catatonit as PID 1 (bars: median)", fontsize=12)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

"""Signal names and numbers, the set initd waits for, and rewrite maps.

Uses _signal, the C module behind signal.py: the Signals enum would import
enum, about 7 ms and 1 MiB at every container start, for names we only need
in log lines and error messages.
"""
import _signal as signal

# The kernel's fault signals are left alone: blocking them hides real crashes
# (a synchronous fault kills a process even when blocked) and forwarding them
# makes no sense.
FAULT = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                   signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS})

# Everything the app can be sent on our behalf: 1-31 but KILL, STOP, CHLD and
# the faults, plus the real-time signals (glibc keeps 32 and 33 for itself).
FORWARDABLE = frozenset(
    [s for s in range(1, 32)
     if s not in FAULT and s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)]
    + list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)))

# What PID 1 blocks and waits for: the forwardable ones and SIGCHLD (to wake
# up and reap).
WAITED = FORWARDABLE | {signal.SIGCHLD}

# Received signals that mean "stop the container": docker stop (TERM) and
# Ctrl-C (INT). They start the stop timer; every signal is still delivered.
STOP = frozenset({signal.SIGTERM, signal.SIGINT})

# Job control from a terminal: with --job-control (dumb-init) initd passes
# them on and then stops itself, as a shell's job would.
JOB_CONTROL = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

DROP = 0  # a map destination that means: deliver nothing


_NAMES = {}  # number -> name, filled on first use


def name(signum):
    """SIGTERM for 15, SIGRTMIN+3 for real-time ones, and the number otherwise."""
    if signum == DROP:
        return "nothing"
    if signal.SIGRTMIN < signum <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    if not _NAMES:
        for key, value in _known_names().items():
            if key not in _ALIASES:
                _NAMES.setdefault(value, "SIG" + key)
    return _NAMES.get(signum, str(signum))


_ALIASES = ("IOT", "POLL", "CLD", "RTMIN", "RTMAX")  # other names of ABRT, IO, CHLD


def _known_names():
    """{"TERM": 15, ...} from the C module's constants."""
    names = {key[3:]: value for key, value in vars(signal).items()
             if key.startswith("SIG") and not key.startswith("SIG_") and isinstance(value, int)}
    names["RTMIN"] = signal.SIGRTMIN
    names["RTMAX"] = signal.SIGRTMAX
    return names


def parse(text, allow_drop=False):
    """A signal from "TERM", "SIGTERM", "term", "15" or "RTMIN+2" (and 0/none
    when allow_drop). Raises ValueError with a hint on an unknown name."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"expected a signal name or number, got {text!r}")
    raw = str(text).strip()
    if allow_drop and raw.lower() in ("0", "none"):
        return DROP
    if raw.isdigit():
        num = int(raw)
        if 1 <= num <= signal.SIGRTMAX:
            return num
        raise ValueError(f"signal number {num} is out of range (1-{int(signal.SIGRTMAX)})")
    key = raw.upper()
    if key.startswith("SIG"):
        key = key[3:]
    known = _known_names()
    base, plus, offset = key.partition("+")
    if plus and base in ("RTMIN",) and offset.isdigit():
        num = signal.SIGRTMIN + int(offset)
        if num <= signal.SIGRTMAX:
            return num
    if key in known:
        return known[key]
    import difflib  # only on the error path: it is slow to import
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (try {close[0]})" if close else ""
    raise ValueError(f'unknown signal "{raw}"{hint}')


def check_forwardable(signum, what):
    """Signals initd can receive (map sources) must be ones it waits for."""
    if signum not in FORWARDABLE:
        raise ValueError(f"{name(signum)} cannot be {what} (initd only handles "
                         "1-31 but KILL, STOP, CHLD and fault signals, and real-time ones)")


def parse_map_entry(text):
    """One `--map SRC:DST` argument -> (src, dst)."""
    src, sep, dst = str(text).partition(":")
    if not sep or not src or not dst:
        raise ValueError(f'expected SRC:DST such as TERM:QUIT, got "{text}"')
    src_num = parse(src)
    check_forwardable(src_num, "mapped")
    return src_num, parse(dst, allow_drop=True)

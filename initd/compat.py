"""initd under the names tini and dumb-init: their command lines and
environment variables -> cli.Settings.

An image swaps its init by putting initd where tini or dumb-init was (`initd
install-compat DIR` makes the symlinks; INITD_AS=tini|dumb-init does the same
without one) and keeps its ENTRYPOINT. Each program's grammar is parsed the way
its own getopt parses it, so a command line means under initd what it meant
before, including the quirks (tini's GNU getopt moves options found after the
program name to the front; dumb-init's stops at the program name).

Pure: argv and a dict environment in, Settings out, no OS calls. What each
setting does is implemented where its concern lives: loop.py (exit-code
remapping, reap warnings, job control), spawn.py and the shim (setsid, the
controlling tty, the exec-failure code), cli.run (subreaper, parent-death
signal). docs/migrating.md lists the flags and the deliberate differences.
"""
import sys

from initd import __version__, signals
from initd.settings import PERSONALITIES, Settings, personality  # noqa: F401 - compat's names
from initd.errors import InitdError

TINI_VERSION = "0.19.0"
DUMB_INIT_VERSION = "1.2.5"

# tini's -p accepts exactly these spellings (its signal_names table, tini.c).
TINI_PDEATH_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG",
    "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGSYS")

# dumb-init's getopt_long table; a unique prefix of a long name is accepted.
DUMB_INIT_LONG = {"help": "h", "single-child": "c", "rewrite": "r",
                  "verbose": "v", "version": "V"}
DUMB_INIT_MAXSIG = 31  # -r takes 1-31 (0 as the destination drops)


def parse(who, argv, environ):
    return {"tini": parse_tini, "dumb-init": parse_dumb_init}[who](argv, environ)


# -- tini ---------------------------------------------------------------------

def _tini_error(message):
    # tini exits 1 on every bad command line (its parse_fail_exitcode).
    return InitdError(f"tini: {message} (see tini -h)", exit_code=1)


def parse_tini(argv, environ):
    """tini [-h] [-s] [-p SIG] [-v...] [-w] [-g] [-e CODE...] [-l] PROGRAM [--] [ARGS]

    tini calls getopt("p:hvwgle:s"). GNU getopt permutes: options may follow
    the program name and `--` may come after it (`tini prog -- -x` runs
    `prog -x`, and `tini ls -l` prints the license), unless POSIXLY_CORRECT is
    set. --version counts only as the sole argument.
    """
    s = Settings()
    s.personality = "tini"
    if argv == ["--version"]:
        s.action = "version"
        return s
    permute = "POSIXLY_CORRECT" not in environ
    operands = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            operands += argv[i + 1:]
            break
        if not arg.startswith("-") or arg == "-":
            if not permute:
                operands += argv[i:]
                break
            operands.append(arg)
            i += 1
            continue
        if arg.startswith("--"):
            raise _tini_error(f"unrecognized option '{arg}'")
        for j, letter in enumerate(arg[1:], 1):
            if letter in "pe":
                value = arg[j + 1:]
                if not value:
                    i += 1
                    if i == len(argv):
                        raise _tini_error(f"option requires an argument -- '{letter}'")
                    value = argv[i]
                _tini_value(s, letter, value)
                break
            if letter in "hl":  # -h and -l act at once, as in tini
                s.action = "help" if letter == "h" else "license"
                return s
            if letter == "s":
                s.subreaper = True
            elif letter == "v":
                s.verbose += 1
            elif letter == "w":
                s.warn_on_reap = True
            elif letter == "g":
                s.process_group = True
                s.origin["process_group"] = "-g"
            else:
                raise _tini_error(f"invalid option -- '{letter}'")
        i += 1
    if not operands:
        raise _tini_error("no program to run; usage: tini [OPTIONS] PROGRAM -- [ARGS]")
    s.command = operands
    # tini's parse_env: these two count when set at all, even to "" or "0".
    if "TINI_SUBREAPER" in environ:
        s.subreaper = True
    if "TINI_KILL_PROCESS_GROUP" in environ:
        s.process_group = True
        s.origin["process_group"] = "TINI_KILL_PROCESS_GROUP"
    if "TINI_VERBOSITY" in environ:
        # It replaces the -v count (atoi: junk is 0). tini's default level 1
        # (warnings) is initd's 0.
        s.verbose = _atoi(environ["TINI_VERBOSITY"]) - 1
    s.verbose = max(s.verbose, -1)  # -1: errors only
    if s.subreaper is None:
        # Unlike plain initd, tini registers as a subreaper only when asked;
        # cli.run warns about it as tini does.
        s.subreaper = False
    return s


def _tini_value(s, letter, value):
    import re  # only tini/dumb-init command lines pay for it
    if letter == "p":
        if value not in TINI_PDEATH_NAMES:
            raise InitdError(f"tini: -p: not a valid signal: {value} (e.g. -p SIGKILL)", exit_code=1)
        s.pdeathsig = value
        s.origin["pdeathsig"] = "-p"
    else:
        # strtol(arg, &end, 10) with nothing left over, then 0-255.
        if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+", value) or not 0 <= int(value) <= 255:
            raise InitdError(f"tini: -e: not a valid exit code: {value} (0-255)", exit_code=1)
        s.exit_zero.append(str(int(value)))
        s.origin["exit_zero"] = "-e"


def _atoi(text):
    import re  # only tini/dumb-init command lines pay for it
    match = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else 0


# -- dumb-init ----------------------------------------------------------------

def _dumb_init_error(message):
    # getopt's complaints and dumb-init's own usage errors all exit 1.
    return InitdError(f"dumb-init: {message} (see dumb-init --help)", exit_code=1)


def parse_dumb_init(argv, environ):
    """dumb-init [-c] [-r S:D...] [-v] [-h] [-V] PROGRAM [ARGS]

    getopt_long("+hvVcr:"): options end at the first word that is not one
    (the `+`), long names may be abbreviated to a unique prefix.
    """
    s = Settings()
    s.personality = "dumb-init"
    setsid = True
    rewrites = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            letter, value, i = _dumb_init_long(argv, i)
            options = [(letter, value)]
        else:
            options = []
            for j, letter in enumerate(arg[1:], 1):
                if letter == "r":
                    value = arg[j + 1:]
                    if not value:
                        i += 1
                        if i == len(argv):
                            raise _dumb_init_error("option requires an argument -- 'r'")
                        value = argv[i]
                    options.append(("r", value))
                    break
                if letter not in "hvVc":
                    raise _dumb_init_error(f"invalid option -- '{letter}'")
                options.append((letter, None))
        for letter, value in options:
            if letter in "hV":  # printed and gone, as in dumb-init
                s.action = "help" if letter == "h" else "version"
                return s
            if letter == "v":
                s.verbose = 2
            elif letter == "c":
                setsid = False
            elif letter == "r":
                src, dst = _rewrite(value)
                rewrites[src] = dst
        i += 1
    if i >= len(argv):
        raise _dumb_init_error("no program to run; usage: dumb-init [option] program [args]")
    s.command = argv[i:]
    # Exactly "1" and exactly "0", as dumb-init compares them.
    if environ.get("DUMB_INIT_DEBUG") == "1":
        s.verbose = 2
    if environ.get("DUMB_INIT_SETSID") == "0":
        setsid = False
    # setsid mode: the app leads a session of its own and signals go to its
    # whole process group; -c: the app alone. cli.resolve_role turns
    # TSTP/TTIN/TTOU into STOP for a setsid app, unless rewritten here.
    s.setsid = setsid
    s.process_group = setsid
    s.origin["process_group"] = "-c" if not setsid else "dumb-init"
    s.job_control = True  # dumb-init always suspends itself after TSTP/TTIN/TTOU
    s.exec_error = 2      # dumb-init's child exits 2 when exec fails
    # Sources initd cannot receive (KILL, STOP, CHLD, the fault signals) are
    # accepted, as by dumb-init, and have no effect.
    s.maps = [f"{src}:{dst}" for src, dst in rewrites.items() if src in signals.FORWARDABLE]
    s.origin["maps"] = "-r"
    return s


def _dumb_init_long(argv, i):
    """One --name[=value] of dumb-init's: (letter, value, index of the last word used)."""
    name, eq, value = argv[i][2:].partition("=")
    matches = [name] if name in DUMB_INIT_LONG else [n for n in DUMB_INIT_LONG if n.startswith(name)]
    if not matches or not name:
        raise _dumb_init_error(f"unrecognized option '--{name}'")
    if len(matches) > 1:
        choices = " ".join(f"'--{m}'" for m in matches)
        raise _dumb_init_error(f"option '--{name}' is ambiguous; possibilities: {choices}")
    full = matches[0]
    letter = DUMB_INIT_LONG[full]
    if letter != "r":
        if eq:
            raise _dumb_init_error(f"option '--{full}' doesn't allow an argument")
        return letter, None, i
    if not eq:
        i += 1
        if i == len(argv):
            raise _dumb_init_error(f"option '--{full}' requires an argument")
        value = argv[i]
    return letter, value, i


def _rewrite(text):
    """dumb-init's sscanf("%d:%d"): numbers only, 1-31 -> 0-31."""
    import re  # only tini/dumb-init command lines pay for it
    match = re.match(r"\s*([+-]?[0-9]+):\s*([+-]?[0-9]+)", text)
    if match:
        src, dst = int(match.group(1)), int(match.group(2))
        if 1 <= src <= DUMB_INIT_MAXSIG and 0 <= dst <= DUMB_INIT_MAXSIG:
            return src, dst
    raise InitdError(f'dumb-init: -r takes <signum>:<signum> with numbers 1-{DUMB_INIT_MAXSIG} '
                     f'(0 as the second drops the signal), got "{text}"', exit_code=1)


# -- what they print ------------------------------------------------------------

TINI_HELP = f"""\
tini (initd {__version__}, compatible with tini version {TINI_VERSION})
Usage: tini [OPTIONS] PROGRAM -- [ARGS] | --version

Execute a program under the supervision of a valid init process (initd, running as tini)

Command line options:

  --version: Show version and exit.
  -h: Show this help message and exit.
  -s: Register as a process subreaper (requires Linux >= 3.4).
  -p SIGNAL: Trigger SIGNAL when parent dies, e.g. "-p SIGKILL".
  -v: Generate more verbose output. Repeat up to 3 times.
  -w: Print a warning when processes are getting reaped.
  -g: Send signals to the child's process group.
  -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0 (can be repeated).
  -l: Show license and exit.

Environment variables:

  TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).
  TINI_VERBOSITY: Set the verbosity level (default: 1).
  TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.

initd's own options: initd --help (INITD_AS=initd, or run it as initd).

"""

DUMB_INIT_HELP = f"""\
dumb-init v{DUMB_INIT_VERSION} (initd {__version__})
Usage: dumb-init [option] command [[arg] ...]

dumb-init is a simple process supervisor that forwards signals to children.
This is initd running as dumb-init; it runs as PID1 in minimal container environments.

Optional arguments:
   -c, --single-child   Run in single-child mode.
                        In this mode, signals are only proxied to the
                        direct child and not any of its descendants.
   -r, --rewrite s:r    Rewrite received signal s to new signal r before proxying.
                        To ignore (not proxy) a signal, rewrite it to 0.
                        This option can be specified multiple times.
   -v, --verbose        Print debugging information to stderr.
   -h, --help           Print this help message and exit.
   -V, --version        Print the current version and exit.

Environment: DUMB_INIT_SETSID=0 (as -c), DUMB_INIT_DEBUG=1 (as -v).
initd's own options: initd --help (INITD_AS=initd, or run it as initd).
"""

LICENSE = f"initd {__version__} (running as tini) is distributed under the MIT License.\n"


def show(s):
    """-h, --version, -l: printed where the original prints them (tini:
    stdout; dumb-init: stderr). The exit code."""
    text = {
        ("tini", "help"): TINI_HELP,
        ("tini", "version"): f"tini version {TINI_VERSION} (initd {__version__})\n",
        ("tini", "license"): LICENSE,
        ("dumb-init", "help"): DUMB_INIT_HELP,
        ("dumb-init", "version"): f"dumb-init v{DUMB_INIT_VERSION} (initd {__version__})\n",
    }[s.personality, s.action]
    stream = sys.stdout if s.personality == "tini" else sys.stderr
    stream.write(text)
    stream.flush()
    return 0

"""argv + INITD_* environment -> what to run; the one place errors become a
line on stderr and an exit code.

Hand-parsed rather than argparse: the grammar is small (`initd [opts] -- CMD`
must leave CMD's own options alone) and argparse costs milliseconds of
start-up in every container.
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import sys

from initd import __version__, config, log, signals, values
from initd.errors import InitdError
from initd.settings import Settings, personality

USAGE = """\
usage: initd [OPTIONS] --role NAME        run a role of roles.json
       initd [OPTIONS] -- COMMAND [ARG...]  run a command
       initd check [--roles PATH] [--role NAME]
                                          validate roles.json, print the plan
       initd health [--ready] [--control PATH]
                                          ask a running initd: exit 0 when
                                          alive (--ready: ready for traffic)
       initd status [--json] [--control PATH]
                                          ask a running initd what it runs
       initd install-compat DIR           make DIR/tini and DIR/dumb-init
                                          symlinks to initd (see below)

initd runs as PID 1 of a container: it starts the app under a parent shim
(PID 2) so the app (PID 3) never sees getppid() == 1, translates and passes on
every signal, reaps every zombie, stops gracefully and exits with the app's
exact status.

options (each also read from the environment variable shown):
  --role NAME          role to run                                INITD_ROLE
  --roles PATH         roles file (default /app/container/roles.json)
                                                                  INITD_ROLES
  --map SRC:DST        deliver DST when SRC arrives, e.g. TERM:QUIT; DST 0 or
                       none drops SRC; repeatable, overrides the role's map
                                                 INITD_MAP="TERM:QUIT USR1:0"
  --stop-timeout SECS  after a stop signal (TERM, INT), how long the app may
                       take before its process group gets SIGKILL (default 7)
                                                          INITD_STOP_TIMEOUT
  --orphan-grace SECS  after the app exits, how long leftover processes get
                       between SIGTERM and SIGKILL (default 2)
                                                          INITD_ORPHAN_GRACE
  --process-group, --no-process-group
                       deliver signals to the app's whole process group, or
                       to the app alone (overrides the role) INITD_PROCESS_GROUP=1|0
  --fqdn NAME          hostname the app sees through gethostname()/uname();
                       {hostname} is the container's short name  INITD_FQDN
  --subreaper, --no-subreaper
                       when not PID 1, adopt the app's orphans (default: yes)
                                                     INITD_SUBREAPER=1|0
  --parent-death-signal SIG
                       signal initd itself gets when its parent dies (tini -p)
                                                 INITD_PARENT_DEATH_SIGNAL
  --exit-zero CODE     report the app's exit code CODE as 0, e.g. 143 for a
                       SIGTERM death; repeatable (tini -e)
                                                 INITD_EXIT_ZERO="143 130"
  --warn-on-reap       warn for every orphan reaped (tini -w)
                                                     INITD_WARN_ON_REAP=1
  --setsid, --no-setsid
                       run the app in a session of its own, with the
                       terminal as its controlling tty (dumb-init's default)
                                                        INITD_SETSID=1|0
  --single-child       no session of its own, signals to the app alone, not
                       its group (dumb-init -c)         INITD_SINGLE_CHILD=1
  --job-control        after passing on TSTP, TTIN or TTOU, stop initd too;
                       SIGCONT continues it (dumb-init) INITD_JOB_CONTROL=1
  --control PATH       the control socket for `initd health` and `initd status`
                       (default /run/initd/initd.sock as root)  INITD_CONTROL
  --no-control         no control socket
  --metrics ADDR       serve Prometheus metrics on HOST:PORT     INITD_METRICS
  --exit-delay SECS    after everything is gone, wait this long before
                       exiting (log shippers read the last lines) INITD_EXIT_DELAY
  -v, --verbose        say what happens (twice: debug)       INITD_VERBOSE=1|2
  --version            print the version
  -h, --help           this help

Run under the name tini or dumb-init (a symlink, see install-compat) or with
INITD_AS=tini|dumb-init, initd reads that program's command line and
environment instead (tini -s -g -e 143 -- CMD, dumb-init -r 15:3 CMD).
"""

# Options that take a value -> (Settings field, environment variable).
VALUE_OPTIONS = {
    "--role": ("role", "INITD_ROLE"),
    "--roles": ("roles", "INITD_ROLES"),
    "--map": ("maps", "INITD_MAP"),
    "--stop-timeout": ("stop_timeout", "INITD_STOP_TIMEOUT"),
    "--orphan-grace": ("orphan_grace", "INITD_ORPHAN_GRACE"),
    "--fqdn": ("fqdn", "INITD_FQDN"),
    "--control": ("control", "INITD_CONTROL"),
    "--metrics": ("metrics", "INITD_METRICS"),
    "--exit-delay": ("exit_delay", "INITD_EXIT_DELAY"),
    "--parent-death-signal": ("pdeathsig", "INITD_PARENT_DEATH_SIGNAL"),
    "--exit-zero": ("exit_zero", "INITD_EXIT_ZERO"),
}
# Value options that may be repeated; their variable holds a list.
LIST_FIELDS = ("maps", "exit_zero")

# Options without a value -> the Settings fields they set.
FLAG_OPTIONS = {
    "--process-group": {"process_group": True},
    "--no-process-group": {"process_group": False},
    "--subreaper": {"subreaper": True},
    "--no-subreaper": {"subreaper": False},
    "--warn-on-reap": {"warn_on_reap": True},
    "--setsid": {"setsid": True},
    "--no-setsid": {"setsid": False},
    "--single-child": {"setsid": False, "process_group": False},
    "--job-control": {"job_control": True},
    "--no-control": {"no_control": True},
}
# Their environment variables: 1 acts as the first option, 0 as the second.
FLAG_ENVIRONMENT = {
    "INITD_PROCESS_GROUP": ("--process-group", "--no-process-group"),
    "INITD_SUBREAPER": ("--subreaper", "--no-subreaper"),
    "INITD_WARN_ON_REAP": ("--warn-on-reap", None),
    "INITD_SETSID": ("--setsid", "--no-setsid"),
    "INITD_SINGLE_CHILD": ("--single-child", None),
    "INITD_JOB_CONTROL": ("--job-control", None),
}


def parse_args(argv, environ):
    s = Settings()
    i = 0
    if argv and argv[0] == "check":
        s.action, i = "check", 1
    elif argv and argv[0] == "install-compat":
        if len(argv) != 2 or argv[1].startswith("-"):
            raise InitdError("usage: initd install-compat DIR (makes DIR/tini and DIR/dumb-init)")
        s.action, s.install_dir = "install-compat", argv[1]
        return s
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            s.command = argv[i + 1:]
            break
        name, eq, inline = arg.partition("=")
        if name in VALUE_OPTIONS:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise InitdError(f"{name}: expected a value (see initd --help)")
            attr = VALUE_OPTIONS[name][0]
            if attr in LIST_FIELDS:
                getattr(s, attr).append(value)
            else:
                setattr(s, attr, value)
            s.origin[attr] = name
        elif arg in ("-h", "--help"):
            s.action = "help"
        elif arg == "--version":
            s.action = "version"
        elif arg in ("-v", "--verbose"):
            s.verbose += 1
        elif arg == "-vv":
            s.verbose += 2
        elif arg in FLAG_OPTIONS:
            for attr, value in FLAG_OPTIONS[arg].items():
                setattr(s, attr, value)
                s.origin[attr] = arg
        elif arg.startswith("-"):
            raise InitdError(f"{arg}: unknown option (see initd --help; put the command after --)")
        else:
            s.command = argv[i:]  # like tini: the first word that is no option starts the command
            break
        i += 1
    _apply_environment(s, environ)
    return s


def _apply_environment(s, environ):
    s.environ_role = environ.get("INITD_ROLE") or None
    for attr, var in VALUE_OPTIONS.values():
        value = environ.get(var)
        if value is None or attr in s.origin:
            continue
        if attr in LIST_FIELDS:
            setattr(s, attr, value.replace(",", " ").split())
        else:
            setattr(s, attr, value)
        s.origin[attr] = var
    for var, (on, off) in FLAG_ENVIRONMENT.items():
        option = (on if _env_flag(environ, var) else off) if var in environ else None
        for attr, value in FLAG_OPTIONS.get(option, {}).items():
            if getattr(s, attr) is None:
                setattr(s, attr, value)
                s.origin[attr] = var
    if not s.verbose and environ.get("INITD_VERBOSE"):
        v = environ["INITD_VERBOSE"].strip()
        if v.isascii() and v.isdigit():  # not "²", which isdigit() accepts and int() refuses
            s.verbose = values.whole(v, 0, 9)
        else:
            s.verbose = int(_env_flag(environ, "INITD_VERBOSE"))


def _env_flag(environ, var):
    value = environ[var].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise InitdError(f"{var}: expected 1 or 0 (true or false), got \"{environ[var]}\"")


def check(s):
    """`initd check`: validate and print the plan of one role or all."""
    from initd import plan as plans
    path = s.roles or config.DEFAULT_ROLES
    data = config.load(path)
    names = [s.role] if s.role else config.role_names(data)
    for name in names:
        s.role, s.command = name, []
        plan = plans.build(s, os.environ, "/", checking=True)
        print("\n".join(plans.describe(plan)))
    print(f"{path}: ok ({len(names)} role{'s' if len(names) != 1 else ''} checked)")
    return 0


def set_title(title):
    """What `ps` shows for PID 1. setproctitle's C module is loaded on its own:
    the package's __init__ imports logging (about 15 ms and 1.6 MiB at every
    container start) only to log when that C module is missing."""
    # A name that is not UTF-8 (a command at /tmp/caf\xe9) arrives with
    # surrogate escapes, which setproctitle cannot encode.
    title = title.encode(errors="surrogateescape").decode(errors="replace")
    try:
        from initd import native
        path = native.find_in_package("setproctitle", "_setproctitle")
        native.load("_setproctitle", path).setproctitle(title)
    except Exception:  # noqa: BLE001 - a missing title is cosmetic: the usual way, or none
        try:
            import setproctitle
            setproctitle.setproctitle(title)
        except Exception:  # noqa: BLE001 - cosmetic: never a reason not to start
            log.debug("setproctitle is not usable: ps shows the python command line")


def run(s):
    from initd import plan as plans
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        # Started in a deleted directory: the app runs from / instead.
        log.warning("the current directory has been deleted; running the app from /")
        cwd = "/"
    plan = plans.build(s, os.environ, cwd)
    if plan.receiver:
        log.warning(f"{plan.name}: signals go to {plan.receiver}")
    os.chdir("/")  # pin no mount point
    _register_reaping(plan, s)
    if plan.pdeathsig:
        # tini -p: our parent (a supervisor outside the container, unshare)
        # going away tells us so; a stop signal then stops the app gracefully.
        _prctl("set_pdeathsig", plan.pdeathsig)
    set_title(f"initd: {plan.name}")

    from initd import loop
    return loop.run(plan)


def _register_reaping(plan, s):
    if os.getpid() == 1:
        return
    if not plan.subreaper:
        # As tini without -s: orphans go past us to the real init.
        fix = ("to fix it, use -s or set TINI_SUBREAPER, or run as PID 1"
               if plan.personality == "tini" else f"as asked by {s.origin.get('subreaper')}")
        (log.warning if plan.personality == "tini" else log.info)(
            f"not PID 1 and not a child subreaper: orphans will not be re-parented to "
            f"initd, so it cannot reap them; {fix}")
        return
    # Orphans of the app are re-parented to us, not to the real init, so we
    # can reap them and sweep them at the end.
    _prctl("set_child_subreaper", True)
    log.info(f"not PID 1 (pid {os.getpid()}): registered as a child subreaper, "
             "so orphans are reaped here")


def _prctl(call, value):
    """A prctl(2) at set-up; a failure is one line and exit 2, not a traceback."""
    try:
        import prctl
        getattr(prctl, call)(value)
    except ImportError as e:
        raise InitdError(f"python-prctl is not importable ({e}); reinstall initd with pip")
    except (OSError, ValueError) as e:
        raise InitdError(f"prctl {call}({value}): {e}")


def _personality_is_initd():
    try:
        return personality(sys.argv[0], os.environ) == "initd"
    except InitdError:
        return False


def _standard_fds():
    """Started with 0, 1 or 2 closed (`initd ... <&-`), the first file initd
    opens would take that number and the app would inherit it as its stdin or
    stdout. Fill the gaps with /dev/null first; the app keeps what was open."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open("/dev/null", os.O_RDWR)
            except OSError:
                return  # no /dev/null: nothing better to do
            if null != fd:
                os.dup2(null, fd, inheritable=True)
                os.close(null)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("health", "status") and _personality_is_initd():
        # A client of a running initd (docker exec, HEALTHCHECK, an exec
        # probe): no signal handling of its own, so Ctrl-C works.
        from initd import client
        return client.main(argv, os.environ)
    # First of all, block every signal we handle: from here on each one waits
    # in the kernel until the loop takes it, so none is lost (as PID 1, an
    # unblocked signal with the default action is simply discarded) and no
    # Python handler ever runs.
    inherited_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED)
    _standard_fds()
    try:
        who = personality(sys.argv[0], os.environ)  # the name we run under
        if who == "initd":
            s = parse_args(argv, os.environ)
        else:
            from initd import compat  # only under their names
            s = compat.parse(who, argv, os.environ)
        s.inherited_mask = inherited_mask
        log.level = min(log.WARNING + s.verbose, log.DEBUG)
        if who != "initd" and s.action != "run":
            return compat.show(s)  # their -h, --version, -l
        if s.action == "help":
            sys.stdout.write(USAGE)
            return 0
        if s.action == "version":
            print(f"initd {__version__}")
            return 0
        if s.action == "check":
            return check(s)
        if s.action == "install-compat":
            from initd.install_compat import install_compat
            return install_compat(s.install_dir)
        code = run(s)
    except InitdError as e:
        log.error(str(e))
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - PID 1 shows no traceback, even for its own bug
        log.error(f"cannot start: {type(e).__name__}: {e} (a bug in initd; please report it)")
        return 2
    # Everything is reaped and our lines are written (unbuffered): skip the
    # interpreter's finalization (module teardown, GC), which only adds
    # milliseconds to every container stop.
    if sys.stdout is not None:  # None when initd was started with fd 1 closed
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

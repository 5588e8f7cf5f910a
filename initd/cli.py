"""argv + INITD_* environment -> what to run; the one place errors become a
line on stderr and an exit code.

Hand-parsed rather than argparse: the grammar is small (`initd [opts] -- CMD`
must leave CMD's own options alone) and argparse costs milliseconds of
start-up in every container.
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start
import sys

from initd import __version__, config, log, signals
from initd.errors import InitdError

DEFAULT_ORPHAN_GRACE = 2.0

USAGE = """\
usage: initd [OPTIONS] --role NAME        run a role of roles.json
       initd [OPTIONS] -- COMMAND [ARG...]  run a command
       initd check [--roles PATH] [--role NAME]
                                          validate roles.json, print the plan
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


class Settings:
    """What the command line and environment asked for, before validation."""

    def __init__(self):
        self.action = "run"          # run, check, help, version
        self.role = None
        self.roles = None
        self.maps = []               # raw "SRC:DST" strings
        self.stop_timeout = None
        self.orphan_grace = None
        self.fqdn = None
        self.process_group = None
        self.verbose = 0
        self.command = []
        self.origin = {}             # field -> the option or variable it came from, for errors
        # Also what tini and dumb-init offer (compat.py parses their command lines):
        self.personality = "initd"   # or tini, dumb-init: whose command line this was
        self.subreaper = None        # None: register when not PID 1
        self.pdeathsig = None        # raw signal for initd itself when its parent dies
        self.exit_zero = []          # raw exit codes reported as 0
        self.warn_on_reap = None
        self.setsid = None           # the app in a session of its own
        self.job_control = None      # stop ourselves after passing on TSTP/TTIN/TTOU
        self.exec_error = None       # exit code when the command cannot be run (None: 127/126)
        self.install_dir = None      # install-compat DIR


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
        v = environ["INITD_VERBOSE"]
        s.verbose = int(v) if v.isdigit() else int(_env_flag(environ, "INITD_VERBOSE"))


def _env_flag(environ, var):
    value = environ[var].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise InitdError(f"{var}: expected 1 or 0 (true or false), got \"{environ[var]}\"")


def _seconds(s, attr, default):
    raw = getattr(s, attr)
    if raw is None:
        return None if default is None else default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise InitdError(f"{s.origin[attr]}: expected a number of seconds >= 0, got \"{raw}\"")
    return value


def _parent_death_signal(s):
    if s.pdeathsig is None:
        return 0
    try:
        return signals.parse(s.pdeathsig)
    except ValueError as e:
        raise InitdError(f"{s.origin['pdeathsig']}: {e}")


def _exit_codes(s):
    codes = set()
    for raw in s.exit_zero:
        if not raw.strip().isdigit() or int(raw) > 255:
            raise InitdError(f"{s.origin['exit_zero']}: expected an exit code 0-255, got \"{raw}\"")
        codes.add(int(raw))
    return frozenset(codes)


def _signal_overrides(s):
    result = {}
    for entry in s.maps:
        try:
            src, dst = signals.parse_map_entry(entry)
        except ValueError as e:
            raise InitdError(f"{s.origin['maps']}: {e}")
        result[src] = dst
    return result


def resolve_role(s):
    """The Role to run: from roles.json or the command line, with overrides."""
    if s.command and s.role and s.origin.get("role") == "--role":
        raise InitdError("give --role NAME or a command after --, not both")
    if s.command:
        role = config.Role(name=os.path.basename(s.command[0]), argv=tuple(s.command))
    elif s.role:
        path = s.roles or config.DEFAULT_ROLES
        role = config.parse_role(config.load(path), s.role, path)
    else:
        raise InitdError("nothing to run: give --role NAME or -- COMMAND (see initd --help)")
    changes = {}
    overrides = _signal_overrides(s)
    if overrides:
        changes["signals"] = {**role.signals, **overrides}
    if s.setsid:
        # The app's group is then orphaned (its parent, the shim, is in
        # another session) and the kernel discards TSTP, TTIN and TTOU sent to
        # an orphaned group that does not catch them: deliver STOP instead,
        # as dumb-init does, unless they are mapped.
        stops = dict.fromkeys(signals.JOB_CONTROL, signal.SIGSTOP)
        changes["signals"] = {**stops, **changes.get("signals", role.signals)}
    timeout = _seconds(s, "stop_timeout", None)
    if timeout is not None:
        changes["stop_timeout"] = timeout
    if s.fqdn:
        changes["fqdn"] = s.fqdn
    if s.process_group is not None:
        changes["process_group"] = s.process_group
    return role._replace(**changes)


def _where(role, key):
    """How to name a role setting in an error: the file and key, or the option."""
    if role.source == "command line":
        return {"fqdn": "--fqdn", "user": "--user", "workdir": "workdir"}.get(key, key)
    return f"{role.source}: {role.name}.{key}"


def resolve_account(role):
    if role.user is None:
        return None
    from initd import spawn
    try:
        return spawn.resolve_user(role.user)
    except ValueError as e:
        raise InitdError(f"{_where(role, 'user')}: {e}")


def resolve_fqdn(role, fqdn_origin):
    if not role.fqdn:
        return None
    from initd import fqdn
    where = fqdn_origin or _where(role, "fqdn")
    try:
        name = fqdn.resolve(role.fqdn, os.uname().nodename)
    except ValueError as e:
        raise InitdError(f"{where}: {e}")
    if not os.path.exists(fqdn.library_path()):
        raise InitdError(f"{fqdn.library_path()}: missing; reinstall initd with `pip install .` "
                         "so that its C parts are built", exit_code=126)
    return name


def resolve_workdir(role, caller_cwd):
    if role.workdir:
        if not os.path.isdir(role.workdir):
            raise InitdError(f"{_where(role, 'workdir')}: {role.workdir} is not a directory")
        return role.workdir
    if role.source != "command line" and os.path.isdir(config.DEFAULT_WORKDIR):
        return config.DEFAULT_WORKDIR
    return caller_cwd if role.source == "command line" else "/"


def check(s):
    """`initd check`: validate and print the plan of one role or all."""
    path = s.roles or config.DEFAULT_ROLES
    data = config.load(path)
    names = [s.role] if s.role else config.role_names(data)
    for name in names:
        s.role, s.command = name, []
        role = resolve_role(s)
        account = resolve_account(role)
        user_text = account and (f"{role.user} (uid {account.uid}, gid {account.gid}, groups "
                                 f"{','.join(map(str, account.groups))}, HOME {account.home})")
        fqdn_name = resolve_fqdn(role, s.origin.get("fqdn"))
        fqdn_text = fqdn_name and f"{role.fqdn} (here: {fqdn_name})"
        lines = config.describe(role, user_text, fqdn_text)
        print("\n".join(lines))
    print(f"{path}: ok ({len(names)} role{'s' if len(names) != 1 else ''} checked)")
    return 0


def set_title(title):
    """What `ps` shows for PID 1. setproctitle's C module is loaded on its own:
    the package's __init__ imports logging (about 15 ms and 1.6 MiB at every
    container start) only to log when that C module is missing."""
    try:
        import importlib.machinery
        package = importlib.machinery.PathFinder.find_spec("setproctitle")
        spec = importlib.machinery.PathFinder.find_spec(
            "_setproctitle", package.submodule_search_locations)
        module = spec.loader.create_module(spec)
        spec.loader.exec_module(module)
        module.setproctitle(title)
    except Exception:  # noqa: BLE001 - a missing title is cosmetic: the usual way, or none
        try:
            import setproctitle
            setproctitle.setproctitle(title)
        except ImportError:
            log.debug("setproctitle is not installed: ps shows the python command line")


def run(s):
    role = resolve_role(s)
    orphan_grace = _seconds(s, "orphan_grace", DEFAULT_ORPHAN_GRACE)
    exit_zero = _exit_codes(s)
    parent_death_signal = _parent_death_signal(s)
    account = resolve_account(role)
    fqdn_name = resolve_fqdn(role, s.origin.get("fqdn"))
    caller_cwd = os.getcwd()
    workdir = resolve_workdir(role, caller_cwd)

    from initd import spawn
    env = spawn.app_env(os.environ, role.env, account)
    if fqdn_name:
        from initd import fqdn
        env = fqdn.preload_env(env, fqdn_name)

    os.chdir("/")  # pin no mount point
    if os.getpid() != 1 and s.subreaper is False:
        # As tini without -s: orphans go past us to the real init.
        fix = ("to fix it, use -s or set TINI_SUBREAPER, or run as PID 1"
               if s.personality == "tini" else f"as asked by {s.origin.get('subreaper')}")
        (log.warning if s.personality == "tini" else log.info)(
            f"not PID 1 and not a child subreaper: orphans will not be re-parented to "
            f"initd, so it cannot reap them; {fix}")
    elif os.getpid() != 1:
        # Orphans of the app are re-parented to us, not to the real init, so
        # we can reap them and sweep them at the end.
        import prctl
        prctl.set_child_subreaper(True)
        log.info(f"not PID 1 (pid {os.getpid()}): registered as a child subreaper, "
                 "so orphans are reaped here")
    if parent_death_signal:
        # tini -p: our parent (a supervisor outside the container, unshare)
        # going away tells us so; a stop signal then stops the app gracefully.
        import prctl
        prctl.set_pdeathsig(parent_death_signal)
    set_title(f"initd: {role.name}")

    stop = role.signals.get(signal.SIGTERM, signal.SIGTERM)
    shim_pid, app_pid = spawn.start(
        role.argv, f"ppidshim: {role.name}", env, workdir, account,
        group=role.process_group, pdeathsig=stop, setsid=bool(s.setsid),
        exec_error=s.exec_error)
    log.info(f"started {role.name} (pid {app_pid}) under ppidshim (pid {shim_pid}): "
             f"{' '.join(role.argv)}")

    from initd.loop import Init
    return Init(role.name, shim_pid, app_pid, role.signals, role.stop_timeout,
                orphan_grace, role.process_group, exit_zero=exit_zero,
                warn_on_reap=bool(s.warn_on_reap), job_control=bool(s.job_control)).run()


COMPAT_NAMES = ("tini", "dumb-init")


def install_compat(directory):
    """`initd install-compat DIR`: DIR/tini and DIR/dumb-init become symlinks
    to the initd program, which then answers to those names (compat.py), so an
    image keeps its ENTRYPOINT. An old symlink is replaced, a file never."""
    import shutil
    target = shutil.which("initd")
    if not target:
        # Not on PATH: the program we were started as, unless that is
        # `python -m initd`, which no symlink can stand for.
        argv0 = os.path.realpath(sys.argv[0])
        if os.path.basename(argv0) == "__main__.py" or not os.access(argv0, os.X_OK):
            raise InitdError("no initd program to link to: install initd with pip, which puts "
                             "`initd` on PATH, then run `initd install-compat DIR`")
        target = argv0
    target = os.path.abspath(target)
    if not os.path.isdir(directory):
        raise InitdError(f"{directory}: not a directory")
    links = [os.path.join(directory, name) for name in COMPAT_NAMES]
    for link in links:
        if os.path.lexists(link) and not os.path.islink(link):
            raise InitdError(f"{link}: exists and is not a symlink; not replacing it "
                             "(remove it first if initd should take its place)")
    for link in links:
        current = os.readlink(link) if os.path.islink(link) else None
        if current == target:
            print(f"{link} -> {target} (already there)")
            continue
        # A new link renamed over the old one: never a moment without either.
        temporary = f"{link}.initd-{os.getpid()}"
        os.symlink(target, temporary)
        os.replace(temporary, link)
        print(f"{link} -> {target}" + (f" (was -> {current})" if current else ""))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # First of all, block every signal we handle: from here on each one waits
    # in the kernel until the loop takes it, so none is lost (as PID 1, an
    # unblocked signal with the default action is simply discarded) and no
    # Python handler ever runs.
    signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED)
    try:
        from initd import compat
        who = compat.personality(sys.argv[0], os.environ)  # the name we run under
        s = parse_args(argv, os.environ) if who == "initd" else compat.parse(who, argv, os.environ)
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
            return install_compat(s.install_dir)
        code = run(s)
    except InitdError as e:
        log.error(str(e))
        return e.exit_code
    # Everything is reaped and our lines are written (unbuffered): skip the
    # interpreter's finalization (module teardown, GC), which only adds
    # milliseconds to every container stop.
    sys.stdout.flush()
    os._exit(code)

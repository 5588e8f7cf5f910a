"""Settings (command line, INITD_* variables, tini/dumb-init personalities)
and the role -> one frozen, validated Plan: everything the runtime needs,
decided here once. Raises only InitdError.

Every signal rule lives here: how a received signal is translated
(`signal_map`), which delivered signal stops the app (`stop_signal`), and
whether it reaches the app or its process group (`to_group`). The driver and
the ppidshim only carry them out.
"""
import os
import _signal as signal  # the C module: signal.py's enums cost ~7 ms per start

from initd import config, signals, values
from initd.errors import InitdError
from initd.record import record

DEFAULT_ORPHAN_GRACE = 2.0

Plan = record("Plan", [
    "name",           # the role's name (the command's basename with --)
    "source",         # the roles file, or "command line"
    "personality",    # initd, tini or dumb-init: whose command line this was
    "argv",           # what to exec (a string role is already /bin/sh -c ...)
    "env",            # the app's whole environment, preload included
    "workdir",
    "account",        # spawn.Account, or None: unchanged
    "signal_map",     # received -> delivered (signals.DROP: nothing); absent: as is
    "stop_signal",    # delivered to stop the app (TERM translated); None when TERM is dropped
    "to_group",       # deliver to the app's process group, not the app alone
    "stop_timeout",   # seconds from the stop signal to SIGKILL
    "orphan_grace",   # seconds leftovers get between SIGTERM and SIGKILL
    "exit_zero",      # app exit codes reported as 0 (tini -e)
    "job_control",    # stop initd after passing on TSTP/TTIN/TTOU (dumb-init)
    "exec_error",     # exit code when argv cannot be run; None: 127/126
    "setsid",         # the app leads a session of its own (dumb-init)
    "subreaper",      # when not PID 1: register as child subreaper
    "pdeathsig",      # initd's own parent-death signal (tini -p); 0: none
    "warn_on_reap",   # a warning per orphan reaped (tini -w)
    "fqdn",           # the resolved hostname the app sees, or None
    "no_new_privs",   # PR_SET_NO_NEW_PRIVS for the app (setuid bits stop working)
    "env_sources",    # variable the role sets -> "role" or "environment" (who won)
    "receiver",       # None: the app gets the signals; else who does instead, and the fix
    "use_shim",       # the app under a ppidshim (initd) or initd's own child (tini, dumb-init)
    "child_mask",     # the app's starting signal mask: () or, as tini, what initd inherited
    "child_ignored",  # signals the app starts with ignored (as tini: what initd inherited)
    "notify",         # a NOTIFY_SOCKET for the app (sd_notify READY=1, STATUS=, WATCHDOG=1)
    "watchdog",       # seconds between WATCHDOG=1 the app must keep (0: none)
    "drain",          # seconds of not-ready serving between a stop signal and its delivery
    "exit_delay",     # seconds to linger after everything is gone
    "metrics",        # "HOST:PORT" to serve Prometheus metrics on, or None
    "hooks",          # hooks.HookSet, or None when the role has no hooks
    "control",        # the control socket's path from --control/INITD_CONTROL, or None
    "no_control",     # --no-control
    "pid_file",       # the app's pid file: a live successor named there becomes the app
    "role",           # the config.Role it came from
])


def build(s, environ, cwd, checking=False):
    """The Plan for Settings s. cwd is the directory initd was started in;
    checking: for `initd check`, which may run where the image's workdir
    does not exist."""
    role = _role(s)
    account = _account(role)
    fqdn_name = _fqdn(role, s.origin.get("fqdn"), checking)
    env, env_sources = _app_env(environ, role.env, account)
    if fqdn_name:
        from initd import fqdn
        try:
            env = fqdn.preload_env(env, fqdn_name)
        except ValueError as e:
            raise InitdError(f"{s.origin.get('fqdn') or _where(role, 'fqdn')}: {e}")
    stop = role.signals.get(signal.SIGTERM, signal.SIGTERM)
    return Plan(
        name=role.name,
        source=role.source,
        personality=s.personality,
        argv=role.argv,
        env=env,
        workdir=_workdir(role, cwd, checking),
        account=account,
        signal_map=role.signals,
        stop_signal=None if stop == signals.DROP else stop,
        to_group=role.process_group,
        stop_timeout=role.stop_timeout,
        orphan_grace=_seconds(s, "orphan_grace", DEFAULT_ORPHAN_GRACE),
        exit_zero=_exit_codes(s),
        job_control=bool(s.job_control),
        exec_error=s.exec_error,
        setsid=bool(s.setsid),
        subreaper=s.subreaper is not False,
        pdeathsig=_parent_death_signal(s),
        warn_on_reap=bool(s.warn_on_reap),
        fqdn=fqdn_name,
        no_new_privs=bool(getattr(role, "no_new_privs", False)),
        env_sources=env_sources,
        receiver=_receiver(role),
        use_shim=_use_shim(s, environ),
        child_mask=tuple(sorted(s.inherited_mask)) if s.personality == "tini" else (),
        child_ignored=_inherited_ignored() if s.personality == "tini" else (),
        **_control(s, role),
        pid_file=getattr(role, "pid_file", None),
        role=role,
    )


def _control(s, role):
    """Readiness, drain, linger, metrics and hooks: the role's keys, with
    --exit-delay and --metrics (or their variables) winning."""
    keys = role.control
    metrics = keys.metrics if keys else None
    if s.metrics is not None:
        from initd import hooks
        try:
            metrics = hooks.parse_metrics(s.metrics, s.origin["metrics"])
        except ValueError as e:
            raise InitdError(str(e))
    # A role from the command line has no keys: the defaults, without
    # importing hooks.py at every container start.
    return {"notify": keys.notify if keys else False,
            "watchdog": keys.watchdog if keys else 0.0,
            "drain": keys.drain if keys else 0.0,
            "exit_delay": _seconds(s, "exit_delay", keys.exit_delay if keys else 0.0),
            "metrics": metrics,
            "hooks": keys.hooks if keys and keys.hooks.commands else None,
            "control": s.control, "no_control": bool(s.no_control)}


def _receiver(role):
    """Who receives the signals when a Procfile line cannot end in `exec`
    (a pipeline, `||`, a loop): the shell, not the app."""
    text = getattr(role, "command_text", None)
    if not text:
        return None
    from initd import procfile
    return procfile.plan_line(text)[1]


def _use_shim(s, environ):
    """Under its own name initd puts the ppidshim between itself and the app
    (the app never sees getppid() == 1). Under the names tini and dumb-init
    it keeps their process tree exactly (the app is the init's own child),
    because programs and tests written against them count on it;
    INITD_SHIM=1 asks for the shim there too."""
    if s.personality == "initd":
        return True
    value = environ.get("INITD_SHIM", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise InitdError(f'INITD_SHIM: expected 1 or 0 (true or false), got "{environ["INITD_SHIM"]}"')


def _inherited_ignored():
    """The signals initd's own parent left ignored (SigIgn), which tini hands
    on to its child. Python itself ignores PIPE and XFSZ at start-up, so
    whether those were inherited cannot be told: the app gets them default."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    mask = int(line.split()[1], 16)
                    return tuple(n for n in range(1, 65) if mask >> (n - 1) & 1
                                 and n not in (signal.SIGPIPE, signal.SIGXFSZ))
    except (OSError, ValueError):
        pass
    return ()


def _role(s):
    """The Role to run: from roles.json or the command line, with overrides."""
    if s.command and s.role and s.origin.get("role") == "--role":
        raise InitdError("give --role NAME or a command after --, not both")
    if s.command:
        role = config.Role(name=os.path.basename(s.command[0]) or "app", argv=tuple(s.command))
    elif s.role:
        env_role = s.environ_role
        if env_role and s.origin.get("role") == "--role" and env_role != s.role:
            from initd import log
            log.warning(f'--role {s.role} and INITD_ROLE={env_role} differ: running {s.role} '
                        "(the command line wins; in Kubernetes, choose the role with args:, "
                        "not command:)")
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


def _seconds(s, attr, default):
    raw = getattr(s, attr)
    if raw is None:
        return default
    try:
        return values.duration(raw)
    except ValueError as e:
        raise InitdError(f"{s.origin[attr]}: {e}")


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
        try:
            codes.add(values.whole(raw, 0, 255, "an exit code"))
        except ValueError as e:
            raise InitdError(f"{s.origin['exit_zero']}: {e}")
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


def _where(role, key):
    """How to name a role setting in an error: the file and key, or the option."""
    if role.source == "command line":
        return {"fqdn": "--fqdn", "user": "--user", "workdir": "workdir"}.get(key, key)
    return f"{role.source}: {role.name}.{key}"


def _account(role):
    if role.user is None:
        return None
    from initd import spawn
    try:
        return spawn.resolve_user(role.user)
    except ValueError as e:
        raise InitdError(f"{_where(role, 'user')}: {e}")


def _fqdn(role, fqdn_origin, checking=False):
    """The hostname the app sees, or None. A template that can never give a
    valid name is an error; one that this host's name makes too long or
    invalid (a 63-character pod name) is a warning, and the app runs with
    the kernel's hostname: a cosmetic name must never keep the app down."""
    if not role.fqdn:
        return None
    from initd import fqdn
    where = fqdn_origin or _where(role, "fqdn")
    try:
        name, warning = fqdn.resolve_name(role.fqdn, os.uname().nodename)
    except ValueError as e:
        raise InitdError(f"{where}: {e}")
    if warning:
        from initd import log
        log.warning(f"{where}: {warning}")
        return None
    if not checking and not os.path.exists(fqdn.library_path()):
        raise InitdError(f"{fqdn.library_path()}: missing; reinstall initd with `pip install .` "
                         "so that its C parts are built", exit_code=126)
    return name


def _workdir(role, cwd, checking=False):
    if role.workdir:
        if not checking and not os.path.isdir(role.workdir):
            raise InitdError(f"{_where(role, 'workdir')}: {role.workdir} is not a directory")
        return role.workdir
    if role.source != "command line" and checking:
        return f"{config.DEFAULT_WORKDIR} (when it exists, else /)"
    if role.source != "command line" and os.path.isdir(config.DEFAULT_WORKDIR):
        return config.DEFAULT_WORKDIR
    return cwd if role.source == "command line" else "/"


def _app_env(base, role_env, account=None):
    """The app's environment, and for each variable the role sets, whose
    value won. As Docker orders image ENV and `docker run -e`: the role's
    `env` gives defaults, and a variable already in initd's environment
    (docker run -e, compose, a Kubernetes env:) wins, so an operator can
    override a role at run time. The account's HOME, USER and LOGNAME
    describe the user the app runs as, so they replace initd's own; a uid
    with no passwd entry has no name, and USER/LOGNAME are removed rather
    than left claiming root."""
    env = dict(base)
    if account:
        env["HOME"] = account.home
        if account.name:
            env["USER"] = env["LOGNAME"] = account.name
        else:
            env.pop("USER", None)
            env.pop("LOGNAME", None)
    sources = {}
    for key, value in role_env.items():
        if key in base:
            sources[key] = "environment"
        else:
            env[key] = value
            sources[key] = "role"
    return env, sources


def describe(plan):
    """The plan as lines, for `initd check`."""
    import shlex
    role = plan.role
    mapping = ", ".join(f"{signals.name(s)} -> {signals.name(d)}"
                        for s, d in sorted(plan.signal_map.items())) or "none (every signal delivered as is)"
    account = plan.account
    user_text = (f"{role.user} (uid {account.uid}, gid {account.gid}, groups "
                 f"{','.join(map(str, account.groups))}, HOME {account.home})"
                 if account else "unchanged")
    stop = signals.name(plan.stop_signal) if plan.stop_signal else "nothing (TERM is dropped: no stop timer)"
    lines = [
        f"{plan.name}:",
        f"  command: {shlex.join(plan.argv)}",
        f"  signals: {mapping}",
        f"  stop signal: {stop}",
        f"  stop_timeout: {plan.stop_timeout:g}s (then SIGKILL to the app's process group)",
        f"  orphan_grace: {plan.orphan_grace:g}s (leftovers: SIGTERM, then SIGKILL)",
        "  deliver to: " + (plan.receiver if plan.receiver else
                            "the app's process group" if plan.to_group else "the app"),
        f"  workdir: {plan.workdir}",
        f"  user: {user_text}",
    ]
    for key in sorted(role.env):
        if plan.env_sources.get(key) == "environment":
            lines.append(f"  env {key}={shlex.quote(plan.env[key])} (from initd's environment; "
                         f"the role's default {shlex.quote(role.env[key])} is overridden)")
        else:
            lines.append(f"  env {key}={shlex.quote(role.env[key])} (the role's default)")
    if plan.fqdn:
        lines.append(f"  fqdn: {role.fqdn} (here: {plan.fqdn})")
    # The health check and restart policy, resolved (defaults filled in), so
    # a reader sees what initd will do; "restart: no" is shown too: it says
    # initd exits with the app. Roles from the command line have no spec.
    if role.health is not None or role.restart is not None:
        from initd import health_config, restart
        lines += ["  " + line for line in health_config.describe(
            role.health, role.on_unhealthy or "none", role.restart or restart.RestartSpec())]
    if plan.notify:
        watchdog = f", watchdog {plan.watchdog:g}s" if plan.watchdog else ""
        lines.append(f"  notify: NOTIFY_SOCKET for the app (READY=1 makes it ready{watchdog})")
    if plan.drain:
        lines.append(f"  drain: {plan.drain:g}s not-ready before the stop signal")
    if plan.exit_delay:
        lines.append(f"  exit_delay: {plan.exit_delay:g}s after everything is gone")
    if plan.metrics:
        lines.append(f"  metrics: http://{plan.metrics}/metrics")
    if plan.pid_file:
        lines.append(f"  pid_file: {plan.pid_file} (a successor named there, the shim's "
                     "child, becomes the app)")
    for event, argv in sorted(plan.hooks.commands.items() if plan.hooks else ()):
        lines.append(f"  hook {event}: {shlex.join(argv)} (timeout {plan.hooks.timeout:g}s)")
    budget = plan.drain + plan.stop_timeout + plan.orphan_grace
    lines.append(f"  stop budget: {budget:g}s (drain {plan.drain:g} + stop_timeout "
                 f"{plan.stop_timeout:g} + orphan_grace {plan.orphan_grace:g}); give the "
                 f"engine's grace (docker stop -t, terminationGracePeriodSeconds) more")
    return lines

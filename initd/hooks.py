"""Hooks for service discovery, and the roles.json keys of issue 13.

A hook is a command run when the role changes: "ready" (it may take
traffic), "unready" (it may not: drain began, or health failed), "stopping"
(a stop signal came), "exited" (the app is gone for good). A string runs
through /bin/sh -c, a list is an argv. Each runs through spawn.child in a
process group of its own, with INITD_EVENT, INITD_ROLE, INITD_APP_PID and
INITD_EXIT_CODE ("" when there is none) added to the environment. After
`timeout` seconds (hooks.timeout, default 5 s) its whole process group gets
SIGKILL. Nothing here ever waits: the exit status arrives through
loop.on_exit. A hook that fails or cannot start is logged, never fatal.
"""
import os
import _signal as signal

from initd import log
from initd.record import record
from initd.values import duration, shown

EVENTS = ("ready", "unready", "stopping", "exited")
DEFAULT_TIMEOUT = 5.0
MAX_RUNNING = 8  # hooks at once; a flapping app must not fork-bomb the container

HookSet = record("HookSet", "commands timeout")  # commands: {event: argv tuple}
NO_HOOKS = HookSet({}, DEFAULT_TIMEOUT)


# --- roles.json keys (pure; ValueError(f"{key}: ..."), the caller adds the file) ---

def parse_bool(value, key):
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {shown(value)}")
    return value


def parse_duration(value, key):
    try:
        return duration(value)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None


def parse_metrics(value, key="metrics"):
    """An address "HOST:PORT", or None (null or "") for no metrics."""
    if value is None or value == "":
        return None
    from initd import metrics
    try:
        metrics.parse_address(value)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None
    return value.strip()


def _argv(value, key):
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{key}: expected a command, got an empty string")
        return ("/bin/sh", "-c", value)
    if (isinstance(value, list) and value
            and all(isinstance(a, str) for a in value) and value[0]):
        return tuple(value)
    raise ValueError(f"{key}: expected a command string or a non-empty list of strings, "
                     f"got {shown(value)}")


def parse_hooks(value, key="hooks"):
    """{"ready": CMD, "unready": CMD, "stopping": CMD, "exited": CMD,
    "timeout": DURATION} -> HookSet; every key optional."""
    if value is None:
        return NO_HOOKS
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected an object such as "
                         f'{{"ready": "register.sh"}}, got {shown(value)}')
    commands, timeout = {}, DEFAULT_TIMEOUT
    for name, command in value.items():
        if name == "timeout":
            timeout = parse_duration(command, f"{key}.timeout")
        elif name in EVENTS:
            commands[name] = _argv(command, f"{key}.{name}")
        else:
            raise ValueError(f"{key}.{name}: unknown hook (expected one of "
                             f"{', '.join(EVENTS)} or timeout)")
    return HookSet(commands, timeout)


ControlKeys = record("ControlKeys", "notify watchdog drain exit_delay metrics hooks")


def parse_keys(entry):
    """The issue-13 keys of one role's object -> ControlKeys with defaults.
    watchdog needs notify (the pings come over the notify socket)."""
    keys = ControlKeys(
        notify=parse_bool(entry["notify"], "notify") if "notify" in entry else False,
        watchdog=parse_duration(entry["watchdog"], "watchdog") if "watchdog" in entry else 0.0,
        drain=parse_duration(entry["drain"], "drain") if "drain" in entry else 0.0,
        exit_delay=(parse_duration(entry["exit_delay"], "exit_delay")
                    if "exit_delay" in entry else 0.0),
        metrics=parse_metrics(entry.get("metrics")),
        hooks=parse_hooks(entry.get("hooks")))
    if keys.watchdog and not keys.notify:
        raise ValueError(f"watchdog: needs \"notify\": true (the app sends WATCHDOG=1 "
                         f"over the notify socket), got watchdog {shown(entry['watchdog'])} "
                         "without it")
    return keys


# --- running them ---------------------------------------------------------

class Hooks:
    """Fires hooks and kills the ones that overrun. A loop component:
    loop.add(hooks) once; fire() from the supervisor's transitions.

    spawn: spawn.child's signature (injected so tests can use a stand-in
    until the lead's spawn.child lands); env: the base environment."""

    def __init__(self, hookset, role, loop, env, workdir="/", account=None, spawn=None,
                 stdout=None, stderr=None):
        self.hookset = hookset
        self.role = role
        self.loop = loop
        self.env = env
        self.workdir = workdir
        self.account = account
        self.stdout, self.stderr = stdout, stderr
        if spawn is None:
            from initd import spawn as spawn_module
            spawn = spawn_module.child
        self.spawn = spawn
        self.running = {}  # pid -> [event, deadline, killed]

    def fire(self, event, app_pid, exit_code, now):
        """Start the hook for event, if one is set. Returns its pid or None."""
        argv = self.hookset.commands.get(event)
        if argv is None:
            return None
        if len(self.running) >= MAX_RUNNING:
            log.warning(f"hook {event}: not run, {MAX_RUNNING} hooks are still running")
            return None
        env = dict(self.env)
        env.update(INITD_EVENT=event, INITD_ROLE=self.role,
                   INITD_APP_PID="" if app_pid is None else str(app_pid),
                   INITD_EXIT_CODE="" if exit_code is None else str(exit_code))
        try:
            pid = self.spawn(list(argv), env=env, workdir=self.workdir, account=self.account,
                             stdout=self.stdout, stderr=self.stderr)
        except Exception as e:  # noqa: BLE001 - a hook never takes PID 1 down
            log.warning(f"hook {event}: cannot start {argv[0]}: {e}")
            return None
        self.running[pid] = [event, now + self.hookset.timeout, False]
        self.loop.on_exit(pid, self._exited)
        log.debug(f"hook {event}: started pid {pid}")
        return pid

    def _exited(self, pid, exit_code, now):
        entry = self.running.pop(pid, None)
        if entry is None:
            return
        event, _, killed = entry
        if killed:
            log.warning(f"hook {event}: killed after {self.hookset.timeout:g}s")
        elif exit_code == 127:
            log.warning(f"hook {event}: command not found (exit 127)")
        elif exit_code:
            log.warning(f"hook {event}: exited {exit_code}")

    def busy(self):
        return bool(self.running)

    def kill_all(self):
        """SIGKILL every hook still running (initd is about to exit)."""
        for pid, entry in self.running.items():
            if not entry[2]:
                self._kill(pid, entry)

    def _kill(self, pid, entry):
        entry[2] = True
        # The leader is not reaped yet (it is still in the table), so its
        # pgid cannot have been reused: the group is the hook's.
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError as e:
            log.warning(f"hook {entry[0]}: cannot kill pid {pid}: {e.strerror}")

    def next_deadline(self, now=None):
        pending = [e[1] for e in self.running.values() if not e[2]]
        return min(pending) if pending else None

    def on_tick(self, now):
        for pid, entry in list(self.running.items()):
            if not entry[2] and now >= entry[1]:
                self._kill(pid, entry)

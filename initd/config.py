"""roles.json -> frozen Role records. Pure: reads one file, makes no other OS calls.

Every error names the file and the key path and says what was expected,
because a typo in a container's config should cost one glance, not a debug
session. Unknown keys are errors for the same reason.
"""
from initd import signals
from initd.procfile import shell_argv  # the Procfile-line rewrite lives there
from initd.errors import InitdError
from initd.record import record

DEFAULT_ROLES = "/app/container/roles.json"
DEFAULT_STOP_TIMEOUT = 7.0  # below docker stop's 10 s, so initd finishes the job, not the kernel
DEFAULT_WORKDIR = "/app"

ROLE_KEYS = ("command", "signals", "stop_timeout", "env", "workdir", "user",
             "process_group", "fqdn")


# A frozen record (not a dataclass: dataclasses imports inspect and costs
# PID 1 milliseconds at every container start). Change with _replace().
Role = record("Role", [
    "name",
    "argv",
    "signals",        # received signal -> delivered (0 drops)
    "stop_timeout",
    "env",
    "workdir",        # None: /app when it exists (roles) or the caller's cwd (--)
    "user",
    "process_group",
    "fqdn",
    "source",         # the roles file, or "command line"
], defaults=[{}, DEFAULT_STOP_TIMEOUT, {}, None, None, False, None, "command line"])


class _Where:
    """Builds the `file: key: message` errors."""

    def __init__(self, path):
        self.path = path

    def error(self, key, message):
        return InitdError(f"{self.path}: {key}: {message}")


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f'key "{key}" appears twice')
        seen[key] = value
    return seen


def load(path):
    """The parsed roles file: a dict of role name -> raw entry."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InitdError(f"{path}: no such file (give --roles PATH or set INITD_ROLES)")
    except IsADirectoryError:
        raise InitdError(f"{path}: is a directory, expected a roles.json file")
    except OSError as e:
        raise InitdError(f"{path}: cannot read: {e.strerror}")
    import json  # only roles need it: `initd -- CMD` starts faster without
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise InitdError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}")
    except UnicodeDecodeError:
        raise InitdError(f"{path}: not UTF-8 text")
    except ValueError as e:  # a duplicate key
        raise InitdError(f"{path}: {e}")
    if not isinstance(data, dict):
        raise InitdError(f"{path}: expected a JSON object mapping role names to commands")
    data.pop("$schema", None)  # editors may point at roles.schema.json
    if not data:
        raise InitdError(f"{path}: no roles defined")
    return data


def role_names(data):
    return sorted(data)


def parse_role(data, name, path):
    """Validate one role of a loaded file into a Role."""
    where = _Where(path)
    if name not in data:
        known = ", ".join(role_names(data))
        raise InitdError(f"{path}: no role named \"{name}\" (roles: {known})")
    entry = data[name]
    if isinstance(entry, (str, list)):
        entry = {"command": entry}
    if not isinstance(entry, dict):
        raise where.error(name, "expected a command string or an object with a \"command\" key")
    unknown = sorted(set(entry) - set(ROLE_KEYS))
    if unknown:
        import difflib  # only on the error path
        hints = difflib.get_close_matches(unknown[0], ROLE_KEYS, n=1)
        hint = f" (did you mean \"{hints[0]}\"?)" if hints else ""
        raise where.error(f"{name}.{unknown[0]}",
                          f"unknown key{hint}; known keys: {', '.join(ROLE_KEYS)}")
    if "command" not in entry:
        raise where.error(name, "missing \"command\"")
    return Role(
        name=name,
        argv=parse_command(entry["command"], where, f"{name}.command"),
        signals=parse_signal_map(entry.get("signals", {}), where, f"{name}.signals"),
        stop_timeout=parse_timeout(entry.get("stop_timeout", DEFAULT_STOP_TIMEOUT),
                                   where, f"{name}.stop_timeout"),
        env=parse_env(entry.get("env", {}), where, f"{name}.env"),
        workdir=_optional_str(entry, "workdir", where, name, absolute=True),
        user=parse_user(entry.get("user"), where, f"{name}.user"),
        process_group=_bool(entry.get("process_group", False), where, f"{name}.process_group"),
        fqdn=_optional_str(entry, "fqdn", where, name),
        source=path,
    )


def parse_command(command, where, key):
    """A string is a Procfile line, run by /bin/sh -c (see shell_argv). A list
    is argv as is."""
    if isinstance(command, str):
        if not command.strip():
            raise where.error(key, "empty command")
        return shell_argv(command)
    if isinstance(command, list):
        if not command or not all(isinstance(a, str) for a in command) or not command[0]:
            raise where.error(key, "expected a non-empty list of strings")
        return tuple(command)
    raise where.error(key, f"expected a string or a list of strings, got {_kind(command)}")


def parse_signal_map(mapping, where, key):
    if not isinstance(mapping, dict):
        raise where.error(key, f"expected an object such as {{\"TERM\": \"QUIT\"}}, got {_kind(mapping)}")
    result = {}
    for src_text, dst_text in mapping.items():
        try:
            src = signals.parse(src_text)
            signals.check_forwardable(src, "mapped")
        except ValueError as e:
            raise where.error(f"{key}.{src_text}", str(e))
        if dst_text is None:
            dst_text = "none"
        try:
            result[src] = signals.parse(dst_text, allow_drop=True)
        except ValueError as e:
            raise where.error(f"{key}.{src_text}", str(e))
    return result


def parse_timeout(value, where, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(key, f"expected a number of seconds, got {_kind(value)}")
    if value < 0 or value != value or value == float("inf"):
        raise where.error(key, f"expected a number of seconds >= 0, got {value}")
    return float(value)


def parse_env(env, where, key):
    if not isinstance(env, dict):
        raise where.error(key, f"expected an object of NAME: \"value\", got {_kind(env)}")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise where.error(f"{key}.{name}", "not a valid environment variable name")
        if not isinstance(value, str):
            raise where.error(f"{key}.{name}", f"expected a string value, got {_kind(value)}")
    return dict(env)


def parse_user(user, where, key):
    """A name, a uid, or NAME:GROUP / UID:GID (as docker --user). Whether the
    account exists is checked by spawn.resolve_user, which reads /etc/passwd."""
    if user is None:
        return None
    if isinstance(user, int) and not isinstance(user, bool) and user >= 0:
        return str(user)
    if isinstance(user, str) and user.strip() and user.count(":") <= 1 and all(user.split(":")):
        return user
    raise where.error(key, f"expected a user name or uid (optionally :group), got {user!r}")


def _optional_str(entry, name, where, role, absolute=False):
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise where.error(f"{role}.{name}", f"expected a non-empty string, got {_kind(value)}")
    if absolute and not value.startswith("/"):
        raise where.error(f"{role}.{name}", f"expected an absolute path, got \"{value}\"")
    return value


def _bool(value, where, key):
    if not isinstance(value, bool):
        raise where.error(key, f"expected true or false, got {_kind(value)}")
    return value


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def describe(role, user_text=None, fqdn_text=None):
    """The resolved plan of a role as lines, for `initd check`; the caller
    adds what needs the OS (the account, the resolved hostname)."""
    import shlex
    mapping = ", ".join(f"{signals.name(s)} -> {signals.name(d)}"
                        for s, d in sorted(role.signals.items())) or "none (every signal delivered as is)"
    lines = [
        f"{role.name}:",
        f"  command: {shlex.join(role.argv)}",
        f"  signals: {mapping}",
        "  deliver to: " + ("the app's process group" if role.process_group else "the app"),
        f"  stop_timeout: {role.stop_timeout:g}s",
        f"  workdir: {role.workdir or DEFAULT_WORKDIR + ' (when it exists, else /)'}",
        f"  user: {user_text or role.user or 'unchanged'}",
    ]
    if role.env:
        lines.append("  env: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(role.env.items())))
    if role.fqdn:
        lines.append(f"  fqdn: {fqdn_text or role.fqdn}")
    return lines

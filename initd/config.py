"""roles.json -> frozen Role records. Pure: reads one file, makes no other OS calls.

Every error names the file and the key path and says what was expected,
because a typo in a container's config should cost one glance, not a debug
session. Unknown keys are errors for the same reason.
"""
import errno
import os

from initd import signals, values
from initd.errors import InitdError
from initd.record import record

DEFAULT_ROLES = "/app/container/roles.json"
DEFAULT_STOP_TIMEOUT = 7.0  # below docker stop's 10 s, so initd finishes the job, not the kernel
DEFAULT_WORKDIR = "/app"

ROLE_KEYS = ("command", "signals", "stop_timeout", "env", "workdir", "user",
             "process_group", "fqdn", "no_new_privs",
             "health", "on_unhealthy", "restart", "backoff", "give_up",
             "notify", "watchdog", "drain", "exit_delay", "metrics", "hooks", "pid_file")

# A roles file is a few hundred bytes; a cap keeps a mistaken path
# (/dev/zero, a log file) from filling PID 1's memory.
MAX_FILE_BYTES = 1 << 20
# A roles file needs 3 levels (file -> role -> env); deeper is a mistake, and
# json's C decoder recurses, so 100,000 levels would be a RecursionError.
MAX_DEPTH = 16
# execve(2) refuses any one argv or environment string (NAME=value with its
# NUL) longer than MAX_ARG_STRLEN, 32 pages: E2BIG in the child, too late.
MAX_ARG_STRLEN = 131072
# uid_t and gid_t are 32 bits and (uid_t)-1 means "leave unchanged" to
# setresuid(2)/chown(2): it is not an account.
MAX_ID = 4294967294


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
    "no_new_privs",   # PR_SET_NO_NEW_PRIVS for the app (off by default, as Docker)
    "source",         # the roles file, or "command line"
    "health",         # health_config.HealthSpec, or None: no probe
    "on_unhealthy",   # none, restart or exit
    "restart",        # restart.RestartSpec (policy, backoff, give-up)
    "command_text",   # the command as written, when a string (for procfile warnings)
    "control",        # hooks.ControlKeys: notify, watchdog, drain, exit_delay, metrics, hooks
    "pid_file",       # where a re-exec'ing app names its successor (Unicorn's USR2), or None
], defaults=[{}, DEFAULT_STOP_TIMEOUT, {}, None, None, False, None, False, "command line",
             None, "none", None, None, None, None])


class _Where:
    """Builds the `file: key: message` errors."""

    def __init__(self, path):
        self.path = path

    def error(self, key, message):
        return InitdError(f"{self.path}: {_printable(key)}: {message}")


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f'key "{key}" appears twice')
        seen[key] = value
    return seen


def load(path):
    """The parsed roles file: a dict of role name -> raw entry."""
    raw = _read_regular_file(path)
    import json  # only roles need it: `initd -- CMD` starts faster without
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise InitdError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}")
    except UnicodeDecodeError:
        raise InitdError(f"{path}: not UTF-8 text")
    except RecursionError:  # json's C decoder recurses once per level
        raise InitdError(f"{path}: nested more than {MAX_DEPTH} levels deep "
                         "(a roles file needs 3: role, then env or signals)")
    except ValueError as e:  # a duplicate key; an integer of more than 4300 digits
        raise InitdError(f"{path}: {e}")
    if _depth_exceeds(data, MAX_DEPTH):
        raise InitdError(f"{path}: nested more than {MAX_DEPTH} levels deep "
                         "(a roles file needs 3: role, then env or signals)")
    if not isinstance(data, dict):
        raise InitdError(f"{path}: expected a JSON object mapping role names to commands")
    data.pop("$schema", None)  # editors may point at roles.schema.json
    if not data:
        raise InitdError(f"{path}: no roles defined")
    return data


def _read_regular_file(path):
    """The bytes of a regular file of at most MAX_FILE_BYTES.

    O_NONBLOCK: open(2) of a FIFO with no writer otherwise blocks PID 1 for
    ever (and TERM cannot end it: every signal is blocked for the loop);
    O_NOCTTY: a terminal given by mistake must not become our controlling
    one. Only then fstat says what it is: a FIFO, a character device such as
    /dev/zero (which never ends), a socket or a directory are refused."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InitdError(f"{path}: no such file (give --roles PATH or set INITD_ROLES)")
    except OSError as e:
        if e.errno == errno.ENXIO:  # open(2) of a socket
            raise InitdError(f"{path}: is a socket, expected a regular roles.json file")
        raise InitdError(f"{path}: cannot read: {e.strerror}")
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InitdError(f"{path}: is a directory, expected a roles.json file")
        if not stat.S_ISREG(info.st_mode):
            raise InitdError(f"{path}: is {_file_kind(info.st_mode)}, "
                             "expected a regular roles.json file")
        if info.st_size > MAX_FILE_BYTES:
            raise InitdError(f"{path}: {info.st_size} bytes, more than the limit of "
                             f"{MAX_FILE_BYTES} bytes (1 MiB) for a roles file")
        # Read to the cap and one byte more, whatever st_size said (a file
        # growing under us, or one whose size the kernel reports as 0).
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except InitdError:
        raise
    except OSError as e:
        raise InitdError(f"{path}: cannot read: {e.strerror}")
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise InitdError(f"{path}: more than the limit of {MAX_FILE_BYTES} bytes (1 MiB) "
                         "for a roles file")
    return b"".join(chunks)


def _file_kind(mode):
    import stat
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _depth_exceeds(data, limit):
    """Whether containers nest deeper than limit, found without recursion
    (repr() and error messages recurse: they must never see such a value)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                                  else value))
    return False


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
        raise where.error(name, "expected a command string or an object with a \"command\" key, "
                          f"got {_got(entry)}")
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
        stop_timeout=parse_duration(entry.get("stop_timeout", DEFAULT_STOP_TIMEOUT),
                                    where, f"{name}.stop_timeout"),
        env=parse_env(entry.get("env", {}), where, f"{name}.env"),
        workdir=_optional_str(entry, "workdir", where, name, absolute=True),
        user=parse_user(entry.get("user"), where, f"{name}.user"),
        process_group=_bool(entry.get("process_group", False), where, f"{name}.process_group"),
        fqdn=_optional_str(entry, "fqdn", where, name),
        no_new_privs=_bool(entry.get("no_new_privs", False), where, f"{name}.no_new_privs"),
        source=path,
        command_text=entry["command"] if isinstance(entry["command"], str) else None,
        pid_file=_optional_str(entry, "pid_file", where, name, absolute=True),
        **_supervision(entry, name, path),
    )


def _supervision(entry, name, path):
    """The health check and restart keys (health_config.py validates them;
    its messages already name the key)."""
    from initd import health_config, hooks  # only roles that get this far pay for it
    try:
        keys = hooks.parse_keys(entry)
    except ValueError as e:
        raise InitdError(f"{path}: {name}.{e}")
    try:
        return {
            "control": keys,
            "health": health_config.parse_health(entry.get("health"), f"{name}.health"),
            "on_unhealthy": health_config.parse_on_unhealthy(entry.get("on_unhealthy"),
                                                             f"{name}.on_unhealthy"),
            "restart": health_config.parse_restart(entry, name),
        }
    except ValueError as e:
        raise InitdError(f"{path}: {e}")


def parse_command(command, where, key):
    """A string is a Procfile line, run by /bin/sh -c (see shell_argv). A list
    is argv as is."""
    if isinstance(command, str):
        _check_text(command, where, key)
        if not command.strip():
            raise where.error(key, "empty command")
        from initd.procfile import shell_argv  # only string commands need the shell rewrite
        argv = shell_argv(command)
    elif isinstance(command, list):
        if not command or not all(isinstance(a, str) for a in command) or not command[0]:
            raise where.error(key, f"expected a non-empty list of strings, got {_got(command)}")
        for i, arg in enumerate(command):
            _check_text(arg, where, f"{key}[{i}]")
        argv = tuple(command)
    else:
        raise where.error(key, f"expected a string or a list of strings, got {_got(command)}")
    for i, arg in enumerate(argv):
        if len(arg.encode()) + 1 > MAX_ARG_STRLEN:
            raise where.error(key if isinstance(command, str) else f"{key}[{i}]",
                              f"{len(arg.encode())} bytes, longer than the kernel's limit of "
                              f"{MAX_ARG_STRLEN - 1} bytes for one argument (MAX_ARG_STRLEN)")
    return argv


def _check_text(text, where, key):
    """A string execve(2) can take: no NUL (C strings end there, so the rest
    would be cut off silently or refused in the child) and no lone surrogate
    such as "\ud800" (JSON allows the escape; UTF-8 has no encoding for it)."""
    if "\0" in text:
        raise where.error(key, f"contains a NUL character (\\u0000), got {_got(text)}")
    try:
        text.encode()
    except UnicodeEncodeError as e:
        raise where.error(key, f"contains a lone surrogate (\\u{ord(text[e.start]):04x}), "
                               "which is not text and has no UTF-8 encoding")


def parse_signal_map(mapping, where, key):
    if not isinstance(mapping, dict):
        raise where.error(key, f"expected an object such as {{\"TERM\": \"QUIT\"}}, got {_got(mapping)}")
    result = {}
    for src_text, dst_text in mapping.items():
        for text in (src_text, dst_text):
            if isinstance(text, str) and (not text.isascii() or len(text) > 32):
                raise where.error(f"{key}.{src_text}", f"unknown signal {_got(text)}")
            if isinstance(text, int) and not isinstance(text, bool) and not 0 <= text <= 64:
                raise where.error(f"{key}.{src_text}",
                                  f"signal number {_got(text)} is out of range (1-64)")
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


def parse_duration(value, where, key):
    """Seconds from a number or "500ms"/"30s"/"2m"; longer than
    values.MAX_SECONDS (1e10, 400 digits) is the cap, "for ever"."""
    try:
        return values.duration(value)
    except ValueError as e:
        raise where.error(key, str(e))


parse_timeout = parse_duration  # the old name


def parse_env(env, where, key):
    if not isinstance(env, dict):
        raise where.error(key, f"expected an object of NAME: \"value\", got {_got(env)}")
    for name, value in env.items():
        if not name or "=" in name:
            raise where.error(f"{key}.{name}", "not a valid environment variable name "
                              f"(non-empty, without \"=\"), got {_got(name)}")
        _check_text(name, where, f"{key}.{name}")
        if not isinstance(value, str):
            raise where.error(f"{key}.{name}", f"expected a string value, got {_got(value)}")
        _check_text(value, where, f"{key}.{name}")
        size = len(name.encode()) + 1 + len(value.encode()) + 1  # NAME=value and its NUL
        if size > MAX_ARG_STRLEN:
            raise where.error(f"{key}.{name}", f"NAME=value is {size - 1} bytes, longer than the "
                              f"kernel's limit of {MAX_ARG_STRLEN - 1} bytes for one environment "
                              "string (MAX_ARG_STRLEN)")
    return dict(env)


def parse_user(user, where, key):
    """A name, a uid, or NAME:GROUP / UID:GID (as docker --user). Whether the
    account exists is checked by spawn.resolve_user, which reads /etc/passwd.
    Numbers are checked here: 0-4294967294 (MAX_ID), ASCII digits only."""
    if user is None:
        return None
    expected = f"expected a user name or uid 0-{MAX_ID} (optionally :group or :gid)"
    if isinstance(user, int) and not isinstance(user, bool):
        if 0 <= user <= MAX_ID:
            return str(user)
        raise where.error(key, f"{expected}, got {_got(user)}")
    if not isinstance(user, str) or not user.strip() or user.count(":") > 1 \
            or not all(user.split(":")):
        raise where.error(key, f"{expected}, got {_got(user)}")
    _check_text(user, where, key)
    for part in user.split(":"):
        if part.isdigit() or not part.isprintable() or any(c.isspace() for c in part):
            # "²" is a digit to str.isdigit() but no number to int(); spaces
            # and control characters are in no account name.
            if not (part.isascii() and part.isdigit()) or len(part) > 10 or int(part) > MAX_ID:
                raise where.error(key, f"{expected}, got {_got(user)}")
    return user


def _optional_str(entry, name, where, role, absolute=False):
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise where.error(f"{role}.{name}", f"expected a non-empty string, got {_got(value)}")
    _check_text(value, where, f"{role}.{name}")
    if absolute and not value.startswith("/"):
        raise where.error(f"{role}.{name}", f"expected an absolute path, got {_got(value)}")
    return value


def _bool(value, where, key):
    if not isinstance(value, bool):
        raise where.error(key, f"expected true or false, got {_got(value)}")
    return value


def _got(value):
    """What a message says it got: the value as JSON would spell it, cut
    short, with its kind for containers (`got a list ["a", 1]`)."""
    if isinstance(value, (dict, list)):
        import json
        text = json.dumps(value, ensure_ascii=False, default=str)
        text = text if len(text) <= 40 else text[:37] + "..."
        return f"{_kind(value)} {text}"
    if isinstance(value, str):
        text = f'"{_printable(value)}"'
        return text if len(text) <= 40 else text[:37] + "..."
    return values.shown(value)


def _printable(text):
    """text with control characters and lone surrogates as \\uXXXX escapes:
    a message must be one line of valid UTF-8 whatever the file held."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(c if c.isprintable() and not 0xd800 <= ord(c) <= 0xdfff
                   else f"\\u{ord(c):04x}" for c in text)


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)

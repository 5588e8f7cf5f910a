"""roles.json parsing: every key, and one clear error for every bad input."""
import json
import os
import signal

import pytest

from initd import config
from initd.errors import InitdError


def load_role(tmp_path, data, name="web"):
    path = tmp_path / "roles.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return config.parse_role(config.load(str(path)), name, str(path)), str(path)


def error_of(tmp_path, data, name="web"):
    with pytest.raises(InitdError) as e:
        load_role(tmp_path, data, name)
    assert e.value.exit_code == 2
    assert "\n" not in str(e.value)
    return str(e.value)


def test_string_role_runs_through_sh(tmp_path):
    role, _ = load_role(tmp_path, {"web": "bundle exec unicorn -c x.rb"})
    assert role.argv == ("/bin/sh", "-c", "exec bundle exec unicorn -c x.rb")
    assert role.signals == {} and role.stop_timeout == config.DEFAULT_STOP_TIMEOUT


def test_full_role(tmp_path):
    role, path = load_role(tmp_path, {"web": {
        "command": ["unicorn", "-c", "x.rb"], "signals": {"TERM": "QUIT", "SIGUSR2": 0, "hup": None},
        "stop_timeout": 8.5, "env": {"RACK_ENV": "production"}, "workdir": "/srv",
        "user": "app:app", "process_group": True, "fqdn": "{hostname}.example.com",
        "no_new_privs": True}})
    assert role.argv == ("unicorn", "-c", "x.rb")
    assert role.signals == {signal.SIGTERM: signal.SIGQUIT, signal.SIGUSR2: 0, signal.SIGHUP: 0}
    assert (role.stop_timeout, role.env, role.workdir, role.user) == (8.5, {"RACK_ENV": "production"}, "/srv", "app:app")
    assert role.process_group and role.fqdn == "{hostname}.example.com" and role.source == path
    assert role.no_new_privs is True


def test_schema_key_is_allowed(tmp_path):
    role, _ = load_role(tmp_path, {"$schema": "roles.schema.json", "web": "true"})
    assert role.argv[-1] == "exec true"


@pytest.mark.parametrize("data, expected", [
    ('{"web": ', "line 1 column 9: invalid JSON"),
    ('{"web": "a", "web": "b"}', 'key "web" appears twice'),
    ("[]", "expected a JSON object mapping role names"),
    ("{}", "no roles defined"),
    ({"worker": "x"}, 'no role named "web" (roles: worker)'),
    ({"web": 3}, "web: expected a command string or an object with a \"command\" key, got 3"),
    ({"web": {"commnd": "x"}}, 'web.commnd: unknown key (did you mean "command"?)'),
    ({"web": {"signals": {}}}, 'web: missing "command"'),
    ({"web": ""}, "web.command: empty command"),
    ({"web": []}, "web.command: expected a non-empty list of strings, got a list []"),
    ({"web": {"command": 5}}, "web.command: expected a string or a list of strings, got 5"),
    ({"web": {"command": "x", "signals": {"TERM": "QUITE"}}}, 'web.signals.TERM: unknown signal "QUITE" (try QUIT)'),
    ({"web": {"command": "x", "signals": {"KILL": "QUIT"}}}, "web.signals.KILL: SIGKILL cannot be mapped"),
    ({"web": {"command": "x", "signals": {"TERM": 99}}}, "web.signals.TERM: signal number 99 is out of range"),
    ({"web": {"command": "x", "signals": ["TERM"]}}, "web.signals: expected an object"),
    ({"web": {"command": "x", "stop_timeout": -1}}, "web.stop_timeout: expected a duration such as 5, 0.5, \"500ms\", \"30s\" or \"2m\" >= 0, got -1"),
    ({"web": {"command": "x", "stop_timeout": "soon"}}, 'web.stop_timeout: expected a duration such as 5, 0.5, "500ms", "30s" or "2m", got "soon"'),
    ({"web": {"command": "x", "env": {"A": 1}}}, "web.env.A: expected a string value, got 1"),
    ({"web": {"command": "x", "workdir": "app"}}, 'web.workdir: expected an absolute path, got "app"'),
    ({"web": {"command": "x", "user": ""}}, 'web.user: expected a user name or uid 0-4294967294 (optionally :group or :gid), got ""'),
    ({"web": {"command": "x", "process_group": "yes"}}, 'web.process_group: expected true or false, got "yes"'),
])
def test_bad_input_is_one_clear_line(tmp_path, data, expected):
    message = error_of(tmp_path, data)
    assert message.startswith(str(tmp_path / "roles.json") + ": ")
    assert expected in message


def test_missing_file(tmp_path):
    with pytest.raises(InitdError, match="no such file"):
        config.load(str(tmp_path / "nope.json"))


def test_unreadable_file(tmp_path):
    with pytest.raises(InitdError, match="is a directory"):
        config.load(str(tmp_path))


def test_schema_documents_exactly_the_keys_the_parser_accepts():
    import importlib.resources
    schema = json.loads(importlib.resources.files("initd").joinpath("roles.schema.json").read_text())
    assert tuple(schema["$defs"]["role"]["properties"]) == config.ROLE_KEYS
    assert schema["$defs"]["role"]["additionalProperties"] is False


def test_record_is_frozen_with_defaults_and_replace():
    role = config.Role(name="web", argv=("true",))
    assert role.stop_timeout == config.DEFAULT_STOP_TIMEOUT and role.source == "command line"
    with pytest.raises(AttributeError):
        role.name = "other"
    changed = role._replace(stop_timeout=3.0)
    assert (changed.stop_timeout, role.stop_timeout) == (3.0, config.DEFAULT_STOP_TIMEOUT)
    assert changed == config.Role(name="web", argv=("true",), stop_timeout=3.0) != role
    with pytest.raises(TypeError):
        config.Role(name="web")  # argv has no default


# Issue 10.1: hostile roles files. Each is one line naming the file and the
# key, saying what was expected and what was got; none is a traceback.

def test_no_new_privs_defaults_off(tmp_path):
    role, _ = load_role(tmp_path, {"web": "true"})
    assert role.no_new_privs is False
    assert config.Role(name="web", argv=("true",)).no_new_privs is False


def test_nested_100000_deep_is_one_line(tmp_path):
    message = error_of(tmp_path, '{"web": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested more than 16 levels deep" in message


def test_nested_just_past_the_limit_is_refused_without_recursion(tmp_path):
    # Parses fine (json recurses 20 levels), then the depth check refuses it
    # before any message could repr() it.
    message = error_of(tmp_path, {"web": {"command": "x", "env": {"A": [[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}}})
    assert "nested more than 16 levels deep" in message


@pytest.mark.parametrize("value, seconds", [
    (10 ** 400, 1e9), (1e10, 1e9), ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0),
    ("1m30s", 90.0), (0, 0.0), (8.5, 8.5), ("7", 7.0),
])
def test_stop_timeout_durations_are_clamped_and_accept_units(tmp_path, value, seconds):
    data = json.dumps({"web": {"command": "x", "stop_timeout": 0}}).replace(
        '"stop_timeout": 0', f'"stop_timeout": {json.dumps(value)}')
    role, _ = load_role(tmp_path, data)
    assert role.stop_timeout == seconds


def test_stop_timeout_400_digits_in_the_file_is_the_cap(tmp_path):
    role, _ = load_role(tmp_path, '{"web": {"command": "x", "stop_timeout": 1' + "0" * 399 + "}}")
    assert role.stop_timeout == config.values.MAX_SECONDS


@pytest.mark.parametrize("value", ["soon", True, None, [], "-1s", "NaN", "1x"])
def test_bad_stop_timeout(tmp_path, value):
    message = error_of(tmp_path, {"web": {"command": "x", "stop_timeout": value}})
    assert "web.stop_timeout: expected a duration" in message


@pytest.mark.parametrize("user, got", [
    ("0:4294967296", '"0:4294967296"'),
    (4294967296, "4294967296"),
    (4294967295, "4294967295"),
    ("4294967295", '"4294967295"'),
    ("app:4294967295", '"app:4294967295"'),
    ("1" + "0" * 5000, '"1000'),
    (10 ** 400, "1000"),
    (-1, "-1"),
    ("²", '"²"'),
    ("app:²", '"app:²"'),
    ("a b", '"a b"'),
    (True, "true"),
    (1.5, "1.5"),
    ("a:b:c", '"a:b:c"'),
    ("app:", '"app:"'),
])
def test_user_out_of_range_or_malformed(tmp_path, user, got):
    message = error_of(tmp_path, {"web": {"command": "x", "user": user}})
    assert "web.user: expected a user name or uid 0-4294967294 (optionally :group or :gid)" in message
    assert f"got {got}" in message


@pytest.mark.parametrize("user, kept", [
    (4294967294, "4294967294"), ("4294967294:4294967294", "4294967294:4294967294"),
    (0, "0"), ("app", "app"), ("app:app", "app:app"), ("1000:1000", "1000:1000"),
    ("www-data", "www-data"),
])
def test_user_at_the_edge_of_the_range(tmp_path, user, kept):
    role, _ = load_role(tmp_path, {"web": {"command": "x", "user": user}})
    assert role.user == kept


@pytest.mark.parametrize("env, expected", [
    ({"A": "x\u0000y"}, 'web.env.A: contains a NUL character (\\u0000), got "x\\u0000y"'),
    ({"A": "\ud800"}, "web.env.A: contains a lone surrogate (\\ud800)"),
    ({"A": "x" * 131070}, "web.env.A: NAME=value is 131072 bytes, longer than the kernel's limit of 131071"),
    ({"A=B": "x"}, 'web.env.A=B: not a valid environment variable name (non-empty, without "="), got "A=B"'),
    ({"": "x"}, 'web.env.: not a valid environment variable name'),
    ({"A\u0000B": "x"}, "web.env.A\\u0000B: contains a NUL character"),
    ({"\udce9": "x"}, "web.env.\\udce9: contains a lone surrogate (\\udce9)"),
    ({"A": None}, "web.env.A: expected a string value, got null"),
])
def test_env_execve_cannot_take(tmp_path, env, expected):
    message = error_of(tmp_path, {"web": {"command": "x", "env": env}})
    assert expected in message
    assert "\0" not in message
    message.encode()  # valid UTF-8: no surrogate reaches stderr


def test_env_just_under_the_kernel_limit_is_accepted(tmp_path):
    role, _ = load_role(tmp_path, {"web": {"command": "x", "env": {"A": "x" * 131069}}})
    assert len(role.env["A"]) == 131069  # "A=" + 131069 + NUL = 131072


@pytest.mark.parametrize("command, expected", [
    (["app", "a\u0000b"], "web.command[1]: contains a NUL character"),
    (["app", "\ud800"], "web.command[1]: contains a lone surrogate (\\ud800)"),
    ("app \u0000", "web.command: contains a NUL character"),
    ("app \udfff", "web.command: contains a lone surrogate (\\udfff)"),
    (["app", "x" * 131072], "web.command[1]: 131072 bytes, longer than the kernel's limit of 131071"),
    ("app " + "x" * 131072, "web.command: 131081 bytes, longer than the kernel's limit"),
    (["app", 5], 'web.command: expected a non-empty list of strings, got a list ["app", 5]'),
])
def test_command_execve_cannot_take(tmp_path, command, expected):
    message = error_of(tmp_path, {"web": {"command": command}})
    assert expected in message
    assert "\0" not in message
    message.encode()


def test_argument_just_under_the_kernel_limit_is_accepted(tmp_path):
    role, _ = load_role(tmp_path, {"web": {"command": ["app", "x" * 131071]}})
    assert len(role.argv[1]) == 131071


@pytest.mark.parametrize("entry, expected", [
    ({"fqdn": ""}, 'web.fqdn: expected a non-empty string, got ""'),
    ({"fqdn": 5}, "web.fqdn: expected a non-empty string, got 5"),
    ({"workdir": ""}, 'web.workdir: expected a non-empty string, got ""'),
    ({"workdir": "/a\u0000b"}, "web.workdir: contains a NUL character"),
    ({"fqdn": "\ud800.example"}, "web.fqdn: contains a lone surrogate"),
    ({"signals": "TERM"}, 'web.signals: expected an object such as {"TERM": "QUIT"}, got "TERM"'),
    ({"signals": {"TERM": "²"}}, 'web.signals.TERM: unknown signal "²"'),
    ({"signals": {"TERM": 10 ** 400}}, "web.signals.TERM: signal number 1000"),
    ({"signals": {"\ud800": "TERM"}}, 'web.signals.\\ud800: unknown signal "\\ud800"'),
    ({"no_new_privs": "yes"}, 'web.no_new_privs: expected true or false, got "yes"'),
    ({"no_new_privs": 1}, "web.no_new_privs: expected true or false, got 1"),
])
def test_every_message_says_what_it_got(tmp_path, entry, expected):
    message = error_of(tmp_path, {"web": {"command": "x", **entry}})
    assert expected in message
    message.encode()


def test_role_name_with_a_surrogate_is_printable(tmp_path):
    message = error_of(tmp_path, {"\ud800": 3}, name="\ud800")
    assert "\\ud800: expected a command string" in message
    message.encode()


@pytest.fixture
def tmp_file(tmp_path):
    return tmp_path / "roles.json"


def test_fifo_is_refused_without_blocking(tmp_file):
    os.mkfifo(tmp_file)
    with pytest.raises(InitdError, match="is a FIFO, expected a regular roles.json file"):
        config.load(str(tmp_file))  # would block for ever in open() without O_NONBLOCK


def test_character_device_is_refused():
    with pytest.raises(InitdError, match="/dev/zero: is a character device, expected a regular"):
        config.load("/dev/zero")


def test_socket_is_refused(tmp_file):
    import socket
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_file))
        with pytest.raises(InitdError, match="is a socket, expected a regular roles.json file"):
            config.load(str(tmp_file))


def test_file_over_one_mib_is_refused_naming_the_limit(tmp_file):
    tmp_file.write_text('{"web": "' + "x" * (1 << 20) + '"}')
    with pytest.raises(InitdError, match=r"more than the limit of 1048576 bytes \(1 MiB\)"):
        config.load(str(tmp_file))


def test_file_of_exactly_one_mib_is_read(tmp_file):
    body = '{"web": "' + "x" * ((1 << 20) - 11) + '"}'
    tmp_file.write_text(body)
    assert len(body) == 1 << 20 and config.load(str(tmp_file))["web"].startswith("xxx")


def test_integer_of_5000_digits_is_one_line(tmp_file):
    tmp_file.write_text('{"web": {"command": "x", "stop_timeout": 1' + "0" * 5000 + "}}")
    with pytest.raises(InitdError) as e:
        config.load(str(tmp_file))
    assert "\n" not in str(e.value) and str(e.value).startswith(str(tmp_file))


def test_terminal_is_not_made_our_controlling_tty():
    # /dev/ptmx opens a new pty master; without O_NOCTTY a session leader
    # without a terminal could acquire one. Refused as a character device.
    with pytest.raises(InitdError, match="is a character device"):
        config.load("/dev/ptmx")


def duration_pattern():
    import importlib.resources
    schema = json.loads(importlib.resources.files("initd").joinpath("roles.schema.json").read_text())
    return schema["$defs"]["duration"]["oneOf"][1]["pattern"]


@pytest.mark.parametrize("text", ["5", "0.5", ".5", "500ms", "30s", "2m", "1h", "1m30s", "1.5s",
                                  "10us", "10µs", "soon", "", "1x", "1.5.5", "-1s", "s", "1 s",
                                  "5m5", "ms"])
def test_schema_duration_pattern_agrees_with_the_parser(text):
    import re
    try:
        config.values.duration(text)
        accepted = True
    except ValueError:
        accepted = False
    assert bool(re.search(duration_pattern(), text)) == accepted

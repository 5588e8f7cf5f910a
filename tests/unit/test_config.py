"""roles.json parsing: every key, and one clear error for every bad input."""
import json
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
        "user": "app:app", "process_group": True, "fqdn": "{hostname}.example.com"}})
    assert role.argv == ("unicorn", "-c", "x.rb")
    assert role.signals == {signal.SIGTERM: signal.SIGQUIT, signal.SIGUSR2: 0, signal.SIGHUP: 0}
    assert (role.stop_timeout, role.env, role.workdir, role.user) == (8.5, {"RACK_ENV": "production"}, "/srv", "app:app")
    assert role.process_group and role.fqdn == "{hostname}.example.com" and role.source == path


def test_schema_key_is_allowed(tmp_path):
    role, _ = load_role(tmp_path, {"$schema": "roles.schema.json", "web": "true"})
    assert role.argv[-1] == "exec true"


@pytest.mark.parametrize("data, expected", [
    ('{"web": ', "line 1 column 9: invalid JSON"),
    ('{"web": "a", "web": "b"}', 'key "web" appears twice'),
    ("[]", "expected a JSON object mapping role names"),
    ("{}", "no roles defined"),
    ({"worker": "x"}, 'no role named "web" (roles: worker)'),
    ({"web": 3}, "web: expected a command string or an object"),
    ({"web": {"commnd": "x"}}, 'web.commnd: unknown key (did you mean "command"?)'),
    ({"web": {"signals": {}}}, 'web: missing "command"'),
    ({"web": ""}, "web.command: empty command"),
    ({"web": []}, "web.command: expected a non-empty list of strings"),
    ({"web": {"command": 5}}, "web.command: expected a string or a list of strings, got a number"),
    ({"web": {"command": "x", "signals": {"TERM": "QUITE"}}}, 'web.signals.TERM: unknown signal "QUITE" (try QUIT)'),
    ({"web": {"command": "x", "signals": {"KILL": "QUIT"}}}, "web.signals.KILL: SIGKILL cannot be mapped"),
    ({"web": {"command": "x", "signals": {"TERM": 99}}}, "web.signals.TERM: signal number 99 is out of range"),
    ({"web": {"command": "x", "signals": ["TERM"]}}, "web.signals: expected an object"),
    ({"web": {"command": "x", "stop_timeout": -1}}, "web.stop_timeout: expected a number of seconds >= 0, got -1"),
    ({"web": {"command": "x", "stop_timeout": "5"}}, "web.stop_timeout: expected a number of seconds, got a string"),
    ({"web": {"command": "x", "env": {"A": 1}}}, "web.env.A: expected a string value, got a number"),
    ({"web": {"command": "x", "workdir": "app"}}, 'web.workdir: expected an absolute path, got "app"'),
    ({"web": {"command": "x", "user": ""}}, "web.user: expected a user name or uid"),
    ({"web": {"command": "x", "process_group": "yes"}}, "web.process_group: expected true or false, got a string"),
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

"""The issue-13 role keys: notify, watchdog, drain, exit_delay, metrics,
hooks; and the control protocol's pure parts and the status summary."""
import json
import os

import pytest

from initd import client, control, hooks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_defaults():
    keys = hooks.parse_keys({})
    assert keys == hooks.ControlKeys(False, 0.0, 0.0, 0.0, None, hooks.NO_HOOKS)


def test_every_key():
    keys = hooks.parse_keys({"notify": True, "watchdog": "10s", "drain": "5s",
                             "exit_delay": 2, "metrics": ":9102",
                             "hooks": {"ready": "register.sh", "exited": ["/bin/dereg", "-q"],
                                       "timeout": "500ms"}})
    assert (keys.notify, keys.watchdog, keys.drain, keys.exit_delay, keys.metrics) == \
        (True, 10.0, 5.0, 2.0, ":9102")
    assert keys.hooks.commands == {"ready": ("/bin/sh", "-c", "register.sh"),
                                   "exited": ("/bin/dereg", "-q")}
    assert keys.hooks.timeout == 0.5


@pytest.mark.parametrize("entry,message", [
    ({"notify": "yes"}, 'notify: expected true or false, got "yes"'),
    ({"notify": 1}, "notify: expected true or false, got 1"),
    ({"drain": "5 parsecs"}, 'drain: expected a duration such as 5, 0.5, "500ms", "30s" or '
                             '"2m", got "5 parsecs"'),
    ({"exit_delay": -1}, "exit_delay: expected"),
    ({"watchdog": "10s"}, 'watchdog: needs "notify": true'),
    ({"notify": True, "watchdog": []}, "watchdog: expected"),
    ({"metrics": "9102"}, 'metrics: expected "HOST:PORT"'),
    ({"metrics": 9102}, 'metrics: expected "HOST:PORT"'),
    ({"hooks": "x.sh"}, "hooks: expected an object"),
    ({"hooks": {"reddy": "x"}}, "hooks.reddy: unknown hook (expected one of ready, unready"),
    ({"hooks": {"ready": ""}}, "hooks.ready: expected a command, got an empty string"),
    ({"hooks": {"ready": []}}, "hooks.ready: expected a command string or a non-empty list"),
    ({"hooks": {"ready": ["a", 1]}}, "hooks.ready: expected a command string"),
    ({"hooks": {"timeout": "soon"}}, "hooks.timeout: expected a duration"),
])
def test_bad_values_name_the_key(entry, message):
    with pytest.raises(ValueError) as e:
        hooks.parse_keys(entry)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_schema_covers_the_keys():
    with open(os.path.join(REPO, "initd", "roles.schema.json")) as f:
        role = json.load(f)["$defs"]["role"]["properties"]
    assert {"notify", "watchdog", "drain", "exit_delay", "metrics", "hooks"} <= set(role)
    assert set(role["hooks"]["properties"]) == set(hooks.EVENTS) | {"timeout"}


@pytest.mark.parametrize("request_bytes,cmd", [
    (b'{"cmd": "status"}\n', "status"), (b"health\n", "health"), (b" ready ", "ready"),
    (b'{"cmd": "exec"}', None), (b"[1]", None), (b"{", None), (b"rm -rf /", None),
    (b'{"cmd": ["status"]}', None),
])
def test_parse_request(request_bytes, cmd):
    assert control.parse_request(request_bytes) == cmd


def test_health_of():
    assert control.health_of({"alive": True, "health": {"state": "unhealthy"}})["healthy"] is False
    assert control.health_of({"alive": True, "health": None})["healthy"] is True
    assert control.health_of({"alive": False})["healthy"] is False


def test_summary_of_a_minimal_snapshot():
    text = client.summary({"role": "web", "state": "starting", "ready": False, "alive": True,
                           "pids": {"initd": 1, "shim": 2, "app": None}})
    assert text.splitlines()[0] == "role web: starting, not ready"
    assert "pids      initd 1, shim 2" in text

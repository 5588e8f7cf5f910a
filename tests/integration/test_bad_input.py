"""Bad input: one line naming the file and key, exit 2, no traceback, nothing started."""
import json
import os

import pytest

from helpers import run_initd


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "started"


def check_refused(args, marker, expected, env=None):
    code, out, err = run_initd(args, env=env)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("initd: ERROR "), err
    assert "Traceback" not in err
    assert expected in err
    assert not marker.exists(), "the app was started"


def roles(tmp_path, marker, **extra):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"web": {"command": f"touch {marker}", **extra}}))
    return str(path)


def test_missing_roles_file(tmp_path, marker):
    check_refused(["--roles", str(tmp_path / "none.json"), "--role", "web"], marker,
                  f"{tmp_path}/none.json: no such file")


def test_default_roles_path_from_env(tmp_path, marker):
    check_refused(["--role", "web"], marker, f"{tmp_path}/x.json: no such file",
                  env={"INITD_ROLES": str(tmp_path / "x.json")})


def test_invalid_json(tmp_path, marker):
    path = tmp_path / "roles.json"
    path.write_text('{\n  "web": "x",\n}\n')
    check_refused(["--roles", str(path), "--role", "web"], marker,
                  f"{path}: line 3 column 1: invalid JSON")


def test_unknown_role_lists_known(tmp_path, marker):
    check_refused(["--roles", roles(tmp_path, marker), "--role", "worker"], marker,
                  'no role named "worker" (roles: web)')


def test_unknown_signal(tmp_path, marker):
    check_refused(["--roles", roles(tmp_path, marker, signals={"TERM": "QUITE"}), "--role", "web"],
                  marker, 'web.signals.TERM: unknown signal "QUITE" (try QUIT)')


def test_wrong_type_and_negative_timeout(tmp_path, marker):
    check_refused(["--roles", roles(tmp_path, marker, stop_timeout=-3), "--role", "web"],
                  marker, 'web.stop_timeout: expected a duration such as 5, 0.5, "500ms", "30s" or "2m" >= 0, got -3')


def test_missing_user(tmp_path, marker):
    check_refused(["--roles", roles(tmp_path, marker, user="nosuchuser"), "--role", "web"],
                  marker, 'web.user: no user named "nosuchuser"')


def test_missing_workdir(tmp_path, marker):
    check_refused(["--roles", roles(tmp_path, marker, workdir="/nonexistent/dir"), "--role", "web"],
                  marker, "web.workdir: /nonexistent/dir is not a directory")


def test_bad_command_line_map(marker):
    check_refused(["--map", "TERM", "--", "touch", str(marker)], marker,
                  "--map: expected SRC:DST such as TERM:QUIT")


def test_bad_env_timeout(marker):
    check_refused(["--", "touch", str(marker)], marker,
                  'INITD_STOP_TIMEOUT: expected a duration such as 5, 0.5, "500ms", "30s" or "2m", got "soon"',
                  env={"INITD_STOP_TIMEOUT": "soon"})


def test_nothing_to_run(marker):
    check_refused([], marker, "nothing to run")


def test_unknown_option(marker):
    check_refused(["--frobnicate", "--", "touch", str(marker)], marker, "--frobnicate: unknown option")


def test_check_prints_plan(tmp_path, marker):
    path = roles(tmp_path, marker, signals={"TERM": "QUIT"}, stop_timeout=8, user="root")
    code, out, err = run_initd(["check", "--roles", path])
    assert code == 0, err
    assert "command: /bin/sh -c" in out and "signals: SIGTERM -> SIGQUIT" in out
    assert "stop_timeout: 8s" in out and "uid 0" in out and out.rstrip().endswith("ok (1 role checked)")
    assert not marker.exists()


def test_check_prints_the_resolved_health_plan(tmp_path, marker):
    """issue 12.9: `initd check` shows the probe, on_unhealthy and the
    restart policy with every default filled in."""
    path = roles(tmp_path, marker, stop_timeout="500ms",
                 health={"http": "http://127.0.0.1:8080/healthz", "interval": "10s",
                         "timeout": "2s", "start_period": "30s", "start_interval": "1s"},
                 on_unhealthy="restart", restart="on-failure",
                 backoff={"initial": "200ms"}, give_up={"restarts": 4, "within": "1m"})
    code, out, err = run_initd(["check", "--roles", path])
    assert code == 0, err
    assert ("  health: http GET http://127.0.0.1:8080/healthz expecting 2xx/3xx; every 10s, "
            "timeout 2s, unhealthy after 3 failures, start period 30s (probing every 1s in it)") in out
    assert "  on unhealthy: restart\n" in out
    assert ("  restart: on-failure; backoff 0.2s doubling to 30s (±20%), reset after 10s "
            "running; give up after 4 restarts within 60s") in out
    assert "stop_timeout: 0.5s" in out
    assert not marker.exists()


def test_check_without_health_says_restart_no(tmp_path, marker):
    code, out, err = run_initd(["check", "--roles", roles(tmp_path, marker)])
    assert code == 0, err
    assert "health:" not in out and "  on unhealthy: none" in out and "  restart: no;" in out


def test_check_fails_on_bad_file(tmp_path, marker):
    check_refused(["check", "--roles", roles(tmp_path, marker, stop_timeout="x")], marker,
                  'web.stop_timeout: expected a duration such as 5, 0.5, "500ms", "30s" or "2m", got "x"')


def test_fqdn_the_preload_cannot_carry_is_one_line(tmp_path, marker):
    """initd installed under a path with a space: LD_PRELOAD cannot carry
    the library's path. Once a ValueError escaped as a traceback."""
    import shutil
    from helpers import REPO
    home = tmp_path / "with space"
    shutil.copytree(os.path.join(REPO, "initd"), home / "initd")
    code, out, err = run_initd(["--fqdn", "app.example.com", "--", "touch", str(marker)],
                               env={"PYTHONPATH": str(home)}, cwd=str(tmp_path))
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith("initd: ERROR --fqdn: library path") and err.count("\n") == 1, err
    assert str(home) in err and not marker.exists()


def test_prctl_failure_is_one_line(tmp_path, marker):
    """A prctl that fails at set-up (here a python-prctl whose call raises, as
    under a seccomp filter that denies it) is one line and exit 2, not a
    traceback, and nothing is started."""
    from helpers import REPO
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "prctl.py").write_text(
        "def set_child_subreaper(on):\n    raise OSError(1, 'Operation not permitted')\n"
        "def set_pdeathsig(sig):\n    raise OSError(1, 'Operation not permitted')\n")
    code, out, err = run_initd(["--", "touch", str(marker)], mode="subreaper",
                               env={"PYTHONPATH": f"{REPO}:{fake}"}, cwd=str(tmp_path))
    assert code == 2 and "Traceback" not in err, err
    assert err.strip() == ("initd: ERROR prctl set_child_subreaper(True): "
                           "[Errno 1] Operation not permitted")
    assert not marker.exists()
    code, out, err = run_initd(["--parent-death-signal", "TERM", "--", "touch", str(marker)],
                               env={"PYTHONPATH": f"{REPO}:{fake}"}, cwd=str(tmp_path))
    assert code == 2 and err.strip().startswith("initd: ERROR prctl set_pdeathsig(15)"), err
    assert not marker.exists()


def test_role_from_flag_and_environment_differ_is_one_warning(tmp_path, marker):
    """Issue 14.6: a manifest's INITD_ROLE=worker beside an image's CMD
    --role web: one warning naming both and which wins."""
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"web": "true", "worker": f"touch {marker}"}))
    code, out, err = run_initd(["--roles", str(path), "--role", "web"],
                               env={"INITD_ROLE": "worker"})
    assert code == 0 and not marker.exists()
    assert err.strip() == ("initd: WARNING --role web and INITD_ROLE=worker differ: running web "
                           "(the command line wins; in Kubernetes, choose the role with args:, "
                           "not command:)")
    code, out, err = run_initd(["--roles", str(path), "--role", "web"], env={"INITD_ROLE": "web"})
    assert (code, err) == (0, "")

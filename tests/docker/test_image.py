"""initd as PID 1 of a real Docker container, built from Dockerfile.example.

What a production container relies on, checked end to end: the process tree
(initd, then ppidshim, then the app), the FQDN the app sees, `docker stop`
turned into the app's graceful signal, and the container's exit code being
the app's own.

Needs a running Docker engine (`sudo ./dev test` starts one). Without one the
tests are skipped, except under CI (CI=true), where that is a failure: CI must
not go green by skipping the only end-to-end check.

The base image is made once by docker/make-base-image (debootstrap, about a
minute) and kept; the example image is rebuilt from the working tree each
session, mostly from Docker's layer cache.
"""
import os
import pathlib
import re
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BASE_IMAGE = "initd-base:bookworm"
IMAGE = "initd-example:test"
FQDN = "unicorn-1.server2.example.com"
LABEL = "initd-test=tests/docker"
IN_CI = os.environ.get("CI") == "true"


def docker(*args, timeout=60, check=True, env=None):
    """Runs `docker ARGS`; returns the CompletedProcess (text output)."""
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True,
                                timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"docker {' '.join(args)}: no answer within {timeout} s\n{e.stderr or ''}")
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def sleep_until(predicate, timeout, interval=0.1):
    """Polls `predicate` until it returns a true value (returned) or `timeout` s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="session")
def docker_engine():
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        reason = None if info.returncode == 0 else (info.stderr.strip() or info.stdout.strip())
    except FileNotFoundError:
        reason = "no docker command (apt-get install docker.io)"
    except subprocess.TimeoutExpired:
        reason = "`docker info` did not answer within 30 s"
    if reason:
        message = f"no Docker engine: {reason.rstrip('.')}. `sudo ./dev test` starts one."
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """initd-base:bookworm, made by docker/make-base-image unless it exists."""
    result = subprocess.run([str(REPO / "docker" / "make-base-image"), BASE_IMAGE],
                            capture_output=True, text=True, timeout=900,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        pytest.fail(f"docker/make-base-image exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return BASE_IMAGE


def git_revision():
    try:
        result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


@pytest.fixture(scope="session")
def revision():
    return git_revision()


@pytest.fixture(scope="session")
def image(base_image, revision):
    """The example image, built from this working tree."""
    # The classic builder: it needs no buildx plugin, and Debian's docker.io
    # has none; it uses the local base image without asking any registry.
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    docker("build", "--quiet", "--file", str(REPO / "Dockerfile.example"),
           "--build-arg", f"REVISION={revision}", "--tag", IMAGE, str(REPO),
           timeout=1200, env=env)
    # The image this build replaced, if any, is left untagged: drop it (only
    # those, by the Dockerfile's title label), or every edit leaves 400 MB behind.
    docker("image", "prune", "--force", "--filter",
           "label=org.opencontainers.image.title=initd-example", check=False)
    return IMAGE


@pytest.fixture
def containers(image):
    """Starts containers (`start(*docker_run_args)` -> id); removes them after the test."""
    started = []

    def start(*args):
        cid = docker("run", "--detach", "--label", LABEL, *args, timeout=60).stdout.strip()
        started.append(cid)
        return cid

    yield start
    for cid in started:
        docker("rm", "--force", "--volumes", cid, timeout=60, check=False)


def logs(cid):
    result = docker("logs", cid, check=False)
    return result.stdout + result.stderr


def state(cid):
    """(running, exit code) of a container."""
    out = docker("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", cid).stdout
    running, code = out.split()
    return running == "true", int(code)


def wait_for_log(cid, text, timeout=30):
    if not sleep_until(lambda: text in logs(cid), timeout, interval=0.2):
        running, code = state(cid)
        pytest.fail(f"no {text!r} in the container's output within {timeout} s "
                    f"(running={running}, exit code {code}):\n{logs(cid)}")


def wait_exited(cid, timeout=30):
    """The container's exit code, once it has stopped."""
    if not sleep_until(lambda: not state(cid)[0], timeout, interval=0.2):
        pytest.fail(f"container still running after {timeout} s:\n{logs(cid)}")
    return state(cid)[1]


def processes(cid):
    """{pid: (ppid, args)} of every process in the container, from ps inside it."""
    out = docker("exec", cid, "ps", "-e", "-o", "pid=,ppid=,args=").stdout
    table = {}
    for line in out.splitlines():
        pid, ppid, args = line.split(None, 2)
        table[int(pid)] = (int(ppid), args)
    return table


def app_said(cid):
    """What the app's master printed about itself: pid, ppid, hostname, revision."""
    match = re.search(r"master pid=\d+: started: pid=(\d+) ppid=(\d+) hostname=(\S+)"
                      r"(?: revision=(\S+))?", logs(cid))
    assert match, f"the app did not describe itself:\n{logs(cid)}"
    pid, ppid, hostname, revision = match.groups()
    return int(pid), int(ppid), hostname, revision


def test_web_role_runs_under_initd_and_ppidshim_with_its_fqdn(containers, revision):
    cid = containers("--hostname", "unicorn-1", IMAGE, "--role", "web")
    wait_for_log(cid, "ready: workers")
    sleep_until(lambda: logs(cid).count("serving") == 2, 10)
    table = processes(cid)
    tree = "\n".join(f"{pid:>5} {ppid:>5} {args}" for pid, (ppid, args) in sorted(table.items()))

    # PID 1 is initd (its title names the role).
    assert 1 in table, tree
    assert table[1][1].startswith("initd"), tree

    # Its one child is the shim, titled for the role.
    shims = [pid for pid, (ppid, args) in table.items() if args == "ppidshim: web"]
    assert len(shims) == 1, tree
    shim = shims[0]
    assert table[shim][0] == 1, tree

    # The app is the shim's only child, and the app's master forked 2 workers.
    # Under runc the numbers are not 2 and 3 as under `unshare --pid`: runc's
    # Go threads take a few pids of the new namespace before it execs initd.
    apps = [pid for pid, (ppid, _) in table.items() if ppid == shim]
    assert len(apps) == 1, tree
    app = apps[0]
    assert "/app/app.py web" in table[app][1], tree
    workers = [pid for pid, (ppid, _) in table.items() if ppid == app]
    assert len(workers) == 2, tree

    # What the app itself saw: the same pids, a parent that is not PID 1, and
    # gethostname() giving the role's FQDN built from the container's hostname.
    pid, ppid, hostname, app_revision = app_said(cid)
    assert (pid, ppid) == (app, shim)
    assert ppid != 1
    assert hostname == FQDN
    assert app_revision == revision

    # Only the app gets the FQDN; the container's own hostname is unchanged.
    assert docker("exec", cid, "hostname").stdout.strip() == "unicorn-1"
    assert docker("exec", cid, "cat", "/app/REVISION").stdout.strip() == revision


@pytest.mark.parametrize("role, received, farewell", [
    # roles.json maps TERM to QUIT for web: unicorn's graceful stop.
    pytest.param("web", "got SIGQUIT: graceful stop", "graceful stop complete: exit 0",
                 id="web"),
    # worker has no map (a plain command string): SIGTERM arrives as is.
    # Also the regression test for Procfile lines: dash does not exec the last
    # command of sh -c itself, so initd must, or sh would die of the SIGTERM.
    pytest.param("worker", "got SIGTERM: exiting 0", "got SIGTERM: exiting 0", id="worker"),
])
def test_docker_stop_is_the_roles_stop_signal_and_exit_code_is_the_apps(
        containers, role, received, farewell):
    cid = containers("--hostname", "unicorn-1", IMAGE, "--role", role)
    wait_for_log(cid, "started: pid=")
    if role == "web":
        wait_for_log(cid, "ready: workers")

    started = time.monotonic()
    docker("stop", "--time", "30", cid, timeout=60)
    elapsed = time.monotonic() - started

    output = logs(cid)
    assert received in output, output
    assert farewell in output, output
    if role == "web":
        # The translated signal is all the app got: no SIGTERM reached it.
        assert "got SIGTERM" not in output, output
        assert output.count("finishing the current request") == 2, output
    running, code = state(cid)
    assert not running
    assert code == 0, output  # the app's own status, not docker's 137 for SIGKILL
    assert elapsed < 8, f"docker stop took {elapsed:.1f} s: did it have to SIGKILL?\n{output}"


@pytest.mark.parametrize("command, expected", [
    (["python3", "/app/app.py", "exit", "3"], 3),
    (["/bin/sh", "-c", "exit 0"], 0),
    (["/bin/sh", "-c", "exit 255"], 255),
    (["/bin/sh", "-c", "kill -USR1 $$"], 128 + 10),  # a signal death: 128 + SIGUSR1
], ids=["app-exit-3", "exit-0", "exit-255", "killed-by-USR1"])
def test_container_exit_code_is_the_commands(containers, command, expected):
    cid = containers(IMAGE, "--", *command)
    code = wait_exited(cid)
    assert code == expected, logs(cid)

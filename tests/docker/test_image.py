"""initd as PID 1 of a real Docker container: the example app (examples/shop)
built from Dockerfile.example, as a user would build and run it.

What a production container relies on, checked end to end: the process tree
(initd, then ppidshim, then the app), the FQDN the app sees (and a 63-character
pod-style hostname that cannot take it), signals reaching the app, `docker
stop` during requests in flight (every one answered, exit 0, within the
grace, after the web role's drain), the worker finishing its current job and
leaving the rest queued, health (`starting -> healthy` in `docker inspect`,
an unhealthy app restarted by initd in the same container, `initd health` and
`initd status` through `docker exec`), the `initd` launcher, a bad roles.json
baked into an image, a hardened `docker run`, and the container's exit code
being the app's own.

Needs a running Docker engine (`sudo ./dev test` starts one). Without one the
tests are skipped, except under CI (CI=true), where that is a failure: CI must
not go green by skipping the only end-to-end check.

The base image is made once by docker/make-base-image (debootstrap, about a
minute) and kept; the dependencies' sources are fetched on the host once by
docker/fetch-wheelhouse (the build itself never reaches PyPI); the example
image is rebuilt from the working tree each session, mostly from Docker's
layer cache.
"""
import concurrent.futures
import datetime
import json
import os
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BASE_IMAGE = "initd-base:bookworm"
# INITD_TEST_IMAGE: another tag, so two checkouts testing on one engine do not
# run each other's image.
IMAGE = os.environ.get("INITD_TEST_IMAGE", "initd-shop:test")
BAD_IMAGE = "initd-shop:bad-roles"
FQDN = "web-1.shop.example.com"
# A pod name as Kubernetes makes them (Deployment, ReplicaSet hash, suffix),
# at the 63 characters a DNS label allows: with ".shop.example.com" it is 80,
# over the kernel's 64, so the app must run with the kernel's name.
POD_63 = ("shop-web-payments-eu-west-1-production-canary-7d9f8b6c5d-x2x4z" + "z" * 63)[:63]
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
def wheelhouse():
    """wheelhouse/: the dependencies' sources, fetched on the host (a no-op
    when they are there), because the build cannot reach PyPI."""
    result = subprocess.run([str(REPO / "docker" / "fetch-wheelhouse")],
                            capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        pytest.fail(f"docker/fetch-wheelhouse exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def image(base_image, wheelhouse, revision):
    """The example image, built from this working tree."""
    # The classic builder: it needs no buildx plugin, and Debian's docker.io
    # has none; it uses the local base image without asking any registry.
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    docker("build", "--quiet", "--file", str(REPO / "Dockerfile.example"),
           "--build-arg", f"BASE={base_image}", "--build-arg", f"REVISION={revision}",
           "--tag", IMAGE, str(REPO), timeout=1200, env=env)
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


# The image ships no ps (procps is a debugging tool, not the app's): read
# /proc with the python3 the image has anyway. Its own pid is left out.
PS = """
import json, os
table = {}
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            stat = open(f"/proc/{pid}/stat").read()
            args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ")
        except OSError:
            continue
        table[pid] = [int(stat[stat.rindex(")") + 2:].split()[1]), args.decode().strip()]
print(json.dumps(table))
"""


def processes(cid):
    """{pid: (ppid, args)} of every process in the container, from /proc inside it."""
    out = docker("exec", cid, "python3", "-c", PS).stdout
    return {int(pid): (ppid, args) for pid, (ppid, args) in json.loads(out).items()}


def app_said(cid):
    """What the app printed about itself: pid, ppid, hostname, revision."""
    match = re.search(r"started: pid=(\d+) ppid=(\d+) hostname=(\S+) revision=(\S+)",
                      logs(cid))
    assert match, f"the app did not describe itself:\n{logs(cid)}"
    pid, ppid, hostname, revision = match.groups()
    return int(pid), int(ppid), hostname, revision


def address(cid):
    """The container's address on Docker's bridge, reachable from the host."""
    ip = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
    assert ip, f"container {cid} has no bridge address"
    return ip


def get(cid, path, timeout=10):
    """(status, body) of GET http://CONTAINER:8080/PATH."""
    try:
        with urllib.request.urlopen(f"http://{address(cid)}:8080{path}",
                                    timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_serving(cid, timeout=30):
    def up():
        try:
            return get(cid, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False
    if not sleep_until(up, timeout, interval=0.2):
        pytest.fail(f"web role not answering /healthz within {timeout} s:\n{logs(cid)}")


def test_web_role_runs_under_initd_and_ppidshim_with_its_fqdn(containers, revision):
    cid = containers("--hostname", "web-1", IMAGE)  # CMD: --role web
    wait_serving(cid)
    table = processes(cid)
    tree = "\n".join(f"{pid:>5} {ppid:>5} {args}" for pid, (ppid, args) in sorted(table.items()))

    # PID 1 is initd (its title names the role), running as the image's user.
    assert table[1][1].startswith("initd: web"), tree
    # `initd` is the C launcher (shim/launcher.c), which execs python3 -I -S:
    # so PID 1 is the interpreter, titled for the role (what ps shows).
    exe = docker("exec", cid, "readlink", "/proc/1/exe").stdout.strip()
    assert re.fullmatch(r"/usr/bin/python3\.\d+", exe), exe
    assert docker("exec", cid, "cat", "/proc/1/comm").stdout.strip() == "initd: web"

    # Its one child is the shim, titled for the role.
    shims = [pid for pid, (ppid, args) in table.items() if args == "ppidshim: web"]
    assert len(shims) == 1, tree
    shim = shims[0]
    assert table[shim][0] == 1, tree

    # The app is the shim's only child. Under runc the numbers are not 2 and
    # 3 as under `unshare --pid`: runc's Go threads take a few pids of the new
    # namespace before it execs initd.
    apps = [pid for pid, (ppid, _) in table.items() if ppid == shim]
    assert len(apps) == 1, tree
    app = apps[0]
    assert table[app][1] == "python3 /app/shop.py web", tree

    # What the app itself saw: the same pids, a parent that is not PID 1, and
    # gethostname() giving the role's FQDN built from the container's hostname.
    pid, ppid, hostname, app_revision = app_said(cid)
    assert (pid, ppid) == (app, shim)
    assert ppid != 1
    assert hostname == FQDN
    assert app_revision == revision
    # The request threads see the same (one process, the FQDN library loaded).
    assert json.loads(get(cid, "/whoami")[1]) == {"pid": app, "ppid": shim, "hostname": FQDN}
    # container/compile ran at build time, container/files/ landed in /.
    status, page = get(cid, "/")
    assert status == 200 and f"revision {revision}" in page, page
    assert "port = 8080" in docker("exec", cid, "cat", "/etc/shop.conf").stdout

    # Only the app gets the FQDN; the container's own hostname is unchanged.
    assert docker("exec", cid, "hostname").stdout.strip() == "web-1"
    assert docker("exec", cid, "cat", "/app/REVISION").stdout.strip() == revision
    assert docker("exec", cid, "id", "-u").stdout.strip() == "1000"  # USER shop


def test_a_63_character_pod_hostname_warns_once_and_the_app_runs_with_it(containers):
    # The FQDN would be 80 characters; it is cosmetic, so it must not keep
    # the app from starting (issue 14, point 6).
    cid = containers("--hostname", POD_63, IMAGE)
    wait_serving(cid)
    assert app_said(cid)[2] == POD_63
    warnings = [line for line in logs(cid).splitlines() if line.startswith("initd: WARNING")]
    assert len(warnings) == 1 and "80 characters" in warnings[0], logs(cid)


def test_docker_kill_hup_reaches_the_app(containers):
    cid = containers(IMAGE)
    wait_serving(cid)
    docker("kill", "--signal", "HUP", cid)
    wait_for_log(cid, "got SIGHUP: reloaded /etc/shop.conf", timeout=10)
    assert state(cid)[0]  # still running: HUP is a reload, not a stop


IN_FLIGHT = 6
SLOW = 3.0  # seconds each request takes
DRAIN = 3.0  # the web role's "drain" (roles.json)
WEB_GRACE = 15  # > the web role's stop budget, 12 s


def exec_code(cid, *command):
    """The exit code of COMMAND run in the container (as its user, as
    Docker's HEALTHCHECK runs it)."""
    return docker("exec", cid, *command, check=False, timeout=30).returncode


def test_docker_stop_during_requests_answers_every_one_and_exits_0_within_the_grace(
        containers):
    cid = containers(IMAGE)
    wait_serving(cid)
    # One more thread than requests: the one that runs `docker stop`.
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT + 1) as pool:
        futures = [pool.submit(get, cid, f"/slow?seconds={SLOW}&n={n}", 30)
                   for n in range(IN_FLIGHT)]
        # Stop only once every request is inside the app.
        if not sleep_until(lambda: logs(cid).count("request in flight") == IN_FLIGHT, 10):
            pytest.fail(f"the {IN_FLIGHT} requests did not all arrive:\n{logs(cid)}")
        started = time.monotonic()
        # The grace (15 s) exceeds the web role's stop budget, which `initd
        # check` prints: drain 3 + stop_timeout 7 + orphan_grace 2 = 12 s.
        stop = pool.submit(docker, "stop", "--time", str(WEB_GRACE), cid, timeout=60)
        # The drain: initd says not ready at once, and the app still takes
        # new requests until it gets SIGQUIT 3 s later. (Liveness during the
        # drain: tests/integration/test_drain_liveness.py.)
        if not sleep_until(lambda: exec_code(cid, "initd", "health", "--ready") == 1, DRAIN):
            pytest.fail(f"`initd health --ready` still 0 after the drain began:\n{logs(cid)}")
        assert get(cid, "/healthz")[0] == 200, logs(cid)
        assert "got SIGQUIT" not in logs(cid)
        stop.result(timeout=60)
        elapsed = time.monotonic() - started
        answers = [f.result(timeout=30) for f in futures]
    output = logs(cid)
    assert answers == [(200, f"slept {SLOW:g}s\n")] * IN_FLIGHT, output
    assert "got SIGQUIT: graceful stop" in output, output
    assert output.count("request done") == IN_FLIGHT, output
    assert "graceful stop complete: exit 0" in output, output
    assert state(cid) == (False, 0), output  # the app's 0, not 137 for a SIGKILL
    # At least the drain, well under the budget: the app's own stop ended it.
    assert DRAIN <= elapsed < DRAIN + 5, f"docker stop took {elapsed:.1f} s\n{output}"


@pytest.fixture
def queue_dir(tmp_path):
    """A host directory mounted as the worker's /var/lib/shop, owned by the
    image's user (uid 1000), with three 3-second jobs queued."""
    root = tmp_path / "shop"
    queue = root / "queue"
    queue.mkdir(parents=True)
    for n in (1, 2, 3):
        (queue / f"job-{n}.job").write_text("3\n")
    for path in (root, queue, *queue.iterdir()):
        os.chown(path, 1000, 1000)
    return root


def test_worker_finishes_its_current_job_on_docker_stop_and_leaves_the_rest_queued(
        containers, queue_dir):
    cid = containers("--volume", f"{queue_dir}:/var/lib/shop", "--stop-timeout", "30",
                     IMAGE, "--role", "worker")
    wait_for_log(cid, "job job-1.job: started")
    started = time.monotonic()
    docker("stop", cid, timeout=60)  # --stop-timeout 30 > stop_timeout 25 + 2
    elapsed = time.monotonic() - started
    output = logs(cid)
    assert "got SIGQUIT: finishing job job-1.job" in output, output
    assert "job job-1.job: finished, exit 0" in output, output
    assert "2 job(s) left queued: exit 0" in output, output
    assert state(cid) == (False, 0), output
    assert elapsed < 10, output  # one 3 s job, not the 30 s grace
    assert sorted(p.name for p in (queue_dir / "queue").iterdir()) == ["job-2.job", "job-3.job"]
    assert [p.name for p in (queue_dir / "done").iterdir()] == ["job-1.job"]


@pytest.fixture
def bad_image(image):
    """The example image with a roles.json whose web role has a typo'd key."""
    dockerfile = (f"FROM {IMAGE}\nUSER root\n"
                  """RUN echo '{"web": {"comand": ["python3", "/app/shop.py", "web"]}}'"""
                  " > /app/container/roles.json\nUSER shop\n")
    result = subprocess.run(["docker", "build", "--quiet", "--tag", BAD_IMAGE, "-"],
                            input=dockerfile, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, DOCKER_BUILDKIT="0"))
    assert result.returncode == 0, result.stderr
    yield BAD_IMAGE
    docker("rmi", "--force", BAD_IMAGE, check=False)


def test_a_bad_roles_json_baked_into_an_image_exits_2_with_one_line(containers, bad_image):
    cid = containers(bad_image)
    assert wait_exited(cid) == 2, logs(cid)
    result = docker("logs", cid)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("initd: ERROR /app/container/roles.json: web"), lines[0]
    assert "comand" in lines[0], lines[0]


def test_hardened_run_read_only_no_capabilities_non_root_no_new_privileges(containers):
    # --tmpfs /tmp: initd's control socket, /tmp/initd-1000/initd.sock (a
    # non-root initd's default), needs a writable /tmp on a read-only root.
    cid = containers("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                     "--user", "1000:1000", "--security-opt", "no-new-privileges",
                     "--hostname", "web-1", "--health-interval", "1s", IMAGE)
    wait_serving(cid)
    # The image's HEALTHCHECK (`initd health`, run as uid 1000) finds initd.
    wait_docker_health(cid, "healthy", 15)
    assert "WARNING" not in logs(cid), logs(cid)
    assert app_said(cid)[2] == FQDN  # the preload library still loads
    assert get(cid, "/")[0] == 200
    status = docker("exec", cid, "cat", "/proc/1/status").stdout
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert re.search(r"^Uid:\s+1000\s", status, re.M), status
    docker("stop", cid, timeout=60)
    assert state(cid) == (False, 0), logs(cid)
    assert "graceful stop complete: exit 0" in logs(cid)


def test_read_only_without_a_writable_tmp_runs_the_app_and_says_how_to_get_the_socket(
        containers):
    # What the README warns of: no --tmpfs /tmp, so no control socket. The
    # app runs (a missing socket never stops it); initd says so in one line;
    # `initd health` (the HEALTHCHECK) exits 3, "no initd answered".
    cid = containers("--read-only", "--user", "1000:1000", IMAGE)
    wait_serving(cid)
    warnings = [line for line in logs(cid).splitlines() if line.startswith("initd: WARNING")]
    assert len(warnings) == 1, logs(cid)
    assert "/tmp/initd-1000" in warnings[0] and "Read-only file system" in warnings[0]
    assert "--control PATH" in warnings[0], warnings[0]
    assert exec_code(cid, "initd", "health") == 3


def test_initd_check_in_the_image_prints_the_roles(image):
    result = docker("run", "--rm", IMAGE, "check")
    assert "web:" in result.stdout and "worker:" in result.stdout, result.stdout
    assert "/app/container/roles.json: ok (2 roles checked)" in result.stdout, result.stdout
    # The stop budgets the README, the manifests and the tests' graces rely on.
    assert "stop budget: 12s (drain 3 + stop_timeout 7 + orphan_grace 2)" in result.stdout
    assert "stop budget: 27s (drain 0 + stop_timeout 25 + orphan_grace 2)" in result.stdout


def test_the_initd_command_is_the_launcher_and_runs_as_pid_1(image):
    # `initd` in the image is the C launcher the wheel installs (not a
    # console_scripts wrapper), and it starts initd with python -I -S.
    out = docker("run", "--rm", "--entrypoint", "initd", IMAGE, "--version").stdout
    assert re.fullmatch(r"initd \S+\n", out), out
    where = docker("run", "--rm", "--entrypoint", "python3", IMAGE, "-c",
                   "import shutil; p = shutil.which('initd'); "
                   "print(p, open(p, 'rb').read(4) == bytes([127]) + b'ELF')").stdout
    assert where.split() == ["/usr/local/bin/initd", "True"], where
    # As PID 1 with no role file involved: `--` and a command. Its exit code
    # is the command's; under it the process tree is initd, shim, app.
    ps = "import os; print(open('/proc/1/cmdline', 'rb').read().split(bytes(1))[0].decode())"
    out = docker("run", "--rm", "--entrypoint", "/usr/local/bin/initd", IMAGE,
                 "--", "python3", "-c", ps).stdout
    assert out.strip().startswith("initd"), out


def docker_health(cid):
    """Docker's view of the HEALTHCHECK: (status, log entries)."""
    out = docker("inspect", "--format", "{{json .State.Health}}", cid).stdout
    health = json.loads(out)
    return health["Status"], health["Log"] or []


def wait_docker_health(cid, wanted, timeout):
    if not sleep_until(lambda: docker_health(cid)[0] == wanted, timeout, interval=0.3):
        pytest.fail(f"docker health not {wanted!r} within {timeout} s: {docker_health(cid)}"
                    f"\n{logs(cid)}")


def initd_status(cid):
    return json.loads(docker("exec", cid, "initd", "status", "--json").stdout)


def test_health_starting_then_healthy_and_initd_health_and_status_by_docker_exec(containers):
    cid = containers(IMAGE)
    # The image's HEALTHCHECK as shipped: `initd health` every 10 s.
    test = json.loads(docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}",
                             cid).stdout)
    assert test == ["CMD", "initd", "health"], test
    assert docker_health(cid)[0] == "starting"
    wait_serving(cid)
    # docker exec runs as the image's USER (uid 1000), initd's user: it
    # finds the control socket at the non-root default.
    assert exec_code(cid, "initd", "health") == 0
    assert docker("exec", cid, "ls", "/tmp/initd-1000").stdout.split() == ["initd.sock"]
    # initd's own check (roles.json: GET /healthz, every 0.5 s while
    # starting); the role is ready for traffic only once it passed.
    if not sleep_until(lambda: initd_status(cid)["health"]["state"] == "healthy", 10):
        pytest.fail(f"initd's health check not healthy: {initd_status(cid)}")
    assert exec_code(cid, "initd", "health", "--ready") == 0
    status = initd_status(cid)
    assert status["role"] == "web" and status["alive"] and status["ready"], status
    assert status["pids"]["initd"] == 1 and status["pids"]["app"] == app_said(cid)[0], status
    # Docker has not asked yet: still "starting".
    assert docker_health(cid)[0] == "starting"
    # Docker's first check comes one interval (10 s) after the start.
    wait_docker_health(cid, "healthy", 20)
    assert docker_health(cid)[1][-1]["ExitCode"] == 0


def test_an_unhealthy_app_is_restarted_by_initd_and_the_container_stays_up(containers):
    cid = containers("--health-interval", "1s", IMAGE)
    wait_serving(cid)
    if not sleep_until(lambda: initd_status(cid)["health"]["state"] == "healthy", 10):
        pytest.fail(f"initd's health check not healthy: {initd_status(cid)}")
    wait_docker_health(cid, "healthy", 10)
    before = initd_status(cid)["pids"]
    assert get(cid, "/break")[0] == 200  # /healthz answers 503 from now on

    # initd's check fails twice (retries 2, every 5 s), then initd stops the
    # app gracefully (SIGQUIT) and starts a new one under a new shim.
    def restarted():
        status = initd_status(cid)
        return (status["pids"]["app"] not in (None, before["app"])
                and status["health"]["state"] == "healthy" and status)
    status = sleep_until(restarted, 30, interval=0.5)
    if not status:
        pytest.fail(f"no restart within 30 s: {initd_status(cid)}\n{logs(cid)}")
    output = logs(cid)
    assert "web: health healthy -> unhealthy, code 503" in output, output
    assert "got SIGQUIT: graceful stop" in output, output
    assert status["restarts_total"] == {"unhealthy": 1}, status
    assert status["pids"]["initd"] == 1 and status["pids"]["shim"] != before["shim"], status
    # The new app answers, with a shim as its parent; the container never stopped.
    assert get(cid, "/healthz")[0] == 200
    whoami = json.loads(get(cid, "/whoami")[1])
    assert (whoami["pid"], whoami["ppid"]) == (status["pids"]["app"], status["pids"]["shim"])
    assert state(cid) == (True, 0)
    assert docker("inspect", "--format", "{{.RestartCount}}", cid).stdout.strip() == "0"
    # Docker's HEALTHCHECK, asking initd, ends healthy after the restart.
    restart_seen = time.time()

    def healthy_since_restart():
        status, log = docker_health(cid)
        return status == "healthy" and log and log[-1]["ExitCode"] == 0 and (
            _docker_time(log[-1]["Start"]) > restart_seen)
    if not sleep_until(healthy_since_restart, 10, interval=0.3):
        pytest.fail(f"docker health after the restart: {docker_health(cid)}")


def _docker_time(text):
    """Seconds since the epoch of Docker's RFC 3339 time with nanoseconds."""
    head, _, rest = text.partition(".")
    frac = rest.rstrip("Z").split("+")[0].split("-")[0]
    stamp = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + float("0." + (frac or "0"))


@pytest.mark.parametrize("command, expected", [
    (["python3", "-c", "raise SystemExit(3)"], 3),
    (["/bin/sh", "-c", "exit 0"], 0),
    (["/bin/sh", "-c", "exit 255"], 255),
    (["/bin/sh", "-c", "kill -USR1 $$"], 128 + 10),  # a signal death: 128 + SIGUSR1
], ids=["python-exit-3", "exit-0", "exit-255", "killed-by-USR1"])
def test_container_exit_code_is_the_commands(containers, command, expected):
    cid = containers(IMAGE, "--", *command)
    code = wait_exited(cid)
    assert code == expected, logs(cid)

"""The example's Kubernetes manifests (examples/kubernetes/) on a real engine
that implements the Pod API: `podman kube play`.

What is shown, as a kubelet would run it: the pod's app starts under initd
with the pod name in its FQDN; the liveness probe passes; a pod stop during
requests in flight answers every request and ends with exit 0 well within
terminationGracePeriodSeconds; with shareProcessNamespace (initd not PID 1,
a subreaper next to the pod's pause process) orphans are reaped, swept at
stop, and nothing is left behind.

Debian's podman 4.3 differs from a kubelet in ways that matter to any init
(each fixed in later podman releases), so each kubelet step is emulated
explicitly; the comments at each call say which step it stands for:
  - `kube down` kills without SIGTERM: used only to clean up, never to stop;
  - terminationGracePeriodSeconds is ignored: the grace is passed with -t;
  - `pod stop` stops the pause ("infra") container, and with it the pod's
    network, at the same time as the app containers, so answers to clients
    outside the pod are lost even though the app finishes every request (seen
    here: 3/3 requests completed in the app, 0/3 answers arrived); the kubelet
    kills the containers first (SIGTERM, grace, SIGKILL: `podman stop -t
    GRACE CONTAINER`) and tears the sandbox down after (`podman pod stop`);
  - in a shared-PID pod `pod stop` SIGKILLs everything: another reason to
    stop each app container first;
  - an exec probe's argv is joined into one shell string: the manifests'
    probes are one word per item with no shell (no `sh -c`);
  - readinessProbe is ignored: the test runs its command (`initd health
    --ready`) with `podman exec`, as a kubelet runs an exec probe; 4.3
    refuses an exec into a container being stopped, so not during the drain;
  - probes run only on demand (no systemd timers): `podman healthcheck run`.

podman runs with tests/kubernetes/containers.conf (CONTAINERS_CONF: runc,
cgroupfs, no default ulimits; /etc is never edited). The image is the one
tests/docker builds from Dockerfile.example, copied into podman's store when
its id differs. Where podman cannot run the tests are skipped with the
reason, except under CI=true, where that is a failure.
"""
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "docker"))
# The image build and its fixtures are tests/docker's (imported by name:
# importing test_* functions would run them twice).
from test_image import (IMAGE, IN_CI, POD_63, base_image, docker, docker_engine,  # noqa: E402,F401
                        image, revision, sleep_until, wheelhouse)

CONF = HERE / "containers.conf"
MANIFESTS = REPO / "examples" / "kubernetes"
PODMAN_IMAGE = f"localhost/{IMAGE}"


def podman(*args, timeout=60, check=True):
    env = dict(os.environ, CONTAINERS_CONF=str(CONF))
    try:
        result = subprocess.run(["podman", *args], capture_output=True, text=True,
                                timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"podman {' '.join(args)}: no answer within {timeout} s\n{e.stderr or ''}")
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def podman_engine():
    reason = None
    if shutil.which("podman") is None:
        reason = "no podman command (apt-get install podman; `./dev setup` does)"
    else:
        info = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, CONTAINERS_CONF=str(CONF)),
                              stdin=subprocess.DEVNULL)
        if info.returncode != 0:
            reason = f"`podman info` failed: {info.stderr.strip()[-500:]}"
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true and podman cannot run: {reason}")
        pytest.skip(f"podman cannot run: {reason}")


@pytest.fixture(scope="session")
def pod_image(podman_engine, image):  # noqa: F811 - the fixture imported above
    """The example image in podman's store: `docker save | podman load`, only
    when podman's copy is not the same image id (then it takes ~7 s)."""
    want = docker("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    have = podman("image", "inspect", "--format", "{{.Id}}", PODMAN_IMAGE, check=False)
    if have.returncode != 0 or want.removeprefix("sha256:") != have.stdout.strip():
        save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
        try:
            load = subprocess.run(["podman", "load", "--quiet"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=300,
                                  env=dict(os.environ, CONTAINERS_CONF=str(CONF)))
        finally:
            save.stdout.close()
            save.wait(timeout=60)
        assert load.returncode == 0 and save.returncode == 0, load.stderr
    return PODMAN_IMAGE


def manifest(name, tmp_path, pod_image, rename=None):
    """examples/kubernetes/NAME with the test's image, one replica, and no
    ports: podman 4.3 publishes containerPort on the host, where a fixed port
    may be taken (the test reaches the pod on its own address). With RENAME
    (old, new): only the document named OLD, renamed NEW."""
    text = (MANIFESTS / name).read_text()
    if rename:
        old, new = rename
        [text] = [doc for doc in text.split("\n---\n") if f"\n  name: {old}\n" in doc]
        text = text.replace(f"\n  name: {old}\n", f"\n  name: {new}\n")
    text = text.replace("registry.example.com/shop:1.0", pod_image)
    text = text.replace("replicas: 2", "replicas: 1")
    text = re.sub(r"\n *ports:\n *- \{name: http, containerPort: 8080\}", "", text)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def play(tmp_path, pod_image):
    """`play(manifest_name)` runs `podman kube play` (the kubelet creating the
    pods) and removes every pod it made at the end."""
    played = []

    def start(name, rename=None):
        path = manifest(name, tmp_path, pod_image, rename)
        podman("kube", "down", str(path), check=False)  # a previous run's leftovers
        played.append(path)
        podman("kube", "play", str(path), timeout=120)
        return path

    yield start
    for path in played:
        # Cleanup only: 4.3's kube down kills without SIGTERM (never a stop).
        podman("kube", "down", str(path), timeout=120, check=False)


def logs(container):
    result = podman("logs", container, check=False)
    # podman adds its own complaints (no syslog, no systemd) on stderr.
    return result.stdout + "\n".join(line for line in result.stderr.splitlines()
                                     if line.startswith(("initd:", "shop[")))


def inspect(container, template):
    return podman("inspect", "--format", template, container).stdout.strip()


def address(container):
    ip = inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    assert ip, f"{container} has no address"
    return ip


def get(container, path, timeout=10):
    try:
        with urllib.request.urlopen(f"http://{address(container)}:8080{path}",
                                    timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_serving(container, timeout=30):
    def up():
        try:
            return get(container, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False
    if not sleep_until(up, timeout, interval=0.2):
        pytest.fail(f"{container} not answering /healthz within {timeout} s:\n{logs(container)}")


PS = ("import json, os\nt = {}\nfor p in os.listdir('/proc'):\n"
      "    if p.isdigit() and int(p) != os.getpid():\n"
      "        try:\n            s = open(f'/proc/{p}/stat').read()\n"
      "            a = open(f'/proc/{p}/cmdline', 'rb').read().replace(bytes(1), b' ')\n"
      "        except OSError:\n            continue\n"
      "        f = s[s.rindex(')') + 2:].split()\n"
      "        t[p] = [int(f[1]), f[0], a.decode().strip()]\nprint(json.dumps(t))\n")


def processes(container):
    """{pid: (ppid, state, args)} as seen from inside CONTAINER."""
    out = podman("exec", container, "python3", "-c", PS).stdout
    return {int(pid): tuple(v) for pid, v in json.loads(out).items()}


IN_FLIGHT = 6
SLOW = 3.0
DRAIN = 3.0  # the web role's "drain" (examples/shop/container/roles.json)
GRACE = 15  # the manifests' terminationGracePeriodSeconds for web (budget 12 s)


def ready(container):
    """The exit code of the readinessProbe's command, run as a kubelet runs
    an exec probe: in the container, as its user."""
    return podman("exec", container, "initd", "health", "--ready", check=False).returncode


def test_web_pod_probe_passes_and_pod_stop_answers_every_request_in_flight(play):
    play("shop.yaml")
    web = "shop-web-pod-0-web"
    wait_serving(web)  # readinessProbe (ignored by podman 4.3): GET /healthz
    said = re.search(r"started: pid=(\d+) ppid=(\d+) hostname=(\S+)", logs(web))
    assert said, logs(web)
    pid, ppid, hostname = int(said[1]), int(said[2]), said[3]
    # The pod name is the hostname; {hostname}.shop.example.com is the FQDN.
    assert hostname == "shop-web-pod-0.shop.example.com"
    table = processes(web)
    assert table[1][2].startswith("initd: web")
    assert table[ppid][2] == "ppidshim: web" and table[ppid][0] == 1 and ppid != 1
    assert table[pid][0] == ppid

    # The manifest's probes ask initd: `initd health` (liveness) and
    # `initd health --ready` (readiness), run as the container's user.
    # (4.3 turns the exec argv into a CMD-SHELL line ending in `|| exit 1`.)
    test = json.loads(inspect(web, "{{json .Config.Healthcheck.Test}}"))
    assert test[:3] == ["CMD-SHELL", "initd", "health"], test
    # The kubelet's livenessProbe tick (4.3 has no timers without systemd).
    podman("healthcheck", "run", web)
    assert inspect(web, "{{.State.Health.Status}}") == "healthy"
    # The kubelet's readinessProbe (4.3 ignores it: run as the kubelet
    # would, an exec in the container): ready once initd's own check passed.
    if not sleep_until(lambda: ready(web) == 0, 10):
        pytest.fail(f"`initd health --ready` did not pass within 10 s:\n{logs(web)}")

    # One more thread than requests: the one that runs the stop.
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT + 1) as pool:
        futures = [pool.submit(get, web, f"/slow?seconds={SLOW}&n={n}", 30)
                   for n in range(IN_FLIGHT)]
        if not sleep_until(lambda: logs(web).count("request in flight") == IN_FLIGHT, 10):
            pytest.fail(f"the requests did not all arrive:\n{logs(web)}")
        started = time.monotonic()
        # The kubelet deleting the pod, step 1 (killContainer): SIGTERM to
        # the container's first process (initd), SIGKILL after
        # terminationGracePeriodSeconds (4.3 ignores the manifest's value).
        # Then the drain (roles.json: 3 s): initd reports not ready while the
        # app keeps serving. (4.3 refuses `podman exec` into a container
        # being stopped, so the readinessProbe cannot be run here; the Docker
        # test shows it failing during the drain.)
        stop = pool.submit(podman, "stop", "--time", str(GRACE), web, timeout=GRACE + 30)
        sleep_until(lambda: False, 1.0)  # inside the drain
        assert get(web, "/healthz")[0] == 200, logs(web)
        assert "got SIGQUIT" not in logs(web)
        stop.result(timeout=GRACE + 30)
        elapsed = time.monotonic() - started
        answers = [f.result(timeout=30) for f in futures]
    # Step 2 (StopPodSandbox), once every container has exited: the pause
    # container and the pod's network.
    podman("pod", "stop", "--time", str(GRACE), "shop-web-pod-0", timeout=GRACE + 30)
    output = logs(web)
    assert answers == [(200, f"slept {SLOW:g}s\n")] * IN_FLIGHT, output
    assert "graceful stop complete: exit 0" in output, output
    assert inspect(web, "{{.State.ExitCode}}") == "0", output
    # The drain, then the app's own graceful stop: well within the grace.
    assert DRAIN <= elapsed < DRAIN + 5, f"pod stop took {elapsed:.1f} s (grace {GRACE}):\n{output}"


def test_worker_pod_starts_and_stops_gracefully(play):
    play("shop.yaml")
    worker = "shop-worker-pod-0-worker"
    if not sleep_until(lambda: "started: pid=" in logs(worker), 30):
        pytest.fail(f"the worker did not start:\n{logs(worker)}")
    # The kubelet's killContainer (grace 30 s), then the sandbox.
    podman("stop", "--time", "30", worker, timeout=60)
    podman("pod", "stop", "--time", "30", "shop-worker-pod-0", timeout=60)
    assert "got SIGQUIT" in logs(worker), logs(worker)
    assert inspect(worker, "{{.State.ExitCode}}") == "0", logs(worker)


def test_shared_pid_pod_initd_is_a_subreaper_reaps_orphans_and_stops_cleanly(play):
    play("shop-shared-pid.yaml")
    web, helper = "shop-shared-web", "shop-shared-helper"
    wait_serving(web)
    # Each initd answers its own container's probe (its socket is in its
    # own /tmp: sharing the PID namespace shares no files).
    podman("healthcheck", "run", web)
    # The helper's script leaves two `sleep 600` behind; wait until both are
    # re-parented to its initd.
    def orphans():
        table = processes(web)
        initds = {pid for pid, (_, _, args) in table.items() if args.startswith("initd: sh")}
        return [pid for pid, (ppid, _, args) in table.items()
                if ppid in initds and args == "sleep 600"]
    if not sleep_until(lambda: len(orphans()) == 2, 20):
        pytest.fail(f"orphans not adopted by initd: {processes(web)}")
    table = processes(web)
    tree = "\n".join(f"{p:>5} {v}" for p, v in sorted(table.items()))
    # The pause process is PID 1; each initd is not, and has no parent in the
    # namespace (its parent is the engine's, outside).
    assert "initd" not in table[1][2] and "ppidshim" not in table[1][2], tree
    inits = [pid for pid, (_, _, args) in table.items() if args.startswith("initd:")]
    assert len(inits) == 2 and 1 not in inits, tree
    assert not [p for p, v in table.items() if v[1] == "Z"], f"zombies:\n{tree}"

    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(get, web, f"/slow?seconds={SLOW}&n={n}", 30)
                   for n in range(IN_FLIGHT)]
        if not sleep_until(lambda: logs(web).count("request in flight") == IN_FLIGHT, 10):
            pytest.fail(f"the requests did not all arrive:\n{logs(web)}")
        # The kubelet stopping each container: SIGTERM, grace, SIGKILL (4.3's
        # `pod stop` would SIGKILL the whole shared-PID pod at once).
        podman("stop", "--time", str(GRACE), helper, timeout=GRACE + 30)
        # The helper's initd swept its orphans: had it left them, they would
        # live on under the pause process (initd is not PID 1 here, so its
        # exit does not kill the namespace).
        table = processes(web)
        tree = "\n".join(f"{p:>5} {v}" for p, v in sorted(table.items()))
        assert not [p for p, v in table.items() if v[2] == "sleep 600"], tree
        assert not [p for p, v in table.items() if v[1] == "Z"], f"zombies:\n{tree}"
        podman("stop", "--time", str(GRACE), web, timeout=GRACE + 30)
        answers = [f.result(timeout=30) for f in futures]
    podman("pod", "stop", "--time", str(GRACE), "shop-shared", timeout=GRACE + 30)  # the sandbox
    assert answers == [(200, f"slept {SLOW:g}s\n")] * IN_FLIGHT, logs(web)
    assert inspect(web, "{{.State.ExitCode}}") == "0", logs(web)
    # sleep died of the SIGTERM it was sent (no signal map with `--`): 128+15.
    assert inspect(helper, "{{.State.ExitCode}}") == "143", logs(helper)


def test_a_63_character_pod_name_warns_once_and_the_app_runs_with_it(play):
    # podman names a Deployment's pod NAME-pod-0 (a kubelet: NAME-HASH-SUFFIX),
    # and the pod's hostname is the pod's name: here 63 characters, so
    # {hostname}.shop.example.com would be 80. A warning, not a failed deploy.
    deployment = POD_63[:63 - len("-pod-0")]
    pod = f"{deployment}-pod-0"
    assert len(pod) == 63
    play("shop.yaml", rename=("shop-web", deployment))
    web = f"{pod}-web"
    wait_serving(web)
    output = logs(web)
    assert f"hostname={pod} " in output, output
    warnings = [line for line in output.splitlines() if line.startswith("initd: WARNING")]
    assert len(warnings) == 1 and "80 characters" in warnings[0], output
    podman("stop", "--time", str(GRACE), web, timeout=GRACE + 30)
    assert inspect(web, "{{.State.ExitCode}}") == "0", logs(web)

"""Liveness during a drain, initd as PID 1 of a fresh PID+mount namespace.

While a role drains (issue 13: the stop signal came, the app has not been
sent its stop signal yet and keeps serving), `initd health --ready` must
fail, so the load balancer stops sending, and `initd health` (liveness, the
Docker HEALTHCHECK and the livenessProbe of examples/) must still pass: the
app is alive and serving, as README's "Health checks" and "Control socket" sections
say ("0: alive and not unhealthy").
"""
import json
import signal
import subprocess

import pytest

from helpers import PY, REPO, Initd, sleep_until

DRAIN = 3.0


def health(path, *args):
    result = subprocess.run([PY, "-m", "initd", "health", *args, "--control", path],
                            capture_output=True, text=True, timeout=10,
                            env={"PYTHONPATH": REPO})
    return result.returncode


@pytest.fixture
def draining(tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"web": {
        "command": [PY, "-c", "import time; time.sleep(60)"], "drain": f"{DRAIN:g}s"}}))
    path = str(tmp_path / "control" / "initd.sock")
    w = Initd(["--roles", str(roles), "--role", "web", "--control", path])
    try:
        sleep_until(lambda: health(path, "--ready") == 0, timeout=10, interval=0.05)
        w.kill(signal.SIGTERM)  # the drain begins
        sleep_until(lambda: health(path, "--ready") == 1, timeout=DRAIN, interval=0.05)
        yield path
    finally:
        w.stop()


def test_not_ready_while_draining(draining):
    assert health(draining, "--ready") == 1


def test_alive_while_draining(draining):
    assert health(draining) == 0

"""The main job a newcomer runs (`sudo ./dev demo`) keeps working: the demo
checks itself at every step (fail() on anything unexpected) and exits 0."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_demo_runs_to_the_end():
    env = {**os.environ, "PYTHON": sys.executable, "DEMO_PAUSE": "0",
           "PYTHONPATH": REPO}
    proc = subprocess.run(["bash", os.path.join(REPO, "demo", "demo.sh")], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "got SIGQUIT: graceful stop" in out and "initd health --ready   -> exit 0" in out
    assert out.rstrip().endswith("checks all of the above against a real Docker.")

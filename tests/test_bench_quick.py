"""The benchmark harness still works (its --quick mode). Figures are not
asserted: speed and memory are measured by `python -m bench`, not tested."""
import json
import os
import subprocess
import sys

from helpers import REPO


def test_bench_quick_runs_and_reports_every_init(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-install",
                           "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| target (initd) |" in proc.stdout
    results = [f for f in os.listdir(tmp_path) if f.endswith(".json")]
    assert results, os.listdir(tmp_path)
    data = json.loads((tmp_path / results[0]).read_text())
    text = json.dumps(data)
    for init in ("initd", "tini", "dumb-init", "catatonit"):
        assert f'"{init}"' in text, init

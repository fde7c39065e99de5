import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pipeline.py"


def test_pipeline_example_end_to_end(healthy_cluster, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parent.parent / "src")}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", healthy_cluster.urls[0], "--url", healthy_cluster.urls[1],
         "--client-key", str(healthy_cluster.admin_key), "--out", str(tmp_path / "dataset")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pipeline ok" in out.stdout
    assert "without approvals: refused (approvals_required)" in out.stdout
    assert "local True, cluster True, tampered copy False" in out.stdout
    assert "executed end to end, 2 records opened" in out.stdout
    assert (tmp_path / "dataset" / "manifest.sig").read_text().strip()
    assert len((tmp_path / "dataset" / "sealed.ndjson").read_text().splitlines()) == 5

"""Benchmarks stay runnable (slow: excluded from the default run; `pytest -m slow`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_speed_benchmark_runs(tmp_path):
    out = tmp_path / "speed.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--quick", "--steps", "2",
                        "--size", "64", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["conv_stack_gflops"] > 0
    assert all(row["images_per_s"] > 0 and row["gflop_per_image"] > 0 for row in result["rows"])

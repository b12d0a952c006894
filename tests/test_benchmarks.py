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


@pytest.mark.slow
def test_mnist_two_face_benchmark_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mnist_two_face.py"), "--steps", "20", "--quick",
                        "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    rows = {row["model"]: row for row in result["rows"]}
    assert rows["ground truth"]["class_accuracy"] > 0.9  # the judge recognises real digits
    assert set(rows) == {"masked input (grey box)", "deepfill_v2 (no reference)", "two_face (reference digit)",
                         "ground truth"}
    assert (tmp_path / "figure.png").is_file()


@pytest.mark.slow
@pytest.mark.data
def test_face_detection_benchmark_runs(tmp_path, shared_data):
    out = tmp_path / "faces.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "face_detection.py"),
                        "--real", str(shared_data / "real_masked_photos"), "--scenes", str(shared_data / "scenes"),
                        "--limit", "40", "--detectors", "blazeface", "bf-short", "--sheet", str(tmp_path / "s.png"),
                        "--sheet-n", "10", "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["results"]
    assert result["real"] == 40 and set(rows) == {"blazeface", "bf-short"}
    # the FaceMesh check removes most of the short-range model's false faces, and finds faces in most photos
    assert rows["blazeface"]["false_faces"] < rows["bf-short"]["false_faces"]
    assert rows["blazeface"]["photos_with_face"] > 0.6
    assert (tmp_path / "s.png").is_file()


@pytest.mark.slow
@pytest.mark.data
def test_real_holes_on_faces_benchmark_ranks_the_face_model_above_telea(tmp_path, shared_data):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_holes_on_faces.py"),
                        "--images", str(shared_data / "faces" / "celeba_wild256"),
                        "--photos", str(shared_data / "real_masked_photos"), "--limit", "12", "--cache", str(tmp_path),
                        "--model", "pconv_unet_faces128", "--model", "telea"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in r.stdout.splitlines()
            if line.startswith("| pconv") or line.startswith("| telea")}
    assert set(rows) == {"pconv_unet_faces128", "telea"}
    assert float(rows["pconv_unet_faces128"][0]) > float(rows["telea"][0]) + 1  # PSNR, dB (measured: +3.6 on 100)

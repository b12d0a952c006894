"""Benchmarks stay runnable (the slow ones are excluded from the default run; `pytest -m slow`)."""

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
                        "--limit", "40", "--detectors", "blazeface", "bf-short", "blazeface+second-look", "--sheet", str(tmp_path / "s.png"),
                        "--sheet-n", "10", "--json", str(out), "--second-look-sheet", str(tmp_path / "sl.png")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["results"]
    assert result["real"] == 40 and set(rows) == {"blazeface", "bf-short", "blazeface+second-look"}
    # the FaceMesh check removes most of the short-range model's false faces, and finds faces in most photos
    assert rows["blazeface"]["false_faces"] < rows["bf-short"]["false_faces"]
    assert rows["blazeface"]["photos_with_face"] > 0.6
    # the second look only adds faces that wear a mask, and none on the scenes
    assert rows["blazeface+second-look"]["photos_with_face_20px"] >= rows["blazeface"]["photos_with_face_20px"]
    assert rows["blazeface+second-look"]["false_faces"] <= rows["blazeface"]["false_faces"]
    assert (tmp_path / "s.png").is_file()
    assert "faces restored from the second look" in r.stdout


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


def test_the_real_photo_figure_takes_unmask_options(tmp_path):
    """benchmarks/unmask_real_photos.py: a model with eval-unmask's options, and a set's offset."""
    import importlib.util

    import numpy as np
    from PIL import Image
    from skimage import data

    from unmasked.faces import detect_faces
    from unmasked.masks.face_mask import put_face_mask

    spec = importlib.util.spec_from_file_location("unmask_real_photos", ROOT / "benchmarks" / "unmask_real_photos.py")
    fig = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fig)
    assert fig.parse_spec("unmask+nomeanface+nograin")[1] == {"mean_face": False, "grain": False}
    assert fig.parse_spec("unmask+nosecondlook")[1] == {"second_look": False}
    with pytest.raises(ValueError, match="unknown unmask option 'shiny'"):
        fig.parse_spec("unmask+shiny")
    rgb = data.astronaut()
    face = detect_faces(rgb)[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(photos / "0_faceless.png")  # skipped by the offset
    for i, kind in enumerate(("surgical", "cloth")):
        Image.fromarray(put_face_mask(rgb, face, np.random.default_rng(i), kind=kind)[0]).save(photos / f"{i + 1}.png")
    fig.main(["--photos", str(photos), "--offset", "1", "--every", "1", "--count", "2",
              "--model", "unmask+nomeanface", "--model", "unmask+meanface", "--out", str(tmp_path / "f.png")])
    a, b = (np.asarray(Image.open(tmp_path / f"f_{s}.png")) for s in ("a", "b"))
    assert a.shape == b.shape == (fig.CELL, 3 * fig.CELL, 3)  # one photo a half: the photo | two restorations
    assert (a[:, fig.CELL:2 * fig.CELL] != a[:, 2 * fig.CELL:]).any()  # the options changed the restoration
    fig.main(["--photos", str(photos), "--offset", "2", "--every", "1", "--model", "unmask", "--out", str(tmp_path / "g.png")])
    assert (tmp_path / "g_a.png").is_file() and not (tmp_path / "g_b.png").exists()  # from the third photo: one left
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g_a.png"))[:, :fig.CELL], b[:, :fig.CELL])
    # blind: the same two restorations a row, in the order the key says
    fig.main(["--photos", str(photos), "--offset", "1", "--every", "1", "--count", "2", "--blind", "--seed", "1",
              "--model", "unmask+nomeanface", "--model", "unmask+meanface", "--out", str(tmp_path / "h.png")])
    key = json.loads((tmp_path / "h_key.json").read_text())
    assert [r["photo"] for r in key["rows"]] == ["1.png", "2.png"]
    plain = {"unmask+nomeanface": 1, "unmask+meanface": 2}  # their columns in the unblinded figure
    for i, half in enumerate(("a", "b")):
        shown = np.asarray(Image.open(tmp_path / f"h_{half}.png"))
        seen = np.asarray(Image.open(tmp_path / f"f_{half}.png"))
        for col, model in enumerate(key["rows"][i]["order"], start=1):
            np.testing.assert_array_equal(shown[:, col * fig.CELL:(col + 1) * fig.CELL],
                                          seen[:, plain[model] * fig.CELL:(plain[model] + 1) * fig.CELL])
    counts = fig.tally(key, "L=")
    first = key["rows"][0]["order"][0]
    assert counts[first] == {"clearly": 1, "slightly": 0} and counts["alike"] == {"rows": 1}
    with pytest.raises(ValueError, match="judge each of the 2 rows"):
        fig.tally(key, "L")
    with pytest.raises(SystemExit):
        fig.main(["--photos", str(photos), "--model", "unmask", "--blind", "--out", str(tmp_path / "i.png")])


@pytest.mark.slow
@pytest.mark.data
def test_ear_loop_benchmark_leaves_fewer_straps_with_the_finder(tmp_path, shared_data):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ear_loops.py"),
                        "--images", str(shared_data / "faces" / "celeba_wild256"), "--limit", "12",
                        "--sheet", str(tmp_path / "s.png")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    left = {line.split(":")[0].strip(): float(line.split("left")[1].split("%")[0])
            for line in r.stdout.splitlines() if "strap pixels left" in line}
    assert set(left) == {"without ear_loops", "with ear_loops"}
    assert left["with ear_loops"] < left["without ear_loops"]
    assert "faces without straps: the loop finder changed" in r.stdout and (tmp_path / "s.png").is_file()


def test_mask_edge_width_is_about_a_pixel_for_a_step_and_grows_with_blur():
    """benchmarks/mask_edges.py: a disc of fabric with a hard edge, then the same edge blurred."""
    import importlib.util

    import cv2
    import numpy as np

    spec = importlib.util.spec_from_file_location("mask_edges", ROOT / "benchmarks" / "mask_edges.py")
    edges = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(edges)
    image = np.full((256, 256, 3), 200, np.uint8)
    cv2.circle(image, (128, 150), 70, (40, 60, 140), -1)
    mask = np.zeros((128, 128), np.uint8)
    cv2.circle(mask, (64, 75), 35, 1, -1)  # the segmenter's mask: the disc at half the size
    step = edges.edge_width(image, mask.astype(bool))
    blurred = [edges.edge_width(cv2.GaussianBlur(image, (0, 0), s), mask.astype(bool)) for s in (1.0, 2.0, 3.0)]
    assert step < 0.6  # measured 0.30: under a pixel of transition per pixel of outline
    assert step < blurred[0] < blurred[1] < blurred[2]  # measured 1.22, 1.96, 2.42
    assert blurred[2] > 2.0


@pytest.mark.slow
@pytest.mark.data
def test_mask_edge_benchmark_finds_real_edges_wider_than_synthetic(shared_data):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mask_edges.py"),
                        "--images", str(shared_data / "faces" / "celeba_wild256"),
                        "--photos", str(shared_data / "real_masked_photos"), "--limit", "20"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    median = {line.split("  ")[0].strip(): float(line.split("/")[2]) for line in r.stdout.splitlines()
              if line.startswith(("synthetic masks", "real photos"))}
    assert median["real photos"] > median["synthetic masks"] + 0.5  # measured on 60 + 26: 2.90 against 1.46


def test_band_share_reads_the_fills_band_ratio_per_model(tmp_path, capsys):
    """benchmarks/band_share.py on two photos (the astronaut with a surgical and a cloth mask)."""
    import importlib.util

    import numpy as np
    from PIL import Image
    from skimage import data

    from unmasked.faces import detect_faces
    from unmasked.masks.face_mask import put_face_mask

    spec = importlib.util.spec_from_file_location("band_share", ROOT / "benchmarks" / "band_share.py")
    bands = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bands)
    rgb = data.astronaut()
    face = detect_faces(rgb)[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, kind in enumerate(("surgical", "cloth")):
        Image.fromarray(put_face_mask(rgb, face, np.random.default_rng(i), kind=kind)[0]).save(photos / f"{i}.png")
    bands.OFFSETS, bands.REAL_HOLDOUT_EVERY = (0,), 1  # every photo of the folder
    bands.main(["--photos", str(photos), "--model", "pconv_unet_faces128_landmarks", "--model", "unmask+nograin"])
    out = capsys.readouterr().out.splitlines()
    row = [line for line in out if line.startswith("| pconv")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].split("|")[1:-1]]
    assert cells[1] == "real photos" and cells[2] == "2"  # both restored faces scored
    assert float(cells[3]) > 0 and cells[4].endswith("%")
    # a model with unmask options (eval-unmask's '+option's): the ratio is read before the skin
    # grain is added, so without it the default model's ratios are as they were
    with_option = [line for line in out if line.startswith("| unmask+nograin |")]
    assert len(with_option) == 1 and with_option[0].split("|")[3:] == row[0].split("|")[3:]
    with pytest.raises(SystemExit):
        bands.main(["--model", "pconv_unet_faces128_landmarks"])  # neither set given
    with pytest.raises(SystemExit):
        bands.main(["--photos", str(photos), "--model", "pconv_unet_faces128_landmarks", "--model", "no_such_model"])
    captured = capsys.readouterr()
    assert "--model no_such_model: unknown model" in captured.err  # one line, no traceback
    with pytest.raises(SystemExit):
        bands.main(["--photos", str(photos), "--model", "unmask+shiny"])
    assert "--model unmask+shiny: unknown unmask option 'shiny'" in capsys.readouterr().err
    assert "| model |" not in captured.out  # refused before any face was filled

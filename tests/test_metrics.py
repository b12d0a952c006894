"""Metrics against hand-computed values; summary, Markdown and report files on synthetic records."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest

from unmasked.evaluation.report import markdown_table, read_records, summarise, write_report
from unmasked.metrics import PSNR_CAP_DB, detail_percent, l1_percent, psnr, score_image, ssim

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def _offset_pair() -> tuple[np.ndarray, np.ndarray]:
    """4x4 grey target; output is +10 on all channels of 4 of the 16 pixels."""
    target = np.full((4, 4, 3), 100, np.uint8)
    output = target.copy()
    output[0, 0] = output[1, 2] = output[3, 3] = output[2, 1] = 110
    return output, target


def _ssim_reference(x: np.ndarray, y: np.ndarray, win: int) -> float:
    """Wang et al.'s formula, written out: uniform win x win windows, sample (co)variances,
    mean over the windows that lie fully inside the image (skimage's border crop), then over channels."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    h, w, c = x.shape
    per_channel = []
    for ch in range(c):
        values = []
        for i in range(h - win + 1):
            for j in range(w - win + 1):
                a = x[i : i + win, j : j + win, ch].ravel()
                b = y[i : i + win, j : j + win, ch].ravel()
                mx, my = a.mean(), b.mean()
                vx, vy = a.var(ddof=1), b.var(ddof=1)
                cxy = ((a - mx) * (b - my)).sum() / (a.size - 1)
                values.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
        per_channel.append(np.mean(values))
    return float(np.mean(per_channel))


# ----------------------------------------------------------------------------- metrics


def test_l1_and_psnr_match_hand_computation():
    output, target = _offset_pair()
    # 4 pixels x 3 channels x 10 levels over 48 values: mean 2.5 levels
    assert l1_percent(output, target) == pytest.approx(2.5 / 255 * 100)
    # MSE = 4 * 3 * 100 / 48 = 25
    assert psnr(output, target) == pytest.approx(10 * math.log10(255**2 / 25))
    assert l1_percent(target, target) == 0.0


def test_psnr_of_identical_images_is_inf_without_warnings():
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert psnr(image, image) == math.inf
        assert score_image(image, image) == {"l1": 0.0, "psnr": math.inf, "ssim": pytest.approx(1.0)}


def test_psnr_over_a_region_takes_the_mse_of_its_pixels_only():
    target = np.full((8, 8, 3), 100, np.uint8)
    output = target.copy()
    output[:2] = 110  # 16 of 64 pixels off by 10 grey levels
    band = np.zeros((8, 8), bool)
    band[:4] = True  # half of them changed
    assert psnr(output, target) == pytest.approx(10 * math.log10(255**2 / 25.0))  # MSE 100 over a quarter
    assert psnr(output, target, band) == pytest.approx(10 * math.log10(255**2 / 50.0))
    assert psnr(output, target, ~band) == math.inf  # the pixels it covers are identical
    with pytest.raises(ValueError, match="non-empty where"):
        psnr(output, target, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match=r"where is \(4, 4\), images are \(8, 8\)"):
        psnr(output, target, np.ones((4, 4), bool))


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 100.0, 120.0
    output = np.full((8, 8, 3), a, np.uint8)
    target = np.full((8, 8, 3), b, np.uint8)
    # zero variances: the contrast-structure term is C2 / C2 = 1
    assert ssim(output, target) == pytest.approx((2 * a * b + C1) / (a**2 + b**2 + C1))


@pytest.mark.parametrize("shape, win", [((7, 7, 3), 7), ((9, 11, 3), 7), ((4, 4, 3), 3), ((6, 5, 3), 5)])
def test_ssim_matches_the_formula_written_out(shape, win):
    rng = np.random.default_rng(1)
    target = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-40, 41, shape)
    output = np.clip(target.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ssim(output, target) == pytest.approx(_ssim_reference(output, target, win), rel=1e-9)
    assert ssim(target, target) == pytest.approx(1.0)


def test_shape_and_dtype_errors():
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(4, 4, 3\).*\(4, 5, 3\)"):
        l1_percent(a, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        psnr(a.astype(np.float32), a)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        score_image(a[..., 0], a[..., 0])
    with pytest.raises(ValueError, match="3x3"):
        ssim(a[:2], a[:2])


# ----------------------------------------------------------------------------- summary


def _record(model, bucket, border, l1, psnr_db, ssim_v, seconds, image="img0", mask="m0", ratio=0.05):
    return {
        "model": model, "image": image, "mask": mask, "hole_ratio": ratio, "bucket": bucket,
        "touches_border": border, "l1": l1, "psnr": psnr_db, "ssim": ssim_v, "seconds": seconds,
    }  # fmt: skip


def _records() -> list[dict]:
    return [
        _record("A", 0, False, 1.0, 30.0, 0.9, 0.1, image="img0", mask="m0"),
        _record("A", 0, False, 3.0, 32.0, 0.8, 0.3, image="img1", mask="m0"),
        _record("A", 0, True, 5.0, math.inf, 0.7, 0.2, image="img0", mask="m1"),
        _record("A", None, False, 10.0, 20.0, 0.5, 0.4, image="img1", mask="m2", ratio=0.7),
        _record("B", 2, True, 2.0, 25.0, 0.6, 1.0, image="img0", mask="m3", ratio=0.25),
    ]


def test_summarise_groups_and_averages():
    rows = summarise(_records())
    got = {(r["model"], r["bucket"], r["touches_border"]): r for r in rows}
    assert list(got) == [
        ("A", 0, False), ("A", 0, True), ("A", 0, None), ("A", "all", None),
        ("B", 2, True), ("B", 2, None), ("B", "all", None),
    ]  # fmt: skip

    def check(key, n, l1, psnr_db, ssim_v, seconds):
        row = got[key]
        assert row["n"] == n
        assert row["l1"] == pytest.approx(l1)
        assert row["psnr"] == pytest.approx(psnr_db)
        assert row["ssim"] == pytest.approx(ssim_v)
        assert row["seconds"] == pytest.approx(seconds)

    check(("A", 0, False), 2, 2.0, 31.0, 0.85, 0.2)
    check(("A", 0, True), 1, 5.0, PSNR_CAP_DB, 0.7, 0.2)  # inf capped at 100 dB
    check(("A", 0, None), 3, 3.0, (30 + 32 + 100) / 3, 0.8, 0.2)
    check(("A", "all", None), 4, 4.75, (30 + 32 + 100 + 20) / 4, 0.725, 0.25)  # bucket None only here
    check(("B", 2, True), 1, 2.0, 25.0, 0.6, 1.0)
    check(("B", "all", None), 1, 2.0, 25.0, 0.6, 1.0)


def test_summarise_rejects_incomplete_records():
    record = _records()[0]
    del record["ssim"]
    with pytest.raises(ValueError, match="ssim"):
        summarise([record])


# ----------------------------------------------------------------------------- markdown


def _table_rows(table: str) -> dict[tuple[str, str], list[str]]:
    """(hole ratio, border) -> [n, cell per model] from a markdown_table."""
    rows = {}
    for line in table.splitlines()[4:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_markdown_bolds_the_best_model_in_both_directions():
    records = [
        _record("A", 1, False, 2.0, 30.0, 0.90, 0.5, ratio=0.15),
        _record("B", 1, False, 3.0, 28.0, 0.95, 0.5, ratio=0.15),
        _record("A", 1, True, 4.0, 22.0, 0.70, 0.5, ratio=0.15),
    ]
    summary = summarise(records)

    l1 = markdown_table(summary, "l1")
    assert "lower is better" in l1
    assert "| A | B |" in l1.splitlines()[2]
    rows = _table_rows(l1)
    assert rows[("(0.10, 0.20]", "no")] == ["1", "**2.00**", "3.00"]  # lower wins
    assert rows[("(0.10, 0.20]", "yes")] == ["1", "4.00", "–"]  # one model: nothing bold
    # A pools (2 + 4) / 2 = 3.00 over 2 samples, B 3.00 over 1: a tie, both bold, counts per cell
    assert rows[("(0.10, 0.20]", "both")] == ["varies", "**3.00 (n=2)**", "**3.00 (n=1)**"]
    assert rows[("all", "both")] == ["varies", "**3.00 (n=2)**", "**3.00 (n=1)**"]

    psnr_rows = _table_rows(markdown_table(summary, "psnr"))
    assert psnr_rows[("(0.10, 0.20]", "no")] == ["1", "**30.00**", "28.00"]  # higher wins
    ssim_rows = _table_rows(markdown_table(summary, "ssim"))
    assert ssim_rows[("(0.10, 0.20]", "no")] == ["1", "0.9000", "**0.9500**"]

    with pytest.raises(ValueError, match="unknown metric"):
        markdown_table(summary, "lpips")


def _textured(size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    base = 128 + 60 * np.sin(xx / 2.0) * np.cos(yy / 3.0)
    return np.clip(base[..., None] + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)


def test_detail_percent_is_100_for_the_original_and_low_for_a_blur():
    import cv2

    target = _textured()
    hole = np.zeros(target.shape[:2], bool)
    hole[12:36, 10:40] = True
    assert detail_percent(target, target, hole) == pytest.approx(100.0)
    blurred = target.copy()
    blurred[hole] = cv2.GaussianBlur(target, (0, 0), 4)[hole]
    flat = target.copy()
    flat[hole] = target[hole].mean(axis=0).astype(np.uint8)
    blur_detail, flat_detail = detail_percent(blurred, target, hole), detail_percent(flat, target, hole)
    assert flat_detail < blur_detail < 40  # smoother fill, less detail
    # the eroded hole of a flat fill has zero gradient: only the 1-grey-level floor remains
    inner = cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    import unmasked.metrics as m
    g_gt = m._gradient_magnitude(target)[inner].mean()
    assert flat_detail == pytest.approx(100 * 1.0 / (g_gt + 1.0), rel=1e-5)
    noisy = target.astype(np.int16)
    noisy[hole] += np.random.default_rng(1).integers(-60, 60, (int(hole.sum()), 3), dtype=np.int16)
    assert detail_percent(np.clip(noisy, 0, 255).astype(np.uint8), target, hole) > 110  # invented texture
    with pytest.raises(ValueError, match="non-empty"):
        detail_percent(target, target, np.zeros_like(hole))
    with pytest.raises(ValueError, match="hole is"):
        detail_percent(target, target, hole[:10])


def test_optional_metrics_average_where_measured_and_rank_detail_by_closeness_to_100(tmp_path):
    records = [
        {**_record("A", 1, False, 2.0, 30.0, 0.9, 0.5, ratio=0.15), "detail": 60.0, "identity": 0.30},
        {**_record("A", 1, False, 2.0, 30.0, 0.9, 0.5, image="img1", ratio=0.15), "detail": 70.0, "identity": None},
        {**_record("B", 1, False, 3.0, 28.0, 0.8, 0.5, ratio=0.15), "detail": 125.0, "identity": 0.20},
        {**_record("C", 1, False, 3.0, 28.0, 0.8, 0.5, ratio=0.15), "detail": 90.0, "identity": 0.25},
    ]
    rows = {(r["model"], r["bucket"], r["touches_border"]): r for r in summarise(records)}
    assert rows[("A", "all", None)]["detail"] == pytest.approx(65.0)
    assert rows[("A", "all", None)]["identity"] == pytest.approx(0.30)  # the None is left out, not counted as 0
    detail = markdown_table(summarise(records), "detail")
    assert "closer to 100 is better" in detail
    assert _table_rows(detail)[("(0.10, 0.20]", "no")] == ["varies", "65.0 (n=2)", "125.0 (n=1)", "**90.0 (n=1)**"]
    identity = _table_rows(markdown_table(summarise(records), "identity"))
    assert identity[("all", "both")][1:] == ["0.3000 (n=2)", "**0.2000 (n=1)**", "0.2500 (n=1)"]

    paths = write_report(records, tmp_path / "opt")
    assert read_records(paths["records_csv"]) == records
    report = paths["report_md"].read_text()
    assert "## Detail in the hole" in report and "## Identity distance" in report
    plain = write_report(_records(), tmp_path / "plain")["report_md"].read_text()
    assert "Detail" not in plain and "Identity" not in plain  # reported only when measured


# ----------------------------------------------------------------------------- files


def test_write_report_files_round_trip(tmp_path):
    records = _records()
    meta = {"size": 128, "data": "../shared/data/faces", "seed": 7}
    paths = write_report(records, tmp_path / "run", title="Faces 128", meta=meta)

    assert set(paths) == {"records_csv", "summary_json", "summary_csv", "report_md", "plot_png"}
    assert all(p.is_file() and p.parent == tmp_path / "run" for p in paths.values())

    assert read_records(paths["records_csv"]) == records  # inf PSNR and bucket None survive

    document = json.loads(paths["summary_json"].read_text())
    assert document["meta"] == meta
    assert (document["n_records"], document["n_images"], document["n_masks"]) == (5, 2, 4)
    assert document["rows"] == summarise(records)  # floats survive JSON exactly

    with open(paths["summary_csv"], newline="") as f:
        summary_rows = list(csv.DictReader(f))
    assert len(summary_rows) == 7
    assert summary_rows[0]["bucket_label"] == "(0.01, 0.10]" and summary_rows[0]["touches_border"] == "False"
    assert summary_rows[3]["bucket"] == "all" and float(summary_rows[3]["l1"]) == pytest.approx(4.75)

    report = paths["report_md"].read_text()
    assert report.startswith("# Faces 128\n")
    for text in (
        "images: 2, masks: 4",
        "seed: 7",
        "../shared/data/faces",
        "## PSNR (dB)",
        "## SSIM",
        "psnr_by_bucket.png",
    ):
        assert text in report
    assert paths["plot_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The evaluation runner and `unmasked eval`."""

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unmasked.cli import main
from unmasked.evaluation.run import evaluate, generated_masks, load_eval_images, run_evaluation
from unmasked.masks import bucket_of, hole_ratio, touches_border
from unmasked.metrics import score_image


def test_generated_bucketed_masks_cover_every_cell():
    masks = generated_masks("bucketed", 32, per_cell=2, seed=1)
    cells = [(bucket_of(hole_ratio(m.hole)), touches_border(m.hole)) for m in masks]
    assert sorted(set(cells)) == [(b, t) for b in range(6) for t in (False, True)]
    assert all(cells.count(c) == 2 for c in set(cells))


def test_evaluate_scores_every_model_on_the_same_samples(identity_folder):
    names, images = load_eval_images(identity_folder, 32, split="val", limit=5)
    masks = generated_masks("bucketed", 32, per_cell=1)
    records = evaluate(["telea", "navier_stokes"], names, images, masks)
    assert len(records) == 24
    by_model = {}
    for r in records:
        by_model.setdefault(r["model"], []).append((r["image"], r["mask"]))
        assert r["bucket"] == bucket_of(r["hole_ratio"]) and 0 < r["psnr"] and 0 < r["ssim"] <= 1
        assert r["detail"] > 0 and r["identity"] is None  # no landmarks: no identity distance
    assert by_model["telea"] == by_model["navier_stokes"]


def test_run_evaluation_writes_report(identity_folder, tmp_path):
    result = run_evaluation(["telea"], identity_folder, tmp_path / "rep", size=32, per_cell=1, split="all")
    assert {p.name for p in result.paths.values()} >= {"report.md", "records.csv", "summary.json", "psnr_by_bucket.png"}
    with open(result.paths["records_csv"]) as f:
        assert len(list(csv.DictReader(f))) == 12
    # the realism test ran on the 12 fills, grouped by identity folder, and is in the report
    assert set(result.realism) == {"telea"} and result.realism["telea"]["n"] == 24
    assert 0 <= result.realism["telea"]["accuracy"] <= 1
    assert "## Realism (classifier two-sample test)" in result.paths["report_md"].read_text()


def test_split_by_file_holds_out_the_training_slice_and_scores_realism_per_bucket(identity_folder, tmp_path):
    """Photos split by file (the 1-in-5 slice training holds out), the realism halves by image, the
    deepest-pixel patch at full resolution, and the realism accuracy per hole-ratio bucket."""
    names, _ = load_eval_images(identity_folder, 64, split="val", split_by="file")
    every = sorted(str(p.relative_to(identity_folder)) for p in identity_folder.rglob("*.jpg"))
    assert names == every[::5] and len(names) == 6
    result = run_evaluation(["telea"], identity_folder, tmp_path / "rep", size=64, per_cell=1, split="val",
                            split_by="file", realism_patch="deepest")
    r = result.realism["telea"]
    assert r["n"] == 24 and set(r["by"]) == set(range(6)) and sum(b["n"] for b in r["by"].values()) == 24
    report = result.paths["report_md"].read_text()
    assert "| model | (0.01, 0.10] |" in report and "64 px around the hole's deepest pixel" in report
    with pytest.raises(ValueError, match="split_by"):
        load_eval_images(identity_folder, 64, split="val", split_by="person")


def test_cli_eval_prints_table_and_rejects_bad_folder(identity_folder, tmp_path):
    r = CliRunner().invoke(main, ["eval", "--model", "telea", "--images", str(identity_folder), "--size", "32",
                                  "--per-cell", "1", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "| all | both | 12 |" in r.output
    assert "**PSNR (dB)**" in r.output and "**Detail in the hole" in r.output  # both tables printed
    assert "realism (classifier two-sample test" in r.output
    r = CliRunner().invoke(main, ["eval", "--model", "telea", "--images", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "not found" in r.output


@pytest.mark.data
def test_faces_eval_with_nvidia_masks(shared_data, tmp_path):
    result = run_evaluation(["telea"], shared_data / "faces" / "celeba_align", tmp_path, size=64, split="val",
                            crop="celeba", limit=12, masks=shared_data / "masks" / "nvidia_irregular", per_cell=1,
                            realism=False)
    cells = {(r["bucket"], r["touches_border"]) for r in result.records}
    assert len(result.records) >= 10 and len(cells) >= 8  # resizing 512->64 can move a mask across a bucket edge
    assert np.mean([r["psnr"] for r in result.records]) > 18


@pytest.mark.data
def test_face_mask_evaluation_gives_one_mask_per_face(shared_data, tmp_path):
    result = run_evaluation(["telea"], shared_data / "faces" / "celeba_wild256", tmp_path, size=128, split="val",
                            limit=4, mask_kind="face", realism=False)
    assert [r["mask"] for r in result.records] == [f"face_{i:04d}" for i in range(4)]
    assert len({r["image"] for r in result.records}) == 4  # each mask on its own face
    assert all(0.05 < r["hole_ratio"] < 0.36 for r in result.records)
    # the face's own landmarks are kept, so each fill gets an identity distance; Telea's smeared
    # lower face moves dlib's descriptor but (small holes, same person) not past its 0.6 threshold
    assert all(r["identity"] is not None and 0.0 < r["identity"] < 0.6 for r in result.records)
    assert all(0 < r["detail"] < 100 for r in result.records)  # diffusion fills are smoother than skin
    assert "## Identity distance" in result.paths["report_md"].read_text()


@pytest.mark.data
def test_eval_unmask_scores_the_whole_pipeline_against_telea_given_the_true_mask(shared_data):
    from unmasked.evaluation.unmask_eval import evaluate_unmask, format_rows, masked_faces

    names, pixels = load_eval_images(shared_data / "faces" / "celeba_wild256", 256, split="val", limit=6)
    faces = masked_faces(names, pixels)
    assert all(f.hole.mean() > 0.05 and (f.masked[f.hole] != f.original[f.hole]).any() for f in faces)
    vgg = Path(__file__).resolve().parents[3] / "shared" / "weights" / "vgg19_relu3_1.pth"
    report = evaluate_unmask(["unmask", "telea"], faces, realism_steps=20,
                             kid_weights=str(vgg) if vgg.is_file() else None)
    rows = {r["filler"]: r for r in report["rows"]}
    if vgg.is_file():  # the second realism measure, on the same patches
        assert all(r["kid_se"] > 0 and np.isfinite(r["kid"]) for r in rows.values())
        assert "KID (VGG texture" in format_rows(report["rows"])
    assert set(rows) == {"unmask", "telea"} and len(report["records"]) == 12
    # the pipeline found the faces and their masks: far closer to the photo than the masked input
    masked_psnr = np.mean([score_image(f.masked, f.original)["psnr"] for f in faces])
    assert rows["unmask"]["psnr"] > masked_psnr + 3 and rows["telea"]["psnr"] > masked_psnr + 3  # 25.2, 24.7 vs 20.4
    assert rows["unmask"]["identity"] is not None and 0 <= rows["unmask"]["realism"] <= 1
    assert "| unmask |" in format_rows(report["rows"])
    with pytest.raises(ValueError, match="unknown filler"):
        evaluate_unmask(["nope"], faces)
    with pytest.raises(ValueError, match="unknown unmask option 'tight'.*'\\+seamless', '\\+nograbcut'"):
        evaluate_unmask(["unmask+tight"], faces)


def test_a_softened_mask_edge_is_a_ramp_centred_on_the_sharp_edge_and_the_hole_covers_it():
    from unmasked.evaluation.unmask_eval import SOFT_HOLE_ALPHA, soften_mask_edge

    original = np.full((64, 64, 3), 200, np.uint8)
    masked = original.copy()
    hole = np.zeros((64, 64), bool)
    hole[:, 32:] = True  # fabric on the right half, a vertical edge between columns 31 and 32
    masked[hole] = (20, 40, 160)
    same = soften_mask_edge(original, masked, hole, 0.0)
    assert same[0] is masked and same[1] is hole  # no blur: the sharp paste as it was
    soft, grown = soften_mask_edge(original, masked, hole, 3.0)
    row = soft[10, :, 0].astype(int)
    assert (np.diff(row) <= 0).all()  # from skin (200) down to fabric (20), monotonically
    assert row[0] == 200 and row[-1] == 20  # far from the edge, the photo and the fabric as they were
    assert abs(row[31] - 110) <= 12 and abs(row[32] - 110) <= 12  # half and half where the sharp edge was
    assert grown[:, 32:].all() and grown[:, 31].all() and not grown[:, :20].any()  # the hole takes the ramp
    # every pixel left out of the hole is within SOFT_HOLE_ALPHA of the photo
    assert np.abs(soft[~grown].astype(int) - 200).max() <= SOFT_HOLE_ALPHA * 180 + 1


@pytest.mark.data
def test_eval_unmask_edge_blur_softens_the_synthetic_masks_and_grows_their_holes(shared_data):
    from unmasked.evaluation.unmask_eval import masked_faces

    names, pixels = load_eval_images(shared_data / "faces" / "celeba_wild256", 256, split="val", limit=3)
    sharp, soft = masked_faces(names, pixels), masked_faces(names, pixels, edge_blur=3.5)
    for a, b in zip(sharp, soft, strict=True):
        assert (b.hole >= a.hole).all() and b.hole.sum() > a.hole.sum()  # the same mask, its hole grown by the ramp
        outside = ~b.hole  # within SOFT_HOLE_ALPHA of the photo (fabric and skin differ by at most 255)
        assert np.abs(b.masked[outside].astype(int) - b.original[outside].astype(int)).max() <= 6
        ring = b.hole & ~a.hole
        assert (b.masked[ring] != a.masked[ring]).any()  # fabric now reaches past the sharp edge

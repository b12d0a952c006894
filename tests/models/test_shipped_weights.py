"""The trained presets that ship in the package load and do what their model cards claim."""


import numpy as np
import pytest

from unmasked.api import load_model, shipped_weights
from unmasked.checkpoint import read_checkpoint_info


def test_every_preset_has_a_model_card_and_loads():
    presets = shipped_weights()
    assert "deepfill_v2_faces128" in presets
    for name, path in presets.items():
        card = path.with_suffix(".md")
        assert card.is_file() and "research" in card.read_text().lower()  # licence stated
        info = read_checkpoint_info(path)
        assert info["metadata"]["steps"] > 0
        model = load_model(name)
        assert not model.training and model.working_size == info["kwargs"]["working_size"]


@pytest.mark.data
def test_face_preset_beats_telea_on_face_mask_holes(shared_data, tmp_path):
    from unmasked.evaluation.run import run_evaluation

    result = run_evaluation(["deepfill_v2_faces128", "telea"], shared_data / "faces" / "celeba_wild256", tmp_path,
                            size=128, split="val", limit=40, mask_kind="face", realism=False)
    psnr = {m: np.mean([r["psnr"] for r in result.records if r["model"] == m]) for m in ("deepfill_v2_faces128", "telea")}
    assert psnr["deepfill_v2_faces128"] > psnr["telea"] + 0.3, psnr  # model card: +1.07 dB on 200 faces


def test_face_preset_alias_runs_without_attention_and_with_diffusion_blend():
    # measured (model card): contextual attention on the 16x16 grid of a 128 px face cost
    # 2.1 dB; the preset runs with it off, and blends with Navier-Stokes on thin holes
    model = load_model("deepfill_v2-faces")
    assert model.attention is None
    assert model.classical_blend == {"method": "navier_stokes", "width": 12.0}


@pytest.mark.data
def test_pconv_preset_beats_diffusion_on_the_largest_holes(shared_data, tmp_path):
    from unmasked.evaluation.run import run_evaluation

    models = ["pconv_unet_faces128", "telea", "navier_stokes"]
    result = run_evaluation(models, shared_data / "faces" / "celeba_wild256", tmp_path, size=128, split="val",
                            per_cell=2, seed=3, realism=False)
    big = [r for r in result.records if r["bucket"] >= 3]  # hole ratio (0.3, 0.6]
    psnr = {m: np.mean([r["psnr"] for r in big if r["model"] == m]) for m in models}
    # model card: +1.0 dB and more over both in each of these buckets, on seed-1 and NVIDIA masks
    assert psnr["pconv_unet_faces128"] > max(psnr["telea"], psnr["navier_stokes"]) + 0.3, psnr


def test_pconv_preset_is_the_papers_unet_with_a_thin_diffusion_blend():
    model = load_model("pconv_unet_faces128")
    assert type(model).__name__ == "PConvUNet" and model.classical_blend == {"method": "navier_stokes", "width": 4.0}
    assert model.upsample_mode == "bilinear"  # phases 3-4 trained with it; nearest painted a grid
    stages = read_checkpoint_info(shipped_weights()["pconv_unet_faces128"])["metadata"]["stages"]
    assert len(stages) == 4 and "hinge GAN" in stages[-1]["loss"] and stages[-1]["d_pretrain"] == 800


@pytest.mark.data
def test_pconv_preset_fills_worn_masks_with_more_structure_than_diffusion(shared_data, tmp_path):
    from unmasked.evaluation.run import run_evaluation

    models = ["pconv_unet_faces128", "telea", "navier_stokes"]
    result = run_evaluation(models, shared_data / "faces" / "celeba_wild256", tmp_path, size=128, split="val",
                            mask_kind="face", limit=40, seed=5, realism=False)
    mean = {k: {m: np.mean([r[k] for r in result.records if r["model"] == m]) for m in models} for k in ("psnr", "detail")}
    # model card (200 faces): detail 80.2 % vs 48.1 / 51.4, PSNR 27.35 vs 23.70 / 23.86; the
    # phase-3 weights (57.3 %, +6 over diffusion) fail the first check: the adversarial phase draws structure
    assert mean["detail"]["pconv_unet_faces128"] > max(mean["detail"]["telea"], mean["detail"]["navier_stokes"]) + 15, mean
    assert mean["detail"]["pconv_unet_faces128"] < 100, mean  # not more edge energy than the photo: that is noise
    assert mean["psnr"]["pconv_unet_faces128"] > max(mean["psnr"]["telea"], mean["psnr"]["navier_stokes"]) + 2, mean



def test_sketch_preset_takes_a_sketch_in_both_networks_and_starts_from_the_face_model():
    model = load_model("deepfill_v2-sketch")
    assert model.uses_sketch and model.sketch_refine and model.attention is None
    assert model.classical_blend == {"method": "navier_stokes", "width": 12.0}
    stages = read_checkpoint_info(shipped_weights()["deepfill_v2_sketch_faces128"])["metadata"]["stages"]
    assert [s["steps"] for s in stages] == [1000, 750, 1250, 2000]
    assert "SN-PatchGAN" in stages[-1]["loss"]


@pytest.mark.data
def test_sketch_preset_follows_true_edges_and_is_the_face_model_without_one(shared_data):
    """Model card, 100 worn-mask faces: true edges +0.50 dB and Chamfer -3.03 px (interval -3.83..-2.33);
    a rough sketch -2.18 px; no sketch +0.12 dB against deepfill_v2_faces128. Here on 32 faces,
    with margins for the smaller sample (the stage-3 weights, -0.45 px, fail the Chamfer bars)."""
    from unmasked.data.sketch import edge_sketch
    from unmasked.evaluation.run import load_eval_images
    from unmasked.evaluation.sketch_eval import evaluate_sketch, sketch_cases
    from unmasked.masks.face_mask import face_mask_for_aligned

    _, images = load_eval_images(shared_data / "faces" / "celeba_wild256", 128, split="val", limit=32)
    holes = [face_mask_for_aligned(128, np.random.default_rng([0, i]))[1] for i in range(len(images))]
    assert all(edge_sketch(img, h).any() for img, h in zip(images, holes, strict=True))
    result = evaluate_sketch(load_model("deepfill_v2-sketch"), sketch_cases([str(i) for i in range(32)], images, holes),
                             baseline=load_model("deepfill_v2_faces128"))
    effect = {(e["a"], e["metric"]): e for e in result["effects"]}
    assert effect[("true edges", "psnr")]["ci95"][0] > 0, effect[("true edges", "psnr")]
    assert effect[("true edges", "chamfer")]["ci95"][1] < -1.0, effect[("true edges", "chamfer")]
    assert effect[("rough sketch", "chamfer")]["ci95"][1] < 0, effect[("rough sketch", "chamfer")]
    assert abs(effect[("no sketch", "psnr")]["mean"]) < 0.3, effect[("no sketch", "psnr")]


def test_two_face_preset_moves_identity_toward_the_person_without_losing_psnr(shared_data):
    """v2 (mirror agreement): on 40 triplets of the fresh held-out slice it was confirmed on, the
    reference brings the dlib distance to a third photo clearly down (model card: -0.043 per face
    on 240) and the PSNR does not fall below the plain fill's (+0.5 dB on 240)."""
    import torch

    from unmasked.api import load_model
    from unmasked.evaluation.reference import fill_all, holes_for, identity_triplets, raw_descriptors
    from unmasked.metrics import score_image

    targets, refs, probes, _ = identity_triplets(shared_data / "faces" / "celeba_wild256", 128, 40, offset=120)
    holes = holes_for(targets, "face", 0)
    model = load_model("two_face_faces128").eval()
    assert model.mirror_agreement and model.reference_detail is not None
    with torch.no_grad():
        plain, guided = fill_all(model, targets, holes, None), fill_all(model, targets, holes, refs)
    probe = raw_descriptors(probes)
    d_plain = np.linalg.norm(raw_descriptors(plain) - probe, axis=1)
    d_guided = np.linalg.norm(raw_descriptors(guided) - probe, axis=1)
    # measured: -0.051 and 82 % of faces closer (v1, the fusion model: -0.029, 70 %, and -1.35 dB)
    assert (d_guided - d_plain).mean() < -0.035 and (d_guided < d_plain).mean() > 0.7
    psnr = lambda fills: np.mean([score_image(f, t)["psnr"] for f, t in zip(fills, targets, strict=True)])  # noqa: E731
    assert psnr(guided) > psnr(plain) + 0.2  # measured: +0.52 dB


def test_landmark_preset_grew_from_the_face_preset_and_is_for_unmask_only():
    """pconv_unet_faces128_landmarks: the face preset plus a landmark guide (configs/pconv_faces-128-
    landmarks-guess.yaml), then real-photo holes (configs/pconv_faces-128-landmarks-realholes.yaml),
    trained: the 1x1 layers that add the guide to the decoder, which start at zero, are not zero.
    Only `unmask` can give it landmarks, so `fill` refuses it and the server offers it for /unmask only."""
    import torch

    from unmasked.hub import catalogue
    from unmasked.pipelines.fill import InputError, fill_array
    from unmasked.server.worker import ModelStore

    model = load_model("pconv_unet_faces128_landmarks")
    assert model.uses_landmarks and model.guide_blur == 1.5
    assert model.classical_blend == {"method": "navier_stokes", "width": 4.0}
    stages = read_checkpoint_info(shipped_weights()["pconv_unet_faces128_landmarks"])["metadata"]["stages"]
    assert len(stages) == 6 and "landmarks-guess" in stages[-2]["config"] and "worn mask" in stages[-2]["guide"]
    assert "landmarks-realholes" in stages[-1]["config"] and "real RMFD photos" in stages[-1]["holes"]
    injections = {k: v for k, v in model.state_dict().items() if k.startswith("guide_inject.") and k.endswith("weight")}
    assert len(injections) == model.depth and all(torch.isfinite(v).all() for v in injections.values())
    assert all(float(v.abs().max()) > 1e-3 for v in injections.values())  # every one learnt from its zero start
    entry = {e.name: e for e in catalogue()}["pconv_unet_faces128_landmarks"]
    assert entry.uses_landmarks and not {e.name: e for e in catalogue()}["pconv_unet_faces128"].uses_landmarks
    store = ModelStore(checkpoints={"mine": shipped_weights()["pconv_unet_faces128_landmarks"]})
    assert store.info("mine").uses_landmarks and store.default_unmask == "pconv_unet_faces128_landmarks"
    rgb = np.full((64, 64, 3), 128, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    with pytest.raises(InputError, match="landmarks"):
        fill_array(rgb, hole, model)


@pytest.mark.data
def test_landmark_preset_through_unmask_keeps_the_face_preset_s_scores(shared_data):
    """Its checkpoint rule's bounds, on 40 held-out faces with synthetic worn masks through the whole
    pipeline (where it is `unmask`'s default): PSNR within 0.1 dB of the face preset, SSIM within
    0.003, identity distance within +0.01. Both with the mean face on banded fills only
    (``+automeanface``, the pipeline it was chosen in). Measured here: 25.43 / 0.892 / 0.556 against
    25.40 / 0.890 / 0.556. (On the rule's 100 faces: 25.33 / 0.892 / 0.560 against 25.35 / 0.890 /
    0.559, and KID 2.11 against 2.22; on these 40 KID was 1.85 against 1.79, so KID is not asserted.
    With the mean face on every face, today's default, the face preset scores higher: see the README,
    "The mean face on every face, again".)"""
    from unmasked.evaluation.run import load_eval_images
    from unmasked.evaluation.unmask_eval import evaluate_unmask, masked_faces

    names, pixels = load_eval_images(shared_data / "faces" / "celeba_wild256", 256, split="val", limit=40)
    result = evaluate_unmask(["unmask:pconv_unet_faces128+automeanface", "unmask+automeanface"], masked_faces(names, pixels),
                             realism_steps=1)
    plain, guided = result["rows"]
    assert guided["psnr"] > plain["psnr"] - 0.1, (guided, plain)
    assert guided["ssim"] > plain["ssim"] - 0.003, (guided, plain)
    assert guided["identity"] < plain["identity"] + 0.01, (guided, plain)

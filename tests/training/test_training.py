"""Training: config handling, exact resume, atomic checkpoints, 2-process DDP."""

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch

from unmasked.checkpoint import load_checkpoint
from unmasked.conventions import load_image
from unmasked.training.config import load_config
from unmasked.training.fit import fit


def _cfg(tmp_path, name, **over):
    values = {
        "name": name, "out_dir": str(tmp_path), "model": "deepfill_v2",
        "model_kwargs": {"cnum": 4, "working_size": 32}, "discriminator": {"cnum": 4}, "d_every": 2,
        "data.kind": "mnist", "data.size": 32, "masks.bank_size": 64, "batch_size": 2, "max_steps": 4,
        "ckpt_every": 2, "num_workers": 0, "val_images": 4, "lr_g": 1e-3, "lr_d": 1e-3,
    }
    values.update(over)
    return load_config(None, values)


def _fit(cfg):
    return fit(cfg, enable_progress_bar=False, logger=False)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown config key.*'lr'"):
        load_config(None, {"lr": 1.0, "data.kind": "mnist"})
    with pytest.raises(ValueError, match="unknown 'data' key"):
        load_config(None, {"data.sise": 3, "data.kind": "mnist"})
    with pytest.raises(ValueError, match="data.root is required"):
        load_config(None, {"data.kind": "folder"})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        load_config(None, {"data.kind": "mnist", "batch_size": 0})
    with pytest.raises(ValueError, match="band_weight must be >= 0, got -1"):
        load_config(None, {"data.kind": "mnist", "band_weight": -1.0})
    with pytest.raises(ValueError, match="band_weight is for the face fill models"):
        load_config(None, {"data.kind": "mnist", "model": "two_face", "band_weight": 1.0})


def test_set_null_turns_a_section_off_and_unset_options_keep_the_config(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import unmasked.cli.train
    from unmasked.cli import main

    path = tmp_path / "gan.yaml"
    path.write_text("data: {kind: mnist}\ndiscriminator: {cnum: 16}\nbatch_size: 3\n")
    assert load_config(path).discriminator == {"cnum": 16}
    assert load_config(path, {"discriminator": None}).discriminator is None
    seen = {}

    def fake_fit(cfg):
        seen["cfg"] = cfg
        return SimpleNamespace(steps_done=0, last_val={})

    monkeypatch.setattr(unmasked.cli.train, "fit", fake_fit)  # the name the command calls
    r = CliRunner().invoke(main, ["train", str(path), "--set", "discriminator=null", "--max_steps", "7"])
    assert r.exit_code == 0, r.output
    cfg = seen["cfg"]
    assert cfg.discriminator is None and cfg.max_steps == 7
    assert cfg.batch_size == 3  # --batch_size was not given: the config's value stays


def test_resume_gives_the_same_weights_as_training_straight(tmp_path):
    straight = _fit(_cfg(tmp_path, "straight"))
    assert straight.steps_done == 4
    _fit(_cfg(tmp_path, "split", max_steps=2))
    resumed = _fit(_cfg(tmp_path, "split", resume_checkpoint="last"))
    assert resumed.steps_done == 4
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    # and the run really trained: weights moved away from their initial values
    fresh = _fit(_cfg(tmp_path, "fresh", max_steps=1, lr_g=0.0, lr_d=0.0))
    assert any(not torch.allclose(a[k], v) for k, v in _state(fresh).items() if k.startswith("generator"))


def test_run_folder_holds_config_weights_and_samples(tmp_path):
    cfg = _cfg(tmp_path, "files", max_steps=2)
    module = _fit(cfg)
    run = tmp_path / "files"
    assert (run / "config.yaml").is_file() and (run / "last.ckpt").is_file()
    grid = load_image(run / "samples" / "step_000002.png").rgb
    assert grid.shape == (4 * 32, 4 * 32, 3)  # 4 rows of masked | coarse | output | truth
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())
    exported = load_checkpoint(run / "generator.safetensors")
    assert exported.checkpoint_metadata["steps"] == 2 and "psnr" in exported.checkpoint_metadata["val"]
    for key, value in module.generator.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    _fit(_cfg(tmp_path, "a", max_steps=2))
    other = _cfg(tmp_path, "a", model_kwargs={"cnum": 8, "working_size": 32}, resume_checkpoint="last")
    with pytest.raises(ValueError, match="trained as deepfill_v2"):
        _fit(other)


DDP_SCRIPT = """
import sys, torch
from unmasked.training.config import load_config
from unmasked.training.fit import fit
out = sys.argv[1]
cfg = load_config(None, {{"name": "ddp", "out_dir": out, "model": "deepfill_v2",
    "model_kwargs": {{"cnum": 4, "working_size": 32}}, "discriminator": {{"cnum": 4}}, "d_every": 2,
    "data.kind": "mnist", "data.size": 32, "masks.bank_size": 32, "batch_size": 2, "max_steps": 3,
    "ckpt_every": 3, "num_workers": 0, "val_images": 4, "devices": 2, "threads": 1}})
module = fit(cfg, enable_progress_bar=False, logger=False)
torch.save({{k: v for k, v in module.state_dict().items()}}, f"{{out}}/rank{{module.global_rank}}.pt")
"""


def test_ddp_two_cpu_processes_keep_weights_identical(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format()))
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in w0:
        if key.startswith("generator") or key.startswith("discriminator"):
            assert torch.equal(w0[key], w1[key]), key


def test_init_from_starts_a_new_stage_from_trained_weights(tmp_path):
    first = _fit(_cfg(tmp_path, "stage1", max_steps=2))
    run = tmp_path / "stage1"
    assert (run / "discriminator.safetensors").is_file()
    init = {"generator": str(run / "generator.safetensors"), "discriminator": str(run / "discriminator.safetensors")}
    second = _fit(_cfg(tmp_path, "stage2", max_steps=1, lr_g=0.0, lr_d=0.0, init_from=init))
    assert second.steps_done == 1  # a new run: its own step counter
    for key, value in first.state_dict().items():
        if not key.endswith(("_u", "_v")):  # spectral-norm power-iteration vectors move every forward
            torch.testing.assert_close(second.state_dict()[key], value, msg=key)
    with pytest.raises(ValueError, match="config asks for deepfill_v2"):
        _fit(_cfg(tmp_path, "stage2b", model_kwargs={"cnum": 8, "working_size": 32}, init_from=init))


def test_pconv_fine_tuning_stage_freezes_encoder_bn_from_phase_one_weights(tmp_path):
    # the paper's second phase: same weights, encoder BatchNorm frozen (a kwarg with no parameters)
    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32}
    common = {"model": "pconv_unet", "loss": "pconv", "discriminator": None}
    first = _fit(_cfg(tmp_path, "phase1", model_kwargs=kwargs, max_steps=2, **common))
    init = {"generator": str(tmp_path / "phase1" / "generator.safetensors")}
    # parameter-free switches may change between stages: BN freezing, the decoder's upsampling
    second = _fit(_cfg(tmp_path, "phase2", model_kwargs={**kwargs, "freeze_encoder_bn": True,
                                                          "upsample_mode": "bilinear"}, max_steps=1,
                       lr_g=0.0, init_from=init, **common))
    assert second.generator.freeze_encoder_bn and second.generator.upsample_mode == "bilinear"
    before, after = first.generator.state_dict(), second.generator.state_dict()
    stats = [k for k in before if "running_mean" in k]
    assert any(k.startswith("encoder.") for k in stats) and any(k.startswith("decoder.") for k in stats)
    for key in stats:  # frozen encoder BN keeps phase 1's statistics; the decoder's still move
        moved = not torch.equal(after[key], before[key])
        assert moved == key.startswith("decoder."), key
    with pytest.raises(ValueError, match="config asks for pconv_unet"):
        _fit(_cfg(tmp_path, "phase2b", model_kwargs={**kwargs, "base_channels": 8}, init_from=init, **common))
    # a fully convolutional model may go on at another resolution (the 256² face model from the 128² one)
    bigger = _fit(_cfg(tmp_path, "phase2c", model_kwargs={**kwargs, "working_size": 64}, max_steps=1, lr_g=0.0,
                       init_from=init, **{"data.size": 64}, **common))
    assert bigger.generator.working_size == 64
    for key, value in before.items():
        if "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(bigger.generator.state_dict()[key], value, msg=key)


def test_face_mask_kinds_sit_on_the_lower_face_and_are_reproducible():
    import numpy as np

    from unmasked.training.data import face_mask_bank

    size = 64
    for kind in ("face", "face_region"):
        bank = face_mask_bank(kind, 24, size, seed=3)
        masks = bank.masks.astype(bool)
        ratio = masks.mean(axis=(1, 2))
        assert (ratio > 0.08).all() and (ratio < 0.45).all(), (kind, ratio)
        rows = np.nonzero(masks.any(axis=(0, 2)))[0]
        # below the eyes of the FFHQ-aligned face (eye line at ~0.48 of the side), never the top third
        assert rows.min() > size // 3, kind
        np.testing.assert_array_equal(bank.masks, face_mask_bank(kind, 24, size, seed=3).masks)
        # no flips or rotations when sampling: a worn mask stays on the lower face
        rng = np.random.default_rng(0)
        assert all(np.nonzero(bank.sample(rng).any(axis=1))[0].min() > size // 3 for _ in range(20))
    with pytest.raises(ValueError, match="unknown face mask kind"):
        face_mask_bank("eyes", 2, size, seed=0)


def test_real_worn_holes_are_the_pipeline_s_own_holes_on_real_photos_cached_and_held_out(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image
    from skimage import data

    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask
    from unmasked.training import data as training_data

    photo = data.astronaut()
    masked, _ = put_face_mask(photo, face_from_box(photo, (175, 76, 91, 91)), np.random.default_rng(0), kind="surgical")
    root, cache = tmp_path / "real", tmp_path / "cache"
    root.mkdir()
    # a.png is the first photo of the sorted folder: every REAL_HOLDOUT_EVERY-th, so never a training hole
    for name, image in (("a.png", masked), ("b.png", masked), ("c.png", photo)):
        Image.fromarray(image).save(root / name)
    holes = training_data.real_worn_holes(root, 64, cache)
    assert holes.shape == (1, 64, 64) and holes.dtype == np.uint8  # b's mask; a held out, c wears none
    assert 0.1 < holes.mean() < 0.45
    assert np.nonzero(holes[0].any(axis=1))[0].min() > 64 // 3  # on the lower face of the aligned crop
    assert training_data.real_worn_holes(root, 64, cache, held_out=True).shape == (1, 64, 64)  # a's, for evaluation
    # the cache is read, not rebuilt, while the photos are the same ...
    monkeypatch.setattr(training_data, "unmask_array", lambda *a, **k: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(training_data.real_worn_holes(root, 64, cache), holes)
    # ... and other segmenter weights make it stale
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"other segmenter weights")
    with monkeypatch.context() as m, pytest.raises(pytest.fail.Exception, match="cache was not used"):
        m.setattr(training_data, "shipped_weights", lambda: {training_data.DEFAULT_SEGMENTER: other})
        training_data.real_worn_holes(root, 64, cache)
    # ... and so does another version of the region
    with monkeypatch.context() as m, pytest.raises(pytest.fail.Exception, match="cache was not used"):
        m.setattr(training_data, "REGION_VERSION", training_data.REGION_VERSION + 1)
        training_data.real_worn_holes(root, 64, cache)
    # ... and a photo added makes it stale
    Image.fromarray(masked).save(root / "d.png")
    with pytest.raises(pytest.fail.Exception, match="cache was not used"):
        training_data.real_worn_holes(root, 64, cache)
    (root / "b.png").unlink()
    (root / "d.png").unlink()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="found no worn mask"):
        training_data.real_worn_holes(root, 64, cache)
    with pytest.raises(ValueError, match="no images found"):
        training_data.real_worn_holes(tmp_path / "cache", 64, cache)


def test_real_worn_bank_keeps_each_real_hole_and_jitters_copies_of_them():
    import numpy as np

    from unmasked.training.data import real_worn_bank

    holes = np.zeros((3, 64, 64), np.uint8)
    holes[0, 30:55, 12:52] = 1
    holes[1, 34:60, 8:56] = 1
    holes[2, 28:50, 18:46] = 1
    bank = real_worn_bank(holes, 40, seed=0)
    assert len(bank) == 40 and not bank.augment  # no flips or rotations: a worn mask stays on the lower face
    np.testing.assert_array_equal(bank.masks[:3], holes)
    for mask in bank.masks[3:]:
        iou = [(mask & h).sum() / (mask | h).sum() for h in holes]
        assert 0.7 < max(iou) < 1 or (mask == holes[int(np.argmax(iou))]).all()  # a small move of one of them
    assert any(not any((m == h).all() for h in holes) for m in bank.masks[3:])  # and not only copies
    np.testing.assert_array_equal(real_worn_bank(holes, 40, seed=0).masks, bank.masks)
    assert len(real_worn_bank(holes, 2, seed=0)) == 3  # never fewer than the real holes


def test_real_worn_kind_needs_a_folder_of_real_photos():
    with pytest.raises(ValueError, match="needs masks.real_photos"):
        load_config(None, {"data.kind": "mnist", "masks.kinds": {"real_worn": 1.0}})
    cfg = load_config(None, {"data.kind": "mnist", "masks.kinds": {"real_worn": 1.0}, "masks.real_photos": "photos"})
    assert cfg.masks.real_photos == "photos"


def test_perceptual_output_weight_zero_skips_that_term(tmp_path):
    from unmasked.training.module import InpaintingModule

    cfg = _cfg(tmp_path, "p", loss_weights={"perceptual": 0.05, "perceptual_output": 0.0}, discriminator=None)
    module = InpaintingModule(cfg)
    module.features = lambda x: {"a": x.mean(dim=1, keepdim=True)}  # a stand-in feature network
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    out = module.generator(image * (1 - mask), mask)
    terms = module.reconstruction_losses(out, image, mask)
    assert "perceptual" in terms and "perceptual_output" not in terms
    module.weights["perceptual_output"] = 0.05
    assert "perceptual_output" in module.reconstruction_losses(out, image, mask)


def test_l2_terms_are_squared_error_and_named_in_the_loss_description(tmp_path):
    from unmasked.training.module import InpaintingModule

    cfg = _cfg(tmp_path, "l2", loss_weights={"l1": 0, "l1_coarse": 0, "l2": 1, "l2_coarse": 0.5}, discriminator=None)
    module = InpaintingModule(cfg)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    out = module.generator(image * (1 - mask), mask)
    terms = module.reconstruction_losses(out, image, mask)
    l2 = (out.image - image).pow(2).mean()
    l2c = (out.coarse - image).pow(2).mean()
    torch.testing.assert_close(terms["l2"], l2)
    torch.testing.assert_close(terms["total"], l2 + 0.5 * l2c)  # L1 weighted 0 adds nothing
    assert "1*L2(refined) + 0.5*L2(coarse)" in module.describe_loss()
    # off by default
    assert "l2" not in InpaintingModule(_cfg(tmp_path, "d", discriminator=None)).reconstruction_losses(out, image, mask)


def test_self_identity_term_compares_the_fill_with_the_photo(tmp_path):
    from unmasked.checkpoint import save_checkpoint
    from unmasked.conventions import composite
    from unmasked.models.face_identity import build_student
    from unmasked.training.module import InpaintingModule

    embedder = save_checkpoint(build_student(), tmp_path / "embedder.safetensors")
    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32}
    cfg = _cfg(tmp_path, "id", model="pconv_unet", model_kwargs=kwargs, loss="pconv", discriminator=None,
               identity_network=str(embedder), loss_weights={"identity": 0.5})
    module = InpaintingModule(cfg)
    assert "0.5*identity(1-cos to the photo, embedder.safetensors)" in module.describe_loss()
    captured = {}
    module.optimizers = lambda: None
    module.generator_step = lambda opt, total, terms, logs, n: captured.update(total=total, terms=terms)
    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    for hole in (True, False):
        mask = torch.zeros(2, 1, 32, 32)
        if hole:
            mask[..., 10:24, 6:26] = 1
        module.training_step({"image": image, "mask": mask}, 0)
        terms = captured["terms"]
        with torch.no_grad():
            out = module.generator(image * (1 - mask), mask)
            a = module.identity_network.embed(composite(out.image, image, mask))
            b = module.identity_network.embed(image)
        expected = (1 - torch.nn.functional.cosine_similarity(a, b, dim=1)).mean()
        assert torch.allclose(terms["identity"].detach(), expected, atol=1e-5)
        assert torch.allclose(captured["total"].detach(), terms["total"].detach() + 0.5 * terms["identity"].detach())
        if not hole:  # nothing filled: the composite is the photo, the same identity
            assert terms["identity"].item() < 1e-5
        else:
            assert terms["identity"].item() > 1e-4
            assert captured["total"].requires_grad  # the term reaches the generator
    assert not any(p.requires_grad for p in module.identity_network.parameters())  # frozen


def test_d_pretrain_trains_only_the_discriminator_then_hands_over(tmp_path):
    from unmasked.training.module import InpaintingModule

    with pytest.raises(ValueError, match="d_pretrain needs a discriminator"):
        _cfg(tmp_path, "x", discriminator=None, d_pretrain=2)
    with pytest.raises(ValueError, match="leaves no generator steps"):
        _cfg(tmp_path, "x", d_pretrain=4)
    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32}
    cfg = _cfg(tmp_path, "pre", model="pconv_unet", model_kwargs=kwargs, loss="pconv", d_pretrain=2, d_every=1)
    module = InpaintingModule(cfg)
    assert "D alone for the first 2 steps" in module.describe_loss()
    opt_g = torch.optim.Adam(module.generator.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(module.discriminator.parameters(), lr=1e-2)
    module.optimizers = lambda: [opt_g, opt_d]
    module.manual_backward = lambda loss: loss.backward()
    module.log_dict = module.log = lambda *a, **k: None
    torch.manual_seed(0)
    batch = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "mask": torch.zeros(2, 1, 32, 32)}
    batch["mask"][..., 8:24, 8:24] = 1
    g0 = {k: v.clone() for k, v in module.generator.state_dict().items()}  # BatchNorm statistics too
    d0 = [p.detach().clone() for p in module.discriminator.parameters()]
    module.generator.train()
    for step in (1, 2):
        module.training_step(batch, 0)
        assert module.steps_done == step
        assert all(torch.equal(v, g0[k]) for k, v in module.generator.state_dict().items())
        assert module.generator.training  # put back in train mode after the no-grad pass
    assert any(not torch.equal(p, q) for p, q in zip(module.discriminator.parameters(), d0, strict=True))
    d1 = [p.detach().clone() for p in module.discriminator.parameters()]
    module.training_step(batch, 0)  # step 3: the generator learns, with the adversarial term
    assert module.steps_done == 3
    assert any(not torch.equal(v, g0[k]) for k, v in module.generator.state_dict().items())
    assert any(not torch.equal(p, q) for p, q in zip(module.discriminator.parameters(), d1, strict=True))


def test_d_pretrain_runs_through_fit(tmp_path):
    module = _fit(_cfg(tmp_path, "prefit", d_pretrain=2, d_every=1))
    assert module.steps_done == 4


def _face_folder(tmp_path, identities=5, per=3, size=48):
    """A tiny identity folder of square images and its landmark cache (the mean aligned face's,
    as :func:`unmasked.data.mask_seg.aligned_landmarks` would have stored them at 256 px)."""
    import cv2
    import numpy as np

    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    keys = []
    for i in range(identities):
        (root / f"id{i}").mkdir(parents=True)
        for j in range(per):
            cv2.imwrite(str(root / f"id{i}" / f"{j}.png"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
            keys.append(f"id{i}/{j}.png")
    cache = tmp_path / "lm"
    cache.mkdir()
    lm = np.asarray(FFHQ_MEAN_LANDMARKS, np.float32) * 256
    np.savez(cache / "faces_lm256_fixedbox.npz", paths=np.array(sorted(keys)), size=np.array(256),
             missing=np.array([], dtype=str), landmarks=np.stack([lm] * len(keys)))
    return root, cache


def test_landmark_guided_pconv_trains_with_each_face_s_drawing(tmp_path):
    import numpy as np

    from unmasked.data.landmark_guide import draw_landmark_guide
    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS
    from unmasked.training.data import StepSamples, split_landmarks

    root, cache = _face_folder(tmp_path)
    cfg = _cfg(tmp_path, "guided", model="pconv_unet", discriminator=None, **{
        "model_kwargs": {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32, "landmark_guide": True},
        "loss": "pconv", "data.kind": "identity", "data.root": str(root), "data.landmarks_cache": str(cache),
        "masks.kinds": {"face": 1.0}, "max_steps": 2, "val_images": 2})
    lm = split_landmarks(cfg, "train")
    expect = (np.asarray(FFHQ_MEAN_LANDMARKS) * 256 + 0.5) * 32 / 256 - 0.5
    np.testing.assert_allclose(lm[0], expect, atol=1e-4)
    module = _fit(cfg)
    assert module.val_guides.shape == (2, 32, 32)
    np.testing.assert_allclose(module.val_guides[0], draw_landmark_guide(lm[0], 32))  # exact, not jittered
    assert (tmp_path / "guided" / "generator.safetensors").is_file()

    # the training drawing is flipped with its image
    image = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    image[:, :, :8] = 255  # a bright left edge tells flipped samples apart
    left = np.array(lm[:1])
    left[..., 0] = left[..., 0] * 0.3  # every landmark in the left third
    samples = StepSamples(image, module.train_samples.banks, module.train_samples.weights, seed=0, landmarks=left)
    sides = set()
    for step in range(12):
        s = samples[(step, 0)]
        flipped = bool(s["image"][0, 0, -1] > 0)
        guide = s["guide"][0].numpy()
        mass_right = guide[:, 16:].sum() > guide[:, :16].sum()
        assert mass_right == flipped
        sides.add(flipped)
    assert sides == {True, False}
    with pytest.raises(ValueError, match="landmark sets"):
        StepSamples(image, module.train_samples.banks, module.train_samples.weights, seed=0, landmarks=lm[:2])


def test_landmark_guided_training_on_guesses_under_worn_masks_draws_them_as_they_are(tmp_path):
    """``data.landmark_source: under_mask``: each step draws one of the photo's cached guesses,
    unjittered (what ``unmask`` would give the model); a guess that found no face falls back to the
    exact points; validation draws the first guess."""
    import numpy as np

    from unmasked.data.landmark_guide import draw_landmark_guide
    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS
    from unmasked.training.data import split_landmarks

    root, cache = _face_folder(tmp_path)
    with np.load(cache / "faces_lm256_fixedbox.npz") as z:
        keys, exact = list(z["paths"]), z["landmarks"]
    guesses = np.stack([exact + [0.0, 16.0], exact - [0.0, 16.0]], axis=1).astype(np.float32)  # 2 px at 32
    guesses[0, 1] = np.nan  # no face found on the first photo's second masked copy
    np.savez(cache / "faces_lm256_undermask2.npz", paths=np.array(keys), size=np.array(256), variants=np.array(2),
             seed=np.array(0), landmarks=guesses)
    cfg = _cfg(tmp_path, "guessed", model="pconv_unet", discriminator=None, **{
        "model_kwargs": {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32, "landmark_guide": True},
        "loss": "pconv", "data.kind": "identity", "data.root": str(root), "data.landmarks_cache": str(cache),
        "data.landmark_source": "under_mask", "data.flip": False, "masks.kinds": {"face": 1.0}, "max_steps": 2,
        "val_images": 2})
    lm = split_landmarks(cfg, "train")
    assert lm.shape[1:] == (2, 68, 2)
    mean = (np.asarray(FFHQ_MEAN_LANDMARKS) * 256 + 0.5) * 32 / 256 - 0.5
    np.testing.assert_allclose(lm[:, 0], np.broadcast_to(mean + [0, 2], lm[:, 0].shape), atol=1e-4)
    val = split_landmarks(cfg, "val")
    second = np.concatenate([lm[:, 1], val[:, 1]])
    fell_back = [bool(np.allclose(g, mean, atol=1e-4)) for g in second]
    assert sum(fell_back) == 1
    assert all(np.allclose(g, mean - [0, 2], atol=1e-4) for g, f in zip(second, fell_back, strict=True) if not f)
    module = _fit(cfg)
    drawings = {shift: draw_landmark_guide(mean + [0, shift], 32) for shift in (2, -2, 0)}
    seen = set()
    for step in range(40):
        guide = module.train_samples[(step, 0)]["guide"][0].numpy()
        match = [shift for shift, d in drawings.items() if np.array_equal(guide, d)]
        assert len(match) == 1  # one of the guesses, exactly as cached, not jittered
        seen.add(match[0])
    assert {2, -2} <= seen
    np.testing.assert_allclose(module.val_guides[0], drawings[2])  # validation: the first guess
    np.savez(cache / "faces_lm256_undermask2.npz", paths=np.array(keys[:1]), size=np.array(256),
             variants=np.array(2), seed=np.array(0), landmarks=guesses[:1])  # made before the other photos came
    with pytest.raises(ValueError, match="were added since"):
        split_landmarks(cfg, "train")
    with pytest.raises(ValueError, match="landmark_source"):
        split_landmarks(_cfg(tmp_path, "bad", **{"data.kind": "identity", "data.root": str(root),
                                                  "data.landmark_source": "guessed"}), "train")


def test_landmark_guided_training_needs_an_aligned_identity_folder(tmp_path):
    from unmasked.training.data import split_landmarks

    cfg = _cfg(tmp_path, "guided")  # MNIST
    with pytest.raises(ValueError, match="aligned identity folder"):
        split_landmarks(cfg, "train")


def test_max_mouth_open_trains_only_on_closed_mouths(tmp_path):
    """``data.max_mouth_open`` drops the training faces whose exact landmarks show an open mouth,
    also when the drawn guide is a guess under a worn mask; a threshold that keeps nothing, a
    model without landmarks and a non-positive value are refused."""
    import numpy as np

    from unmasked.data.landmark_guide import mouth_opening
    from unmasked.training.data import closed_mouths, split_landmarks

    root, cache = _face_folder(tmp_path)
    with np.load(cache / "faces_lm256_fixedbox.npz") as z:
        keys, exact = list(z["paths"]), z["landmarks"].copy()
    closed = exact[0].copy()
    closed[65:68] = closed[[63, 62, 61]] + [0.0, 0.5]  # lower inner lip half a pixel under the upper: closed
    opened = exact[0].copy()
    opened[65:68, 1] += 20.0  # lower inner lip 20 px down at 256: teeth
    assert 0 < mouth_opening(closed) < 0.01 and mouth_opening(opened) > 0.2
    is_open = np.array([k.split("/")[0] in ("id0", "id3") or k.endswith("/1.png") for k in keys])
    exact[:] = np.where(is_open[:, None, None], opened, closed)
    np.savez(cache / "faces_lm256_fixedbox.npz", paths=np.array(keys), size=np.array(256),
             missing=np.array([], dtype=str), landmarks=exact)
    np.savez(cache / "faces_lm256_undermask2.npz", paths=np.array(keys), size=np.array(256), variants=np.array(2),
             seed=np.array(0), landmarks=np.stack([exact, exact], axis=1))
    over = {"model_kwargs": {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32,
                             "landmark_guide": True},
            "loss": "pconv", "data.kind": "identity", "data.root": str(root), "data.landmarks_cache": str(cache),
            "data.landmark_source": "under_mask", "masks.kinds": {"face": 1.0}, "max_steps": 2, "val_images": 2}
    everything = _cfg(tmp_path, "all", model="pconv_unet", discriminator=None, **over)
    assert closed_mouths(everything, "train") is None
    cfg = _cfg(tmp_path, "closed", model="pconv_unet", discriminator=None, **over, **{"data.max_mouth_open": 0.06})
    keep = closed_mouths(cfg, "train")
    lm = split_landmarks(cfg, "train")
    assert keep.dtype == bool and len(keep) == len(lm)
    np.testing.assert_array_equal(keep, mouth_opening(lm[:, 0]) <= 0.06)  # the guesses here are the exact points
    assert 0 < keep.sum() < len(keep)
    module = _fit(cfg)
    samples = module.train_samples
    assert len(samples.images) == keep.sum() and len(samples.landmarks) == keep.sum()
    assert (mouth_opening(samples.landmarks[:, 0]) < 0.01).all()  # every face trained on has closed lips

    with pytest.raises(ValueError, match="keeps no training face"):
        _fit(_cfg(tmp_path, "none", model="pconv_unet", discriminator=None, **over, **{"data.max_mouth_open": 1e-9}))
    with pytest.raises(ValueError, match="needs a landmark-guided model"):
        _fit(_cfg(tmp_path, "plain", **{"data.max_mouth_open": 0.06}))
    with pytest.raises(ValueError, match="max_mouth_open must be > 0"):
        _cfg(tmp_path, "bad", **{"data.max_mouth_open": 0.0})


def test_band_weight_adds_the_band_term_to_the_generator_loss(tmp_path):
    """``band_weight``: the generator's loss gains band_weight * band_loss of the composite, logged as
    g/band; a fill with bands the photo lacks costs more than one without."""
    from unmasked.losses.bands import band_loss
    from unmasked.training.module import InpaintingModule

    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32, "landmark_guide": True}
    cfg = _cfg(tmp_path, "bands", model="pconv_unet", model_kwargs=kwargs, loss="pconv", discriminator=None,
               band_weight=2.0)
    module = InpaintingModule(cfg)
    assert "2*bands(horizontal edges beyond the photo's" in module.describe_loss()
    logged, totals = {}, []
    opt_g = torch.optim.SGD(module.generator.parameters(), lr=0.0)
    module.optimizers = lambda: opt_g
    module.manual_backward = lambda loss: totals.append(float(loss)) or loss.backward()
    module.log_dict = lambda d, **k: logged.update(d)
    module.log = lambda *a, **k: None
    torch.manual_seed(0)
    photo = torch.zeros(2, 3, 32, 32)
    photo[..., ::4] = 0.5  # upright lines only
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    guide = torch.zeros(2, 1, 32, 32)
    module.training_step({"image": photo, "mask": mask, "guide": guide}, 0)
    assert "g/band" in logged and float(logged["g/band"]) >= 0
    out = module.generator(photo * (1 - mask), mask, guide=guide).image
    comp = out * mask + photo * (1 - mask)
    expected = float(band_loss(comp, photo, mask, guide))
    assert expected > 0.01  # an untrained fill has horizontal edges the upright lines lack
    assert float(logged["g/band"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # with the term off the total is lower by band_weight * band
    module.cfg.band_weight = 0.0
    module.training_step({"image": photo, "mask": mask, "guide": guide}, 0)
    assert totals[0] - totals[1] == pytest.approx(2.0 * expected, rel=1e-3, abs=1e-5)


def test_ema_decay_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\), got 1"):
        load_config(None, {"data.kind": "mnist", "ema_decay": 1.0})
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\), got -0.1"):
        load_config(None, {"data.kind": "mnist", "ema_decay": -0.1})
    with pytest.raises(ValueError, match="ema_decay is for the face fill models"):
        load_config(None, {"data.kind": "mnist", "model": "two_face", "ema_decay": 0.9})


def test_ema_update_has_known_values(tmp_path):
    """One update moves each float tensor 1 - decay of the way to the trained weights; integer
    buffers (BatchNorm's batch counts) are copied; the average itself has no gradient."""
    from unmasked.training.module import InpaintingModule

    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32}  # with BatchNorm
    module = InpaintingModule(_cfg(tmp_path, "ema", model="pconv_unet", model_kwargs=kwargs, loss="pconv",
                                   discriminator=None, ema_decay=0.75))
    assert all(not p.requires_grad for p in module.generator_ema.parameters())
    before = {k: v.clone() for k, v in module.generator_ema.state_dict().items()}
    trained = module.generator.state_dict()
    for key, value in trained.items():
        torch.testing.assert_close(before[key], value)  # it starts as the generator's weights
        if value.dtype.is_floating_point:
            value.add_(4.0)
        else:
            value.add_(3)
    module.update_ema()
    after = module.generator_ema.state_dict()
    floats = [k for k, v in trained.items() if v.dtype.is_floating_point]
    counts = [k for k, v in trained.items() if not v.dtype.is_floating_point]
    assert floats and counts
    for key in floats:
        torch.testing.assert_close(after[key], before[key] + 1.0)  # 0.25 of the way: 4 * 0.25
    for key in counts:
        assert torch.equal(after[key], trained[key])


def test_ema_run_exports_the_average_and_resumes_exactly(tmp_path):
    """A run with ema_decay exports generator_ema (and its snapshots and sample grids), the average
    differs from the trained weights, and a resumed run ends with the same average as a straight one."""
    over = {"ema_decay": 0.5, "keep_snapshots": True}
    straight = _fit(_cfg(tmp_path, "straight", **over))
    _fit(_cfg(tmp_path, "split", max_steps=2, **over))
    resumed = _fit(_cfg(tmp_path, "split", resume_checkpoint="last", **over))
    for a, b in zip(straight.generator_ema.state_dict().items(), resumed.generator_ema.state_dict().items(),
                    strict=True):
        assert a[0] == b[0]
        torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-6, msg=a[0])
    run = tmp_path / "straight"
    exported = load_checkpoint(run / "generator_ema.safetensors")
    assert exported.checkpoint_metadata["steps"] == 4 and exported.checkpoint_metadata["ema_decay"] == 0.5
    assert "psnr" in exported.checkpoint_metadata["val"]
    for key, value in straight.generator_ema.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value)
    assert (run / "snapshots" / "generator_ema_000002.safetensors").is_file()
    assert load_image(run / "samples" / "step_000004_ema.png").rgb.shape == (4 * 32, 4 * 32, 3)
    moved = [k for k, v in straight.generator.state_dict().items()
             if v.dtype.is_floating_point and not torch.allclose(v, straight.generator_ema.state_dict()[k])]
    assert moved  # the average lags the trained weights


def test_resume_refuses_to_switch_the_weight_average_on_or_off(tmp_path):
    _fit(_cfg(tmp_path, "plain", max_steps=2))
    with pytest.raises(ValueError, match="trained without a weight average"):
        _fit(_cfg(tmp_path, "plain", ema_decay=0.9, resume_checkpoint="last"))
    _fit(_cfg(tmp_path, "averaged", max_steps=2, ema_decay=0.9))
    with pytest.raises(ValueError, match=r"trained with a weight average \(ema_decay 0.9\)"):
        _fit(_cfg(tmp_path, "averaged", resume_checkpoint="last"))


def test_conditional_discriminator_needs_a_guided_generator(tmp_path):
    d = {"cnum": 4, "guide_channels": 1}
    with pytest.raises(ValueError, match="guide_channels: 1 shows the discriminator"):
        load_config(None, {"data.kind": "mnist", "model": "deepfill_v2", "discriminator": d})  # no sketch
    with pytest.raises(ValueError, match="guide_channels: 1 shows the discriminator"):
        load_config(None, {"data.kind": "mnist", "model": "pconv_unet", "discriminator": d})  # no landmark guide
    with pytest.raises(ValueError, match="got model 'pconv_unet', guide_channels 2"):
        load_config(None, {"data.kind": "mnist", "model": "pconv_unet", "model_kwargs": {"landmark_guide": True},
                           "discriminator": {"cnum": 4, "guide_channels": 2}})
    assert load_config(None, {"data.kind": "mnist", "model": "deepfill_v2", "model_kwargs": {"sketch": True},
                              "discriminator": d}).discriminator == d


def test_conditional_discriminator_trains_on_the_generator_s_guide(tmp_path, monkeypatch):
    """With ``discriminator.guide_channels: 1`` every discriminator call, in its warm-up and after,
    gets the very drawing the generator was given for that batch, and the saved discriminator
    carries the option (a resume with another discriminator is refused by its kwargs)."""
    from unmasked.models.deepfill_v2 import SNPatchGAN
    from unmasked.models.pconv_unet import PConvUNet
    from unmasked.training.module import load_discriminator

    given, seen = [], []
    gen_forward, d_forward = PConvUNet.forward, SNPatchGAN.forward

    def spy_gen(self, image, mask, reference=None, guide=None):
        given.append(guide)
        return gen_forward(self, image, mask, reference, guide)

    def spy_d(self, image, mask, guide=None):
        seen.append(guide)
        return d_forward(self, image, mask, guide)

    monkeypatch.setattr(PConvUNet, "forward", spy_gen)
    monkeypatch.setattr(SNPatchGAN, "forward", spy_d)
    root, cache = _face_folder(tmp_path)
    cfg = _cfg(tmp_path, "cond", model="pconv_unet", discriminator={"cnum": 4, "guide_channels": 1}, **{
        "model_kwargs": {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32, "landmark_guide": True},
        "loss": "pconv", "data.kind": "identity", "data.root": str(root), "data.landmarks_cache": str(cache),
        "masks.kinds": {"face": 1.0}, "max_steps": 3, "d_pretrain": 1, "d_every": 1, "val_images": 2})
    module = _fit(cfg)
    assert len(seen) == 2 + 2 * 3  # warm-up: photo + fill; each later step: photo + fill (D), fill (G)
    assert all(g is not None and g.shape[1:] == (1, 32, 32) and g.sum() > 0 for g in seen)
    ids = {id(g) for g in given if g is not None}
    assert all(id(g) in ids for g in seen)  # the batch's own drawing, not another
    kwargs = {"cnum": 4, "guide_channels": 1}
    assert module.discriminator.guide_channels == 1
    assert load_discriminator(tmp_path / "cond" / "discriminator.safetensors", kwargs)["net.0.parametrizations.weight.original"].shape[1] == 5
    with pytest.raises(ValueError, match="holds a discriminator with"):
        load_discriminator(tmp_path / "cond" / "discriminator.safetensors", {"cnum": 4})

    # benchmarks/discriminator_guide.py reads such a run: five scores, the first the reference
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "discriminator_guide.py"
    spec = importlib.util.spec_from_file_location("discriminator_guide", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.probe(tmp_path / "cond")
    assert [r[0] for r in rows][0] == "photo, its own drawing" and len(rows) == 5
    assert rows[0][2] == 0.0 and all(r[1] == r[1] for r in rows)  # no photo above itself; no NaN


def test_mismatched_guide_moves_the_next_photo_s_drawing_inside_the_hole_only():
    from unmasked.training.module import mismatched_guide

    guide = torch.zeros(3, 1, 128, 128)
    guide[0, 0, 100, 10] = 1.0  # in the hole
    guide[1, 0, 90, 20] = 2.0
    guide[2, 0, 80, 30] = 3.0
    guide[:, 0, 30, 64] = 5.0  # above the hole: each keeps its own
    mask = torch.zeros(3, 1, 128, 128)
    mask[:, :, 64:] = 1.0
    wrong = mismatched_guide(guide, mask)
    hits = [sorted((tuple(i[1:]), float(wrong[n][tuple(i)])) for i in wrong[n].nonzero().tolist()) for n in range(3)]
    assert hits[0] == [((30, 64), 5.0), ((96, 20), 2.0)]  # photo 1's, 6 px down
    assert hits[1] == [((30, 64), 5.0), ((74, 30), 3.0)]  # photo 2's, 6 px up
    assert hits[2] == [((30, 64), 5.0), ((106, 10), 1.0)]  # photo 0's (it wraps), down
    half = mismatched_guide(guide[:, :, ::2, ::2], mask[:, :, ::2, ::2])
    assert half[0, 0, 48, 10] == 2.0  # 3 px at 64 px


def test_d_mismatch_is_checked(tmp_path):
    guided = {"data.kind": "mnist", "model": "pconv_unet", "model_kwargs": {"landmark_guide": True}}
    with pytest.raises(ValueError, match="d_mismatch needs a conditional discriminator"):
        load_config(None, {**guided, "discriminator": {"cnum": 4}, "d_mismatch": 0.5})
    with pytest.raises(ValueError, match=r"d_mismatch must be in \[0, 1\], got 1.5"):
        load_config(None, {**guided, "discriminator": {"cnum": 4, "guide_channels": 1}, "d_mismatch": 1.5})
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        load_config(None, {**guided, "discriminator": {"cnum": 4, "guide_channels": 1}, "d_mismatch": 0.5,
                           "batch_size": 1})


def test_d_mismatch_loss_has_known_value(tmp_path):
    """The matching-aware hinge loss: relu(1 - real) + (1 - w) relu(1 + fake) + w relu(1 + photo with
    the mismatched guide), the last scored on exactly :func:`mismatched_guide`'s drawing."""
    from unmasked.training.module import InpaintingModule, mismatched_guide

    kwargs = {"base_channels": 4, "max_channels": 8, "depth": 3, "working_size": 32, "landmark_guide": True}
    module = InpaintingModule(_cfg(tmp_path, "mm", model="pconv_unet", model_kwargs=kwargs, loss="pconv",
                                   discriminator={"cnum": 4, "guide_channels": 1}, d_mismatch=0.25))
    photo, fill = torch.zeros(2, 3, 32, 32), torch.ones(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 16:, :] = 1
    guide = torch.zeros(2, 1, 32, 32)
    guide[0, 0, 20, 5], guide[1, 0, 24, 9] = 1.0, 1.0
    calls = []

    class Judge(torch.nn.Module):
        guide_channels = 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, image, m, g):
            calls.append(g)
            if image.mean() > 0:
                return self.w + 0.2  # the fill (composited into the photo)
            return self.w + (0.5 if torch.equal(g, guide) else -0.3)

    module.discriminator = Judge()
    losses = []
    module.manual_backward = lambda loss: losses.append(float(loss.detach())) or loss.backward()
    opt = torch.optim.SGD(module.discriminator.parameters(), lr=0.0)
    module.discriminator_step(opt, photo, mask, fill, guide)
    assert losses[0] == pytest.approx(0.5 + 0.75 * 1.2 + 0.25 * 0.7)
    torch.testing.assert_close(calls[2], mismatched_guide(guide, mask))
    module.cfg.d_mismatch = 0.0
    module.discriminator_step(opt, photo, mask, fill, guide)
    assert losses[1] == pytest.approx(0.5 + 1.2) and len(calls) == 5

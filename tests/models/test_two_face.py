"""Two-Face model: equals its DeepFill v2 at initialisation, uses the reference once trained, local crops."""

import pytest
import torch

from unmasked import create_model
from unmasked.models.two_face import crop_around_holes


def _inputs(n=2, size=32):
    torch.manual_seed(0)
    image = torch.rand(n, 3, size, size) * 2 - 1
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 12:24, 8:20] = 1
    return image, mask


def test_zero_initialised_fusion_reproduces_the_deepfill_it_starts_from():
    image, mask = _inputs()
    deepfill = create_model("deepfill_v2", cnum=8, working_size=32).eval()
    model = create_model("two_face", cnum=8, working_size=32).eval()
    model.load_inpainter(deepfill.state_dict())
    with torch.no_grad():
        ref = deepfill(image, mask)
        with_reference = model(image, mask, reference=torch.rand_like(image))
        without = model(image, mask)
    torch.testing.assert_close(with_reference.image, ref.image, rtol=0, atol=1e-6)
    torch.testing.assert_close(with_reference.coarse, ref.coarse, rtol=0, atol=1e-6)
    assert torch.equal(without.image, ref.image)


def test_zero_initialised_fusion_learns_and_then_the_reference_changes_the_fill():
    image, mask = _inputs()
    model = create_model("two_face", cnum=8, working_size=32)
    out = model(image * (1 - mask), mask, reference=image)
    (out.image - image).abs().mean().backward()
    for fusion in (model.fuse_coarse, model.fuse_refine):
        assert fusion.mix.weight.grad.abs().sum() > 0  # zero init still gets a gradient
        torch.nn.init.normal_(fusion.mix.weight, std=0.05)  # as if trained
    model.eval()
    reference = image.clone().requires_grad_()
    model(image, mask, reference=reference).image.sum().backward()
    assert reference.grad.abs().sum() > 0
    with torch.no_grad():
        a = model(image, mask, reference=image).image
        # the hole pixels were zeroed: changing them cannot change anything
        c = model(image * (1 - mask) + 5 * mask, mask, reference=image).image
    torch.testing.assert_close(a, c)


def test_at_initialisation_the_fill_does_not_depend_on_the_reference():
    image, mask = _inputs()
    model = create_model("two_face", cnum=8, working_size=32)
    reference = image.clone().requires_grad_()
    model(image, mask, reference=reference).image.sum().backward()
    assert reference.grad is not None and reference.grad.abs().sum() == 0


def test_reference_shape_is_checked():
    image, mask = _inputs()
    model = create_model("two_face", cnum=8, working_size=32)
    with pytest.raises(ValueError, match="reference must have shape"):
        model(image, mask, reference=image[:1])


def test_crop_around_holes_centres_on_the_hole_and_stays_inside():
    images = torch.arange(2 * 1 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 6:10, 6:10] = 1  # centre (8, 8) -> rows/cols 4..12
    mask[1, :, 0:2, 14:16] = 1  # top-right corner -> clamped to rows 0..8, cols 8..16
    crops = crop_around_holes(images, mask, 8)
    assert torch.equal(crops[0], images[0, :, 4:12, 4:12])
    assert torch.equal(crops[1], images[1, :, 0:8, 8:16])
    with pytest.raises(ValueError, match="larger than the image"):
        crop_around_holes(images, mask, 32)


def _two_face_cfg(tmp_path, **over):
    from unmasked.training.config import load_config

    values = {
        "name": "tf", "out_dir": str(tmp_path), "model": "two_face",
        "model_kwargs": {"cnum": 4, "working_size": 32}, "discriminator": {"cnum": 4}, "d_every": 1,
        "data.kind": "mnist", "data.size": 32, "masks.bank_size": 32, "batch_size": 2, "max_steps": 6,
        "ckpt_every": 3, "num_workers": 0, "val_images": 4, "log_every": 1,
        "curriculum": {"local_adv": 2, "global_adv": 4, "identity": 5, "d_warmup": 1},
    }
    values.update(over)
    return load_config(None, values)


def test_curriculum_switches_terms_on_in_stages_and_logs_them(tmp_path):
    import csv

    from unmasked.checkpoint import save_checkpoint
    from unmasked.models.face_identity import build_student
    from unmasked.training.fit import fit

    embedder = save_checkpoint(build_student(), tmp_path / "embedder.safetensors")
    module = fit(_two_face_cfg(tmp_path, identity_network=str(embedder)), enable_progress_bar=False)
    assert module.steps_done == 6
    on = [module.active(s) for s in range(6)]
    assert [module.stage(s) for s in range(6)] == [0, 0, 1, 1, 2, 3]
    assert [o["train_local_d"] for o in on] == [False, True, True, True, True, True]  # 1 step of warm-up
    assert [o["train_global_d"] for o in on] == [False, False, False, True, True, True]
    rows = list(csv.DictReader(open(tmp_path / "tf" / "logs" / "metrics.csv")))
    rows = [r for r in rows if r.get("curriculum/stage")]
    assert [float(r["curriculum/stage"]) for r in rows] == [0, 0, 1, 1, 2, 3]
    # a term is logged exactly from the step it switches on
    for term, first in (("g/local_adv", 2), ("g/global_adv", 4), ("g/identity", 5), ("d/local", 1), ("d/global", 3)):
        assert [bool(r[term]) for r in rows] == [i >= first for i in range(6)], term
    # the batches carry a reference: a different image of the same digit
    sample = module.train_samples[(0, 0)]
    assert sample["reference"].shape == sample["image"].shape
    assert not torch.equal(sample["reference"], sample["image"])
    # validation references are other images with the same label
    assert module.val_references.shape == module.val_images.shape


def test_two_face_starts_from_a_trained_deepfill_and_rejects_a_different_width(tmp_path):
    from unmasked.checkpoint import save_checkpoint
    from unmasked.training.two_face import TwoFaceModule

    deepfill = create_model("deepfill_v2", cnum=4, working_size=32)
    path = save_checkpoint(deepfill, tmp_path / "df.safetensors")
    module = TwoFaceModule(_two_face_cfg(tmp_path, init_from={"generator": str(path)}))
    for k, v in deepfill.state_dict().items():
        assert torch.equal(module.generator.inpainter.state_dict()[k], v), k
    wide = save_checkpoint(create_model("deepfill_v2", cnum=8, working_size=32), tmp_path / "wide.safetensors")
    with pytest.raises(ValueError, match="holds deepfill_v2"):
        TwoFaceModule(_two_face_cfg(tmp_path, init_from={"generator": str(wide)}))

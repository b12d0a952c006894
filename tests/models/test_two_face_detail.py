"""TwoFace's full-resolution reference detail head and training only it (``train_only``)."""

import pytest
import torch

from unmasked.models.two_face import TwoFace


def _batch(seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, 8:24, 6:26] = 1
    reference = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    return image, mask, reference


def test_detail_head_starts_as_the_model_it_grows_from_and_changes_only_the_hole():
    torch.manual_seed(0)
    plain = TwoFace(cnum=8, attention=False, working_size=32).eval()
    grown = TwoFace(cnum=8, attention=False, working_size=32, detail=True).eval()
    grown.load_stage_state(plain.state_dict(), {"cnum": 8, "attention": False, "working_size": 32})
    image, mask, reference = _batch()
    with torch.no_grad():
        a = plain(image * (1 - mask), mask, reference=reference).image
        b = grown(image * (1 - mask), mask, reference=reference).image
        assert torch.equal(a, b)  # zero-initialised last layer: the shipped function exactly
        torch.nn.init.normal_(grown.reference_detail.net[-1].weight, std=0.1)
        c = grown(image * (1 - mask), mask, reference=reference).image
        no_ref = grown(image * (1 - mask), mask).image
    changed = (c - a).abs().sum(1, keepdim=True) > 0
    assert changed.any() and not (changed & (mask == 0)).any()
    assert torch.equal(no_ref, plain(image * (1 - mask), mask).image)  # no reference: no head
    # a model with the head does not load into one without it
    with pytest.raises(RuntimeError):
        plain.load_stage_state(grown.state_dict(), {"detail": True})


def test_train_only_freezes_all_but_the_named_parameters(tmp_path, identity_folder):
    from unmasked.training.config import config_from_dict
    from unmasked.training.two_face import TwoFaceModule

    base = {"name": "t", "model": "two_face", "model_kwargs": {"cnum": 8, "attention": False, "working_size": 32,
                                                                "detail": True},
            "loss": "deepfill", "loss_weights": {"perceptual": 0.0},
            "data": {"kind": "identity", "root": str(identity_folder), "size": 32}, "out_dir": str(tmp_path)}
    module = TwoFaceModule(config_from_dict({**base, "train_only": ["reference_detail."]}))
    trained = {n for n, p in module.generator.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("reference_detail.") for n in trained)
    assert sum(p.numel() for p in module.generator_parameters()) == sum(
        p.numel() for p in module.generator.reference_detail.parameters())
    with pytest.raises(ValueError, match="matches no parameter"):
        TwoFaceModule(config_from_dict({**base, "train_only": ["nothing."]}))
    with pytest.raises(ValueError, match="reference_dropout"):
        config_from_dict({**base, "train_only": ["reference_detail."], "reference_dropout": 0.3})


def test_detail_head_on_the_plain_fill_drops_the_fusion():
    torch.manual_seed(0)
    fused = TwoFace(cnum=8, attention=False, working_size=32)
    plain = TwoFace(cnum=8, attention=False, working_size=32, detail=True, fusion=False).eval()
    plain.load_stage_state(fused.state_dict(), {"cnum": 8, "attention": False, "working_size": 32})
    assert not any(k.startswith(("reference_encoder.", "fuse_")) for k in plain.state_dict())
    image, mask, reference = _batch(1)
    with torch.no_grad():  # the zero-initialised head: exactly the inpainter's fill
        out = plain(image * (1 - mask), mask, reference=reference).image
        assert torch.equal(out, fused.inpainter.eval()(image * (1 - mask), mask).image)
    with pytest.raises(ValueError, match="needs a reference path"):
        TwoFace(cnum=8, detail=False, fusion=False)


def test_draw_strands_marks_thin_lines_reproducibly_and_only_at_its_share():
    import numpy as np

    from unmasked.training.two_face import draw_strands

    ref = torch.zeros(6, 3, 128, 128)
    a = draw_strands(ref, np.random.default_rng(3), 1.0)
    b = draw_strands(ref, np.random.default_rng(3), 1.0)
    assert torch.equal(a, b) and torch.equal(ref, torch.zeros_like(ref))  # seeded; the input is untouched
    touched = (a != 0).any(dim=1).float().mean(dim=(1, 2))
    assert (touched > 0.003).all() and (touched < 0.15).all()  # every image, with thin lines only
    assert torch.equal(draw_strands(ref, np.random.default_rng(3), 0.0), ref)
    assert a.min() >= -1 and a.max() <= 1

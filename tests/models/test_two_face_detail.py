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


def test_mirror_agreement_keeps_only_what_both_residuals_agree_on():
    from unmasked.models.two_face import mirror_agreement

    a = torch.tensor([0.3, -0.2, 0.1, 0.5, 0.0])
    b = torch.tensor([0.1, -0.4, -0.1, 0.6, 0.2])
    torch.testing.assert_close(mirror_agreement(a, b), torch.tensor([0.1, -0.2, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(mirror_agreement(a, b), mirror_agreement(b, a))


def test_mirror_agreement_model_drops_what_only_one_orientation_of_the_reference_gives():
    """With a symmetric reference both runs agree, so the output is the plain head's; a detail on one
    side of the reference alone cannot reach the fill. Pixels outside the hole are untouched."""
    from unmasked import create_model

    torch.manual_seed(0)
    kw = dict(cnum=8, working_size=32, attention=False, detail=True, fusion=False)
    plain = create_model("two_face", **kw).eval()
    torch.nn.init.normal_(plain.reference_detail.net[-1].weight, std=0.2)  # a head that does something
    mirror = create_model("two_face", **kw, mirror_agreement=True).eval()
    mirror.load_state_dict(plain.state_dict())
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    half = torch.rand(1, 3, 32, 16) * 2 - 1
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(mirror(image, mask, symmetric).image, plain(image, mask, symmetric).image)
        one_sided = symmetric.clone()
        one_sided[..., 10:22, 2:12] = 1.0  # a bright patch on one side only
        base = plain(image, mask).image
        out_plain, out_mirror = plain(image, mask, one_sided).image, mirror(image, mask, one_sided).image
    assert (out_mirror - base).abs().sum() < (out_plain - base).abs().sum()
    assert torch.equal((out_mirror - base)[..., mask[0, 0] == 0], torch.zeros_like((out_mirror - base)[..., mask[0, 0] == 0]))
    with pytest.raises(ValueError, match="needs detail=True"):
        create_model("two_face", cnum=8, working_size=32, mirror_agreement=True)

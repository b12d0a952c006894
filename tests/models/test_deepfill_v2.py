"""DeepFill v2 generator, SN-PatchGAN discriminator and hinge losses (tiny widths, CPU)."""

import pytest
import torch
from torch.nn.utils import parametrize

from unmasked.checkpoint import load_checkpoint, save_checkpoint
from unmasked.layers import ContextualAttention
from unmasked.losses import hinge_d_loss, hinge_g_loss
from unmasked.models.deepfill_v2 import DeepFillV2, SNPatchGAN
from unmasked.registry import create_model, list_models

CNUM = 8  # 4 feature maps after the first gated conv


def _inputs(n=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    # a different rectangular hole per sample, so each sample has valid and hole patches
    for i in range(n):
        top, left = 8 + 8 * i, 16 + 4 * i
        mask[i, :, top : top + h // 3, left : left + w // 3] = 1
    return image, mask


def _model(**kwargs):
    torch.manual_seed(0)
    return DeepFillV2(cnum=CNUM, **kwargs)


@pytest.fixture(scope="module")
def model():
    return _model().eval()


# --------------------------------------------------------------------------- generator


def test_registered_with_pipeline_attributes():
    assert "deepfill_v2" in list_models()
    m = create_model("deepfill_v2", cnum=CNUM, working_size=128)
    assert isinstance(m, DeepFillV2)
    assert m.multiple == 8 and m.working_size == 128
    assert DeepFillV2(cnum=CNUM).working_size == 256


@pytest.mark.parametrize("h, w", [(64, 64), (96, 128)])
def test_shapes_range_and_finite(model, h, w):
    image, mask = _inputs(2, h, w)
    with torch.no_grad():
        out = model(image, mask)
    for t in (out.image, out.coarse):
        assert t.shape == (2, 3, h, w)
        assert torch.isfinite(t).all()
        assert t.min() >= -1 and t.max() <= 1


def test_rejects_bad_sizes(model):
    image, mask = _inputs(1, 60, 64)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(image, mask)
    image, mask = _inputs(1, 64, 64)
    with pytest.raises(ValueError, match="mask"):
        model(image, mask[:, :, :32])
    with pytest.raises(ValueError, match="multiple of 4"):
        DeepFillV2(cnum=10)


def test_gradient_reaches_first_conv_and_attention_branch():
    m = _model().train()
    image, mask = _inputs(2, 64, 64)
    out = m(image, mask)
    (out.image.square().mean() + out.coarse.square().mean()).backward()

    def grad_norm(module):
        return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)

    assert grad_norm(m.coarse.conv1) > 0
    # pmconv6 feeds only the attention layer, so its gradient must pass through attention
    for name, layer in m.refine_attention_encoder.named_children():
        assert grad_norm(layer) > 0, name
    for name, layer in m.refine_attention_decoder.named_children():
        assert grad_norm(layer) > 0, name
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_attention_ablation_keeps_checkpoint_keys():
    m = _model(attention=False).eval()
    assert not any(isinstance(x, ContextualAttention) for x in m.modules())
    assert any(isinstance(x, ContextualAttention) for x in _model().modules())
    assert m.state_dict().keys() == _model().state_dict().keys()
    image, mask = _inputs(2, 64, 64)
    with torch.no_grad():
        out = m(image, mask)
    assert out.image.shape == (2, 3, 64, 64) and torch.isfinite(out.image).all()


def test_batch_samples_are_independent(model):
    image, mask = _inputs(2, 64, 64)
    assert not torch.equal(mask[0], mask[1])
    with torch.no_grad():
        batch = model(image, mask)
        for i in range(2):
            alone = model(image[i : i + 1], mask[i : i + 1])
            torch.testing.assert_close(batch.image[i : i + 1], alone.image, atol=1e-5, rtol=0)
            torch.testing.assert_close(batch.coarse[i : i + 1], alone.coarse, atol=1e-5, rtol=0)


def test_output_ignores_hole_pixels(model):
    image, mask = _inputs(2, 64, 64)
    changed = torch.where(mask.bool(), torch.rand_like(image) * 2 - 1, image)
    assert not torch.equal(changed, image)
    with torch.no_grad():
        a, b = model(image, mask), model(changed, mask)
    assert torch.equal(a.image, b.image)
    assert torch.equal(a.coarse, b.coarse)


def test_channels_last_matches_default(model):
    image, mask = _inputs(2, 64, 64)
    m_cl = _model().eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(image, mask)
        out = m_cl(
            image.contiguous(memory_format=torch.channels_last), mask.contiguous(memory_format=torch.channels_last)
        )
    torch.testing.assert_close(out.image, ref.image, atol=1e-5, rtol=0)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    m = create_model("deepfill_v2", cnum=CNUM, working_size=128).eval()
    path = save_checkpoint(m, tmp_path / "deepfill.safetensors")
    loaded = load_checkpoint(path)
    assert isinstance(loaded, DeepFillV2) and loaded.working_size == 128 and loaded.cnum == CNUM
    for key, value in m.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    image, mask = _inputs(1, 64, 64)
    with torch.no_grad():
        assert torch.equal(m(image, mask).image, loaded(image, mask).image)


# --------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("size, cells", [(64, 1), (128, 2)])
def test_discriminator_output_shape(size, cells):
    d = SNPatchGAN(cnum=8)
    image, mask = _inputs(2, size, size)
    scores = d(image, mask)
    assert scores.shape == (2, 32, cells, cells)
    assert torch.isfinite(scores).all()


def test_discriminator_spectral_norm_on_all_convs():
    d = SNPatchGAN(cnum=8)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert [c.out_channels for c in convs] == [8, 16, 32, 32, 32, 32]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) and c.padding == (2, 2) for c in convs)
    assert convs[0].in_channels == 4  # RGB + mask


def test_conditional_discriminator_sees_the_guide():
    """``guide_channels``: the guide is a fifth input channel, so two guides give two scores for the
    same image; a missing or mis-shaped guide is refused; without it the discriminator is as before."""
    torch.manual_seed(0)
    d = SNPatchGAN(cnum=8, guide_channels=1).eval()
    assert [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)][0].in_channels == 5
    image, mask = _inputs(2, 64, 64)
    lines = torch.zeros(2, 1, 64, 64)
    lines[:, :, 40, 20:44] = 1.0  # a drawn mouth
    with torch.no_grad():
        with_mouth, without = d(image, mask, lines), d(image, mask, torch.zeros_like(lines))
    assert with_mouth.shape == (2, 32, 1, 1)
    assert (with_mouth - without).abs().max() > 1e-4
    for bad in (None, torch.zeros(2, 2, 64, 64), torch.zeros(2, 1, 32, 32)):
        with pytest.raises(ValueError, match=r"takes a guide of shape \(N, 1, H, W\)"):
            d(image, mask, bad)
    with pytest.raises(ValueError, match="guide_channels must be >= 0"):
        SNPatchGAN(cnum=8, guide_channels=-1)
    plain = SNPatchGAN(cnum=8)
    assert plain.guide_channels == 0 and plain(image, mask).shape == (2, 32, 1, 1)


def test_hinge_losses_exact():
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-2.0, 0.5])
    # mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, .5])) = mean(0, .5) + mean(0, 1.5)
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.25 + 0.75)
    assert hinge_g_loss(fake).item() == pytest.approx(0.75)
    # shape-agnostic: a patch map gives the same as its flattened form
    maps = torch.randn(2, 3, 2, 2)
    assert hinge_g_loss(maps).item() == pytest.approx(hinge_g_loss(maps.flatten(1)).item())


def test_hinge_d_loss_gradient_stops_at_margin():
    real = torch.tensor([2.0, 0.5], requires_grad=True)
    fake = torch.tensor([-2.0, 0.5], requires_grad=True)
    hinge_d_loss(real, fake).backward()
    # beyond the margin (real > 1, fake < -1) there is no gradient
    assert real.grad.tolist() == [0.0, -0.5]
    assert fake.grad.tolist() == [0.0, 0.5]

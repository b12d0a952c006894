"""The Partial Convolutions U-Net (Liu et al., ECCV 2018) on a tiny configuration."""

import pytest
import torch
from torch import nn

import unmasked.models.pconv_unet  # noqa: F401  (registers "pconv_unet")
from unmasked import create_model
from unmasked.checkpoint import load_checkpoint, save_checkpoint
from unmasked.models.base import InpaintOutput
from unmasked.models.pconv_unet import PConvUNet

TINY = {"base_channels": 8, "max_channels": 16, "depth": 3, "working_size": 32}


def _model(**kw):
    torch.manual_seed(0)
    return create_model("pconv_unet", **{**TINY, **kw})


def _inputs(n=2, h=40, w=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[..., 10:22, 5:15] = 1
    mask[0, :, 30:34, 18:23] = 1
    return image, mask


def test_architecture_follows_the_paper():
    model = PConvUNet()  # paper defaults at 256x256: depth 7, 64 -> 512 channels
    assert model.multiple == 128 and model.working_size == 256
    assert [b.conv.kernel_size[0] for b in model.encoder] == [7, 5, 5, 3, 3, 3, 3]
    assert [b.conv.out_channels for b in model.encoder] == [64, 128, 256, 512, 512, 512, 512]
    assert [b.conv.stride[0] for b in model.encoder] == [2] * 7
    assert isinstance(model.encoder[0].bn, nn.Identity)
    assert all(isinstance(b.bn, nn.BatchNorm2d) for b in model.encoder[1:])
    assert all(isinstance(b.act, nn.ReLU) for b in model.encoder)
    assert all(b.conv.multi_channel and b.conv.kernel_size == (3, 3) for b in model.decoder)
    assert all(isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in model.decoder[1:])
    last = model.decoder[0]  # concatenates the input image, no BN / activation, 3 channels out
    assert last.conv.in_channels == 64 + 3 and last.conv.out_channels == 3
    assert isinstance(last.bn, nn.Identity) and isinstance(last.act, nn.Identity)
    assert model.decoder[6].conv.in_channels == 512 + 512


def test_output_shape_range_and_finiteness_at_odd_multiples():
    model = _model().eval()
    assert model.multiple == 8 and model.working_size == 32
    image, mask = _inputs(h=40, w=24)  # 5 x 8 and 3 x 8
    with torch.no_grad():
        out = model(image, mask)
    assert isinstance(out, InpaintOutput)
    assert out.image.shape == (2, 3, 40, 24)
    assert torch.isfinite(out.image).all() and out.image.abs().max() <= 1


def test_input_not_a_multiple_is_refused():
    model = _model().eval()
    image, mask = _inputs(h=36, w=24)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(image, mask)


def test_gradient_reaches_the_first_layer():
    model = _model().train()
    image, mask = _inputs()
    model(image, mask).image.square().mean().backward()
    grad = model.encoder[0].conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("upsample_mode", ["nearest", "bilinear"])
def test_prediction_ignores_hole_content(upsample_mode):
    model = _model(upsample_mode=upsample_mode).eval()  # BN on running stats: deterministic per sample
    image, mask = _inputs()
    other = torch.where(mask.bool(), torch.rand_like(image) * 2 - 1, image)
    with torch.no_grad():
        a = model(image, mask).image
        b = model(other, mask).image
        # sanity: a change in a known pixel does change the prediction
        known = image.clone()
        known[..., 0, 0] = -known[..., 0, 0]
        c = model(known, mask).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_channels_last_input_gives_the_same_prediction():
    model = _model().eval()
    image, mask = _inputs()
    with torch.no_grad():
        ref = model(image, mask).image
        out = model(image.to(memory_format=torch.channels_last), mask.to(memory_format=torch.channels_last)).image
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_freeze_encoder_bn_keeps_encoder_stats_and_learns_affine():
    model = _model(freeze_encoder_bn=True).train()
    enc_bn = [b.bn for b in model.encoder if isinstance(b.bn, nn.BatchNorm2d)]
    dec_bn = [b.bn for b in model.decoder if isinstance(b.bn, nn.BatchNorm2d)]
    assert enc_bn and dec_bn
    assert not any(bn.training for bn in enc_bn) and all(bn.training for bn in dec_bn)
    enc_before = [bn.running_mean.clone() for bn in enc_bn]
    dec_before = [bn.running_mean.clone() for bn in dec_bn]
    image, mask = _inputs()
    model(image, mask).image.mean().backward()
    assert all(torch.equal(bn.running_mean, m) for bn, m in zip(enc_bn, enc_before, strict=True))
    assert all(not torch.equal(bn.running_mean, m) for bn, m in zip(dec_bn, dec_before, strict=True))
    assert all(bn.weight.requires_grad and bn.weight.grad is not None for bn in enc_bn)
    # without the freeze the encoder statistics move
    free = _model().train()
    bn = free.encoder[1].bn
    before = bn.running_mean.clone()
    free(image, mask)
    assert not torch.equal(bn.running_mean, before)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model = _model(freeze_encoder_bn=True)
    image, mask = _inputs()
    model.train()
    model(image, mask)  # move the decoder BN statistics away from their init
    model.eval()
    path = save_checkpoint(model, tmp_path / "pconv.safetensors")
    loaded = load_checkpoint(path)
    assert isinstance(loaded, PConvUNet) and loaded.multiple == 8 and loaded.freeze_encoder_bn
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    with torch.no_grad():
        assert torch.equal(model(image, mask).image, loaded(image, mask).image)


def test_bilinear_upsampling_is_a_switch_on_the_same_weights():
    nearest = _model().eval()
    bilinear = _model(upsample_mode="bilinear").eval()
    bilinear.load_state_dict(nearest.state_dict(), strict=True)  # no parameter of its own
    image, mask = _inputs()
    with torch.no_grad():
        a, b = nearest(image, mask).image, bilinear(image, mask).image
    assert not torch.equal(a, b) and b.abs().max() <= 1


def test_clamp_output_activation():
    model = _model(output_activation="clamp").eval()
    image, mask = _inputs()
    with torch.no_grad():
        out = model(image, mask).image
    assert out.abs().max() <= 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bogus": 1}, "bad arguments"),
        ({"depth": 0}, "depth"),
        ({"depth": 6}, "working_size"),  # 32 is not a multiple of 2**6
        ({"max_channels": 4}, "base_channels"),
        ({"output_activation": "sigmoid"}, "output_activation"),
        ({"upsample_mode": "bicubic"}, "upsample_mode"),
    ],
)
def test_bad_kwargs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("pconv_unet", **{**TINY, **kwargs})


# --------------------------------------------------------------------------- landmark guidance


def test_landmark_guide_grown_from_unguided_weights_starts_as_them():
    plain = _model().eval()
    guided = _model(landmark_guide=True)
    guided.load_stage_state(plain.state_dict(), dict(TINY))
    guided.eval()
    image, mask = _inputs(h=32, w=32)
    guide = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(plain(image, mask).image, guided(image, mask, guide=guide).image)
        # once the injections are trained the guide steers the fill, inside the hole
        for conv in guided.guide_inject:
            nn.init.normal_(conv.weight, std=0.1)
        a = guided(image, mask, guide=guide).image
        b = guided(image, mask, guide=torch.zeros_like(guide)).image
    assert (a - b)[mask.expand_as(a).bool()].abs().mean() > 1e-3


def test_landmark_guide_is_required_and_checked():
    guided = _model(landmark_guide=True).eval()
    image, mask = _inputs(h=32, w=32)
    with pytest.raises(ValueError, match="needs guide"):
        guided(image, mask)
    with pytest.raises(ValueError, match="guide must have shape"):
        guided(image, mask, guide=torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="no landmark guide"):
        _model()(image, mask, guide=torch.zeros(2, 1, 32, 32))
    assert guided.uses_landmarks and not _model().uses_landmarks


def test_guide_blur_softens_the_drawing_inside_the_model():
    import torch.nn.functional as F

    from unmasked.layers.blur import gaussian_kernel

    impulse = torch.zeros(1, 1, 33, 33)
    impulse[..., 16, 16] = 1.0
    soft = F.conv2d(impulse, gaussian_kernel(1.5), padding=gaussian_kernel(1.5).shape[-1] // 2)
    assert soft.sum().item() == pytest.approx(1.0, abs=1e-5)  # a blur, not a gain
    assert soft[..., 16, 16].item() == pytest.approx(1 / (2 * torch.pi * 1.5**2), rel=0.05)  # the Gaussian's peak
    assert torch.allclose(soft, soft.flip(-1)) and torch.allclose(soft, soft.transpose(-1, -2))
    # a blurred model still starts as the unguided weights it grew from
    plain = _model().eval()
    guided = _model(landmark_guide=True, guide_blur=1.5)
    guided.load_stage_state(plain.state_dict(), dict(TINY))
    image, mask = _inputs(h=32, w=32)
    with torch.no_grad():
        assert torch.equal(plain(image, mask).image, guided.eval()(image, mask, guide=torch.rand(2, 1, 32, 32)).image)
    with pytest.raises(ValueError, match="guide_blur"):
        _model(landmark_guide=True, guide_blur=-1.0)

"""DeepFill v2's user-guided mode: the sketch channel, sketches from edges, Chamfer distance, and
the sketch through the pipeline, the Python API, the CLI and training."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from unmasked.api import Inpainter
from unmasked.checkpoint import load_checkpoint, save_checkpoint
from unmasked.cli import main
from unmasked.data.sketch import chamfer_distance, edge_map, edge_sketch, perturb_sketch, training_sketch
from unmasked.evaluation.sketch_eval import evaluate_sketch, format_result, sketch_cases
from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.models.deepfill_v2 import DeepFillV2
from unmasked.pipelines.fill import InputError, fill_array
from unmasked.pipelines.inpaint import inpaint
from unmasked.registry import create_model

SHIPPED = "unmasked/weights/deepfill_v2_faces128.safetensors"


def _inputs(h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, h, w)
    mask[:, :, 16:48, 16:48] = 1
    sketch = torch.zeros(2, 1, h, w)
    sketch[:, :, 32, 8:56] = 1  # a horizontal line, partly outside the hole
    return image, mask, sketch


def _sketch_model(seed=0):
    """The shipped 128² face model widened by a sketch channel with random weights: a randomly
    initialised net reacts to almost nothing, a trained one does (and 64² inputs are fast)."""
    base = load_checkpoint(SHIPPED)
    kwargs = {**base.config["kwargs"], "working_size": 64, "sketch": True}
    model = create_model("deepfill_v2", **kwargs).eval()
    model.load_stage_state(base.state_dict(), base.config["kwargs"])
    g = torch.Generator().manual_seed(seed)
    w = model.coarse.conv1.conv.weight
    with torch.no_grad():
        w[:, 3] = 3 * w[:, :3].std() * torch.randn(w[:, 3].shape, generator=g)
    return model


# --------------------------------------------------------------------------- model


def test_sketch_channel_is_the_fourth_input_and_changes_the_fill():
    model = _sketch_model()
    assert model.uses_sketch and model.coarse.conv1.conv.in_channels == 6
    assert not DeepFillV2(cnum=8).uses_sketch
    image, mask, sketch = _inputs()
    with torch.no_grad():
        plain = model(image * (1 - mask), mask).image
        zeros = model(image * (1 - mask), mask, sketch=torch.zeros_like(mask)).image
        guided = model(image * (1 - mask), mask, sketch=sketch).image
    assert torch.equal(plain, zeros)  # no sketch = an all-zero sketch
    assert (guided - plain).abs().max() > 1e-3


def test_lines_outside_the_hole_are_ignored():
    model = _sketch_model()
    image, mask, sketch = _inputs()
    inside = sketch * mask
    with torch.no_grad():
        a = model(image * (1 - mask), mask, sketch=sketch).image
        b = model(image * (1 - mask), mask, sketch=inside).image
    assert torch.equal(a, b)


def test_a_model_without_the_channel_refuses_a_sketch_and_bad_shapes_are_refused():
    image, mask, sketch = _inputs()
    with pytest.raises(ValueError, match="no sketch channel"):
        DeepFillV2(cnum=8)(image, mask, sketch=sketch)
    with pytest.raises(ValueError, match="sketch must have the mask's shape"):
        _sketch_model()(image, mask, sketch=sketch[:, :, :32])


def test_widening_the_shipped_model_changes_nothing_without_a_sketch():
    base = load_checkpoint(SHIPPED)
    kwargs = base.config["kwargs"]
    wide = create_model("deepfill_v2", **{**kwargs, "sketch": True}).eval()
    wide.load_stage_state({k: v.clone() for k, v in base.state_dict().items()}, kwargs)
    w = wide.coarse.conv1.conv.weight
    assert w.shape[1] == 6 and torch.count_nonzero(w[:, 3]) == 0
    image, mask, sketch = _inputs(128, 128)
    with torch.no_grad():
        assert torch.equal(base(image * (1 - mask), mask).image, wide(image * (1 - mask), mask).image)
        # zero weights: even a drawn sketch changes nothing until the channel is trained
        assert torch.equal(wide(image * (1 - mask), mask).image, wide(image * (1 - mask), mask, sketch=sketch).image)
    with pytest.raises(RuntimeError):  # a sketch-less architecture cannot take the wider weights
        base.load_stage_state(wide.state_dict(), {**kwargs, "sketch": True})


def test_sketch_gain_speeds_up_the_sketch_weights_and_a_gain_change_keeps_the_function(tmp_path):
    model = _sketch_model()
    kwargs = model.config["kwargs"]
    fast = create_model("deepfill_v2", **{**kwargs, "sketch_gain": 10.0}).eval()
    fast.load_stage_state(model.state_dict(), kwargs)
    torch.testing.assert_close(fast.coarse.conv1.conv.weight[:, 3], model.coarse.conv1.conv.weight[:, 3] / 10)
    torch.testing.assert_close(fast.coarse.conv1.conv.weight[:, :3], model.coarse.conv1.conv.weight[:, :3])
    image, mask, sketch = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(fast(image, mask, sketch=sketch).image, model(image, mask, sketch=sketch).image,
                                   atol=1e-5, rtol=1e-5)
    loaded = load_checkpoint(save_checkpoint(fast, tmp_path / "fast.safetensors"))
    assert loaded.sketch_gain == 10.0
    # one Adam step moves every weight by about lr: the sketch's effect on the input grows 10x faster
    for net in (model, fast):
        net.train()
        opt = torch.optim.Adam([net.coarse.conv1.conv.weight], lr=1e-3)
        net(image, mask, sketch=sketch).image.mean().backward()
        opt.step()
    grown = [net.sketch_gain * net.coarse.conv1.conv.weight.detach()[:, 3] for net in (model, fast)]
    start = model.sketch_gain * _sketch_model().coarse.conv1.conv.weight[:, 3]
    steps = [(g - start).abs().max().item() for g in grown]
    assert steps[1] == pytest.approx(10 * steps[0], rel=0.05)
    with pytest.raises(ValueError, match="sketch_gain must be positive"):
        create_model("deepfill_v2", cnum=8, working_size=64, sketch=True, sketch_gain=0)


def test_the_refinement_can_take_the_sketch_too_and_starts_as_the_model_it_grew_from():
    coarse_only = _sketch_model()
    kwargs = coarse_only.config["kwargs"]
    both = create_model("deepfill_v2", **{**kwargs, "sketch_refine": True, "sketch_gain": 10.0}).eval()
    both.load_stage_state(coarse_only.state_dict(), kwargs)
    w = both.refine_conv_branch.xconv1.conv.weight
    assert w.shape[1] == 4 and torch.count_nonzero(w[:, 3]) == 0
    image, mask, sketch = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(both(image, mask, sketch=sketch).image, coarse_only(image, mask, sketch=sketch).image,
                                   atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            w[:, 3] = 0.1
        assert not torch.allclose(both(image, mask, sketch=sketch).image, coarse_only(image, mask, sketch=sketch).image)
        assert torch.equal(both(image, mask).image, coarse_only(image, mask).image)  # no sketch: still the same
    with pytest.raises(ValueError, match="sketch_refine needs sketch=True"):
        create_model("deepfill_v2", cnum=8, working_size=64, sketch_refine=True)


def test_sketch_band_l1_counts_only_the_pixels_near_the_lines():
    from unmasked.training.module import sketch_band_l1

    image = torch.zeros(1, 3, 16, 16)
    sketch = torch.zeros(1, 1, 16, 16)
    sketch[0, 0, 8, 8] = 1  # one line pixel: a 5x5 band with SKETCH_BAND = 2
    pred = torch.zeros(1, 3, 16, 16)
    pred[..., 6:11, 6:11] = 0.5  # wrong by 0.5 in the band
    pred[..., 0, 0] = 1.0  # wrong far from the line: not counted
    assert sketch_band_l1([pred], image, sketch).item() == pytest.approx(0.5)
    assert sketch_band_l1([pred, None, pred], image, sketch).item() == pytest.approx(1.0)
    assert sketch_band_l1([pred], image, torch.zeros_like(sketch)).item() == 0.0


def test_sketch_model_checkpoint_round_trip(tmp_path):
    model = _sketch_model()
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "s.safetensors"))
    assert loaded.uses_sketch
    image, mask, sketch = _inputs()
    with torch.no_grad():
        assert torch.equal(model(image, mask, sketch=sketch).image, loaded(image, mask, sketch=sketch).image)


# --------------------------------------------------------------------------- sketches and Chamfer


def _striped(size=64):
    rgb = np.full((size, size, 3), 40, np.uint8)
    rgb[size // 2 :] = 210  # one strong horizontal edge at the middle
    return rgb


def test_edge_sketch_finds_the_edge_only_inside_the_hole():
    rgb = _striped()
    hole = np.zeros((64, 64), bool)
    hole[16:48, 8:40] = True
    edges = edge_map(rgb)
    rows = np.unique(np.nonzero(edges)[0])
    assert set(rows) <= {31, 32} and edges.sum() >= 60  # a one-pixel line across the image
    sketch = edge_sketch(rgb, hole)
    assert sketch.any() and not (sketch & ~hole).any()
    with pytest.raises(ValueError, match="uint8"):
        edge_map(rgb.astype(np.float32))


def test_chamfer_distance_known_values():
    region = np.ones((40, 40), bool)
    a = np.zeros((40, 40), bool)
    a[10, 5:35] = True
    b = np.zeros((40, 40), bool)
    b[14, 5:35] = True
    assert chamfer_distance(a, a, region) == 0.0
    assert chamfer_distance(a, b, region) == pytest.approx(4.0, abs=0.05)
    assert chamfer_distance(a, b, region) == chamfer_distance(b, a, region)
    assert np.isnan(chamfer_distance(a, np.zeros_like(a), region))
    assert np.isnan(chamfer_distance(a, b, np.zeros_like(region)))


def test_perturbed_and_training_sketches_are_rough_reproducible_and_stay_in_the_hole():
    rgb = _striped()
    hole = np.zeros((64, 64), bool)
    hole[8:56, 8:56] = True
    true = edge_sketch(rgb, hole)
    rough = perturb_sketch(true, np.random.default_rng(1), drop=0.0, breaks=0.2, jitter=1.5)
    assert rough.sum() < true.sum()  # broken
    assert 0 < chamfer_distance(rough, true, hole) < 3  # near the line, not on it
    assert np.array_equal(rough, perturb_sketch(true, np.random.default_rng(1), drop=0.0, breaks=0.2, jitter=1.5))
    kinds = [training_sketch(rgb, hole, np.random.default_rng(s)) for s in range(40)]
    assert all(not (k & ~hole).any() for k in kinds)
    empty = sum(not k.any() for k in kinds)
    assert 3 <= empty <= 20  # about a quarter have no sketch


# --------------------------------------------------------------------------- pipeline, API, CLI


@pytest.fixture
def sketch_ckpt(tmp_path):
    return save_checkpoint(_sketch_model(), tmp_path / "sketchy.safetensors")


def _photo(size=96):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    hole = np.zeros((size, size), bool)
    hole[30:70, 20:80] = True
    lines = np.zeros((size, size), bool)
    lines[50, 10:90] = True
    return rgb, hole, lines


def test_fill_array_follows_the_sketch_and_keeps_known_pixels(sketch_ckpt):
    model = load_checkpoint(sketch_ckpt)
    rgb, hole, lines = _photo(64)
    plain = fill_array(rgb, hole, model).image
    guided = fill_array(rgb, hole, model, sketch=lines).image
    assert np.array_equal(guided[~hole], rgb[~hole])
    assert np.abs(guided.astype(int) - plain.astype(int)).max() > 0
    # a larger image goes crop by crop: the sketch is cropped and resized with the hole
    big_rgb, big_hole, big_lines = (np.kron(a, np.ones((4, 4) + (1,) * (a.ndim - 2), a.dtype)) for a in (rgb, hole, lines))
    big_plain = fill_array(big_rgb, big_hole, model).image
    big_guided = fill_array(big_rgb, big_hole, model, sketch=big_lines).image
    assert np.array_equal(big_guided[~big_hole], big_rgb[~big_hole])
    assert np.abs(big_guided.astype(int) - big_plain.astype(int)).max() > 0


def test_fill_array_refuses_a_sketch_it_cannot_use(sketch_ckpt):
    rgb, hole, lines = _photo(64)
    with pytest.raises(InputError, match="no sketch channel"):
        fill_array(rgb, hole, create_model("telea"), sketch=lines)
    with pytest.raises(InputError, match="sketch size 32x64 does not match image size 64x64"):
        fill_array(rgb, hole, load_checkpoint(sketch_ckpt), sketch=lines[:, :32])
    with pytest.raises(InputError, match="cannot be combined"):
        inpaint(rgb, hole, load_checkpoint(sketch_ckpt), sketch=lines, reference=rgb)


def test_inpainter_takes_a_sketch_file(sketch_ckpt, tmp_path):
    rgb, hole, lines = _photo(64)
    Image.fromarray(lines.astype(np.uint8) * 255).save(tmp_path / "lines.png")
    painter = Inpainter(sketch_ckpt)
    out = np.asarray(painter.fill(rgb, hole, sketch=tmp_path / "lines.png"))
    assert np.array_equal(out, fill_array(rgb, hole, painter.model, sketch=lines).image)
    with pytest.raises(InputError, match="sketch: "):
        painter.fill(rgb, hole, sketch=b"not an image")


def test_cli_fill_with_sketch(sketch_ckpt, tmp_path):
    rgb, hole, lines = _photo(64)
    for name, arr in (("img.png", rgb), ("m.png", hole.astype(np.uint8) * 255), ("s.png", lines.astype(np.uint8) * 255)):
        Image.fromarray(arr).save(tmp_path / name)
    run = CliRunner().invoke
    args = ["fill", str(tmp_path / "img.png"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")]
    ok = run(main, [*args, "--model", str(sketch_ckpt), "--sketch", str(tmp_path / "s.png")])
    assert ok.exit_code == 0, ok.output
    expected = fill_array(rgb, hole, load_checkpoint(sketch_ckpt), sketch=lines).image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), expected)
    refused = run(main, [*args, "--model", "telea", "--sketch", str(tmp_path / "s.png")])
    assert refused.exit_code == 1 and "has no sketch channel" in refused.output and "Traceback" not in refused.output
    both = run(main, [*args, "--sketch", str(tmp_path / "s.png"), "--reference", str(tmp_path / "img.png")])
    assert both.exit_code == 1 and "cannot be combined" in both.output


def test_a_narrower_diffusion_ring_keeps_the_lines_near_the_hole_edge(sketch_ckpt):
    """``classical_blend.sketch_width``: with lines in the hole the diffusion ring is narrower, so
    lines the sketch draws near the hole's edge survive; without a sketch nothing changes."""
    from unmasked.checkpoint import CLASSICAL_BLEND_METHODS, check_classical_blend
    from unmasked.pipelines.fill import CLASSICAL_FLAGS, blend_width

    assert set(CLASSICAL_BLEND_METHODS) == set(CLASSICAL_FLAGS)  # what a checkpoint may name, the fill can run

    rgb, hole, lines = _photo(64)
    wide = check_classical_blend({"method": "navier_stokes", "width": 12})
    narrow = check_classical_blend({"method": "navier_stokes", "width": 12, "sketch_width": 3})
    assert narrow == {"method": "navier_stokes", "width": 12.0, "sketch_width": 3.0}
    assert blend_width(narrow, lines, hole) == 3.0
    assert blend_width(narrow, None, hole) == 12.0
    assert blend_width(narrow, lines & ~hole, hole) == 12.0  # no line in the hole: the usual ring
    assert blend_width(wide, lines, hole) == 12.0
    for bad in ({"method": "navier_stokes", "width": 12, "sketch_width": 0},
                {"method": "navier_stokes", "width": 12, "sketch_width": "4"}):
        with pytest.raises(ValueError, match="sketch_width"):
            check_classical_blend(bad)
    model = load_checkpoint(sketch_ckpt)
    model.classical_blend = wide
    plain_wide, guided_wide = (fill_array(rgb, hole, model, sketch=s).image for s in (None, lines))
    model.classical_blend = narrow
    plain_narrow, guided_narrow = (fill_array(rgb, hole, model, sketch=s).image for s in (None, lines))
    assert np.array_equal(plain_narrow, plain_wide)
    # 6 px deep (row 36 of a hole starting at row 30): diffusion alone under the wide ring's
    # weight (d - 1) / 12, mostly the model under the narrow one
    ring = np.zeros_like(hole)
    ring[36, 30:70] = True
    unblended = fill_array(rgb, hole, create_model("navier_stokes")).image
    gap = lambda a: np.abs(a[ring].astype(int) - unblended[ring].astype(int)).mean()  # noqa: E731
    assert gap(guided_narrow) > gap(guided_wide) + 1


# --------------------------------------------------------------------------- training


def test_training_widens_a_sketchless_checkpoint_and_feeds_sketches(tmp_path):
    from unmasked.training.config import load_config
    from unmasked.training.fit import fit

    base = {"name": "s1", "out_dir": str(tmp_path), "model": "deepfill_v2",
            "model_kwargs": {"cnum": 4, "working_size": 32, "attention": False}, "data.kind": "mnist",
            "data.size": 32, "masks.bank_size": 16, "batch_size": 2, "max_steps": 2, "ckpt_every": 2,
            "num_workers": 0, "val_images": 4, "lr_g": 1e-3}
    fit(load_config(None, base), enable_progress_bar=False, logger=False)
    first = str(tmp_path / "s1" / "generator.safetensors")
    widened = {**base, "name": "s2", "model_kwargs": {**base["model_kwargs"], "sketch": True},
               "init_from": {"generator": first}, "lr_g": 0.0}
    module = fit(load_config(None, widened), enable_progress_bar=False, logger=False)
    assert module.generator.uses_sketch and module.val_sketches is not None
    sample = module.train_samples[(0, 0)]
    assert sample["sketch"].shape == sample["mask"].shape and not (sample["sketch"] * (1 - sample["mask"])).any()
    torch.testing.assert_close(module.generator.coarse.conv1.conv.weight[:, 3], torch.zeros_like(
        module.generator.coarse.conv1.conv.weight[:, 3]))
    # the other way round (a sketch model into a sketch-less config) is refused
    back = {**base, "name": "s3", "init_from": {"generator": str(tmp_path / "s2" / "generator.safetensors")}}
    with pytest.raises(ValueError, match="config asks for deepfill_v2"):
        fit(load_config(None, back), enable_progress_bar=False, logger=False)


# --------------------------------------------------------------------------- evaluation


class _LinePainter(InpaintModel):
    """Continues each row from the hole's left (so the stripes come out right) and draws the
    sketch in white; without a sketch, a white line in the wrong place (the dark stripe)."""

    trainable = False
    uses_sketch = True

    def forward(self, image, mask, reference=None, sketch=None):
        left = int(mask.sum(dim=(0, 1, 2)).nonzero().min()) - 1
        out = image[..., left : left + 1].expand_as(image)
        if sketch is None:
            sketch = torch.zeros_like(mask)
            rows = mask.sum(dim=(0, 1, 3)).nonzero()
            sketch[:, :, int(rows.min()) + 6] = 1
        return InpaintOutput(torch.where(sketch * mask > 0, torch.ones_like(out), out))


def test_evaluate_sketch_measures_how_close_the_fill_is_to_the_lines():
    rgb = _striped()
    holes = []
    for top in (16, 20, 12):
        hole = np.zeros((64, 64), bool)
        hole[top : top + 30, 10:50] = True
        holes.append(hole)
    cases = sketch_cases(["a", "b", "c"], [rgb] * 3, holes, seed=0)
    result = evaluate_sketch(_LinePainter(), cases, baseline=create_model("telea"))
    rows = {r["condition"]: r for r in result["rows"]}
    assert set(rows) == {"no sketch", "true edges", "rough sketch", "sketch-less model"}
    assert rows["true edges"]["chamfer"] < 1.5 < 3 < rows["no sketch"]["chamfer"]
    effect = next(e for e in result["effects"] if e["a"] == "true edges" and e["metric"] == "chamfer")
    assert effect["n"] == 3 and effect["ci95"][1] < 0
    assert "| true edges − no sketch | chamfer |" in format_result(result, "t")
    with pytest.raises(ValueError, match="sketch channel"):
        evaluate_sketch(create_model("telea"), cases)

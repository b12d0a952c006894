"""Checks every registered model of every task must pass: output type and shape, finiteness,
gradients, config recorded at construction, save/load round trip."""

from pathlib import Path

import pytest
import torch

from unmasked import list_models, load_checkpoint, save_checkpoint
from unmasked.checkpoint import build_model
from unmasked.models.base import DeepFillOutput, EmbedModel, InpaintModel, InpaintOutput, SegmentModel
from unmasked.registry import _BUILTIN_MODULES, model_entry

# a small configuration per learned model; a new model must add one here
SMALL = {
    "pconv_unet": {"base_channels": 8, "max_channels": 16, "depth": 3, "working_size": 32},
    "deepfill_v2": {"cnum": 8, "working_size": 32},
    "two_face": {"cnum": 8, "working_size": 32},
    # its coarse stage is a trained model: the shipped 128² face preset (loaded, frozen)
    "face_refiner": {"base": "pconv_unet_faces128", "channels": 8, "blocks": 1, "working_size": 128},
    "mask_segmenter": {"base_channels": 4, "levels": 2, "working_size": 32},
    "face_embedder": {"width": 0.25, "embedding_dim": 16, "flip_sum": False},
    "scene_layout": {"base_channels": 4, "levels": 2, "working_size": 16},
}
CLASSICAL = sorted(list_models(trainable=False, task=None))
BASES = {"inpaint": InpaintModel, "layout": InpaintModel, "segment": SegmentModel, "embed": EmbedModel}


def test_every_model_module_is_registered_and_every_learned_model_has_a_small_config():
    files = {p.stem for p in (Path(__file__).parents[2] / "unmasked" / "models").glob("*.py")} - {"__init__", "base"}
    assert {f"unmasked.models.{f}" for f in files} <= set(_BUILTIN_MODULES)
    assert set(list_models(trainable=True, task=None)) == set(SMALL)
    assert set(CLASSICAL) == {"layout_patchmatch", "navier_stokes", "patchmatch", "telea", "telea_patchmatch"}


@pytest.mark.parametrize("name", sorted(SMALL) + CLASSICAL)
def test_each_task_has_its_base_and_the_config_is_recorded_at_construction(name):
    entry = model_entry(name)
    assert issubclass(entry.cls, BASES[entry.task])
    kwargs = SMALL.get(name, {"radius": 3} if name != "patchmatch" else {})
    model = build_model(name, **kwargs)
    assert model.config == {"name": name, "kwargs": kwargs}
    if not entry.cls.builds_on:  # built directly, without the registry: the same config (a model built on
        assert entry.cls(**kwargs).config == model.config  # a frozen one needs build_model to load it)


def _batch(multiple: int, n: int = 2):
    h, w = 2 * max(multiple, 8), 3 * max(multiple, 8)
    image = torch.rand(n, 3, h, w) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[0, :, h // 4 : h // 2, w // 4 : w // 2] = 1
    mask[1, :, h // 2 :, : w // 3] = 1
    return image, mask


def _run(model, image, mask):
    if model.task == "segment":
        return model(image)
    if model.task == "embed":
        return model(torch.nn.functional.interpolate(image[:, :, :, : image.shape[2]], size=(64, 64)))
    return model(image * (1 - mask), mask, **({"reference": image.flip(-1)} if model.uses_reference else {}))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shape_finiteness_gradients_and_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, **SMALL[name])
    image, mask = _batch(model.multiple)
    model.train()
    out = _run(model, image, mask)
    if model.task in ("inpaint", "layout"):
        assert isinstance(out, InpaintOutput) and out.image.shape == image.shape
        assert torch.isfinite(out.image).all() and out.image.abs().max() <= 1
        if isinstance(out, DeepFillOutput):
            assert out.coarse.shape == image.shape and set(out.stages) == {"coarse"}
        value = out.image
    elif model.task == "segment":
        assert out.shape == (2, 1, *image.shape[2:]) and torch.isfinite(out).all()
        value = out
    else:
        assert out.shape == (2, 16) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
        value = out[:, 0]
    value.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    model.eval()
    path = save_checkpoint(model, tmp_path / f"{name}.safetensors")
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        a, b = _run(model, image, mask), _run(loaded, image, mask)
    assert torch.equal(getattr(a, "image", a), getattr(b, "image", b))


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_fill_keeps_the_known_pixels_and_round_trips(name, tmp_path):
    model = build_model(name).eval()
    image, mask = _batch(1)
    image = (image * 127.5).round() / 127.5  # uint8 levels: the baselines work on uint8
    out = model(image * (1 - mask), mask)
    assert isinstance(out, InpaintOutput) and out.image.shape == image.shape and torch.isfinite(out.image).all()
    known = mask.expand_as(image) == 0
    assert torch.allclose(out.image[known], (image * (1 - mask))[known], atol=1 / 127.5)
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / f"{name}.safetensors"))
    assert torch.equal(loaded(image * (1 - mask), mask).image, out.image)

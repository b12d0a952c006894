"""The model hub: one catalogue for every door, loading by name, alias or path, the named defaults."""

import pytest

from unmasked import create_model, hub, save_checkpoint
from unmasked.registry import list_models


def test_the_catalogue_lists_presets_architectures_baselines_and_auto(tmp_path):
    extra = save_checkpoint(create_model("deepfill_v2", cnum=4, working_size=32, sketch=True), tmp_path / "x.safetensors")
    entries = hub.catalogue({"mine": extra})
    by_name = {e.name: e for e in entries}
    for preset, path in hub.shipped_weights().items():
        assert by_name[preset].kind == "trained" and by_name[preset].path == path
    assert by_name["mask_segmenter"].task == "segment" and by_name["face_identity"].task == "embed"
    assert by_name["two_face_faces128"].uses_reference and by_name["pconv_unet_faces128"].face_model
    mine = by_name["mine"]
    assert (mine.kind, mine.uses_sketch, mine.working_size, mine.architecture) == ("trained", True, 32, "deepfill_v2")
    assert {e.name for e in entries if e.kind == "classical"} == set(list_models(trainable=False))
    assert {e.name for e in entries if e.kind == "architecture"} == set(list_models(trainable=True))
    assert entries[-1].name == "auto" and hub.DEFAULT_FACE_PRESET in entries[-1].description


def test_aliases_and_defaults_name_shipped_presets():
    presets = hub.shipped_weights()
    assert hub.DEFAULT_FACE_PRESET in presets and hub.DEFAULT_SEGMENTER in presets and hub.DEFAULT_EMBEDDER in presets
    assert hub.resolve_alias(hub.DEFAULT_SKETCH_MODEL) in presets
    assert hub.resolve_alias("deepfill_v2-faces") == "deepfill_v2_faces128"
    assert hub.load_model("deepfill_v2-faces").config["name"] == "deepfill_v2"
    assert hub.load_embedder().dim == 128


def test_auto_is_the_apis_not_the_hubs():
    from unmasked.api import load_model

    with pytest.raises(ValueError, match="unknown model 'auto'"):
        hub.load_model("auto")
    from unmasked.pipelines.fill import WholeImageFiller

    assert isinstance(load_model("auto"), WholeImageFiller)


def test_an_alias_whose_weights_do_not_ship_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)  # no preset ships
    with pytest.raises(ValueError, match="preset 'deepfill_v2_sketch_faces128' does not ship with this version"):
        hub.load_model("deepfill_v2-sketch")

"""`auto`, the default of `unmasked fill`: the face preset inside detected faces, the scene filler elsewhere."""

import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner
from PIL import Image

from unmasked import Inpainter, load_model
from unmasked.cli import main
from unmasked.faces import detect_faces
from unmasked.pipelines.auto import AUTO_MIN_SCORE, FaceAwareFill, face_avoid, faces_at_hole
from unmasked.pipelines.fill import InputError, WholeImageFiller, fill_array

MOUTH = (slice(120, 150), slice(195, 250))  # the astronaut's mouth and chin
SUIT = (slice(400, 450), slice(50, 120))  # orange suit, next to the mission patch dlib mistakes for a face


@pytest.fixture(scope="module")
def auto():
    return load_model("auto")


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def _hole(shape, *boxes):
    hole = np.zeros(shape[:2], bool)
    for box in boxes:
        hole[box] = True
    return hole


def test_auto_is_the_face_preset_and_the_scene_filler(auto):
    assert isinstance(auto, FaceAwareFill)
    assert auto.config == {"name": "auto", "kwargs": {"face": "pconv_unet_faces128", "scene": "layout_patchmatch"}}
    # a pipeline, not a network: no parameters, no forward on tensors
    assert isinstance(auto, WholeImageFiller) and not isinstance(auto, torch.nn.Module)
    assert Inpainter(auto).model is auto


def test_auto_without_a_face_is_the_scene_filler_byte_for_byte(auto):
    rng = np.random.default_rng(0)
    rgb = (np.linspace(0, 255, 96)[None, :, None] + rng.normal(0, 3, (64, 96, 3))).clip(0, 255).astype(np.uint8)
    hole = _hole(rgb.shape, (slice(20, 40), slice(30, 60)))
    result = fill_array(rgb, hole, auto)
    np.testing.assert_array_equal(result.image, fill_array(rgb, hole, load_model("layout_patchmatch")).image)
    assert result.note == "no face at the hole: filled with layout_patchmatch"


def test_auto_fills_the_face_with_the_face_model_and_the_rest_with_the_scene_filler(auto, astronaut):
    hole = _hole(astronaut.shape, MOUTH, SUIT)
    result = fill_array(astronaut, hole, auto)
    # the scene filler copies from anywhere but the faces auto found
    avoid = face_avoid(detect_faces(astronaut), hole.shape)
    assert avoid is not None and avoid[MOUTH].all() and not avoid[SUIT].any()
    scene = fill_array(astronaut, hole, load_model("layout_patchmatch"), avoid=avoid).image
    np.testing.assert_array_equal(result.image[~hole], astronaut[~hole])
    mouth, suit = _hole(astronaut.shape, MOUTH), _hole(astronaut.shape, SUIT)
    # the mouth is the face model's work, the suit (no trusted face there) is the scene filler's, untouched
    assert np.abs(result.image[mouth].astype(int) - scene[mouth]).mean() > 3
    np.testing.assert_array_equal(result.image[suit], scene[suit])
    assert f"{mouth.sum()} of {hole.sum()} hole pixels inside 1 face(s) filled with pconv_unet_faces128" in result.note


def test_auto_does_not_trust_weak_detections(astronaut):
    suit = _hole(astronaut.shape, (slice(330, 430), slice(120, 220)))
    faces = faces_at_hole(astronaut, suit, "hog")
    assert faces and all(f.score < AUTO_MIN_SCORE for f in faces)  # dlib sees a "face" in the patch...
    assert faces_at_hole(astronaut, suit, "hog", min_score=AUTO_MIN_SCORE) == []  # ...auto does not


def test_auto_keeps_the_fill_errors(auto, astronaut):
    with pytest.raises(InputError, match="whole image"):
        fill_array(astronaut, np.ones(astronaut.shape[:2], bool), auto)
    empty = fill_array(astronaut, np.zeros(astronaut.shape[:2], bool), auto)
    np.testing.assert_array_equal(empty.image, astronaut)
    assert "empty" in empty.note


def test_cli_fill_defaults_to_auto_and_says_so(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    Image.fromarray(_hole(astronaut.shape, MOUTH).astype(np.uint8) * 255).save(tmp_path / "m.png")
    r = CliRunner().invoke(main, ["fill", str(tmp_path / "a.png"), "-m", str(tmp_path / "m.png"), "-o",
                                  str(tmp_path / "out.png")])
    assert r.exit_code == 0, r.output
    assert "(model: auto)" in r.output and "filled with pconv_unet_faces128" in r.output
    assert "auto" in CliRunner().invoke(main, ["models"]).output


def test_one_face_default_for_fill_and_one_for_unmask_everywhere():
    """`fill` (auto, the server's face square) uses the face preset; `unmask` (CLI, Python, /unmask,
    eval-unmask's `unmask` filler) the landmark-guided preset, which only it can give landmarks."""
    import inspect

    from unmasked import api
    from unmasked.api import DEFAULT_FACE_PRESET, DEFAULT_UNMASK_PRESET, load_model
    from unmasked.pipelines.auto import AUTO_FACE_MODEL
    from unmasked.server import worker

    assert worker.DEFAULT_FACE_MODEL == AUTO_FACE_MODEL == DEFAULT_FACE_PRESET
    assert not load_model(DEFAULT_FACE_PRESET).uses_landmarks and load_model(DEFAULT_UNMASK_PRESET).uses_landmarks
    assert inspect.signature(api.unmask).parameters["model"].default == DEFAULT_UNMASK_PRESET
    assert worker.ModelStore().default_unmask == DEFAULT_UNMASK_PRESET
    assert worker.ModelStore(allowed=["telea", DEFAULT_FACE_PRESET]).default_unmask == DEFAULT_FACE_PRESET
    guided_only = worker.ModelStore(allowed=["telea", DEFAULT_UNMASK_PRESET])
    assert guided_only.default(face=True) is None and guided_only.default_unmask == DEFAULT_UNMASK_PRESET
    assert f"default: {DEFAULT_UNMASK_PRESET}" in CliRunner().invoke(main, ["unmask", "--help"]).output
    listed = {line.split()[0]: line for line in CliRunner().invoke(main, ["models"]).output.splitlines() if line}
    assert "the default of unmask" in listed[DEFAULT_UNMASK_PRESET] and "default" not in listed[DEFAULT_FACE_PRESET]


def test_auto_keeps_the_scene_fill_where_the_hole_swallows_a_whole_face(auto, astronaut):
    """A hole over the whole face (seen in the plain fill, or the photo) leaves the face model
    nothing to align on: auto keeps the scene fill there instead of failing the whole photo."""
    hole = _hole(astronaut.shape, (slice(0, 300), slice(100, 360)))
    faces = faces_at_hole(astronaut, hole, "blazeface")
    assert faces  # the face is found in the photo, and its aligned crop is all hole
    result = fill_array(astronaut, hole, auto)
    avoid = face_avoid(faces, hole.shape)
    np.testing.assert_array_equal(result.image, fill_array(astronaut, hole, load_model("layout_patchmatch"), avoid=avoid).image)
    assert result.note == "no face at the hole: filled with layout_patchmatch"

"""The fill pipeline, the Python API and the `unmasked fill` command."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked import Inpainter, load_model, registry
from unmasked.cli import main
from unmasked.conventions import load_image
from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.pipelines.fill import InputError, fill_array


class _MeanFill(InpaintModel):
    """Fills with the mean known colour; records the input sizes it was called with."""

    multiple = 8
    working_size = 64

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, image, mask, reference=None):
        self.calls.append((tuple(image.shape[-2:]), float(mask.mean()), float((image * mask).abs().max())))
        known = (1 - mask)
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        return InpaintOutput(mean.expand_as(image).clone())


@pytest.fixture
def mean_fill():
    registry.register_model("_test_mean_fill")(_MeanFill)
    yield registry.create_model("_test_mean_fill")
    registry._REGISTRY.pop("_test_mean_fill", None)


def _scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("model_name", ["telea", "navier_stokes", "patchmatch"])
@pytest.mark.parametrize("h,w", [(37, 53), (64, 64), (5, 7)])
def test_baselines_keep_known_pixels_exactly_at_odd_sizes(model_name, h, w):
    rgb = _scene(h, w)
    hole = np.zeros((h, w), bool)
    hole[h // 3 : h // 2 + 1, w // 4 : w // 2 + 1] = True
    out = fill_array(rgb, hole, load_model(model_name)).image
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert not np.array_equal(out[hole], rgb[hole])


def test_telea_fills_smooth_gradient_accurately():
    x = np.linspace(0, 255, 64)
    rgb = np.stack([np.tile(x, (64, 1))] * 3, -1).round().astype(np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[24:40, 24:40] = True
    out = fill_array(rgb, hole, load_model("telea")).image
    err = np.abs(out.astype(int) - rgb.astype(int))[hole].mean()
    mean_fill_err = np.abs(rgb[~hole].mean() - rgb[hole].astype(float)).mean()
    assert err < 0.6 * mean_fill_err  # diffusion follows the ramp; a flat fill cannot


def test_small_image_runs_once_padded_to_multiple(mean_fill):
    rgb = np.empty((30, 45, 3), np.uint8)
    rgb[:] = (77, 150, 200)
    hole = np.zeros((30, 45), bool)
    hole[10:20, 10:20] = True
    rgb[hole] = _scene(10, 10).reshape(-1, 3)  # content to remove
    out = fill_array(rgb, hole, mean_fill).image
    assert mean_fill.calls[0][0] == (32, 48)
    assert mean_fill.calls[0][2] == 0  # the hole's original pixels were zeroed before the model
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert (out[hole] == (77, 150, 200)).all()


def test_large_image_is_filled_crop_by_crop_at_working_size(mean_fill):
    rgb = np.zeros((300, 500, 3), np.uint8)
    rgb[:, :250] = 40  # left half dark, right half bright
    rgb[:, 250:] = 220
    hole = np.zeros((300, 500), bool)
    hole[40:90, 30:100] = True  # a hole on the dark side
    hole[200:260, 380:460] = True  # another on the bright side
    result = fill_array(rgb, hole, mean_fill)
    out = result.image
    assert result.regions == 2 and len(mean_fill.calls) == 2
    for (h, w), _, _ in mean_fill.calls:
        assert h <= 64 and w <= 64 and h % 8 == 0 and w % 8 == 0
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    # each hole was filled from its own neighbourhood, not from the whole image
    assert np.abs(out[40:90, 30:100].astype(int) - 40).max() <= 2
    assert np.abs(out[200:260, 380:460].astype(int) - 220).max() <= 2


def test_thin_stroke_survives_downscaling(mean_fill):
    rgb = np.full((400, 400, 3), 100, np.uint8)
    hole = np.zeros((400, 400), bool)
    hole[100:300, 200] = True  # 1 px wide
    rgb[hole] = 255  # an object to remove
    out = fill_array(rgb, hole, mean_fill).image
    assert np.abs(out[hole].astype(int) - 100).max() <= 2


def test_empty_full_and_mismatched_masks():
    rgb = _scene(20, 30)
    telea = load_model("telea")
    result = fill_array(rgb, np.zeros((20, 30), bool), telea)
    assert result.note and "empty" in result.note
    np.testing.assert_array_equal(result.image, rgb)
    with pytest.raises(InputError, match="covers the whole image"):
        fill_array(rgb, np.ones((20, 30), bool), telea)
    with pytest.raises(InputError, match="does not match image size 30x20"):
        fill_array(rgb, np.zeros((30, 20), bool), telea)


def test_load_model_errors():
    with pytest.raises(registry.UnknownModelError, match="available: .*telea"):
        load_model("no_such_model")


def test_inpainter_keeps_mode_and_alpha():
    rgba = Image.fromarray(_scene(24, 32, 1)).convert("RGBA")
    alpha = np.full((24, 32), 200, np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    mask = np.zeros((24, 32), bool)
    mask[5:10, 5:12] = True
    out = Inpainter("telea").fill(rgba, mask)
    assert out.mode == "RGBA" and out.size == (32, 24)
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)
    grey = Image.fromarray(_scene(24, 32)[..., 0], "L")
    assert Inpainter("telea").fill(grey, mask).mode == "L"


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path):
    rgb = _scene(40, 60, 2)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    hole = np.zeros((40, 60), np.uint8)
    hole[10:20, 20:35] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return tmp_path, rgb, hole > 0


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_fill_writes_result_preserving_known_pixels(files):
    d, rgb, hole = files
    r = _invoke("fill", d / "img.png", "--mask", d / "mask.png", "-o", d / "out.png")
    assert r.exit_code == 0, r.output
    out = load_image(d / "out.png").rgb
    np.testing.assert_array_equal(out[~hole], rgb[~hole])


@pytest.mark.parametrize(
    "case,expect",
    [
        ("unreadable", "not a supported image"),
        ("missing", "not found"),
        ("size", "does not match image size"),
        ("full", "covers the whole image"),
        ("model", "unknown model 'nope'; available:"),
        ("huge", "above the limit"),
        ("bomb", "above the limit of 40,000,000 pixels"),
    ],
)
def test_cli_fill_bad_input_gives_message_not_traceback(files, case, expect):
    d, _, _ = files
    image, mask, extra = d / "img.png", d / "mask.png", []
    if case == "unreadable":
        (d / "bad.png").write_bytes(b"garbage")
        image = d / "bad.png"
    elif case == "missing":
        image = d / "missing.png"
    elif case == "size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(d / "small.png")
        mask = d / "small.png"
    elif case == "full":
        Image.fromarray(np.full((40, 60), 255, np.uint8)).save(d / "full.png")
        mask = d / "full.png"
    elif case == "model":
        extra = ["--model", "nope"]
    elif case == "huge":
        extra = ["--max-pixels", "1000"]
    elif case == "bomb":  # a PNG header claiming 60000 x 60000: Pillow itself refuses it as a bomb
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        (d / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                                     + chunk(b"IDAT", zlib.compress(bytes(10))) + chunk(b"IEND", b""))
        image = d / "bomb.png"
    r = _invoke("fill", image, "--mask", mask, "-o", d / "out.png", *extra)
    assert r.exit_code == 1, r.output
    assert expect in r.output and "Traceback" not in r.output
    assert not (d / "out.png").exists()


def test_cli_fill_empty_mask_copies_with_note(files):
    d, rgb, _ = files
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(d / "empty.png")
    r = _invoke("fill", d / "img.png", "--mask", d / "empty.png", "-o", d / "out.png")
    assert r.exit_code == 0 and "empty" in r.output
    np.testing.assert_array_equal(load_image(d / "out.png").rgb, rgb)


def test_cli_fill_folder_mode_reports_each_file(files):
    d, rgb, hole = files
    (d / "in" / "sub").mkdir(parents=True)
    (d / "masks" / "sub").mkdir(parents=True)
    Image.fromarray(rgb).save(d / "in" / "a.jpg")
    Image.fromarray(rgb).save(d / "in" / "sub" / "b.png")
    Image.fromarray(rgb).save(d / "in" / "c.png")  # no mask for this one
    Image.fromarray(hole.astype(np.uint8) * 255).save(d / "masks" / "a.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(d / "masks" / "sub" / "b_mask.png")
    r = _invoke("fill", "--input-dir", d / "in", "--mask-dir", d / "masks", "--output-dir", d / "out")
    assert r.exit_code == 1  # one file failed
    assert "filled 2, copied 0 (empty mask), failed 1" in r.output
    assert (d / "out" / "a.jpg").is_file() and (d / "out" / "sub" / "b.png").is_file()
    out = load_image(d / "out" / "sub" / "b.png").rgb
    np.testing.assert_array_equal(out[~hole], rgb[~hole])


def test_cli_fill_argument_combinations(files):
    d, _, _ = files
    assert "give IMAGE, --mask and --output" in _invoke("fill", d / "img.png").output
    assert "folder mode needs all" in _invoke("fill", "--input-dir", d).output


def test_cli_help_lists_commands():
    r = _invoke("--help")
    for cmd in ("fill", "eval", "masks", "models"):
        assert cmd in r.output
    listing = _invoke("models").output
    assert "telea" in listing
    # helper networks are listed apart, after the fill models, under their task
    fills, helpers = listing.split("helper networks")
    assert "pconv_unet_faces128" in fills and "mask_segmenter" not in fills and "face_identity" not in fills
    assert any(line.startswith("mask_segmenter") and " segment " in line for line in helpers.splitlines())


# --------------------------------------------------------------------------- classical blend


def test_blend_with_classical_uses_diffusion_on_thin_strokes_and_model_deep_inside():
    import cv2

    from unmasked.pipelines.fill import blend_with_classical

    rgb = _scene(64, 64, seed=3)
    hole = np.zeros((64, 64), bool)
    hole[10:12, 5:60] = True  # a 2 px stroke: no pixel lies more than 1 px from known ones
    hole[30:60, 20:50] = True  # a 30 px block
    model_fill = rgb.copy()
    model_fill[hole] = (200, 10, 90)  # an unmistakable "model" colour
    out = blend_with_classical(rgb, hole, model_fill, "navier_stokes", 4)
    ns = cv2.inpaint(rgb, hole.astype(np.uint8), 3, cv2.INPAINT_NS)
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    np.testing.assert_array_equal(out[10:12, 5:60], ns[10:12, 5:60])  # thin stroke: diffusion only
    assert (out[40:50, 30:40] == (200, 10, 90)).all()  # >= width + 1 px deep: the model only
    ring = out[30, 25:45].astype(int)  # the block's outer ring: diffusion, not the model colour
    np.testing.assert_array_equal(ring, ns[30, 25:45].astype(int))


def test_classical_blend_comes_from_checkpoint_metadata(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from unmasked.checkpoint import save_checkpoint
    from unmasked.pipelines.fill import run_model

    path = save_checkpoint(registry.create_model("deepfill_v2", cnum=8, working_size=32, attention=False),
                           tmp_path / "m.safetensors", metadata={"inference": {"classical_blend": {"method": "telea", "width": 2}}})
    model = load_model(path)
    assert model.classical_blend == {"method": "telea", "width": 2.0}
    rgb, hole = _scene(32, 32), np.zeros((32, 32), bool)
    hole[8:10, 4:28] = True  # a stroke 2 px wide: all diffusion
    import cv2
    np.testing.assert_array_equal(run_model(model, rgb, hole), cv2.inpaint(rgb, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA))
    # a malformed spec is refused when the checkpoint is loaded, naming the file
    with safe_open(path, "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    meta["metadata"] = json.dumps({"inference": {"classical_blend": {"method": "blur", "width": 2}}})
    save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(ValueError, match="bad.safetensors.*classical_blend"):
        load_model(tmp_path / "bad.safetensors")


def _two_textures(h, w):
    """Left half a dark, right half a bright noisy checkerboard (uint8 (h, w, 3))."""
    y, x = np.mgrid[0:h, 0:w]
    check = (((x // 4) + (y // 4)) % 2 * 60).astype(np.int16)
    noise = np.random.default_rng(0).integers(-15, 16, (h, w))
    base = np.where(x < w // 2, 50, 170) + check + noise
    return np.repeat(np.clip(base, 0, 255)[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.parametrize("max_side", [768, 96])  # the whole image at once; per region, resized
def test_exemplar_refine_turns_a_flat_guide_into_the_photos_texture(mean_fill, max_side):
    """A model with ``exemplar_refine`` lays out colour (here the flat mean of each crop) and
    PatchMatch replaces it with the photo's own texture, region by region, known pixels kept."""
    rgb = _two_textures(160, 320)
    hole = np.zeros(rgb.shape[:2], bool)
    hole[40:100, 30:100] = True  # on the dark side
    hole[60:130, 220:290] = True  # on the bright side
    flat = fill_array(rgb, hole, mean_fill).image
    mean_fill.exemplar_refine = {"patch_size": 7, "max_side": max_side, "min_size": 32}
    out = fill_array(rgb, hole, mean_fill).image
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    for box, truth in (((slice(40, 100), slice(30, 100)), rgb[:, :100]), ((slice(60, 130), slice(220, 290)), rgb[:, 220:])):
        fill = out[box][..., 0].astype(float)
        assert fill.std() > 0.7 * truth[..., 0].std() > 3 * flat[box][..., 0].std()  # texture, not flat colour
        assert abs(fill.mean() - truth[..., 0].mean()) < 12  # and the side's own texture


def test_exemplar_refine_comes_from_checkpoint_metadata(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from unmasked.checkpoint import save_checkpoint

    path = save_checkpoint(registry.create_model("deepfill_v2", cnum=8, working_size=32, attention=False),
                           tmp_path / "m.safetensors", metadata={"inference": {"exemplar_refine": {"max_side": 512}}})
    assert load_model(path).exemplar_refine == {"patch_size": 7, "max_side": 512, "min_size": 64}
    with safe_open(path, "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    for bad in ({"patch_size": 4}, {"max_side": 10}, {"radius": 3}, {"max_side": "big"}):
        meta["metadata"] = json.dumps({"inference": {"exemplar_refine": bad}})
        save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
        with pytest.raises(ValueError, match="bad.safetensors.*exemplar_refine"):
            load_model(tmp_path / "bad.safetensors")


# --------------------------------------------------------------------------- landmark-guided models


class _GuideSpy(InpaintModel):
    """A landmark-guided stand-in: fills grey and records the guide drawings it is given."""

    multiple = 8
    working_size = 64
    uses_landmarks = True

    def __init__(self):
        super().__init__()
        self.guides, self.images = [], []

    def forward(self, image, mask, reference=None, guide=None):
        self.guides.append(guide[0, 0].numpy().copy())
        self.images.append(image[0].numpy().copy())
        return InpaintOutput(image * 0)


def _face_points(size):
    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

    return np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * size


def test_a_landmark_guided_model_gets_the_landmarks_drawn_at_its_own_resolution():
    from unmasked.data.landmark_guide import draw_landmark_guide

    rgb = np.full((64, 64, 3), 120, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[36:56, 16:48] = True
    spy = _GuideSpy()
    points = _face_points(64)
    fill_array(rgb, hole, spy, landmarks=points)
    np.testing.assert_allclose(spy.guides[-1], draw_landmark_guide(points, 64))

    # a photo larger than the working size is filled in a crop around the hole, shrunk to 64 px:
    # the drawing must follow the crop, so the lines lie on the face the model sees. Marks painted
    # at the brows' and eyes' corners are found in the model's input, on the drawn lines
    big = np.full((256, 256, 3), 120, np.uint8)
    points = _face_points(256)
    corners = (17, 21, 22, 26, 36, 39, 42, 45)
    for k in corners:
        x, y = np.round(points[k]).astype(int)
        big[y - 1:y + 2, x - 1:x + 2] = (255, 0, 0)
    big_hole = np.zeros((256, 256), bool)
    big_hole[150:220, 70:190] = True
    fill_array(big, big_hole, spy, landmarks=points)
    drawn, seen = spy.guides[-1], spy.images[-1]
    assert drawn.shape[0] == 64 and seen.shape[-2:] == drawn.shape
    red = (seen[0] > 0) & (seen[1] < -0.15)
    n, _, _, centres = cv2.connectedComponentsWithStats(red.astype(np.uint8))
    assert n == 1 + len(corners)  # every mark is in the crop
    off_line = cv2.distanceTransform((drawn < 0.3).astype(np.uint8), cv2.DIST_L2, 3)
    assert np.mean([off_line[int(round(cy)), int(round(cx))] for cx, cy in centres[1:]]) < 0.8


def test_landmarks_are_required_by_a_guided_model_and_refused_by_others(mean_fill):
    rgb = np.full((64, 64, 3), 120, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    with pytest.raises(InputError, match="through unmask"):
        fill_array(rgb, hole, _GuideSpy())
    with pytest.raises(InputError, match="takes no landmarks"):
        fill_array(rgb, hole, mean_fill, landmarks=_face_points(64))
    with pytest.raises(InputError, match="finite"):
        fill_array(rgb, hole, _GuideSpy(), landmarks=np.zeros((10, 2)))

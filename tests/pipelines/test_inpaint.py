"""``inpaint``: the one entry every door uses (face square, reference, gallery, sketch, their errors)."""

import numpy as np
import pytest

from unmasked import create_model
from unmasked.pipelines.fill import InputError, fill_array
from unmasked.pipelines.inpaint import check_box, inpaint


def _photo(h=60, w=80):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hole = np.zeros((h, w), bool)
    hole[20:30, 10:20] = True  # inside the face square below
    hole[40:50, 60:70] = True  # outside it
    return rgb, hole


def test_without_options_it_is_fill_array():
    rgb, hole = _photo()
    telea = create_model("telea")
    assert np.array_equal(inpaint(rgb, hole, telea).image, fill_array(rgb, hole, telea).image)


def test_a_face_square_is_filled_from_its_crop_and_the_rest_from_the_whole_image():
    rgb, hole = _photo()
    telea = create_model("telea")
    result = inpaint(rgb, hole, telea, box=(0, 10, 40, 30))
    crop = fill_array(rgb[10:40, 0:40].copy(), hole[10:40, 0:40], telea).image
    assert np.array_equal(result.image[10:40, 0:40], crop)
    assert np.array_equal(result.image[~hole], rgb[~hole])
    assert not np.array_equal(result.image[40:50, 60:70], rgb[40:50, 60:70])
    assert result.note == "hole pixels outside the face square were filled from the whole image"
    only_outside = inpaint(rgb, hole & (np.arange(80) >= 40)[None], telea, box=(0, 10, 40, 30))
    assert only_outside.note.startswith("no hole inside the face square")


@pytest.mark.parametrize("box", [(0, 0, 81, 10), (-1, 0, 5, 5), (0, 0, 0, 5), (70, 50, 20, 20)])
def test_a_face_square_outside_the_image_is_refused(box):
    rgb, hole = _photo()
    with pytest.raises(InputError, match=r"lies outside the 80x60 image"):
        check_box(box, hole.shape)
    with pytest.raises(InputError, match=r"lies outside the 80x60 image"):
        inpaint(rgb, hole, create_model("telea"), box=box)


def test_guides_a_model_cannot_use_are_refused_with_one_line():
    rgb, hole = _photo()
    telea = create_model("telea")
    cases = [({"reference": rgb}, "does not use a reference photo; leave the reference out"),
             ({"gallery": "somewhere"}, "--gallery needs a reference-guided model"),
             ({"reference": rgb, "gallery": "somewhere"}, "a reference photo or a gallery, not both"),
             ({"sketch": hole, "gallery": "somewhere"}, "a sketch and a gallery cannot be combined"),
             ({"sketch": hole}, "has no sketch channel")]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            inpaint(rgb, hole, telea, **kwargs)


def test_the_face_square_is_the_same_through_every_door(tmp_path):
    """CLI ``fill --box``, ``Inpainter.fill(box=)`` and ``POST /api/v1/inpaint`` with ``box`` all
    reach ``inpaint(..., box=)`` and give the same pixels."""
    import io

    from click.testing import CliRunner
    from fastapi.testclient import TestClient
    from PIL import Image

    from unmasked import Inpainter
    from unmasked.cli import main
    from unmasked.conventions import load_image
    from unmasked.server import create_app

    rgb, hole = _photo()
    box = (0, 10, 40, 30)
    expected = inpaint(rgb, hole, create_model("telea"), box=box).image
    Image.fromarray(rgb).save(tmp_path / "p.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    r = CliRunner().invoke(main, ["fill", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"), "-o",
                                  str(tmp_path / "o.png"), "--model", "telea", "--box", "0,10,40,30"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(load_image(tmp_path / "o.png").rgb, expected)
    assert np.array_equal(np.asarray(Inpainter("telea").fill(rgb, hole, box=box)), expected)
    with TestClient(create_app()) as client:
        files = {"image": ("p.png", (tmp_path / "p.png").read_bytes()), "mask": ("m.png", (tmp_path / "m.png").read_bytes())}
        resp = client.post("/api/v1/inpaint", files=files, data={"model": "telea", "box": "0,10,40,30"})
        assert resp.status_code == 200, resp.text
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB")), expected)
    r = CliRunner().invoke(main, ["fill", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"), "-o",
                                  str(tmp_path / "x.png"), "--model", "telea", "--box", "70,50,20,20"])
    assert r.exit_code == 1 and "lies outside the 80x60 image" in r.output

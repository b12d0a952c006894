"""Bad input at every REST door answers 4xx with a one-line ``{"detail": ...}``, never a 5xx.

The first tests pin the bugs a sweep of bad inputs over ``/inpaint``, ``/unmask`` and
``/masks/face`` found (each answered 500 before its fix); the tables after them pin what the
sweep found already right, so that it stays so.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from unmasked.faces import detect as detect_mod
from unmasked.server import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TestClient = pytest.importorskip("fastapi.testclient").TestClient


def png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, fmt)
    return buf.getvalue()


def b64png(array: np.ndarray) -> str:
    return base64.b64encode(png(array)).decode()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


PHOTO = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
HOLE = np.zeros((60, 80), np.uint8)
HOLE[20:35, 30:55] = 255
JPEG = png(PHOTO, fmt="JPEG")


@pytest.fixture(scope="module")
def client():
    # a 500 must come back as a status to assert on, not as the server's exception
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def assert_error(r, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert isinstance(detail, str) and fragment in detail, detail
    assert "\n" not in detail


def parts(image=None, mask=None, **extra) -> dict:
    out = {"image": ("a.png", png(PHOTO) if image is None else image),
           "mask": ("m.png", png(HOLE) if mask is None else mask)}
    out.update({k: (f"{k}.png", v) for k, v in extra.items()})
    return out


# --------------------------------------------------------------------------- bugs found (each was a 500)


def test_the_auto_model_fills_instead_of_failing(client):
    """``auto`` (the server's advertised ``default_fill``) was a 500 on every request: the model
    store called ``.eval()`` on it, and the whole-image pipeline had none."""
    r = client.post("/api/v1/inpaint", files=parts(mask=png(np.zeros((60, 80), np.uint8))), data={"model": "auto"})
    assert r.status_code == 200, r.text
    assert "mask is empty" in r.headers["x-unmasked-note"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.content))), PHOTO)
    one = {"image": ("a.png", png(PHOTO[:1, :1])), "mask": ("m.png", png(np.full((1, 1), 255, np.uint8)))}
    assert_error(client.post("/api/v1/inpaint", files=one, data={"model": "auto"}), 400, "covers the whole image")


@pytest.mark.parametrize("route", ["inpaint", "unmask", "masks/face"])
def test_json_nested_too_deep_is_422(client, route):
    """A JSON body of arrays nested 100,000 deep raised RecursionError in the parser: 500."""
    r = client.post(f"/api/v1/{route}", content=b"[" * 100_000 + b"]" * 100_000,
                    headers={"content-type": "application/json"})
    assert_error(r, 422, "body is not valid JSON")


@pytest.mark.parametrize("boxes", ["0,0,1000000000,1000000000", "0,0,9223372036854775808,1", "70,50,20,20"])
def test_face_mask_boxes_off_the_photo_are_422_as_for_unmask(client, boxes):
    """A face square far larger than the photo crashed OpenCV in FaceMesh (500); one running off the
    photo is refused as ``/unmask`` refuses it."""
    r = client.post("/api/v1/masks/face", files={"image": ("a.png", png(PHOTO))}, data={"boxes": boxes})
    assert_error(r, 422, f"box {boxes} (x,y,w,h) lies outside the 80x60 image")


def test_face_mask_box_covering_the_photo_still_draws(client):
    r = client.post("/api/v1/masks/face", files={"image": ("a.png", png(PHOTO))},
                    data={"boxes": "0,0,80,60;10,5,50,50", "response_format": "json"})
    assert r.status_code == 200, r.text
    assert [f["box"] for f in r.json()["faces"]] == [[0, 0, 80, 60], [10, 5, 50, 50]]


@pytest.mark.parametrize("route, data", [("unmask", {"model": "telea", "boxes": "0,0,900,1"}),
                                         ("unmask", {"model": "telea", "boxes": "0,0,900,1", "region": "landmarks"}),
                                         ("masks/face", {"boxes": "0,0,900,1"})])
def test_a_face_square_across_a_thin_photo(client, route, data):
    """A square as long as a 900x1 photo made FaceMesh shrink the photo to less than a pixel: 500."""
    thin = np.random.default_rng(1).integers(0, 256, (1, 900, 3), dtype=np.uint8)
    r = client.post(f"/api/v1/{route}", files={"image": ("a.png", png(thin))}, data=data)
    assert r.status_code == 200, r.text
    assert np.asarray(Image.open(io.BytesIO(r.content))).shape == (1, 900, 3)


def test_a_thin_photo_is_not_cut_into_thousands_of_tiles():
    """BlazeFace's tiles were capped by the photo's shorter side after the size check: a 1 x 16M
    photo (inside the pixel limit) became 16M one-pixel tiles, a worker busy for days."""
    assert detect_mod._tiles(1, 900) == [] and detect_mod._tiles(60, 16_000_000 // 60) == []
    assert all(side >= detect_mod.TILE_MIN_SIDE for _, _, side in detect_mod._tiles(100, 100_000))
    assert len(detect_mod._tiles(1080, 1920)) == 24  # photos keep their tiles


def test_a_mask_in_a_colour_mode_pillow_cannot_convert_is_415(client):
    """A LAB TIFF mask: Pillow cannot convert LAB to greyscale, a ValueError outside the reader's errors: 500."""
    buf = io.BytesIO()
    Image.fromarray(HOLE).convert("RGB").convert("LAB").save(buf, "TIFF")
    r = client.post("/api/v1/inpaint", files=parts(mask=buf.getvalue()), data={"model": "telea"})
    assert_error(r, 415, "colour mode LAB is not supported")
    r = client.post("/api/v1/inpaint", files=parts(image=buf.getvalue()), data={"model": "telea"})  # as an image: fine
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- what was right, kept right

FILE_CASES = [
    # (route, multipart parts or None for the default image + mask, form data, status, fragment)
    ("inpaint", parts(image=b""), {}, 422, "image: field required"),
    ("inpaint", parts(mask=b""), {}, 422, "mask: field required"),
    ("inpaint", parts(image=b"x"), {}, 415, "image is not a supported image"),
    ("inpaint", parts(image=png(PHOTO[:1, :1])), {}, 422, "mask size 80x60 does not match image size 1x1"),
    ("inpaint", parts(mask=png(HOLE[:50])), {}, 422, "mask size 80x50 does not match image size 80x60"),
    ("inpaint", parts(mask=png(np.full((60, 80), 255, np.uint8))), {}, 400, "mask covers the whole image"),
    ("inpaint", parts(image=JPEG[: len(JPEG) // 2]), {}, 415, "image file is truncated"),
    ("inpaint", parts(image=JPEG[:20]), {}, 415, "image is not a supported image"),
    ("inpaint", parts(image=png_header(60000, 60000)), {}, 413, "image has too many pixels"),
    ("inpaint", parts(mask=png_header(6000, 6000)), {}, 413, "mask is 6000x6000 = 36,000,000 pixels"),
    ("inpaint", parts(image=png_header(0, 10)), {}, 415, "image is not a supported image"),
    ("inpaint", parts(image=png_header(1, 1)), {}, 415, "image: cannot decode"),
    ("inpaint", parts(image=b"<svg xmlns='http://www.w3.org/2000/svg'/>"), {}, 415, "not a supported image"),
    ("inpaint", parts(reference=b"not an image"), {"model": "two_face_faces128"}, 415, "reference is not a supported image"),
    ("inpaint", parts(reference=png(np.full((64, 64, 3), 127, np.uint8))), {"model": "two_face_faces128"}, 400,
     "no face found in the reference photo"),
    ("inpaint", parts(reference=png(PHOTO)), {"model": "telea"}, 422, "model 'telea' does not use a reference photo"),
    ("inpaint", parts(reference=png(PHOTO), sketch=png(HOLE)), {"model": "two_face_faces128"}, 422,
     "a sketch and a reference photo cannot be combined"),
    ("inpaint", parts(), {"model": "nope"}, 404, "unknown model 'nope'; available:"),
    ("inpaint", parts(), {"model": "mask_segmenter"}, 404, "unknown model 'mask_segmenter'"),
    ("inpaint", parts(), {"model": "../weights/telea"}, 404, "unknown model"),
    ("inpaint", parts(), {"box": "-1,0,10,10"}, 422, "box.0: Input should be greater than or equal to 0"),
    ("inpaint", parts(), {"box": "0,0,0,10"}, 422, "box.2: Input should be greater than 0"),
    ("inpaint", parts(), {"box": "0,0,1000000000000,10"}, 422, "lies outside the 80x60 image"),
    ("inpaint", parts(), {"box": "1.5,2,3,4"}, 422, "box.0: Input should be a valid integer"),
    ("inpaint", parts(), {"box": "1,2,3"}, 422, "box.3: Field required"),
    ("inpaint", parts(), {"box": "1,2,3,4,5"}, 422, "box: Tuple should have at most 4 items"),
    ("inpaint", parts(), {"reference_box": "0,0,10,10"}, 422, "reference_box needs a reference photo"),
    ("inpaint", parts(reference=png(PHOTO)), {"model": "two_face_faces128", "reference_box": "70,0,20,20"}, 422,
     "lies outside the 80x60 reference photo"),
    ("inpaint", parts(reference=png(PHOTO)), {"model": "two_face_faces128", "reference_box": "0,0,-5,5"}, 422,
     "reference_box.2: Input should be greater than 0"),
    ("inpaint", parts(), {"response_format": "JSON"}, 422, "response_format: Input should be 'image' or 'json'"),
    ("inpaint", [("image", ("a.png", png(PHOTO))), ("image", ("b.png", png(PHOTO))), ("mask", ("m.png", png(HOLE)))],
     {}, 422, "image: given more than once"),
    ("unmask", {"image": ("a.png", b"garbage")}, {}, 415, "image is not a supported image"),
    ("unmask", {"image": ("a.png", png_header(60000, 60000))}, {}, 413, "image has too many pixels"),
    ("unmask", {"image": ("a.png", png(PHOTO))}, {"model": "telea", "boxes": "70,50,20,20"}, 422,
     "box 70,50,20,20 (x,y,w,h) lies outside the 80x60 image"),
    ("unmask", {"image": ("a.png", png(PHOTO))}, {"boxes": "1,2,3,4;5,6"}, 422, "boxes.1.2: Field required"),
    ("unmask", {"image": ("a.png", png(PHOTO))}, {"boxes": ";".join(["0,0,1,1"] * 33)}, 422, "at most 32 items"),
    ("unmask", {"image": ("a.png", png(PHOTO))}, {"region": "x"}, 422, "region: Input should be 'segmenter' or"),
    ("unmask", {"image": ("a.png", png(PHOTO))}, {"reference_box": "0,0,10,10"}, 422,
     "a reference face square needs a reference photo"),
    ("unmask", {"image": ("a.png", png(PHOTO)), "reference": ("r.png", png(PHOTO))},
     {"model": "two_face_faces128", "boxes": "10,5,50,50", "region": "landmarks"}, 422, "no face found in the reference photo"),
    ("unmask", {"image": ("a.png", png(PHOTO)), "sketch": ("s.png", png(HOLE))}, {}, 422, "sketch: unknown file field"),
    ("masks/face", {"image": ("a.png", png(np.full((64, 64, 3), 90, np.uint8)))}, {}, 422, "no face found in the image"),
    ("masks/face", {"image": ("a.png", png(PHOTO))}, {"kind": "gas"}, 422, "kind: Input should be"),
    ("masks/face", {"image": ("a.png", png(PHOTO))}, {"seed": "-1"}, 422, "seed: Input should be greater than or equal to 0"),
    ("masks/face", {"image": ("a.png", png(PHOTO))}, {"boxes": "0,0,0,5"}, 422, "boxes.0.2: Input should be greater than 0"),
]


@pytest.mark.parametrize("route, files, data, status, fragment", FILE_CASES,
                         ids=[f"{c[0]}-{c[4][:40]}" for c in FILE_CASES])
def test_multipart_bad_input(client, route, files, data, status, fragment):
    assert_error(client.post(f"/api/v1/{route}", files=files, data=data), status, fragment)


JSON_CASES = [
    # (route, changes to a valid body; None removes the field, status, fragment)
    ("inpaint", {"image": 1}, 422, "image: Input should be a valid string"),
    ("inpaint", {"image": ["a"]}, 422, "image: Input should be a valid string"),
    ("inpaint", {"mask": None}, 422, "mask: Field required"),
    ("inpaint", {"mask": {}}, 422, "mask: Input should be a valid string"),
    ("inpaint", {"image": "***"}, 422, "image: not valid base64"),
    ("inpaint", {"image": "data:image/png;base64,"}, 422, "image: field required"),
    ("inpaint", {"image": "data:image/png;base64,***"}, 422, "image: not valid base64"),
    ("inpaint", {"image": base64.b64encode(b"plain text").decode()}, 415, "image is not a supported image"),
    ("inpaint", {"reference": 5}, 422, "reference: Input should be a valid string"),
    ("inpaint", {"sketch": "A"}, 422, "sketch: not valid base64"),
    ("inpaint", {"model": 5}, 422, "model: Input should be a valid string"),
    ("inpaint", {"model": ["telea"]}, 422, "model: Input should be a valid string"),
    ("inpaint", {"model": ""}, 404, "unknown model ''"),
    ("inpaint", {"box": "a,b,c,d"}, 422, "box.0: Input should be a valid integer"),
    ("inpaint", {"box": [0.5, 0, 10, 10]}, 422, "box.0: Input should be a valid integer, got a number with a fractional part"),
    ("inpaint", {"box": [0, 0, 1e300, 1]}, 422, "box.2:"),
    ("inpaint", {"box": [[1, 2, 3, 4]]}, 422, "box.0: Input should be a valid integer"),
    ("inpaint", {"box": {}}, 422, "box: Input should be a valid tuple"),
    ("inpaint", {"reference_box": [0, 0, 10, 10]}, 422, "reference_box needs a reference photo"),
    ("inpaint", {"response_format": None}, 422, "response_format: Input should be 'image' or 'json'"),
    ("inpaint", {"colour": "red"}, 422, "colour: unknown field"),
    ("unmask", {"boxes": 1}, 422, "boxes: Input should be a valid list"),
    ("unmask", {"boxes": [1, 2, 3, 4]}, 422, "boxes.0: Input should be a valid tuple"),
    ("unmask", {"boxes": [[-1, 0, 5, 5]]}, 422, "boxes.0.0: Input should be greater than or equal to 0"),
    ("unmask", {"boxes": [[0, 0, 2**63, 1]]}, 422, "lies outside the 80x60 image"),
    ("unmask", {"detector": "x"}, 422, "detector: Input should be"),
    ("masks/face", {"boxes": [[0, 0, 10**9, 10**9]]}, 422, "lies outside the 80x60 image"),
    ("masks/face", {"seed": 1.5}, 422, "seed: Input should be a valid integer"),
]


@pytest.mark.parametrize("route, change, status, fragment", JSON_CASES,
                         ids=[f"{c[0]}-{c[3][:40]}" for c in JSON_CASES])
def test_json_bad_input(client, route, change, status, fragment):
    body = {"image": b64png(PHOTO), **({"mask": b64png(HOLE)} if route == "inpaint" else {}),
            **({"model": "telea"} if route != "masks/face" else {})}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None or k == "response_format"}
    assert_error(client.post(f"/api/v1/{route}", json=body), status, fragment)


@pytest.mark.parametrize("content, ctype, status, fragment", [
    (b"", "application/json", 422, "body is not valid JSON"),
    (b"[1, 2]", "application/json", 422, "body must be a JSON object"),
    (b'{"image": NaN', "application/json", 422, "body is not valid JSON"),
    (b'{"image": "\xff"}', "application/json", 422, "body is not valid JSON"),
    (b"model=telea", "application/x-www-form-urlencoded", 415, "send multipart/form-data or application/json"),
    (b"abc", "multipart/form-data; boundary=xyz", 400, ""),
])
def test_malformed_bodies(client, content, ctype, status, fragment):
    assert_error(client.post("/api/v1/inpaint", content=content, headers={"content-type": ctype}), status, fragment)

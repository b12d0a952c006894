"""The default face detector: BlazeFace + FaceMesh from MediaPipe's model files (unmasked.faces).

Decoding is checked against known values on synthetic inputs; detection, landmarks and
alignment under masks on real photos from ../shared/data (skipped without it) and on
scikit-image's astronaut (public domain).
"""

import numpy as np
import pytest
from skimage import data

from unmasked.faces import DEFAULT_DETECTOR, align_face, blazeface, detect_faces, face_from_box, ffhq_quad
from unmasked.faces import detect as detect_mod
from unmasked.faces.facemesh import MESH_TO_IBUG68, MIN_PRESENCE, crop_matrix
from unmasked.faces.tflite import MODEL_DIR, MODEL_FILES, load_tflite

#: RMFD photos (real people in masks) in which dlib's "all" (HOG + HOG upsampled + CNN) finds no face:
#: a doctor in an N95 on a TV screen, a man in a surgical mask and earphones, a woman in a black
#: printed mask under a hat (checked by eye)
DLIB_MISSES = ["0006_0117.jpg", "0001_0149.jpg", "0001_0110.jpg"]
#: an RMFD photo with two masked people side by side (HOG finds only the man)
TWO_PEOPLE = "0001_0148.jpg"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _real(shared_data, name: str) -> np.ndarray:
    from unmasked.conventions import load_image

    return load_image(shared_data / "real_masked_photos" / name).rgb


# --------------------------------------------------------------------------- decoding


def test_model_files_ship_with_the_package_and_load_once():
    for name, file in MODEL_FILES.items():
        assert (MODEL_DIR / file).is_file()
        assert load_tflite(name) is load_tflite(name)
    assert (MODEL_DIR / "LICENSE-mediapipe.txt").is_file() and (MODEL_DIR / "mediapipe_face.md").is_file()
    assert load_tflite("blazeface_short").input_size == (128, 128)
    assert load_tflite("blazeface_full").input_size == (192, 192)
    assert load_tflite("facemesh").input_size == (192, 192)
    with pytest.raises(ValueError, match="unknown face model"):
        load_tflite("nope")
    with pytest.raises(ValueError, match="takes"):
        load_tflite("blazeface_short")(np.zeros((1, 64, 64, 3), np.float32))


def test_anchors_match_mediapipe_layouts():
    short = blazeface.anchors(128, [(8, 2), (16, 6)])
    full = blazeface.anchors(192, [(4, 1)])
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # 16 x 16 cells at stride 8, two anchors each, row-major; then 8 x 8 cells with six
    np.testing.assert_allclose(short[:3], [[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]])
    np.testing.assert_allclose(short[512], [1 / 16, 1 / 16])
    np.testing.assert_allclose(short[-1], [15 / 16, 15 / 16])
    np.testing.assert_allclose(full[48], [1 / 96, 3 / 96])
    # the network's outputs have one row per anchor
    regressors, scores = load_tflite("blazeface_short")(np.zeros((1, 128, 128, 3), np.float32))
    assert regressors.shape == (1, 896, 16) and scores.shape == (1, 896, 1)


def test_weighted_nms_averages_overlapping_boxes_by_score():
    corners = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    kps = np.array([[[2, 2]], [[4, 4]], [[55, 55]]], float)
    out = blazeface.weighted_nms(corners, kps, np.array([0.9, 0.3, 0.6]))
    assert len(out) == 2
    box, kp, score = out[0]
    np.testing.assert_allclose(box, [0.25, 0.25, 10.25, 10.25])  # (0.9 * 0 + 0.3 * 1) / 1.2
    np.testing.assert_allclose(kp, [[2.5, 2.5]])
    assert score == pytest.approx(0.9)  # the best score is kept, not averaged
    np.testing.assert_allclose(out[1][0], [50, 50, 60, 60])


def test_letterbox_keeps_the_aspect_and_maps_points():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[40:60, 90:110] = 255
    x, scale, ox, oy = blazeface.letterbox(rgb, 128)
    assert x.shape == (1, 128, 128, 3) and x.min() == -1.0 and x.max() == 1.0
    assert scale == pytest.approx(0.64) and (ox, oy) == (0, 32)
    # the white square's centre (photo 100, 50) lands at input (64, 64)
    ys, xs = np.nonzero(x[0, :, :, 0] > 0)
    assert abs(xs.mean() - 100 * scale - ox) < 1 and abs(ys.mean() - 50 * scale - oy) < 1


def test_crop_matrix_centres_and_rotates():
    m = crop_matrix(np.array([100.0, 50.0]), 40.0, np.pi / 2, 192)
    np.testing.assert_allclose(m @ [100, 50, 1], [96, 96])
    np.testing.assert_allclose(m @ [100, 60, 1], [96 + 48, 96], atol=1e-9)  # photo +y is the crop's +x


def test_mesh_to_ibug68_is_a_valid_selection():
    assert MESH_TO_IBUG68.shape == (68,) and len(set(MESH_TO_IBUG68.tolist())) == 68
    assert MESH_TO_IBUG68.min() >= 0 and MESH_TO_IBUG68.max() < 468


# --------------------------------------------------------------------------- detection


def test_the_default_detector_finds_the_astronaut_and_moves_with_her(astronaut):
    assert DEFAULT_DETECTOR == "blazeface"
    (face,) = detect_faces(astronaut)
    x, y, w, h = face.box
    assert 170 < x < 190 and 70 < y < 95 and 80 < w < 110  # her face, not the mission patch
    assert face.detector == "blazeface" and face.score > 0.8 and face.extra["presence"] > MIN_PRESENCE
    assert face.extra["mesh"].shape == (468, 3) and face.landmarks.shape == (68, 2)
    assert face.eye_left[0] < face.eye_right[0] and face.eye_left[1] < face.mouth_centre[1]
    # shift the photo in a larger canvas: box and landmarks shift with it
    canvas = np.full((700, 800, 3), 90, np.uint8)
    canvas[100:612, 200:712] = astronaut
    (moved,) = detect_faces(canvas)
    np.testing.assert_allclose(moved.landmarks - [200, 100], face.landmarks, atol=2.0)


def test_no_face_tiny_and_huge_images(astronaut):
    assert detect_faces(np.full((480, 640, 3), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    assert detect_faces(noise) == []
    assert detect_faces(np.zeros((1, 1, 3), np.uint8)) == []
    assert detect_faces(np.zeros((3, 500, 3), np.uint8)) == []
    # a 6000 x 4000 photo with the astronaut's face ~1/12 of its width: found, in the right place
    big = np.full((4000, 6000, 3), 90, np.uint8)
    big[1500:2012, 3000:3512] = astronaut
    faces = detect_faces(big)
    assert len(faces) == 1 and 3170 < faces[0].box[0] < 3190
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_faces(np.zeros((10, 10), np.uint8))


def test_tiles_cover_the_photo():
    for h, w in [(256, 256), (1080, 1920), (4000, 6000), (300, 97)]:
        tiles = detect_mod._tiles(h, w)
        covered = np.zeros((h, w), bool)
        for x0, y0, side in tiles:
            assert 0 <= x0 and x0 + side <= w and 0 <= y0 and y0 + side <= h
            covered[y0:y0 + side, x0:x0 + side] = True
        assert covered.all() or not tiles
    assert len(detect_mod._tiles(256, 256)) == 9 and len(detect_mod._tiles(1080, 1920)) == 24
    assert detect_mod._tiles(150, 120) == []


def test_a_group_of_small_faces_is_found_through_the_tiles(astronaut):
    """Twelve astronauts, each face ~45 px in a 1600 x 900 photo: the whole photo seen at 192 px
    makes them ~5 px; the tiles find them all, each once."""
    import cv2

    small = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    canvas = np.full((900, 1600, 3), 90, np.uint8)
    for r in range(3):
        for c in range(4):
            canvas[50 + 300 * r:250 + 300 * r, 100 + 400 * c:300 + 400 * c] = small
    faces = detect_faces(canvas)
    assert len(faces) == 12
    centres = sorted((round((f.box[1] + f.box[3] / 2 - 50) / 300), round((f.box[0] + f.box[2] / 2 - 100) / 400))
                     for f in faces)
    assert centres == [(r, c) for r in range(3) for c in range(4)]


def test_face_from_box_uses_the_mesh(astronaut):
    (face,) = detect_faces(astronaut)
    x, y, w, h = face.box
    refined = face_from_box(astronaut, (x - 20, y - 10, w + 40, h + 30))
    # found again inside the loose box (seen at another scale, so a few pixels apart)
    assert refined.detector == "blazeface" and detect_mod.box_iou(refined.box, face.box) > 0.7
    assert np.abs(refined.landmarks - face.landmarks).mean() < 3.0
    assert np.abs(refined.extra["mesh"][:, :2] - face.extra["mesh"][:, :2]).mean() < 3.0
    as_given = face_from_box(astronaut, face.box, refine=False)
    assert as_given.detector == "box" and np.isnan(as_given.score)
    assert np.abs(as_given.landmarks - face.landmarks).mean() < 2.0
    with pytest.raises(ValueError, match="unknown detector"):
        face_from_box(astronaut, face.box, detector="nope")


# --------------------------------------------------------------------------- real photos


@pytest.mark.data
def test_real_masked_photos_dlib_misses_are_found(shared_data):
    for name in DLIB_MISSES:
        rgb = _real(shared_data, name)
        assert detect_faces(rgb, detector="all") == [], name
        faces = detect_faces(rgb)
        assert faces, name
        f = faces[0]
        # eyes above the mouth, inside the box's upper half
        assert f.eye_left[1] < f.box[1] + 0.6 * f.box[3] and f.mouth_centre[1] > f.eye_left[1]


@pytest.mark.data
def test_both_masked_people_are_found(shared_data):
    faces = detect_faces(_real(shared_data, TWO_PEOPLE))
    assert len(faces) == 2 and {f.detector for f in faces} == {"blazeface"}


@pytest.mark.data
def test_alignment_under_a_worn_mask_stays_close_to_the_unmasked_one(shared_data):
    """celeba_wild256 faces were aligned FFHQ-style at 256, so the true quad is the frame. Under a
    synthetic worn mask (MaskTheFace templates) the quad from the mesh stays within ~3 % of the
    crop side on average (150 held-out faces: 2.7 %, dlib's "all" 4.0 %; README, "Finding faces")."""
    import cv2
    from PIL import Image

    from unmasked.masks.face_mask import TemplateSet, put_face_mask

    templates = TemplateSet.from_folder(shared_data / "mask_the_face" / "masks")
    rng = np.random.default_rng(0)
    pad = 64
    true = np.array([[0, 0], [0, 256], [256, 256], [256, 0]], float) + pad - 0.5
    errors = []
    for path in sorted((shared_data / "faces" / "celeba_wild256").glob("72*/*.jpg"))[:12]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        face = detect_faces(rgb)[0]
        masked, _ = put_face_mask(rgb, face, rng, kind="random", templates=templates, variety=True)
        masked = cv2.copyMakeBorder(masked, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        found = detect_faces(masked)
        assert found, path
        errors.append(np.abs(ffhq_quad(found[0].landmarks) - true).mean() / 256)
        assert align_face(masked, found[0], 128).image.shape == (128, 128, 3)
    assert np.mean(errors) < 0.04, errors


# --------------------------------------------------------------------------- unmask end to end


def _masked_astronaut(astronaut):
    from unmasked.masks.face_mask import put_face_mask

    (face,) = detect_faces(astronaut)
    return put_face_mask(astronaut, face, np.random.default_rng(0), kind="surgical")


def test_unmask_without_faces_tiny_and_huge_photos(astronaut):
    import unmasked
    from unmasked.api import load_model
    from unmasked.pipelines.unmask import unmask_array

    telea = load_model("telea")
    coffee = data.coffee()  # a cup on a table: no face
    result = unmask_array(coffee, telea)
    assert result.faces == [] and "no face found" in result.note
    np.testing.assert_array_equal(result.image, coffee)
    tiny = np.full((6, 5, 3), 200, np.uint8)
    assert "no face found" in unmask_array(tiny, telea).note
    # a 6000 x 4000 photo (24 MP, the API's default pixel limit is larger) with one masked face
    masked, hole = _masked_astronaut(astronaut)
    big = np.full((4000, 6000, 3), 90, np.uint8)
    big[1500:2012, 3000:3512] = masked
    result = unmasked.unmask(big, model="telea")
    assert [f.mask_found for f in result.faces] == [True]
    assert (result.region[1500:2012, 3000:3512] & hole).sum() / hole.sum() > 0.97
    far = np.ones(big.shape[:2], bool)
    far[1400:2112, 2900:3612] = False
    np.testing.assert_array_equal(result.image[far], big[far])


@pytest.mark.data
def test_unmask_says_no_face_on_a_real_scene(shared_data):
    from unmasked.api import load_model
    from unmasked.conventions import load_image
    from unmasked.pipelines.unmask import unmask_array

    rgb = load_image(shared_data / "scenes" / "CBSD68" / "108005.jpg").rgb
    result = unmask_array(rgb, load_model("telea"))
    assert result.faces == [] and result.note.startswith("no face found")


@pytest.mark.data
def test_a_group_photo_has_every_masked_person_restored(shared_data):
    """Eight real photos of one masked person each, tiled into a 1920 x 1080 group photo
    (benchmarks/unmask_pipeline.py's group photo): all eight are found and restored."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from unmask_pipeline import GROUP, group_photo

    from unmasked.api import load_model
    from unmasked.pipelines.unmask import unmask_array

    photo = group_photo(shared_data / "real_masked_photos")
    result = unmask_array(photo, load_model("telea"))
    assert len(result.faces) == len(GROUP) == 8
    assert all(f.mask_found for f in result.faces)
    cells = sorted((f.box[1] + f.box[3] // 2) // 540 * 4 + (f.box[0] + f.box[2] // 2) // 480 for f in result.faces)
    assert cells == list(range(8))  # one face in each cell

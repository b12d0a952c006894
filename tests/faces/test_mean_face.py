"""The mean face: its warp, its construction, its file, and the structure it gives a fill."""

import cv2
import numpy as np
import pytest

from unmasked.faces.mean_face import (
    BAND_THRESHOLD,
    MEAN_FACE_FILE,
    TEXTURE_CAP,
    TEXTURE_SIGMAS,
    TEXTURED_MEAN_FACE_FILE,
    MeanFace,
    _band_amplitudes,
    build_mean_face,
    horizontal_band_ratio,
    load_mean_face,
    save_mean_face,
    structure_from_mean_face,
    texture_enhance,
    warp_by_landmarks,
)
from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

SIDE = 128


def _points(side: int = SIDE) -> np.ndarray:
    """The FFHQ mean landmarks at ``side`` px, lips closed (the inner lips' middles together)."""
    pts = np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * (side - 1)
    pts[66] = pts[62]
    return pts


def _dot_image(point, side: int = SIDE) -> np.ndarray:
    img = np.zeros((side, side, 3), np.uint8)
    cv2.circle(img, tuple(int(round(v)) for v in point), 2, (255, 255, 255), -1)
    return img


def _centre(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(img[..., 0] > 100)
    return np.array([xs.mean(), ys.mean()])


def test_warping_to_its_own_points_changes_nothing():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (SIDE, SIDE, 3)).astype(np.uint8), (0, 0), 2)
    out = warp_by_landmarks(img, _points(), _points(), SIDE)
    assert np.abs(out - img).max() < 1.0


def test_a_landmark_moved_carries_the_image_with_it():
    pts = _points()
    mouth = pts[62]  # the upper inner lip's middle
    moved = pts.copy()
    moved[48:68] += (6.0, 4.0)  # the mouth's 20 points move right and down
    out = warp_by_landmarks(_dot_image(mouth), pts, moved, SIDE)
    np.testing.assert_allclose(_centre(out), mouth + (6.0, 4.0), atol=0.6)
    # the eyes did not move: a dot on an eye stays put
    eye = pts[36:42].mean(axis=0)
    np.testing.assert_allclose(_centre(warp_by_landmarks(_dot_image(eye), pts, moved, SIDE)), eye, atol=0.6)


def test_the_warp_at_another_size_scales_with_it():
    pts = _points()
    out = warp_by_landmarks(_dot_image(pts[30]), pts, pts * (255 / 127), 256)  # the nose tip, at 256²
    assert out.shape == (256, 256, 3)
    np.testing.assert_allclose(_centre(out), pts[30] * 255 / 127, atol=1.0)


def test_the_mean_face_averages_faces_normalised_to_their_mean_shape_and_closed_mouths_only():
    pts = _points()
    shifts = [(-3.0, 0.0), (3.0, 0.0)]
    faces, marks = [], []
    for dx, dy in shifts:  # the same face at two places: each warped to the mean shape lands on it
        p = pts.copy()
        p[48:68] += (dx, dy)
        faces.append(_dot_image(pts[62] + (dx, dy)))
        marks.append(p)
    open_mouth = pts.copy()
    open_mouth[66, 1] += 20  # lips far apart
    faces.append(np.full((SIDE, SIDE, 3), 200, np.uint8))
    marks.append(open_mouth)
    mean = build_mean_face(np.stack(faces), np.stack(marks))
    assert mean.count == 2  # the open mouth is left out (the bright face would show everywhere)
    np.testing.assert_allclose(mean.points, pts, atol=1e-9)  # the two mouths' mean is the middle
    np.testing.assert_allclose(_centre(mean.image), pts[62], atol=0.6)  # one dot, where both map to
    assert mean.image[..., 0].max() > 200  # a sharp dot, not two half-bright ones
    with pytest.raises(ValueError, match="no face has a mouth"):
        build_mean_face(np.stack(faces[2:]), np.stack(marks[2:]))


def test_a_mean_face_file_round_trips_and_other_files_are_refused(tmp_path):
    img = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    mean = MeanFace(img, _points(16), 7)
    path = tmp_path / "m.safetensors"
    save_mean_face(mean, path, source="test")
    back = load_mean_face(path)
    np.testing.assert_array_equal(back.image, img)
    np.testing.assert_allclose(back.points, mean.points, atol=1e-4)
    assert back.count == 7
    from unmasked.hub import shipped_weights

    with pytest.raises(ValueError, match="is not a mean face"):
        load_mean_face(shipped_weights()["mask_segmenter"])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable mean face"):
        load_mean_face(bad)
    with pytest.raises(ValueError, match="no mean face"):
        load_mean_face(tmp_path / "missing.safetensors")


def test_with_a_flat_mean_face_only_the_fills_low_band_is_kept_inside_the_outline():
    rng = np.random.default_rng(1)
    fill = rng.integers(60, 200, (256, 256, 3)).astype(np.uint8)
    flat = MeanFace(np.full((256, 256, 3), 128, np.uint8), _points(256), 1)
    out = structure_from_mean_face(fill, _points(256), flat).astype(np.float32)
    low = cv2.GaussianBlur(fill.astype(np.float32), (0, 0), 8.0)
    nose = tuple(int(v) for v in _points(256)[30])
    assert np.abs(out[nose[1], nose[0]] - low[nose[1], nose[0]]).max() <= 1.0  # the face: low band only
    assert out[100:160, 100:160].std() < 0.3 * fill[100:160, 100:160].astype(np.float32).std()
    np.testing.assert_array_equal(out[:8, :8], fill[:8, :8])  # far outside the outline: the fill itself


def test_the_mean_faces_detail_comes_in_without_colour():
    mean = load_mean_face()
    fill = np.zeros((256, 256, 3), np.uint8)
    fill[:] = (190, 140, 120)  # flat skin
    out = structure_from_mean_face(fill, mean.points, mean).astype(np.int16)
    diff = out - fill.astype(np.int16)
    assert np.abs(diff).max() > 10  # structure came in ...
    # ... the same in R, G and B (luminance only; rounding aside)
    assert np.abs(diff[..., 0] - diff[..., 1]).max() <= 1 and np.abs(diff[..., 1] - diff[..., 2]).max() <= 1


def test_the_mean_faces_detail_scales_with_the_gain():
    """``gain`` multiplies the detail the mean face adds (0: none, the flat fill itself; the default
    is STRUCTURE_GAIN, 1)."""
    mean = load_mean_face()
    fill = np.full((256, 256, 3), (170, 130, 110), np.uint8)  # flat skin, mid-range (no clipping)
    change = {g: structure_from_mean_face(fill, mean.points, mean, gain=g).astype(np.float32) - fill
              for g in (0.0, 1.0, 1.5)}
    assert np.abs(change[0.0]).max() == 0
    face = np.abs(change[1.0]).max(axis=2) > 4
    assert face.sum() > 500
    ratio = np.median(change[1.5][face] / change[1.0][face])
    assert 1.4 < ratio < 1.6
    # the default (STRUCTURE_GAIN) is 1: gain 1.25 failed its rule by eye (README)
    np.testing.assert_array_equal(structure_from_mean_face(fill, mean.points, mean),
                                  structure_from_mean_face(fill, mean.points, mean, gain=1.0))


def test_the_shipped_mean_face_has_one_closed_mouth_where_its_landmarks_say():
    mean = load_mean_face(MEAN_FACE_FILE)
    assert mean.image.shape == (256, 256, 3) and mean.count >= 1000
    grey = cv2.cvtColor(mean.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lips = np.round(mean.points[60:68].mean(axis=0)).astype(int)  # between the inner lips
    x, y = lips
    # the line between the lips is the darkest row of the mouth: darker than the lips above and
    # below it and than the skin of the chin and of the upper lip
    column = grey[y - 16:y + 17, x - 3:x + 4].mean(axis=1)
    assert column.argmin() in range(14, 19)
    assert column[16] < column[0] - 15 and column[16] < column[-1] - 15
    # nostrils: darker than the nose tip between them
    tip = np.round(mean.points[30]).astype(int)
    nostrils = [np.round(mean.points[i]).astype(int) for i in (31, 35)]
    assert all(grey[p[1], p[0]] < grey[tip[1], tip[0]] for p in nostrils)


def _lower_face_hole(side: int) -> np.ndarray:
    pts = _points(side)
    hole = np.zeros((side, side), bool)
    hole[int(pts[29, 1]):, :] = True  # from the nose's bridge down, as a worn mask
    return hole


@pytest.mark.parametrize("side", [128, 256])
def test_the_band_ratio_tells_horizontal_bands_from_other_structure(side):
    pts, hole = _points(side), _lower_face_hole(side)
    yy, xx = np.mgrid[0:128, 0:128]
    skin = np.zeros((side, side, 3), np.float32) + (180, 140, 120)

    def ratio(pattern):  # drawn at 128², so both sides see the same face
        pattern = cv2.resize(pattern.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        return horizontal_band_ratio(np.clip(skin + pattern[..., None], 0, 255).astype(np.uint8), hole, pts)

    bands = 25 * np.sin(2 * np.pi * yy / 7)  # stacked horizontal lines, 7 px apart
    assert ratio(bands) > 100 * BAND_THRESHOLD
    assert ratio(25 * np.sin(2 * np.pi * xx / 7)) < 0.01  # the same lines turned upright
    grain = cv2.GaussianBlur(np.random.default_rng(0).normal(0, 25, (128, 128)).astype(np.float32), (0, 0), 1.0)
    assert 0.4 < ratio(grain) < 0.9  # no orientation: below 1 (its own edges are short), below the threshold
    assert ratio(grain + 0.5 * bands) > 5 * BAND_THRESHOLD  # bands show through grain
    # a face's own horizontal edges, a dark line between the lips, add little ...
    p128 = _points(128)
    line = np.zeros((128, 128), np.float32)
    line[int(round(p128[[62, 66], 1].mean())), int(p128[48, 0]):int(p128[54, 0])] = -60
    assert ratio(grain + line) < ratio(grain) + 0.15
    # ... and bands outside the hole (the photo's own) nothing
    assert ratio(np.where(_lower_face_hole(128), 0, bands)) < 0.01


def test_the_band_ratio_needs_the_face_in_the_hole_and_matching_shapes():
    pts = _points()
    fill = np.full((SIDE, SIDE, 3), 128, np.uint8)
    tiny = np.zeros((SIDE, SIDE), bool)
    tiny[60:63, 60:63] = True
    assert np.isnan(horizontal_band_ratio(fill, tiny, pts))
    with pytest.raises(ValueError, match="hole"):
        horizontal_band_ratio(fill, np.ones((64, 64), bool), pts)
    with pytest.raises(ValueError, match="68"):
        horizontal_band_ratio(fill, _lower_face_hole(SIDE), pts[:10])


def _ripple(side: int = 256) -> np.ndarray:
    """float64 (S, S, 3): mid grey with a fine ripple (a 4-px period, all in the finest bands)."""
    x = np.arange(side)
    ripple = 10.0 * np.sin(2 * np.pi * x / 4.0)[None, :] * np.ones((side, 1))
    return np.repeat((128.0 + ripple)[..., None], 3, axis=2)


def _fine(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float64).mean(axis=2)
    return img - cv2.GaussianBlur(img, (0, 0), 8.0)


def test_texture_enhance_scales_each_band_to_the_faces_amplitude_inside_the_shrunk_outline_only():
    """Tiddeman et al.'s prototype: a band the mean has at a third of the faces' amplitude comes back
    three times stronger, inside the face's outline shrunk by the inset, and not outside it."""
    mean, pts = _ripple(), _points(256)
    own = _band_amplitudes(mean.mean(axis=2), 256)
    out = texture_enhance(mean, pts, 3.0 * own)
    nose = np.round(pts[30]).astype(int)
    window = (slice(nose[1] - 4, nose[1] + 4), slice(nose[0] - 4, nose[0] + 4))

    def gain(out):  # the ripple's contrast at the nose, over the mean's
        return _fine(out)[window].std() / _fine(mean)[window].std()

    assert 2.8 < gain(out) < 3.2
    np.testing.assert_allclose(out[:12, :12], np.round(mean[:12, :12]), atol=1)  # far outside: unchanged
    # capped at TEXTURE_CAP, and never weakened (amplitudes below the mean's own leave it as it is)
    assert 0.9 * TEXTURE_CAP < gain(texture_enhance(mean, pts, 100.0 * own)) < 1.05 * TEXTURE_CAP
    np.testing.assert_array_equal(texture_enhance(mean, pts, np.zeros_like(own)), np.round(mean).astype(np.uint8))
    with pytest.raises(ValueError, match="amplitudes"):
        texture_enhance(mean, pts, own[:2])


def test_the_textured_mean_face_of_identical_faces_is_the_plain_one_and_sharper_where_faces_disagree():
    pts = _points()
    rng = np.random.default_rng(3)
    face = cv2.GaussianBlur(rng.integers(0, 256, (SIDE, SIDE, 3)).astype(np.uint8), (0, 0), 1.5)
    same = np.stack([face, face])
    marks = np.stack([pts, pts])
    plain = build_mean_face(same, marks)
    np.testing.assert_allclose(build_mean_face(same, marks, texture=True).image.astype(int), plain.image, atol=2)
    # a thin line, 1 px to the right in each of 7 faces whose landmarks agree: the plain mean blurs
    # it to a low plateau; the textured one puts back some of the fine contrast each face has
    x = int(round(pts[62, 0]))
    lines = np.full((7, SIDE, SIDE, 3), 100, np.uint8)
    for i in range(7):
        lines[i, 80:100, x - 3 + i] = 200
    flat, textured = (build_mean_face(lines, np.stack([pts] * 7), texture=t) for t in (False, True))

    def contrast(mean):  # the fine band's spread across the line
        return _band_amplitudes(mean.image.mean(axis=2), SIDE)[0][90, x - 5:x + 6].mean()

    assert contrast(textured) > 2.0 * contrast(flat)
    assert textured.count == flat.count == 7


def test_the_shipped_textured_mean_face_is_the_plain_one_with_finer_detail_in_the_face_only():
    plain, textured = load_mean_face(MEAN_FACE_FILE), load_mean_face(TEXTURED_MEAN_FACE_FILE)
    np.testing.assert_allclose(textured.points, plain.points, atol=1e-4)
    assert textured.count == plain.count
    fine = [_band_amplitudes(m.image.mean(axis=2), 256)[0] for m in (plain, textured)]
    x, y = np.round(plain.points[48:68].mean(axis=0)).astype(int)  # the mouth
    # measured: 1.6 times the plain mean face's finest band at the mouth
    assert fine[1][y - 6:y + 6, x - 12:x + 12].mean() > 1.4 * fine[0][y - 6:y + 6, x - 12:x + 12].mean()
    np.testing.assert_array_equal(textured.image[:20], plain.image[:20])  # above the face: as it was
    assert len(TEXTURE_SIGMAS) == 5


def _a_star(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 1]


def test_the_mean_faces_colour_detail_reddens_the_lips_at_the_photos_saturation_and_never_a_grey_photo():
    """``chroma``: the mean face's a*/b* detail above the split, times the photo's saturation over
    the mean face's: the lips get redder than the skin beside them; a black-and-white fill stays grey."""
    mean = load_mean_face()
    skin = np.full((256, 256, 3), (190, 140, 120), np.uint8)  # flat, saturated skin
    plain = structure_from_mean_face(skin, mean.points, mean)  # chroma 0: luminance only
    red = structure_from_mean_face(skin, mean.points, mean, chroma=1.0)
    lips = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(lips, [np.round(mean.points[48:60]).astype(np.int32)], 1)
    lips = lips.astype(bool)
    cheek = np.zeros_like(lips)
    x, y = np.round(mean.points[48]).astype(int)
    cheek[y - 4:y + 4, x - 30:x - 18] = True  # beside the mouth's corner
    gain = (_a_star(red)[lips].mean() - _a_star(red)[cheek].mean()) - (_a_star(plain)[lips].mean()
                                                                      - _a_star(plain)[cheek].mean())
    assert gain > 2.0  # the lips are redder than the skin beside them, by more than without chroma (measured 3.9)
    np.testing.assert_array_equal(red[:8, :8], skin[:8, :8])  # outside the face: the fill itself
    # at a photo's lower saturation, less colour comes in
    pale = np.full((256, 256, 3), (160, 150, 145), np.uint8)
    pale_red = structure_from_mean_face(pale, mean.points, mean, chroma=1.0)
    pale_plain = structure_from_mean_face(pale, mean.points, mean)
    pale_gain = (_a_star(pale_red)[lips].mean() - _a_star(pale_plain)[lips].mean())
    assert 0 < pale_gain < 0.7 * (_a_star(red)[lips].mean() - _a_star(plain)[lips].mean())  # measured: 1.0 against 4.9
    # a black-and-white photo gets no colour at all
    grey = np.full((256, 256, 3), 150, np.uint8)
    out = structure_from_mean_face(grey, mean.points, mean, chroma=1.0).astype(np.int16)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1
    # the hole's ramp confines it: where = 0 changes nothing
    np.testing.assert_array_equal(structure_from_mean_face(skin, mean.points, mean, chroma=1.0,
                                                           where=np.zeros((256, 256), np.float32)), skin)

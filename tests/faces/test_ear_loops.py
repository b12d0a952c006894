"""A worn mask's ear loops found beside the repainted region and filled (unmasked.faces.ear_loops)."""

import cv2
import numpy as np
import pytest

from unmasked.faces.ear_loops import LOOP_SIZE, draw_ear_loops, find_ear_loops, remove_ear_loops
from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

SIDE = LOOP_SIZE
SKIN = (180, 140, 120)
FABRIC = (200, 220, 235)  # a pale blue surgical mask


def _points() -> np.ndarray:
    return np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * (SIDE - 1)


def _masked_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Skin with a little grain, and a mask of pale blue fabric from the nose to the chin between the
    jaw's points 3 and 13."""
    lm = _points()
    rng = np.random.default_rng(seed)
    image = np.clip(np.array(SKIN, np.float32) + rng.normal(0, 2, (SIDE, SIDE, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((SIDE, SIDE), bool)
    hole[int(lm[29, 1]):int(lm[8, 1]), int(lm[3, 0]):int(lm[13, 0])] = True
    image[hole] = FABRIC
    return image, hole


def _line(image: np.ndarray, start, end, colour, width: int = 2) -> np.ndarray:
    drawn = np.zeros(image.shape[:2], np.uint8)
    cv2.line(drawn, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, width)
    image[drawn.astype(bool)] = colour
    return drawn.astype(bool)


def _strap_start(hole: np.ndarray, share: float = 0.2) -> tuple[int, int]:
    rows = np.nonzero(hole.any(axis=1))[0]
    y = int(rows.min() + share * (rows.max() - rows.min()))
    return int(np.nonzero(hole[y])[0].min()), y


def test_a_white_strap_from_the_masks_side_to_the_ear_is_found_and_nothing_else():
    image, hole = _masked_face()
    lm = _points()
    strap = _line(image, _strap_start(hole), lm[0] + [-3, 0], (250, 250, 250)) & ~hole
    loops = find_ear_loops(image, hole, hole, lm)
    assert (loops & strap).sum() > 0.6 * strap.sum()
    near = cv2.dilate(strap.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (loops & ~near).any()
    # without the strap, or without fabric, nothing
    clean, _ = _masked_face()
    assert not find_ear_loops(clean, hole, hole, lm).any()
    assert not find_ear_loops(image, np.zeros_like(hole), hole, lm).any()


def test_a_dark_strap_is_found_beside_a_dark_mask():
    image, hole = _masked_face()
    image[hole] = (30, 30, 35)
    lm = _points()
    strap = _line(image, _strap_start(hole), lm[0] + [-3, 0], (25, 25, 25)) & ~hole
    assert (find_ear_loops(image, hole, hole, lm) & strap).sum() > 0.6 * strap.sum()


@pytest.mark.parametrize("colour", [(250, 250, 250), (20, 20, 25)])
def test_a_patterned_masks_strap_may_be_its_bright_or_its_dark_colour(colour, monkeypatch):
    """Black and white checks: the fabric's median is a grey darker than the skin, so only dark lines
    were looked for and a white strap stayed; a patterned fabric is looked at in both polarities."""
    import unmasked.faces.ear_loops as ear_loops

    image, hole = _masked_face()
    rows, cols = np.indices((SIDE, SIDE))
    checks = ((rows // 3 + cols // 3) % 2).astype(bool)
    image[hole & checks], image[hole & ~checks] = (245, 245, 245), (25, 25, 30)
    lm = _points()
    strap = _line(image, _strap_start(hole), lm[0] + [-3, 0], colour) & ~hole
    loops = find_ear_loops(image, hole, hole, lm)
    assert (loops & strap).sum() > 0.6 * strap.sum()
    near = cv2.dilate(strap.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (loops & ~near).any()
    clean, _ = _masked_face()
    clean[hole & checks], clean[hole & ~checks] = (245, 245, 245), (25, 25, 30)
    assert not find_ear_loops(clean, hole, hole, lm).any()
    if colour[0] > 128:  # taken for a plain grey fabric, darker than the skin, the white strap was missed
        monkeypatch.setattr(ear_loops, "LOOP_PATTERN", np.inf)
        assert (find_ear_loops(image, hole, hole, lm) & strap).sum() < 0.2 * strap.sum()


@pytest.mark.parametrize("case", ["skin-coloured rim", "earring below the lobe", "far from the mask"])
def test_lines_that_are_not_straps_are_left_alone(case):
    image, hole = _masked_face()
    lm = _points()
    x, y = _strap_start(hole)
    if case == "skin-coloured rim":  # an ear's rim or a crease: a line in the skin's hue
        _line(image, (x, y), lm[0] + [-3, 0], (225, 180, 160))
    elif case == "earring below the lobe":  # beyond the face's outline, below the ear lobe (point 2)
        x, y = _strap_start(hole, 0.7)
        assert y > lm[2, 1]
        _line(image, (x, y), (x - 30, y + 10), (250, 250, 250))
    else:  # a white line by the ear that does not touch the mask's region
        _line(image, (x - 12, y), lm[0] + [-3, 0], (250, 250, 250))
    assert not find_ear_loops(image, hole, hole, lm).any()


def test_find_ear_loops_rejects_mismatched_shapes():
    image, hole = _masked_face()
    with pytest.raises(ValueError, match="must be"):
        find_ear_loops(image, hole[:-1], hole, _points())


def test_removal_fills_the_strap_at_the_photos_resolution_and_changes_nothing_else():
    h, w = 300, 360
    photo = np.full((h, w, 3), SKIN, np.uint8)
    strap = _line(photo, (40, 150), (140, 120), (250, 250, 250), width=3)
    scale = SIDE / h  # the crop: the photo's left 300 x 300 px at 256 px
    matrix = np.array([[scale, 0, 0], [0, scale, 0]], np.float64)
    loops = cv2.warpAffine(strap.astype(np.float32), matrix, (SIDE, SIDE)) > 0.5
    out = remove_ear_loops(photo, loops, matrix)
    assert np.abs(out[strap].astype(int) - SKIN).max() <= 6  # the strap is gone
    far = ~cv2.dilate(strap.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert np.array_equal(out[far], photo[far])
    assert remove_ear_loops(photo, np.zeros((SIDE, SIDE), bool), matrix) is photo


def test_drawn_straps_lie_beside_the_mask_and_only_change_their_pixels():
    image, hole = _masked_face()
    out, loops = draw_ear_loops(image, hole, _points(), np.random.default_rng(3))
    assert loops.any() and not (loops & hole).any()
    assert np.array_equal(out[~loops], image[~loops])
    left, right = loops[:, :SIDE // 2].sum(), loops[:, SIDE // 2:].sum()
    assert left > 0 and right > 0  # both sides

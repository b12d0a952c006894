"""Remove worn face masks from a photo: find each face, find its mask, fill, paste back.

For every face (BlazeFace + FaceMesh detection, see :mod:`unmasked.faces.detect`, or a user-given box): align it FFHQ-style at the
fill model's working size, find the region the worn mask covers, fill that region with the face
model, and blend the filled pixels back into the photo over the region only; pixels away from
the faces are returned byte for byte.

Two ways to find the region (``region=``):

* ``"segmenter"`` (default): the light U-Net :mod:`unmasked.models.mask_segmenter` (shipped
  preset ``mask_segmenter``) predicts the mask's pixels on the aligned crop. A face whose
  predicted mask covers less than ``min_area`` of the crop is reported as "no mask" and left
  untouched. Otherwise the prediction (probability > 0.5) is grown by colour over fabric the
  segmenter missed (GrabCut inside the landmark zone where a mask can be, :func:`grow_by_colour`:
  on real photos the segmenter, trained on synthetic masks, stops short of a turned face's far
  cheek or a printed logo) and dilated by ``dilate`` x the crop side (default :data:`DILATE` = 3 %
  = ~4 px at 128; on a small face at least :data:`DILATE_PHOTO_PX` of the photo's pixels,
  :func:`face_dilation`): the prediction's edge is uncertain by a pixel or two at the segmenter's 64 px
  working size, and a thin ring of fabric left around the hole would be copied into the fill as a
  visible outline, whereas an extra ring of skin costs the fill little (see the model card for
  the label coverage this buys).
* ``"landmarks"``: the earlier **landmark heuristic** :func:`worn_mask_region`: the polygon through
  MaskTheFace's six key points (nose bridge, cheeks, jaw, chin; Anwar & Raychowdhury 2020), grown by
  ``grow`` x the side. It cannot tell whether a mask is worn, so every face is filled; kept as a
  fallback for faces the segmenter misjudges.

**The eyes** (their landmark outlines, grown by :data:`EYE_GUARD`) are taken out of either
region's hole (:func:`eye_guard`): on real photos the colour growth and the dilation reach them,
and no worn mask covers them.

**The face's outline** (``outline=True``, off by default): the hole's part beyond the face's
outline (the hull of FaceMesh's points guessed under the mask) is filled from the background
around it, and the face model fills only the face within (:func:`split_at_outline`).

**Reframing.** dlib's landmarks come from faces without masks; under a worn mask it tends to place
the mouth and jaw too high, the FFHQ crop (sized by the eye-to-mouth distance) comes out too small,
and the mask runs off the crop's bottom edge: the fabric below the crop would stay in the photo.
When the segmenter's hole covers more than :data:`EDGE_SHARE` of the crop's bottom rows, the
crop is zoomed out about the eyes (:data:`REFRAME_ZOOMS`; the eyes stay where the FFHQ crop put
them, the face shrinks toward the size a correct crop would give it) and segmented again; the
zoomed crop is used when its prediction still contains the first one (:data:`REFRAME_AGREEMENT`),
so a segmenter that loses the mask at the smaller scale changes nothing. Measured on real photos
(README, "Remove face masks").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from unmasked.conventions import image_to_tensor
from unmasked.data.landmark_guide import unmasked_guess
from unmasked.faces import align_face, detect_faces, face_from_box, paste_back
from unmasked.faces.align import scale_of
from unmasked.faces.detect import box_iou
from unmasked.faces.ear_loops import LOOP_SIZE, cielab, find_ear_loops, remove_ear_loops
from unmasked.faces.landmarks import face_outline, six_points
from unmasked.faces.mean_face import (
    BAND_THRESHOLD,
    MEAN_CHROMA,
    horizontal_band_ratio,
    shipped_mean_face,
    structure_from_mean_face,
)
from unmasked.faces.second_look import second_look_faces
from unmasked.faces.skin_texture import skin_texture
from unmasked.hub import DEFAULT_SEGMENTER, load_segmenter
from unmasked.models.base import InpaintModel, SegmentModel
from unmasked.pipelines.fill import check_box, fill_array, model_name, run_model, validate_image
from unmasked.pipelines.reference import Gallery, aligned_reference

REGIONS = ("segmenter", "landmarks")
#: raised whenever the way the hole is drawn changes (caches of holes, e.g. the training kind
#: ``real_worn``, are rebuilt); 2: the eyes are taken out of every hole (:func:`eye_guard`); 3: the skin
#: just below the eyes is kept out of the colour growth (:func:`skin_below_eyes`), and small faces'
#: holes are dilated by at least :data:`DILATE_PHOTO_PX` photo pixels (:func:`face_dilation`); 4: fabric
#: the segmenter marks on an eye's landmark outline is repainted inside its guard (:func:`eyes_off_fabric`)
REGION_VERSION = 4
#: a face whose predicted mask covers less than this fraction of the aligned crop wears no mask
#: (synthetic masks cover 6-33 % of the crop, the smallest held-out MaskedFace-Net prediction 3.6 %;
#: 0.5 % of unmasked held-out faces reach 2 %: see the model card)
MIN_MASK_AREA = 0.02
#: a prediction covering more than this of the crop is no worn mask but a segmenter failure
#: (the largest synthetic mask, a gas mask, covers 33 %); such a face is left untouched with a note
MAX_MASK_AREA = 0.6
#: the largest multiple of the crop's side a face is pasted back from (a 128² crop: 1,024²)
MAX_PASTE_FACTOR = 8
#: the Gaussian of that paste's seam, in crop pixels
SEAM_SOFTNESS = 0.5
#: the mean face's detail (``mean_face``) fades in from the hole's edge over about this many crop pixels
STRUCTURE_EDGE = 4.0
#: dilation of the predicted mask, as a fraction of the aligned crop's side
DILATE = 0.03
#: ... and at least this many of the photo's own pixels (:func:`face_dilation`)
DILATE_PHOTO_PX = 2.5
#: the zone GrabCut may grow the worn mask into: the landmark region grown by this x the crop side
GROW_ZONE = 0.12
#: a colour growth larger than this x the segmenter's area is taken for a run-away and dropped
GROW_MAX = 2.0
#: the eyes (their landmark outlines dilated by this x the crop side) are kept out of the hole, all but
#: the fabric the segmenter marked there (:data:`EYE_MARGIN`)
EYE_GUARD = 0.02
#: fabric the segmenter marked inside the guard is repainted down to the eyes' outline grown by this x the crop side (1 px at 128²)
EYE_MARGIN = 0.008
#: an eye whose landmark outline the segmenter gives a mean probability above this may lie on the
#: fabric (a misplaced landmark): the fabric it marked there is repainted inside the eye's guard too
#: (:func:`eyes_off_fabric`)
EYE_ON_FABRIC = 0.15
#: :func:`skin_below_eyes`: the band below the eyes (their outlines grown by this x the crop side,
#: ~8 px at 128²) whose skin-coloured pixels colour growth may not take
EYE_SKIN = 0.06
#: the face's outline (the convex hull of its 68 points, guessed under the mask) grown by this x the crop side
OUTLINE_GROW = 0.05
#: :func:`smooth_jaw_line`: the band about the guessed jaw line (3 px at 128²) and the median's window (7 px)
JAW_BAND = 3 / 128
JAW_MEDIAN = 6 / 128
#: ... and the grey levels a pixel must differ from that median by to be taken for a dot
JAW_DOT = 12
#: zoom-outs of the FFHQ crop (about the eyes) tried, in order, when the worn mask runs off its bottom
REFRAME_ZOOMS = (1.15, 1.3)
#: a photo whose crop, outside the hole, has 90 % of its pixels within MONO_CHROMA[0] (CIELAB a*b*
#: units) of their median colour is monochrome (black and white, or toned): the fill takes that
#: colour; from MONO_CHROMA[1] on it keeps its own, with a linear blend between (:func:`match_monochrome`)
MONO_CHROMA = (2.5, 4.5)
#: ``unmask_array(mean_face=)`` by the name the CLI and the REST API give it: never, where the fill is
#: banded, always
MEAN_FACE_CHOICES = {"off": False, "auto": "auto", "on": True}
MEAN_FACE_MODES = tuple(MEAN_FACE_CHOICES.values())
#: the mask "runs off" the crop when the hole covers more than this share of its bottom two rows
EDGE_SHARE = 0.2
#: a zoomed crop is used only if its prediction holds this share of the first prediction's pixels
REFRAME_AGREEMENT = 0.85


@dataclass
class UnmaskedFace:
    """One face: ``box`` (x, y, w, h) in the photo, how it was found, whether a worn mask was found,
    ``mask_area`` (fraction of the aligned crop the detected mask covers; for the landmark region the
    heuristic's own area) and ``hole_ratio`` (fraction of the crop filled; 0 when left untouched)."""

    box: tuple[int, int, int, int]
    detector: str
    mask_found: bool
    mask_area: float
    hole_ratio: float
    #: the reference used for this face (a path from the gallery, or "given"), and its similarity
    reference: str | None = None
    reference_similarity: float | None = None
    #: the crop's zoom about the eyes: 1 = the FFHQ crop; more when the mask ran off it (reframing)
    zoom: float = 1.0
    #: whether the restored face's structure came from the mean face (``mean_face``), and the fill's
    #: :func:`~unmasked.faces.mean_face.horizontal_band_ratio` that ``mean_face="auto"`` decided by
    mean_face: bool = False
    band_ratio: float | None = None


@dataclass
class FaceStages:
    """Intermediate results of one face (``keep_stages=True``), all at the crop size S: ``aligned``
    uint8 (S, S, 3), ``probability`` float32 (S, S) (None for the landmark region), ``hole`` bool
    (S, S) and ``filled`` uint8 (S, S, 3) (None when the face was left untouched)."""

    aligned: np.ndarray
    probability: np.ndarray | None
    hole: np.ndarray
    filled: np.ndarray | None


@dataclass
class UnmaskResult:
    """``image`` uint8 (H, W, 3); ``faces`` per face; ``masks`` one bool (H, W) per face: the worn mask
    found on it, in photo pixels (empty for a face without mask); ``region`` bool (H, W): the pixels
    that changed."""

    image: np.ndarray
    faces: list[UnmaskedFace] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    region: np.ndarray | None = None
    note: str | None = None
    stages: list[FaceStages] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        """bool (H, W): the union of the worn masks found on all faces."""
        out = np.zeros(self.image.shape[:2], bool)
        for m in self.masks:
            out |= m
        return out


def reference_detector(detector: str) -> str:
    """The detector for reference and gallery photos: one unmasked face each, so the first-hit
    cascade ("auto") is enough where the photo being restored is searched with "all"."""
    return "auto" if detector == "all" else detector


def check_reference_options(model: InpaintModel, reference, gallery, reference_box=None) -> None:
    """``ValueError`` unless at most one of ``reference`` / ``gallery`` is given, and only to a
    reference-guided model, and a ``reference_box`` only with a reference. Callers that prepare
    the reference first (the CLI builds a folder's gallery once) check with this before any work."""
    if reference is not None and gallery is not None:
        raise ValueError("give a reference photo or a gallery, not both")
    if reference_box is not None and reference is None:
        raise ValueError("a reference face square needs a reference photo")
    if (reference is not None or gallery is not None) and not model.uses_reference:
        raise ValueError(f"model {model_name(model)!r} does not use a reference photo; "
                         "use a reference-guided model (two_face)")


def worn_mask_region(landmarks: np.ndarray, size: int, grow: float = 0.05) -> np.ndarray:
    """bool (size, size): the area a worn mask covers, from 68 landmarks in crop pixels.

    The polygon a-b-c-f-e-d through MaskTheFace's six key points with its top edge lifted a
    fifth of the way toward the eyes, dilated by ``grow`` x size.
    """
    a, b, c, d, e, f = six_points(landmarks)
    # masks ride higher than MaskTheFace's template line, up the nose and over the cheekbones:
    # lift the top edge a fifth of the way toward the eye line (more starts to cover the eyelids)
    eyes = (landmarks[36:42].mean(axis=0) + landmarks[42:48].mean(axis=0)) / 2
    lift = (eyes - b) / 5
    a, b, c = a + lift, b + lift, c + lift
    region = np.zeros((size, size), np.uint8)
    cv2.fillPoly(region, [np.round(np.stack([a, b, c, f, e, d])).astype(np.int32)], 1)
    r = round(grow * size)
    if r > 0:
        region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return region.astype(bool)


def eye_guard(landmarks: np.ndarray, size: int, grow: float = EYE_GUARD,
              eyes: tuple[bool, bool] = (True, True)) -> np.ndarray:
    """bool (size, size): the eyes (the outlines of landmarks 36-41 and 42-47, in crop pixels, each
    where ``eyes`` says so) dilated by ``grow`` x size; :func:`unmask_array` takes them out of every
    hole (all but the fabric the segmenter marked in them, which it repaints down to the eyes'
    outline grown by :data:`EYE_MARGIN`, and inside the outline too for an eye that lies on the
    fabric: :func:`eyes_off_fabric`).

    A worn mask never covers the eyes, and the face models never learned to paint them (no
    synthetic mask reaches them), but on real photos the hole did: a skin-coloured mask lets
    GrabCut grow up the cheeks to the lower eyelids, and the 3 % dilation then runs into the eye.
    Of the 30 holes on the held-out real photos of the #18 check, 17 took pixels inside an eye's
    outline (9 of them 20 or more, one the whole eye).
    """
    guard = np.zeros((size, size), np.uint8)
    for part, keep in zip((landmarks[36:42], landmarks[42:48]), eyes, strict=True):
        if keep:
            cv2.fillPoly(guard, [np.round(part).astype(np.int32)], 1)
    return dilate_mask(guard.astype(bool), grow)


def eyes_off_fabric(landmarks: np.ndarray, prob: np.ndarray | None) -> tuple[bool, bool]:
    """(left, right): whether each eye's landmark outline (36-41, 42-47, crop pixels) lies off the
    worn mask, i.e. the segmenter's mean probability ``prob`` (float (S, S)) inside it is at most
    :data:`EYE_ON_FABRIC`; both True without a segmenter (``prob`` None) or for an empty outline.

    No worn mask covers an eye, so an "eye" on the fabric is a misplaced landmark (a profile under
    a cap whose eye FaceMesh put on the mask's top edge, a face looking down whose eyes it put on
    the mask) or a real eye whose lower lid the mask's edge overlaps. For such an eye
    :func:`unmask_array` repaints the fabric the segmenter marked (> 0.5, grown by
    :data:`EYE_MARGIN`) inside the eye's guard too, where the guard would otherwise keep a bar of
    fabric in the photo, and keeps the guard for the rest. On the 80 restored faces of the four
    sets of real photos of the #18 check, real eyes' outlines score at most 0.033, the two
    misplaced ones 0.24 and 0.61-0.81; on the next 80, two real eyes under a mask's edge scored
    0.19 and 0.34, and dropping their guard (the first version) blurred them away.
    """
    if prob is None:
        return True, True
    size = prob.shape[0]
    keep = []
    for part in (landmarks[36:42], landmarks[42:48]):
        outline = np.zeros((size, size), np.uint8)
        cv2.fillPoly(outline, [np.round(part).astype(np.int32)], 1)
        keep.append(not outline.any() or float(prob[outline > 0].mean()) <= EYE_ON_FABRIC)
    return keep[0], keep[1]


def smooth_jaw_line(filled: np.ndarray, hole: np.ndarray, points: np.ndarray) -> np.ndarray:
    """uint8 (S, S, 3): ``filled`` with, inside ``hole``, a band of :data:`JAW_BAND` x S about the
    jaw line (landmarks 0-16 of ``points``, crop pixels) replaced by its median (a window of
    :data:`JAW_MEDIAN` x S) where it differs from it by more than :data:`JAW_DOT` grey levels. The landmark-guided model, trained on exact points, paints the guide's
    jaw line as a dotted stroke where the guessed jaw lies inside the hole (a turned face's cheek, a
    chin under a low mask); the median takes the dots and keeps the jaw's step from skin to neck."""
    size = filled.shape[0]
    line = np.zeros((size, size), np.uint8)
    cv2.polylines(line, [np.round(points[0:17]).astype(np.int32)], False, 1, thickness=1)
    r = max(1, round(JAW_BAND * size))
    band = cv2.dilate(line, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool) & hole
    if not band.any():
        return filled
    k = 2 * max(1, round(JAW_MEDIAN * size / 2)) + 1
    median = cv2.medianBlur(np.ascontiguousarray(filled), k)
    # only the dots (pixels far from the median), so the band keeps the fill's texture
    dots = band & (np.abs(filled.astype(np.int16) - median).max(axis=2) > JAW_DOT)
    out = filled.copy()
    out[dots] = median[dots]
    return out


def photo_tone(aligned: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, float]:
    """The median a*b* (OpenCV's 8-bit CIELAB, neutral at 128) of ``aligned``'s pixels in ``where``
    (bool (S, S)), and the 90th percentile of their a*b* distances from it: under
    :data:`MONO_CHROMA`'s first value the photo is black and white (or one tone), from its second on
    it is in colour."""
    lab = cv2.cvtColor(aligned, cv2.COLOR_RGB2LAB).astype(np.float32)[where][:, 1:]
    tone = np.median(lab, axis=0)
    return tone, float(np.percentile(np.hypot(*(lab - tone).T), 90))


def match_monochrome(filled: np.ndarray, hole: np.ndarray, aligned: np.ndarray) -> np.ndarray:
    """``filled`` (uint8 (S, S, 3), the fill in ``hole``) with its colour taken away when the photo has none.

    The face models were trained on colour photos and paint skin and lips in colour on a black and
    white photo too: a pink or purple face in a grey photo. Here the crop's pixels outside the hole
    (``aligned``) decide: when 90 % of them lie within the first of :data:`MONO_CHROMA` of their median
    a*b* (CIELAB), the photo is monochrome, and the fill's a*b* inside the hole become that median
    (grey, or the photo's sepia or blue tone), its lightness kept. A colour photo, with skin, hair
    and background of different hues, is left as it is (a spread from the second of
    :data:`MONO_CHROMA` on; a blend between). Of 284 faces ``unmask`` restores on every third real photo, 5 are exactly grey and 2
    more nearly so (2.2-3.0); the palest colour photo measured 4.5.
    """
    outside = ~hole
    if not hole.any() or not outside.any():
        return filled
    tone, spread = photo_tone(aligned, outside)
    lo, hi = MONO_CHROMA
    weight = float(np.clip((hi - spread) / (hi - lo), 0.0, 1.0))
    if weight == 0.0:
        return filled
    out = cv2.cvtColor(filled, cv2.COLOR_RGB2LAB).astype(np.float32)
    out[..., 1:] = np.where(hole[..., None], (1.0 - weight) * out[..., 1:] + weight * tone, out[..., 1:])
    out = cv2.cvtColor(np.clip(np.round(out), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return np.where(hole[..., None], out, filled)


def fill_outside_face(aligned: np.ndarray, hole: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """uint8 (S, S, 3): ``aligned`` with the part of ``hole`` outside the face (``hole & ~inside``)
    filled by Telea (``cv2.inpaint``) from the known pixels outside the face only, so background,
    hair or collar continue into it and no skin does. Pixels elsewhere are returned unchanged."""
    unknown = (hole | inside).astype(np.uint8)
    background = cv2.inpaint(np.ascontiguousarray(aligned), unknown, 3, cv2.INPAINT_TELEA)
    out = aligned.copy()
    part = hole & ~inside
    out[part] = background[part]
    return out


def split_at_outline(aligned: np.ndarray, hole: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(image, hole)`` for the face model when the hole runs past the face's outline: the part
    outside :func:`face_outline` of ``landmarks`` (crop pixels; ``unmask`` gives FaceMesh's points
    guessed under the mask, :func:`unmasked.data.landmark_guide.unmasked_guess`) filled from the
    background (:func:`fill_outside_face`), and the hole left to the face model, the part inside.
    A hole wholly inside or wholly outside the outline is returned as it is.

    Why: a worn mask often reaches past the face, over the background beside a cheek, a turned
    face's far side or the hair by the ear, and the face model, which fills every hole as face,
    paints skin there, so the restored face comes out wider than the person's. Measured in the
    README ("The face's outline"): not the default.
    """
    inside = face_outline(landmarks, hole.shape[0], OUTLINE_GROW)
    if not (hole & ~inside).any() or not (hole & inside).any():
        return aligned, hole
    return fill_outside_face(aligned, hole, inside), hole & inside


def segment_aligned(segmenter: SegmentModel, aligned: np.ndarray) -> np.ndarray:
    """Worn-mask probability float32 (S, S) or (N, S, S) for aligned faces uint8 (S, S, 3) / (N, S, S, 3)."""
    single = aligned.ndim == 3
    x = image_to_tensor(aligned)
    with torch.no_grad():
        prob = segmenter.predict(x)[:, 0].numpy().astype(np.float32)
    return prob[0] if single else prob


def face_dilation(matrix: np.ndarray, size: int, dilate: float = DILATE, photo_px: float = DILATE_PHOTO_PX) -> float:
    """The dilation (a fraction of the crop's side ``size``) for a face aligned by ``matrix``: ``dilate``,
    or ``photo_px`` of the photo's pixels where that is more (a face under about 50 px, whose crop
    is the photo scaled up).

    A worn mask's colour runs past its edge by the photo's own pixels, not the crop's: a JPEG keeps
    colour at half the resolution of brightness (4:2:0 chroma subsampling, two pixels a sample), and
    lens blur and upscaling add one or two more. On a large face the 3 % dilation (~4 crop pixels:
    2.5 photo pixels on a face 50 px wide, 8 on one 170 px wide) covers that; on a face 22 px wide, scaled up 3.6 times to the 128² crop, it is
    one photo pixel, and the fabric's colour left around the hole tinted the fill (a purple face
    under a purple mask).
    """
    return max(dilate, photo_px * scale_of(matrix) / size)


def hole_from_probability(prob: np.ndarray, dilate: float = DILATE, threshold: float = 0.5) -> np.ndarray:
    """bool (S, S): ``prob > threshold`` dilated by a disc of radius ``round(dilate * S)`` pixels."""
    return dilate_mask(prob > threshold, dilate)


def dilate_mask(mask: np.ndarray, dilate: float = DILATE) -> np.ndarray:
    """bool (S, S): ``mask`` dilated by a disc of radius ``round(dilate * S)`` pixels."""
    hole = mask.astype(np.uint8)
    r = round(dilate * mask.shape[-1])
    if r > 0 and hole.any():
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return hole.astype(bool)


def skin_below_eyes(aligned: np.ndarray, prob: np.ndarray, landmarks: np.ndarray, reach: float = EYE_SKIN) -> np.ndarray:
    """bool (S, S): the skin just below the eyes, which colour growth must leave alone.

    The band: the eyes' outlines grown by ``reach`` x S, below the eyes' mean height, where the
    segmenter is unsure or sure there is no fabric (``prob`` <= 0.3). Its pixels whose CIELAB
    colour is nearer the band's median (the visible skin: the band lies between the eyes and a
    mask's top edge) than the sure fabric's median (``prob`` > 0.8, eroded) are returned. On a
    skin-coloured mask (a pink one) GrabCut's fabric colours match that skin, and it grew the hole
    up to the lower eyelids; a white or blue mask's pixels in the band are nearer the fabric's
    colour and stay free to be grown. Empty when the band or the sure fabric has under 20 pixels,
    and on a black and white photo (:func:`photo_tone` under :data:`MONO_CHROMA`'s second value),
    where lightness alone decides and a white mask's shaded corner passed for skin. (Hue alone,
    tried too, could not tell a white mask's top edge from pale skin.)
    """
    size = prob.shape[-1]
    band = eye_guard(landmarks, size, reach) & ~eye_guard(landmarks, size, 0.0) & (prob <= 0.3)
    band &= np.arange(size)[:, None] > landmarks[36:48, 1].mean()
    sure = cv2.erode((prob > 0.8).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if band.sum() < 20 or sure.sum() < 20:
        return np.zeros_like(band)
    if photo_tone(aligned, prob <= 0.5)[1] < MONO_CHROMA[1]:
        return np.zeros_like(band)
    lab = cielab(aligned)
    skin, fabric = np.median(lab[band], axis=0), np.median(lab[sure], axis=0)
    return band & (np.linalg.norm(lab - skin, axis=-1) < np.linalg.norm(lab - fabric, axis=-1))


def grow_by_colour(aligned: np.ndarray, prob: np.ndarray, landmarks: np.ndarray, zone_grow: float = GROW_ZONE,
                   iterations: int = 4, eye_skin: bool = True) -> np.ndarray:
    """bool (S, S): the segmenter's worn mask (``prob > 0.5``) grown over the fabric it missed.

    The 64-px segmenter, trained on synthetic masks, often stops short of a real mask's far side
    on a turned face, or at a printed logo. GrabCut (Rother, Kolmogorov & Blake, SIGGRAPH 2004;
    ``cv2.grabCut``) fits colour models to the sure fabric (``prob > 0.8``, eroded) and to the
    rest, and labels each pixel by graph cut; it may only label pixels inside the landmark zone
    where a worn mask can be (:func:`worn_mask_region` grown by ``zone_grow`` x S; above it,
    the eyes and forehead, are sure background), and only grown pixels connected to the
    prediction are kept. With ``eye_skin`` the skin just below the eyes (:func:`skin_below_eyes`)
    is sure background too. The prediction itself is never shrunk. A growth beyond
    :data:`GROW_MAX` x the predicted area, or past :data:`MAX_MASK_AREA`, is taken for a run-away
    (fabric-coloured hair or collar) and dropped.
    """
    pred = prob > 0.5
    if not pred.any():
        return pred
    zone = worn_mask_region(landmarks, prob.shape[-1], zone_grow)
    labels = np.full(prob.shape, cv2.GC_BGD, np.uint8)
    labels[zone] = cv2.GC_PR_BGD
    labels[(prob > 0.3) & zone] = cv2.GC_PR_FGD
    labels[cv2.erode((prob > 0.8).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = cv2.GC_FGD
    if eye_skin:
        labels[skin_below_eyes(aligned, prob, landmarks)] = cv2.GC_BGD
    if not (labels == cv2.GC_FGD).any():
        return pred
    cv2.setRNGSeed(0)  # GrabCut's colour models start from k-means on OpenCV's global RNG: same photo, same region
    try:
        cv2.grabCut(np.ascontiguousarray(aligned), labels, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # degenerate colour models (e.g. a flat crop): keep the prediction
        return pred
    grown = (((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)) & zone) | pred
    _, parts = cv2.connectedComponents(grown.astype(np.uint8))
    grown &= np.isin(parts, np.unique(parts[pred]))
    if grown.sum() > GROW_MAX * pred.sum() or grown.mean() > MAX_MASK_AREA:
        return pred
    return grown


def runs_off_bottom(hole: np.ndarray) -> bool:
    """True when ``hole`` (S, S) covers more than :data:`EDGE_SHARE` of the crop's bottom two rows."""
    return float(hole[-2:].mean()) > EDGE_SHARE


def reframe(rgb: np.ndarray, face, size: int, segmenter: SegmentModel, detected: np.ndarray, matrix: np.ndarray,
            zooms: Sequence[float] = REFRAME_ZOOMS, dilate: float = DILATE):
    """The first zoomed-out crop of ``face`` on which the worn mask no longer runs off the bottom.

    ``detected`` bool (S, S) is the prediction on the crop given by ``matrix``. Each zoom is
    aligned and segmented; one whose prediction holds less than :data:`REFRAME_AGREEMENT` of
    ``detected`` (mapped into it) or has an implausible area is skipped. Returns ``(aligned,
    probability, zoom)`` of the first zoom whose prediction stays off the bottom edge, else of the
    last acceptable one, else None.
    """
    best = None
    for zoom in zooms:
        aligned = align_face(rgb, face, size, zoom=zoom)
        prob = segment_aligned(segmenter, aligned.image)
        mask = prob > 0.5
        area = float(mask.mean())
        if not MIN_MASK_AREA <= area <= MAX_MASK_AREA:
            continue
        to_zoomed = aligned.matrix @ np.vstack([cv2.invertAffineTransform(matrix), [0, 0, 1]])
        first = cv2.warpAffine(detected.astype(np.float32), to_zoomed, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
        if first.any() and (first & mask).sum() / first.sum() < REFRAME_AGREEMENT:
            continue
        best = (aligned, prob, zoom)
        if not runs_off_bottom(hole_from_probability(prob, dilate)):
            break
    return best


def paste_at_face_resolution(photo: np.ndarray, filled: np.ndarray, hole: np.ndarray, aligned, zoom: float = 1.0, *,
                             seamless: bool = False, native: bool = True, structure=None, grain=None) -> np.ndarray:
    """Paste the crop's fill (uint8 (S, S, 3), ``hole`` bool (S, S)) back into ``photo``.

    The fill model's crop is small (128²); a face larger in the photo (``px`` photo pixels per crop
    pixel >= 1.5) used to be pasted from it with a feather ring 3 crop pixels wide outside the
    hole, where the fill was blended with a copy of the photo shrunk to the crop and scaled up
    again: a blurred ring around every large restored face. Here such a face is pasted from a
    crop aligned at ``f`` = round(px) times the side (at most :data:`MAX_PASTE_FACTOR`): the fill
    is upsampled bilinearly into it and blended with the photo at that resolution by a soft
    alpha (the hole, with a smooth outline at that resolution, dilated by one crop pixel, then a
    Gaussian of :data:`SEAM_SOFTNESS` crop pixels), so the seam stays soft but what lies outside
    it is the photo itself. ``native=False`` (or a smaller face) pastes from the fill model's
    crop as before. Measured in the README ("How real the restored face looks at 256²").

    ``structure``: (a :class:`~unmasked.faces.mean_face.MeanFace`, 68 points in crop pixels: FaceMesh's
    guess under the mask, the ``chroma`` gain of its colour detail) or None. The upsampled fill (at
    least 256², ``2 x`` the crop) takes its structure, within the hole, from the mean face warped
    onto those points (:func:`~unmasked.faces.mean_face.structure_from_mean_face`) before it is pasted; a face pasted
    from the crop gets it too, made at 256² and shrunk back. ``grain``: the same 68 points, or None;
    with them the upsampled fill gets, within the hole and the face's outline, the photo's own skin
    grain (:func:`~unmasked.faces.skin_texture.skin_texture`), on a face pasted at its own resolution only.
    """
    px = 1.0 / scale_of(aligned.matrix)  # photo pixels per crop pixel
    factor = min(MAX_PASTE_FACTOR, round(px))
    size = filled.shape[0]
    fill_big = big = None
    from_crop = not native or factor < 2
    if from_crop:
        # a face smaller in the photo than twice the crop has no grain finer than the fill: the
        # crop's high band would be its edges, upsampled (on a 56-px face, glasses became dark specks)
        grain = None
    if structure is not None or grain is not None:
        up = max(2, factor)
        fill_big = cv2.resize(filled, (up * size, up * size), interpolation=cv2.INTER_LINEAR)
        # only within the hole (a smooth outline, its edge softened as the seam is)
        inside_hole = cv2.resize(hole.astype(np.float32), fill_big.shape[:2], interpolation=cv2.INTER_LINEAR) > 0.5
        where = np.maximum(cv2.GaussianBlur(inside_hole.astype(np.float32), (0, 0), SEAM_SOFTNESS * up), inside_hole)
        if structure is not None:
            mean, points, chroma = structure
            # the mean face's detail fades in from the hole's edge, where the fill continues the photo
            ramp = where if STRUCTURE_EDGE <= 0 else np.clip(
                2.0 * cv2.GaussianBlur(inside_hole.astype(np.float32), (0, 0), STRUCTURE_EDGE * up) - 1.0, 0.0, 1.0)
            fill_big = structure_from_mean_face(fill_big, (np.asarray(points, np.float64) + 0.5) * up - 0.5, mean,
                                                where=ramp, chroma=chroma)
        if grain is not None:
            big = align_face(photo, aligned.face, up * size, zoom=zoom)
            points = (np.asarray(grain, np.float64) + 0.5) * up - 0.5
            texture = skin_texture(big.image, inside_hole, points, up)
            if texture is not None:
                # inside the hole only (rising from 0 at its edge, so the photo around it is not touched)
                # and the face's outline
                inner = np.clip(2.0 * cv2.GaussianBlur(inside_hole.astype(np.float32), (0, 0), SEAM_SOFTNESS * up) - 1.0,
                                0.0, 1.0)
                face = cv2.GaussianBlur(face_outline(points, up * size, 0.0).astype(np.float32), (0, 0), 2.0 * up)
                fill_big = np.clip(np.round(fill_big + (texture * inner * face)[..., None]), 0, 255).astype(np.uint8)
    if from_crop:
        if fill_big is not None:  # the hole's pixels only: outside it the crop stays the photo's, not resampled
            filled = np.where(hole[..., None], cv2.resize(fill_big, (size, size), interpolation=cv2.INTER_AREA), filled)
        return paste_back(photo, filled, hole, aligned.matrix, seamless=seamless)
    side = factor * size
    if big is None or big.image.shape[0] != side:
        big = align_face(photo, aligned.face, side, zoom=zoom)
    # the hole at the big crop's resolution with a smooth outline (no staircase of factor-px steps)
    big_hole = (cv2.resize(hole.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
    grown = cv2.dilate(big_hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * factor + 1, 2 * factor + 1)))
    alpha = np.maximum(cv2.GaussianBlur(grown.astype(np.float32), (0, 0), SEAM_SOFTNESS * factor), big_hole)[..., None]
    fill = (fill_big if fill_big is not None else cv2.resize(filled, (side, side), interpolation=cv2.INTER_LINEAR))
    crop = np.round(alpha * fill.astype(np.float32) + (1.0 - alpha) * big.image).astype(np.uint8)
    return paste_back(photo, crop, alpha[..., 0] > 0.01, big.matrix, dilate_px=0, feather_px=0, seamless=seamless)


def _to_photo(crop_mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bool (H, W): a crop-space mask (S, S) warped back into the photo."""
    inverse = cv2.invertAffineTransform(matrix)
    back = cv2.warpAffine(crop_mask.astype(np.float32), inverse, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return back > 0.5


def unmask_array(
    rgb: np.ndarray,
    model: InpaintModel,
    *,
    boxes: Sequence[tuple[int, int, int, int]] | None = None,
    detector: str = "blazeface",
    region: str = "segmenter",
    segmenter: str | SegmentModel = DEFAULT_SEGMENTER,
    min_area: float = MIN_MASK_AREA,
    dilate: float = DILATE,
    grow: float = 0.05,
    keep_stages: bool = False,
    reference: np.ndarray | None = None,
    gallery=None,
    reference_box: tuple[int, int, int, int] | None = None,
    zooms: Sequence[float] = REFRAME_ZOOMS,
    seamless: bool = False,
    grabcut: bool = True,
    native: bool = True,
    outline: bool = False,
    mean_face: bool | str = True,
    mean_texture: bool = True,
    mean_chroma: bool = True,
    grain: bool = True,
    second_look: bool = True,
    ear_loops: bool = True,
    eye_skin: bool = True,
    min_dilate_px: float = DILATE_PHOTO_PX,
    eye_check: bool = True,
) -> UnmaskResult:
    """Restore every masked face of ``rgb`` (uint8 (H, W, 3)) with the inpainting ``model``.

    ``boxes`` (x, y, w, h) skip detection (for faces the detector misses). ``detector``
    "blazeface" (default: MediaPipe's BlazeFace + FaceMesh, made for faces under masks, a few ms a
    face) or one of dlib's (:data:`unmasked.faces.DETECTORS`): "all" keeps every face HOG or the
    CNN finds, "auto" stops at the first that finds a face and runs the CNN again only when none of
    those faces wears a mask. ``region`` picks how the
    worn mask is found (see the module docstring). Raises ``ValueError`` for bad boxes or options; a
    photo without a detectable face, or without a masked face, is returned unchanged with a note.

    Reference-guided models (``model.uses_reference``, e.g. ``two_face``) take ``reference``, a
    photo of the same person (its largest face is aligned, or the face in ``reference_box``, x, y,
    w, h on the reference photo), or ``gallery``, a folder or
    :class:`~unmasked.pipelines.reference.Gallery` searched per face (after a plain fill, so the
    worn mask does not steer the search); a face without a confident match is filled without one.

    ``zooms``: the reframing zoom-outs tried when a worn mask runs off the crop's bottom (see the
    module docstring); ``()`` turns reframing off. ``seamless``: paste each fill back matched to
    the photo in the gradient domain (:func:`unmasked.faces.align.gradient_match`), so no colour
    step shows at the seam. ``grabcut`` (segmenter region only): grow the predicted worn mask by
    colour over fabric the segmenter missed (:func:`grow_by_colour`) before dilating it.
    ``native``: paste a face larger than the crop back from a crop at its own resolution
    (:func:`paste_at_face_resolution`); False pastes from the fill model's crop. ``outline``: fill
    the hole's part outside the face's outline from the background, the rest with the face model
    (:func:`split_at_outline`). ``mean_face``: True (the default) takes the fill's structure (above a
    Gaussian of 8 px at 256², fading in from the hole's edge over :data:`STRUCTURE_EDGE` crop pixels)
    from the shipped mean face warped onto FaceMesh's guess of the hidden landmarks
    (:mod:`unmasked.faces.mean_face`); "auto" does so only for faces whose fill runs in
    horizontal bands (:func:`~unmasked.faces.mean_face.horizontal_band_ratio` >=
    :data:`~unmasked.faces.mean_face.BAND_THRESHOLD`); False never. Not with a reference, whose fill
    should carry the person's own. ``mean_texture`` (default True): the mean face used is its
    texture-enhanced version (:func:`~unmasked.faces.mean_face.texture_enhance`: the finest bands'
    crispness put back); False uses the plain average. ``mean_chroma`` (default True): the mean
    face's colour detail is added too (the lips' redness with a crisp edge), scaled by the photo's
    saturation (:data:`~unmasked.faces.mean_face.MEAN_CHROMA`; a black-and-white photo gets none).
    ``grain`` (default True): add the photo's own skin grain, synthesised from the visible skin, to the restored face (:mod:`unmasked.faces.skin_texture`).
    ``second_look`` (default True; the "blazeface" detector and the segmenter region, no ``boxes``):
    when no face with a worn mask was found, BlazeFace's doubtful boxes are looked at again
    (:func:`~unmasked.faces.second_look.second_look_faces`), and a face from them is restored, and
    reported, only where the segmenter finds a worn mask on it. ``ear_loops`` (default True; the
    segmenter region): the mask's straps beside the repainted region are found on the photo before
    the paste (:func:`~unmasked.faces.ear_loops.find_ear_loops`) and filled from their surroundings
    after it (:func:`~unmasked.faces.ear_loops.remove_ear_loops`). ``eye_skin`` (default True; with
    ``grabcut``): the skin just below the eyes is kept out of the colour growth
    (:func:`skin_below_eyes`). ``min_dilate_px`` (the segmenter region): the hole is dilated by at
    least this many of the photo's pixels (:func:`face_dilation`; 0: by ``dilate`` of the crop only).
    ``eye_check`` (default True; the segmenter region): where an eye's landmark outline lies on the
    fabric the segmenter found, that fabric is repainted inside the eye's guard too (:func:`eyes_off_fabric`).
    """
    validate_image(rgb)
    check_reference_options(model, reference, gallery, reference_box)
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {', '.join(REGIONS)}")
    if not 0 <= min_area < 1:
        raise ValueError(f"min_area must be in [0, 1), got {min_area}")
    if not 0 <= min_dilate_px <= 20:
        raise ValueError(f"min_dilate_px must be in [0, 20], got {min_dilate_px}")
    h, w = rgb.shape[:2]
    if boxes:
        for b in boxes:
            check_box(b, (h, w))
        faces = [face_from_box(rgb, tuple(b)) for b in boxes]
    else:
        faces = detect_faces(rgb, detector=detector)
    if mean_face not in MEAN_FACE_MODES:
        raise ValueError(f"mean_face must be one of {', '.join(map(repr, MEAN_FACE_MODES))}, got {mean_face!r}")
    # BlazeFace's doubtful boxes get a second look when no masked face was found, checked by the segmenter
    second_look = second_look and not boxes and detector == "blazeface" and region == "segmenter"
    no_face = "no face found: give the face square with --box x,y,w,h"
    if not faces and not second_look:
        return UnmaskResult(rgb.copy(), region=np.zeros((h, w), bool), note=no_face)
    seg = load_segmenter(segmenter) if region == "segmenter" else None
    mean = shipped_mean_face(texture=bool(mean_texture)) if mean_face else None

    size = model.working_size or 128
    ref_face = None
    if reference is not None or gallery is not None:
        ref_detector = reference_detector(detector)
        if reference is not None:
            validate_image(reference)
            ref_face = aligned_reference(reference, size, detector=ref_detector, box=reference_box)
        elif not isinstance(gallery, Gallery):
            gallery = Gallery.build(gallery, size=size, detector=ref_detector)
    out = rgb.copy()
    result = UnmaskResult(out)
    notes: list[str] = []
    def restore(face, tentative: bool = False) -> bool:
        """Restore ``face`` if it wears a mask; a ``tentative`` face (a second look's) is not even
        reported unless the segmenter finds one."""
        nonlocal out
        aligned = align_face(out, face, size)
        prob, zoom = None, 1.0
        if seg is not None:
            prob = segment_aligned(seg, aligned.image)
            detected = prob > 0.5
            area = float(detected.mean())
            found = min_area <= area <= MAX_MASK_AREA
            if tentative and not found:
                return False
            if area > MAX_MASK_AREA:
                notes.append(f"the segmenter marked {100 * area:.0f} % of the face at {face.box} as mask, which is "
                             "implausible: face left untouched (try region='landmarks')")
            hole = hole_from_probability(prob, dilate) if found else np.zeros_like(detected)
            if found and zooms and runs_off_bottom(hole):
                better = reframe(out, face, size, seg, detected, aligned.matrix, zooms, dilate)
                if better is not None:
                    aligned, prob, zoom = better
                    detected = prob > 0.5
                    area = float(detected.mean())
            if found and grabcut:
                detected = grow_by_colour(aligned.image, prob, aligned.landmarks, eye_skin=eye_skin)
                area = float(detected.mean())
            if found:  # the final hole, on the (possibly reframed) crop
                hole = dilate_mask(detected, face_dilation(aligned.matrix, size, dilate, min_dilate_px))
        else:
            detected = hole = worn_mask_region(aligned.landmarks, size, grow)
            area, found = float(hole.mean()), True
        filled, used, similarity = None, None, None
        with_mean, band_ratio = False, None
        if found:
            # The eyes stay the photo's: the guard (the eyes grown by EYE_GUARD) is taken out of the
            # hole. But fabric in the guard's ring that the segmenter marked is repainted, down to the
            # eyes' own outline (grown by EYE_MARGIN), and the fill model sees nothing of the ring:
            # shown as valid context, a mask's fabric beside the eyes was carried into the fill (a teal
            # strip under the eyes, a white nose)
            fabric = detected if seg is not None else np.zeros_like(hole)
            lm = aligned.landmarks
            hidden = hole & ~eye_guard(lm, size, grow=0)
            hole = (hole & ~eye_guard(lm, size)) | (fabric & ~eye_guard(lm, size, EYE_MARGIN))
            # an "eye" the segmenter marks as fabric may be a misplaced landmark: there the fabric
            # it marked is repainted inside the eye's outline too (eyes_off_fabric)
            eyes = eyes_off_fabric(lm, prob) if eye_check else (True, True)
            if not all(eyes):
                suspect = eye_guard(lm, size, eyes=(not eyes[0], not eyes[1]))
                hole = hole | (dilate_mask(prob > 0.5, EYE_MARGIN) & suspect)
            hidden = hidden | hole if hole.any() else hole
            # a landmark-guided model learned from unmasked faces' points: FaceMesh's guess under
            # the mask, moved by the displacement a mask causes on average
            guess = unmasked_guess(aligned.landmarks, size)
            points = guess if getattr(model, "uses_landmarks", False) else None
            # with ``outline``, the hole's part beside the face is filled from the background first
            source, inner = split_at_outline(aligned.image, hidden, guess) if outline else (aligned.image, hidden)
            filled = fill_array(source, inner, model, landmarks=points).image
            guide = ref_face
            if guide is not None:
                used = "given"
            elif gallery is not None:
                match = gallery.match(filled)
                if match is not None:
                    guide, used, similarity = match.face, str(match.path), match.similarity
            if guide is not None and hole.any():
                filled = run_model(model, source, inner, guide)
            filled = np.where(hole[..., None], filled, aligned.image)  # the hidden fabric by the eyes stays
            filled = match_monochrome(filled, hole, aligned.image)
            with_mean = mean is not None and guide is None and bool(hole.any())
            if with_mean:
                band_ratio = horizontal_band_ratio(filled, hole, guess)
                # NaN (too little of the face in the hole) compares False: no mean face
                with_mean = mean_face != "auto" or band_ratio >= BAND_THRESHOLD
            structure = (mean, guess, MEAN_CHROMA if mean_chroma else 0.0) if with_mean else None
            if points is not None and guide is None:  # the landmark guide's jaw line, painted as dots
                filled = smooth_jaw_line(filled, hole, guess)
            loops = None
            if ear_loops and seg is not None and hole.any():
                big = align_face(out, aligned.face, LOOP_SIZE, zoom)
                fabric_big, hole_big = (cv2.resize(m.astype(np.uint8), (LOOP_SIZE, LOOP_SIZE),
                                                   interpolation=cv2.INTER_NEAREST) > 0 for m in (detected, hole))
                loops = find_ear_loops(big.image, fabric_big, hole_big, big.landmarks)
            out = paste_at_face_resolution(out, filled, hole, aligned, zoom, seamless=seamless, native=native,
                                           structure=structure, grain=guess if grain and hole.any() else None)
            if loops is not None:
                out = remove_ear_loops(out, loops, big.matrix)
        result.faces.append(UnmaskedFace(tuple(int(v) for v in face.box), face.detector, found, area,
                                         float(hole.mean()), used, similarity, zoom, with_mean, band_ratio))
        result.masks.append(_to_photo(detected, aligned.matrix, (h, w)) if found else np.zeros((h, w), bool))
        if keep_stages:
            result.stages.append(FaceStages(aligned.image, prob, hole, filled))
        return found

    found_any = [restore(face) for face in faces]
    if second_look and not any(found_any):
        for face in second_look_faces(rgb, exclude=[f.box for f in faces]):
            restore(face, tentative=True)
    if not result.faces:
        return UnmaskResult(rgb.copy(), region=np.zeros((h, w), bool), note=no_face)
    if not boxes and detector == "auto" and not any(found_any):
        # a worn mask hides the cues HOG relies on: it can miss the masked face, or find only
        # something else; then the CNN detector (robust to masks, slower) gets its turn
        seen = [f.box for f in faces]
        for face in detect_faces(rgb, detector="cnn"):
            if all(box_iou(face.box, b) < 0.3 for b in seen):
                restore(face)
    result.image = out
    result.region = np.any(out != rgb, axis=2)
    if not any(f.mask_found for f in result.faces):
        n = len(result.faces)
        notes.append(f"no worn mask found on the {n} face{'s' if n > 1 else ''}: image left unchanged")
    result.note = "; ".join(notes) or None
    return result

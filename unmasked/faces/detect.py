"""Face detection and 68-point landmarks: MediaPipe's BlazeFace + FaceMesh (default), or dlib.

Detectors:

* ``"blazeface"`` (the default, :data:`DEFAULT_DETECTOR`) -- MediaPipe's BlazeFace detectors
  (:mod:`unmasked.faces.blazeface`; Bazarevsky et al., CVPR-W 2019), the full-range and the
  short-range model both run and their boxes merged, and on larger photos the full-range model
  also on overlapping tiles (:data:`TILE_MIN_SIDE`) so that faces small in a group photo are
  found. Each box is then given to FaceMesh (:mod:`unmasked.faces.facemesh`; Kartynnik et al.,
  CVPR-W 2019): a box whose mesh has a face-presence score below
  :data:`unmasked.faces.facemesh.MIN_PRESENCE` is dropped (a back of a head, a pattern), and the
  68 iBUG points are read off the 468-vertex mesh (:data:`unmasked.faces.facemesh.MESH_TO_IBUG68`).
  Both networks were trained on faces of every kind and the mesh is a whole-head fit, so a worn
  mask neither hides the face from the detector nor pulls the hidden mouth and jaw up, as it does
  with dlib's predictor. A few milliseconds a face on CPU. ``Face.extra`` holds the mesh
  (``"mesh"``, (468, 3)) and its ``"presence"``. Measured against dlib on real photos of people in
  masks in ``benchmarks/face_detection.py`` (README, "Finding faces").

dlib's detectors (King, "Dlib-ml", JMLR 2009; models from the ``face_recognition_models`` package),
kept for the training-data tools that were built with them and as options:
 (King, "Dlib-ml", JMLR 2009; models from the ``face_recognition_models`` package):

* ``"hog"`` -- dlib's frontal face detector, a HOG + linear SVM sliding window (Dalal & Triggs,
  CVPR 2005). Fast on CPU, but it looks for the whole frontal face pattern: a face mask hiding
  the nose and mouth often defeats it.
* ``"cnn"`` -- dlib's MMOD CNN face detector (King, "Max-Margin Object Detection", 2015;
  ``mmod_human_face_detector.dat``). Finds masked, turned and small faces far more often, at
  roughly 10-20x the cost of HOG on CPU.
* ``"auto"`` -- the fallback order used by the unmask pipeline:
  1. HOG at ``upsample``;
  2. if nothing was found, HOG at ``upsample + 1`` (small faces);
  3. if still nothing, the CNN without upsampling;
  4. if still nothing and ``upsample > 0``, the CNN at ``upsample`` (small faces; only for
     images small enough, see :data:`CNN_MAX_SIDE`).
  The first stage that finds a face wins; :attr:`Face.detector` records which one it was
  ("hog", "hog+1", "cnn", "cnn+N"). The CNN runs without upsampling first because that is ~4x
  cheaper and, on MaskedFace-Net's 256 px photos where the masked face fills the frame, it
  finds more faces than at upsample 1 (dlib's MMOD pyramid misses faces that are very
  large relative to its window).
* ``"all"`` -- every face any of HOG at ``upsample``, HOG at ``upsample + 1`` and the CNN at
  ``upsample`` finds, merged: a box overlapping one already kept (IoU >= 0.3) is dropped, HOG's
  boxes kept first (the landmark predictor was trained on them). The default of the unmask
  pipeline: in a group photo "auto" stops at the faces HOG finds, and a worn mask is exactly
  what makes HOG miss a face. On 100 real photos of people wearing masks (RMFD, mostly
  256 px) HOG at upsample 1 found 32 faces, the first-hit cascade of those stages 54, and their
  union 58 (3 of the 30 photos where HOG found someone had a second, masked person only the
  CNN found), at the cost of always running the CNN (most of the ~4.5 s unmask takes on a
  512 px photo here).

With dlib, landmarks come from the 68-point shape predictor (Kazemi & Sullivan, "One Millisecond Face
Alignment with an Ensemble of Regression Trees", CVPR 2014; iBUG 300-W markup), run on the
full-resolution image. MMOD boxes sit higher (more forehead) and are a little larger than
the HOG boxes the predictor was trained with, so they are mapped to HOG-like boxes first (:data:`CNN_TO_HOG_BOX`, fitted on
CelebA faces found by both detectors).

The model files are located without importing ``face_recognition_models`` (its ``__init__``
needs ``pkg_resources``), and each dlib model is loaded once per process, under a lock. dlib's
detectors are not safe for concurrent use (they keep scratch buffers), so each model is also
called under its own lock: a server may call these functions from several threads.

Images are uint8 (H, W, 3) RGB. Photos larger than ``max_side`` are searched on a downscaled
copy (detection cost grows with the pixel count); boxes are scaled back, and landmarks are
always predicted on the original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from unmasked.faces import blazeface
from unmasked.faces.dlib_models import MODEL_LOCKS, landmarks68, load_model
from unmasked.faces.facemesh import MIN_PRESENCE, mesh_for_box, mesh_for_detection

DETECTORS = ("blazeface", "hog", "cnn", "auto", "all")
#: the detector of every user-facing job (unmask, fill's auto, reference alignment, masks face)
DEFAULT_DETECTOR = "blazeface"

#: MMOD box -> HOG-like box, as fractions of the MMOD box side: (dx, dy, scale) with the new
#: centre at centre + (dx, dy) * side and the new side at scale * side. Medians over celeba_wild256
#: faces at random scales, angles and positions found by both detectors (dx measured 0.03, set to
#: 0 by symmetry); it brings the landmarks from MMOD boxes closer to those from HOG boxes
#: (mean error 4.3 % -> 3.7 % of the eye distance).
CNN_TO_HOG_BOX = (0.0, 0.085, 0.95)

#: the CNN never searches more than this many pixels along the longer side (after upsampling):
#: its cost grows with the pixel count (about 0.5 s of CPU for 256 x 256 on this project's
#: reference machine, so ~3 s for 800 x 600); larger images are downscaled for it
CNN_MAX_SIDE = 800

#: in "all" and "blazeface" modes, a box overlapping an already kept one this much is the same face
MERGE_IOU = 0.3
#: "blazeface" also runs the full-range model on overlapping tiles (:func:`_tiles`) no smaller than
#: this: it sees the whole photo at 192 px, so a face in a crowd is a few pixels there
TILE_MIN_SIDE = 96
#: FaceMesh's presence score is low on many masked faces (its training faces wore none), so a box
#: of the whole photo whose mesh fails it is still kept when the other BlazeFace model found the
#: same face with at least this score, or when it is the short-range model's with at least
#: :data:`SHORT_SURE`; a tile's box must pass the presence check
AGREE_SCORE = 0.4
SHORT_SURE = 0.75
#: two "blazeface" meshes whose eye centres lie closer than this share of their eye distance are one face
SAME_FACE_EYES = 0.5

# --------------------------------------------------------------------------- faces


@dataclass
class Face:
    """One face: ``box`` (x, y, w, h) ints, ``landmarks`` float64 (68, 2) (x, y) in image pixels.

    ``score`` is the detector's margin (higher = surer; NaN for a user-given box) and
    ``detector`` names the stage that found it: "hog", "hog+1" (one more upsample), "cnn" or "box".
    Landmark indices follow iBUG 300-W: 0-16 jaw (image left to right), 17-26 brows, 27-30 nose
    bridge, 31-35 nostrils, 36-41 / 42-47 the eyes on the image left / right, 48-67 the mouth.
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float = float("nan")
    detector: str = "box"
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def eye_left(self) -> np.ndarray:
        """Centre of the eye on the image left (the person's right eye), (2,)."""
        return self.landmarks[36:42].mean(axis=0)

    @property
    def eye_right(self) -> np.ndarray:
        return self.landmarks[42:48].mean(axis=0)

    @property
    def mouth_centre(self) -> np.ndarray:
        return (self.landmarks[48] + self.landmarks[54]) / 2


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _cnn_box_to_hog(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    dx, dy, s = CNN_TO_HOG_BOX
    side = (w + h) / 2
    cx, cy = x + w / 2 + dx * side, y + h / 2 + dy * side
    return cx - s * w / 2, cy - s * h / 2, s * w, s * h


def _run_detector(small: np.ndarray, kind: str, upsample: int) -> list[tuple[tuple[float, float, float, float], float]]:
    """(box, score) pairs in ``small``'s pixels; CNN boxes already mapped to HOG-like boxes."""
    model = load_model(kind)
    if kind == "hog":
        with MODEL_LOCKS["hog"]:
            rects, scores, _ = model.run(small, upsample, 0.0)
        return [((r.left(), r.top(), r.width(), r.height()), float(s)) for r, s in zip(rects, scores, strict=True)]
    f = min(1.0, CNN_MAX_SIDE / (max(small.shape[:2]) * 2**upsample))
    if f < 1.0:
        small = cv2.resize(small, (max(1, round(small.shape[1] * f)), max(1, round(small.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
    with MODEL_LOCKS["cnn"]:
        dets = model(small, upsample)
    out = []
    for det in dets:
        r = det.rect
        x, y, w, h = _cnn_box_to_hog(r.left(), r.top(), r.width(), r.height())
        out.append(((x / f, y / f, w / f, h / f), float(det.confidence)))
    return out


def _tiles(h: int, w: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side) of the square tiles "blazeface" also searches: two levels, of side half and a
    quarter of the photo's longer side (at most its shorter side; none under
    :data:`TILE_MIN_SIDE`), each stepping by 2/3 of the side so that neighbours overlap by a
    third, the last tile flush with the edge (256 x 256: 9 tiles of 128; 1920 x 1080: 6 of 960
    and 18 of 480)."""
    out: list[tuple[int, int, int]] = []
    side = max(h, w) // 2
    for _ in range(2):
        side = min(side, h, w)
        if side < TILE_MIN_SIDE:  # (after the shorter side's cap: a thin photo would get thousands of tiles)
            break
        step = max(1, (2 * side) // 3)

        def starts(n: int, side: int = side, step: int = step) -> list[int]:
            s = list(range(0, n - side + 1, step))
            return s + [n - side] if s[-1] + side < n else s

        out += [(x0, y0, side) for y0 in starts(h) for x0 in starts(w)]
        side //= 2
    return out


def tile_detections(rgb: np.ndarray, model: str, min_score: float | None = None) -> list[blazeface.Detection]:
    """BlazeFace's ``model`` run on each of the photo's tiles (:func:`_tiles`), at least ``min_score``
    (default: the model's own threshold), boxes and key points in the photo's pixels."""
    out = []
    for x0, y0, side in _tiles(*rgb.shape[:2]):
        for d in blazeface.detect(rgb[y0:y0 + side, x0:x0 + side], model, min_score=min_score):
            out.append(blazeface.Detection((d.box[0] + x0, d.box[1] + y0, d.box[2], d.box[3]), d.score,
                                           d.keypoints + [x0, y0]))
    return out


def _blazeface_faces(rgb: np.ndarray, min_size: float) -> list[Face]:
    """The "blazeface" detector (module docstring): BlazeFace full + short range on the photo and
    the full-range model on tiles, checked with FaceMesh, which also gives the landmarks."""
    # (detection, model, from a tile)
    cands = [(d, m, False) for m in ("full", "short") for d in blazeface.detect(rgb, m, min_score=AGREE_SCORE)]
    cands += [(d, "full", True) for d in tile_detections(rgb, "full")]
    confident = [c for c in cands if c[0].score >= blazeface.MODELS[c[1]][3] and min(c[0].box[2], c[0].box[3]) >= min_size]
    confident.sort(key=lambda c: (c[2], -c[0].score))  # the whole photo's boxes first, best first

    def inside(box, f: Face) -> bool:  # the box's centre lies in f's box: a part of a face found in a tile
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        return f.box[0] <= cx <= f.box[0] + f.box[2] and f.box[1] <= cy <= f.box[1] + f.box[3]

    faces: list[Face] = []
    for d, model, tiled in confident:
        if any(box_iou(d.box, f.box) >= MERGE_IOU or inside(d.box, f) for f in faces):
            continue
        mesh = mesh_for_detection(rgb, d.box, d.keypoints[0], d.keypoints[1])
        if mesh.presence < MIN_PRESENCE and (tiled or not (
                model == "short" and d.score >= SHORT_SURE
                or any(m != model and not t and o.score >= AGREE_SCORE and box_iou(o.box, d.box) >= MERGE_IOU
                       for o, m, t in cands))):
            continue
        face = Face(box=tuple(int(round(v)) for v in d.box), landmarks=mesh.ibug68, score=d.score,
                    detector="blazeface" + ("-tile" if tiled else ""),
                    extra={"mesh": mesh.points, "presence": mesh.presence})
        eyes = (face.eye_left, face.eye_right)
        if all(max(np.linalg.norm(eyes[0] - f.eye_left), np.linalg.norm(eyes[1] - f.eye_right))
               >= SAME_FACE_EYES * np.linalg.norm(f.eye_right - f.eye_left) for f in faces):
            faces.append(face)
    return faces


def detect_faces(
    rgb: np.ndarray,
    *,
    upsample: int = 1,
    detector: str = DEFAULT_DETECTOR,
    min_size: int = 20,
    max_side: int = 1280,
) -> list[Face]:
    """All faces in ``rgb`` uint8 (H, W, 3), largest first, each with 68 landmarks.

    ``detector``: "blazeface" (the default: BlazeFace boxes, FaceMesh landmarks; see the module
    docstring), or one of dlib's: "hog", "cnn", "auto" (HOG, then HOG with one more upsample,
    then the CNN without and with upsampling: the first stage that finds a face wins) or "all"
    (the faces found by HOG, HOG with one more upsample and the CNN, merged).
    ``upsample`` (dlib only) doubles the image that many times before searching (HOG finds faces down to ~80 px at 0, ~40 px at 1).
    Faces whose box side is below ``min_size`` pixels (in ``rgb``) are dropped. With dlib, images
    whose longer side exceeds ``max_side`` are searched at that size, and the CNN searches at most
    :data:`CNN_MAX_SIDE` pixels (the upsampled CNN stage of "auto" is skipped above it).
    """
    rgb = check_rgb(rgb)
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    if upsample < 0:
        raise ValueError(f"upsample must be >= 0, got {upsample}")
    if detector == "blazeface":
        faces = _blazeface_faces(rgb, min_size)
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)

    if detector == "auto":
        stages = [("hog", upsample, "hog"), ("hog", upsample + 1, "hog+1"), ("cnn", 0, "cnn")]
        if upsample > 0 and max(small.shape[:2]) * 2**upsample <= CNN_MAX_SIDE:
            stages.append(("cnn", upsample, f"cnn+{upsample}"))
    elif detector == "all":
        stages = [("hog", upsample, "hog"), ("hog", upsample + 1, "hog+1"),
                  ("cnn", upsample, f"cnn+{upsample}" if upsample else "cnn")]
    else:
        stages = [(detector, upsample, detector)]

    found: list[tuple[tuple[float, float, float, float], float, str]] = []
    for kind, up, label in stages:
        new = [(b, s, label) for b, s in _run_detector(small, kind, up) if min(b[2], b[3]) / scale >= min_size]
        if detector == "all":
            found += [f for f in new if all(box_iou(f[0], kept[0]) < MERGE_IOU for kept in found)]
        elif new:
            found = new
            break

    faces = []
    for (x, y, bw, bh), score, stage in found:
        box = (x / scale, y / scale, bw / scale, bh / scale)
        ibox = tuple(int(round(v)) for v in box)
        faces.append(Face(box=ibox, landmarks=landmarks68(rgb, box), score=score, detector=stage))
    faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
    return faces


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _inside(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The share of box ``a`` (x, y, w, h) that lies inside box ``b``."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(a[2] * a[3], 1e-9)


def face_from_box(rgb: np.ndarray, box: tuple[int, int, int, int], *, refine: bool = True,
                  detector: str = DEFAULT_DETECTOR) -> Face:
    """The face inside a user-given ``box`` (x, y, w, h), with 68 landmarks.

    With ``refine``, ``detector`` first searches the box enlarged by half its side on each side
    (dlib's shape predictor was not trained on loose or tight user boxes); a detection
    overlapping the box (IoU >= 0.3), or lying inside a loose box (80 % of it), is returned, the
    one with the highest IoU first. Otherwise the landmarks come from the given box
    as it is (``detector == "box"``): FaceMesh on the box made square (two passes, unrotated) for
    "blazeface", dlib's predictor for the dlib detectors.
    """
    rgb = check_rgb(rgb)
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive width and height, got {box}")
    H, W = rgb.shape[:2]
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise ValueError(f"box {box} lies outside the {W}x{H} image")
    if refine:
        m = max(w, h) // 2
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
        best, best_iou = None, -1.0
        search = "auto" if detector in ("hog", "cnn", "all") else detector
        for face in detect_faces(rgb[y0:y1, x0:x1], detector=search, min_size=min(w, h) // 3):
            fb = (face.box[0] + x0, face.box[1] + y0, face.box[2], face.box[3])
            iou = box_iou(fb, (x, y, w, h))
            if (iou >= 0.3 or _inside(fb, (x, y, w, h)) >= 0.8) and iou > best_iou:
                best, best_iou = Face(fb, face.landmarks + [x0, y0], face.score, face.detector, face.extra), iou
        if best is not None:
            if "mesh" in best.extra:
                best.extra["mesh"] = best.extra["mesh"] + [x0, y0, 0]
            return best
    if detector == "blazeface":
        mesh = mesh_for_box(rgb, (x, y, w, h))
        return Face(box=(x, y, w, h), landmarks=mesh.ibug68, score=float("nan"), detector="box",
                    extra={"mesh": mesh.points, "presence": mesh.presence})
    return Face(box=(x, y, w, h), landmarks=landmarks68(rgb, (x, y, w, h)), score=float("nan"), detector="box")

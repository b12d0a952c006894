"""BlazeFace: MediaPipe's sub-millisecond face detector, run from its published model files.

Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR
Workshops 2019. An SSD-style single-shot detector: a light BlazeBlock backbone predicts, at every
anchor, a face score, a box and six key points (the person's right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion). Two models ship with MediaPipe 0.10.21 (Apache-2.0;
see ``models/mediapipe_face.md``):

* ``short`` -- ``face_detection_short_range.tflite``: 128 x 128 input, 896 anchors (16 x 16 x 2 at
  stride 8, 8 x 8 x 6 at stride 16); faces within ~2 m of a selfie camera, i.e. faces larger than
  about a fifth of the photo's longer side.
* ``full`` -- ``face_detection_full_range_sparse.tflite``: 192 x 192 input, 2,304 anchors (48 x 48
  at stride 4); faces within ~5 m, i.e. small faces too.

Decoding follows MediaPipe's graph options (``face_detection_{short,full}_range.pbtxt``):
SsdAnchorsCalculator with ``fixed_anchor_size`` (every anchor is the unit square at its cell's
centre), TensorsToDetectionsCalculator (``reverse_output_order``: x, y, w, h; offsets divided by
the input size; scores clipped to +-100 and passed through a sigmoid) and a *weighted*
non-maximum suppression (boxes overlapping the best one by IoU > 0.3 are averaged with their
scores as weights). The photo is letterboxed into the square input (aspect kept, zero padding),
in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unmasked.faces.tflite import load_tflite

#: model -> (tflite name, input side, [(stride, anchors per cell)], default score threshold)
MODELS = {
    "short": ("blazeface_short", 128, [(8, 2), (16, 6)], 0.5),
    "full": ("blazeface_full", 192, [(4, 1)], 0.6),
}
#: MediaPipe's weighted NMS: boxes overlapping the best one by more than this are merged into it
NMS_IOU = 0.3
#: raw scores are clipped to +-this before the sigmoid (MediaPipe's score_clipping_thresh)
SCORE_CLIP = 100.0


@dataclass
class Detection:
    """One BlazeFace detection in photo pixel indices (pixel (0, 0) is centred at 0, 0): ``box`` (x, y, w, h) floats, ``score`` in (0, 1) and
    ``keypoints`` float64 (6, 2): right eye, left eye (the person's; image left, image right for a
    frontal face), nose tip, mouth centre, right ear tragion, left ear tragion."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray


def anchors(input_size: int, layers: list[tuple[int, int]]) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1] (x, y), in the order the model's outputs use:
    per stride, rows, then columns, then the anchors of a cell."""
    out = []
    for stride, per_cell in layers:
        n = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float64)


_ANCHORS = {name: anchors(size, layers) for name, (_, size, layers, _) in MODELS.items()}


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """``rgb`` uint8 (H, W, 3) scaled to fit a ``size`` square, centred, zero-padded, in [-1, 1].

    Returns ``(x float32 (1, size, size, 3), scale, ox, oy)``: photo pixel (x, y) sits at input
    pixel (x * scale + ox, y * scale + oy).
    """
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (nw, nh), interpolation=interp)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[oy:oy + nh, ox:ox + nw] = small.astype(np.float32) / 127.5 - 1.0
    # the resized image's pixels are scaled copies: x_in = x * (nw / w) + ox
    return canvas[None], nw / w, float(ox), float(oy)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (4,) (x0, y0, x1, y1) with boxes ``b`` (N, 4)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU):
    """MediaPipe's weighted NMS: ``corners`` (N, 4) x0, y0, x1, y1, ``keypoints`` (N, K, 2), ``scores`` (N,).

    Returns a list of ``(corners (4,), keypoints (K, 2), score)``, best first: each is the
    score-weighted mean of the remaining boxes that overlap the best remaining one by more than
    ``iou`` (itself included), with the best one's score.
    """
    order = np.argsort(-scores)
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        best = remaining[0]
        overlap = _iou(corners[best], corners[remaining]) > iou
        group = remaining[overlap]
        wts = scores[group] / scores[group].sum()
        out.append(((corners[group] * wts[:, None]).sum(0), (keypoints[group] * wts[:, None, None]).sum(0),
                    float(scores[best])))
        remaining = remaining[~overlap]
    return out


def detect(rgb: np.ndarray, model: str = "full", *, min_score: float | None = None) -> list[Detection]:
    """BlazeFace detections in ``rgb`` uint8 (H, W, 3), best score first.

    ``model`` "short" or "full" (see the module docstring); ``min_score`` defaults to MediaPipe's
    threshold for that model (0.5 short, 0.6 full).
    """
    if model not in MODELS:
        raise ValueError(f"unknown BlazeFace model {model!r}; choose from {', '.join(MODELS)}")
    name, size, _, default_min = MODELS[model]
    min_score = default_min if min_score is None else float(min_score)
    x, scale, ox, oy = letterbox(rgb, size)
    regressors, logits = load_tflite(name)(x)
    raw, logits = regressors[0].astype(np.float64), logits[0, :, 0].astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    if not keep.any():
        return []
    raw, scores, centres = raw[keep], scores[keep], _ANCHORS[model][keep]
    # offsets are in input pixels; anchors are unit squares, so dividing by the input size suffices
    cx, cy = raw[:, 0] / size + centres[:, 0], raw[:, 1] / size + centres[:, 1]
    w, h = raw[:, 2] / size, raw[:, 3] / size
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:].reshape(len(raw), -1, 2) / size + centres[:, None, :]
    dets = []
    for (x0, y0, x1, y1), kp, score in weighted_nms(corners, kps, scores):
        # normalised input coordinates -> continuous photo coordinates -> pixel indices (- 0.5)
        (px0, py0), (px1, py1) = (np.array([[x0, y0], [x1, y1]]) * size - [ox, oy]) / scale - 0.5
        kp_photo = (kp * size - [ox, oy]) / scale - 0.5
        dets.append(Detection((px0, py0, px1 - px0, py1 - py0), score, kp_photo))
    return dets

"""Score the whole ``unmask`` pipeline on held-out faces wearing synthetic masks, at 256².

What a user gets, not what a model does with a given hole: each held-out face (an FFHQ-aligned
``size`` x ``size`` photo of an identity the models never trained on) gets a synthetic worn mask
drawn over it (MaskTheFace method, :func:`unmasked.masks.face_mask.face_mask_for_aligned`, with
random colours and prints), and the masked photo goes through :func:`unmasked.pipelines.unmask.unmask_array`,
which must find the face and the mask itself. The result is compared with the unmasked photo:

* PSNR / SSIM over the whole face (``size`` x ``size``);
* detail: the fill's gradient energy inside the true hole as a % of the photo's (100 = as much
  structure; a blur scores far below, noise above);
* identity: dlib's descriptor distance between the restored and the original face (dlib's
  network was trained on neither);
* realism: a classifier two-sample test (:mod:`unmasked.evaluation.realism`) on the square around
  the true hole, restored against original, two-fold by identity: 0.5 = indistinguishable.

Classical fillers (``telea``, ``navier_stokes``, ``patchmatch``) are given the **true** mask, a
help the pipeline does not get.

The masks are pasted with a sharp edge. A worn mask's edge on a real photo is soft (optics, the
fabric's thickness, its shadow, JPEG): ``edge_blur`` (``eval-unmask --edge-blur``) blends each
mask's edge over a Gaussian of that many pixels (:func:`soften_mask_edge`); 3.5 px at 256² makes
the edge as wide as on the held-out real photos, measured the same way on both
(``benchmarks/mask_edges.py``). A face the pipeline does not find, or whose mask it does not
find, is scored as returned (with the mask still on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from unmasked.api import DEFAULT_UNMASK_PRESET, load_model
from unmasked.data.landmark_guide import UNDER_MASK_SIZE
from unmasked.evaluation.realism import KID_LAYERS, STEPS, c2st, hole_patch, kid, texture_features
from unmasked.faces import detect_faces
from unmasked.faces.align import align_face
from unmasked.faces.descriptor import dlib_descriptor
from unmasked.losses.features import VGG19Relu31
from unmasked.masks.face_mask import face_mask_for_aligned
from unmasked.metrics import detail_percent, score_image
from unmasked.pipelines.fill import fill_array
from unmasked.pipelines.unmask import unmask_array

#: fillers given the true mask (the pipeline must find it)
CLASSICAL = ("telea", "navier_stokes", "patchmatch")
#: options of an "unmask" filler, each a setting of :func:`unmask_array` other than its default:
#: "+seamless" (the gradient-domain paste-back), "+nograbcut" (the worn mask not grown by colour),
#: "+cropres" (a large face pasted back from the fill model's crop, not at its own resolution),
#: "+outline" (the hole's part beside the face filled from the background, :func:`split_at_outline`),
#: "+meanface" (the fill's structure from the mean face, :mod:`unmasked.faces.mean_face`, on every face:
#: the default), "+automeanface" (only on faces whose fill runs in horizontal bands), "+nomeanface" (on none), "+nograin" (without the photo's
#: skin grain, :mod:`unmasked.faces.skin_texture`), "+nosecondlook" (no second look for faces the detector
#: passed over, :func:`~unmasked.faces.second_look.second_look_faces`), "+noearloops" (the mask's
#: straps beside the repainted region left as they are, :mod:`unmasked.faces.ear_loops`), "+noeyeskin" (colour
#: growth free to take the skin just below the eyes, :func:`~unmasked.pipelines.unmask.skin_below_eyes`),
#: "+nophotopx" (the hole dilated by 3 % of the crop only, not at least 2.5 photo pixels,
#: :func:`~unmasked.pipelines.unmask.face_dilation`), "+noeyecheck" (the fabric inside an eye's guard kept
#: even where the eye's landmark outline lies on it, :func:`~unmasked.pipelines.unmask.eyes_off_fabric`)
UNMASK_OPTIONS = {"seamless": {"seamless": True}, "nograbcut": {"grabcut": False}, "cropres": {"native": False},
                  "outline": {"outline": True}, "meanface": {"mean_face": True}, "nomeanface": {"mean_face": False},
                  "automeanface": {"mean_face": "auto"}, "meantexture": {"mean_texture": True},
                  "nomeantexture": {"mean_texture": False}, "meanchroma": {"mean_chroma": True},
                  "nomeanchroma": {"mean_chroma": False},
                  "nograin": {"grain": False}, "nosecondlook": {"second_look": False},
                  "noearloops": {"ear_loops": False}, "noeyeskin": {"eye_skin": False},
                  "nophotopx": {"min_dilate_px": 0.0}, "noeyecheck": {"eye_check": False}}
#: a softened mask's true hole: every pixel the fabric covers by more than this (:func:`soften_mask_edge`)
SOFT_HOLE_ALPHA = 0.02
#: the realism classifier's patch side at 256² faces: about the hole's own size, so a fill
#: upsampled from a smaller resolution is judged at the resolution it is shown at
REALISM_PATCH = 128


@dataclass
class MaskedFace:
    name: str
    identity: str
    original: np.ndarray  # uint8 (S, S, 3)
    masked: np.ndarray  # uint8 (S, S, 3)
    hole: np.ndarray  # bool (S, S): the synthetic mask's exact pixels
    landmarks: np.ndarray | None  # (68, 2) of the original face, for the identity distance


def unmask_options(spec: str) -> tuple[str, dict]:
    """``"model+option+option"`` -> (the face model's name, :func:`unmask_array` keyword arguments),
    the options from :data:`UNMASK_OPTIONS`; ``unmask`` (or an empty name) is the default face model.
    Raises ``ValueError`` naming an unknown option and the known ones."""
    name, *options = spec.split("+")
    unknown = [o for o in options if o not in UNMASK_OPTIONS]
    if unknown:
        raise ValueError(f"unknown unmask option {unknown[0]!r} in {spec!r}: "
                         + ", ".join(f"'+{o}'" for o in UNMASK_OPTIONS))
    kwargs = {k: v for option in options for k, v in UNMASK_OPTIONS[option].items()}
    return (DEFAULT_UNMASK_PRESET if name in ("unmask", "") else name), kwargs


def soften_mask_edge(original: np.ndarray, masked: np.ndarray, hole: np.ndarray,
                     sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(masked, hole)`` with the pasted mask's edge made soft: the mask's coverage (``hole``,
    bool (S, S)) blurred by a Gaussian of ``sigma`` px blends the fabric (``masked`` inside the
    hole, carried outward from its nearest hole pixel) with ``original`` (both uint8 (S, S, 3)),
    so the edge is a ramp centred where the sharp edge was. The true hole grows to every pixel
    the fabric covers by more than :data:`SOFT_HOLE_ALPHA`. ``sigma`` <= 0 returns the inputs."""
    if sigma <= 0 or not hole.any():
        return masked, hole
    _, (rows, cols) = ndimage.distance_transform_edt(~hole, return_indices=True)
    fabric = masked[rows, cols].astype(np.float32)
    alpha = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), sigma)
    soft = np.round(alpha[..., None] * fabric + (1.0 - alpha[..., None]) * original.astype(np.float32))
    return soft.astype(np.uint8), alpha > SOFT_HOLE_ALPHA


def masked_faces(names: Sequence[str], images: np.ndarray, seed: int = 0, edge_blur: float = 0.0) -> list[MaskedFace]:
    """One synthetic worn mask (random template, colour and print) on each aligned face; with
    ``edge_blur`` > 0 its edge is softened by :func:`soften_mask_edge` (px of the face's size)."""
    out = []
    for i, (name, image) in enumerate(zip(names, images, strict=True)):
        faces = detect_faces(image)
        landmarks = faces[0].landmarks if faces else None
        rng = np.random.default_rng([seed, i])
        masked, hole = face_mask_for_aligned(image.shape[0], rng, image=image, landmarks=landmarks, variety=True)
        masked, hole = soften_mask_edge(image, masked, hole, edge_blur)
        out.append(MaskedFace(name, name.split("/")[0], image, masked, hole, landmarks))
    return out


def under_mask_displacements(faces: Sequence[MaskedFace]) -> np.ndarray:
    """(N, 68, 2): FaceMesh's points on each masked face minus its points on the same face unmasked,
    in the masked face's aligned crop at :data:`~unmasked.data.landmark_guide.UNDER_MASK_SIZE`
    (faces found in only one of the two are left out). What a worn mask does to the landmark guess
    that a landmark-guided model is given (``benchmarks/landmarks_under_mask.py``)."""
    out = []
    for face in faces:
        masked, plain = detect_faces(face.masked), detect_faces(face.original)
        if not masked or not plain:
            continue
        aligned = align_face(face.masked, masked[0], UNDER_MASK_SIZE)
        m = aligned.matrix
        out.append(aligned.landmarks - (plain[0].landmarks @ m[:, :2].T + m[:, 2]))
    return np.array(out).reshape(-1, 68, 2)


def evaluate_unmask(fillers: Sequence[str], faces: Sequence[MaskedFace], *, realism_patch: int = REALISM_PATCH,
                    realism_steps: int = STEPS, seed: int = 0, progress: Callable[[str, int, int], None] | None = None,
                    kid_weights: str | None = None) -> dict:
    """``{"rows": [one dict per filler], "records": [per face]}``.

    ``fillers``: ``"unmask"`` (the pipeline with its default face model), ``"unmask:<model>"``
    (the pipeline with another face model: a preset or a checkpoint path), either with options
    (:data:`UNMASK_OPTIONS`, e.g. ``unmask+seamless+nograbcut``), or a classical name
    from :data:`CLASSICAL` (given the true mask).

    ``kid_weights``: the research VGG-19 (``../shared/weights/vgg19_relu3_1.pth``); with it each row
    also has ``kid`` and ``kid_se``, a second realism measure on the same patches
    (:func:`~unmasked.evaluation.realism.kid` of their VGG texture statistics).
    """
    if not faces:
        raise ValueError("evaluate_unmask needs at least one face")
    truth_desc = {f.name: dlib_descriptor(f.original, f.landmarks) for f in faces if f.landmarks is not None}
    rows, records = [], []
    vgg = real_features = None
    if kid_weights is not None:
        vgg = VGG19Relu31.from_file(kid_weights, layers=KID_LAYERS)
        real_features = texture_features(np.stack([hole_patch(f.original, f.hole, realism_patch) for f in faces]), vgg)
    for spec in fillers:
        if spec.split("+")[0] == "unmask" or spec.startswith("unmask:"):
            name, kwargs = unmask_options(spec.partition(":")[2] if spec.startswith("unmask:") else spec)
            model = load_model(name)

            def run(face, model=model, kwargs=kwargs):
                return unmask_array(face.masked, model, **kwargs).image
        elif spec in CLASSICAL:
            model = load_model(spec)

            def run(face, model=model):
                return fill_array(face.masked, face.hole, model).image
        else:
            raise ValueError(f"unknown filler {spec!r}: 'unmask', 'unmask:<model>' or one of {', '.join(CLASSICAL)}")
        fills, reals, groups, scored = [], [], [], []
        for k, face in enumerate(faces):
            start = time.perf_counter()
            out = run(face)
            seconds = time.perf_counter() - start
            scores = score_image(out, face.original)
            rec = {"filler": spec, "image": face.name, **scores, "seconds": seconds,
                   "detail": detail_percent(out, face.original, face.hole), "identity": None}
            if face.landmarks is not None:
                rec["identity"] = float(np.linalg.norm(dlib_descriptor(out, face.landmarks) - truth_desc[face.name]))
            scored.append(rec)
            fills.append(hole_patch(out, face.hole, realism_patch))
            reals.append(hole_patch(face.original, face.hole, realism_patch))
            groups.append(face.identity)
            if progress is not None:
                progress(spec, k + 1, len(faces))
        realism = c2st(np.stack(fills), np.stack(reals), groups, seed=seed, steps=realism_steps)
        ids = [r["identity"] for r in scored if r["identity"] is not None]
        rows.append({
            "filler": spec, "n": len(scored),
            "psnr": float(np.mean([min(r["psnr"], 100.0) for r in scored])),
            "ssim": float(np.mean([r["ssim"] for r in scored])),
            "detail": float(np.mean([r["detail"] for r in scored])),
            "identity": float(np.mean(ids)) if ids else None,
            "realism": realism["accuracy"], "realism_ci": (realism["ci_low"], realism["ci_high"]),
            "seconds": float(np.mean([r["seconds"] for r in scored])),
        })
        if vgg is not None:
            k = kid(texture_features(np.stack(fills), vgg), real_features, seed=seed)
            rows[-1].update(kid=k["kid"], kid_se=k["se"])
        records.extend(scored)
    return {"rows": rows, "records": records}


def format_rows(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`evaluate_unmask`'s rows (with a KID column when they have one)."""
    with_kid = any("kid" in r for r in rows)
    lines = ["| filler | PSNR dB | SSIM | detail % (photo = 100) | identity distance | realism (C2ST acc., 0.5 = photo) | "
             + ("KID (VGG texture, 0 = photo) | " if with_kid else "") + "s / face |",
             "|---|--:|--:|--:|--:|--:|" + ("--:|" if with_kid else "") + "--:|"]
    for r in rows:
        ident = "–" if r["identity"] is None else f"{r['identity']:.3f}"
        lo, hi = r["realism_ci"]
        kid_cell = (f"{r['kid']:.2f} ± {r['kid_se']:.2f} | " if "kid" in r else "– | ") if with_kid else ""
        lines.append(f"| {r['filler']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['detail']:.1f} | {ident} | "
                     f"{r['realism']:.3f} ({lo:.2f}–{hi:.2f}) | {kid_cell}{r['seconds']:.2f} |")
    return "\n".join(lines)

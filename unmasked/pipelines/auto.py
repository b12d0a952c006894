"""``auto``: the default of ``unmasked fill``, a face model on faces and a classical fill elsewhere.

Chosen from measurements (README, "Which model fills by default" and "Object removal"): on
held-out aligned faces the face preset beats Telea and Navier-Stokes, while on held-out natural
scenes (CBSD68 + Sun-Hays) the scene filler ``layout_patchmatch`` (Telea's shading corrected by a
small network trained on natural photos at 64 px, with PatchMatch's texture) has PSNR above
Telea's in every hole-ratio bucket, on NVIDIA and on solid object holes, and realism at or
below PatchMatch's, far below Telea's. So :class:`FaceAwareFill`

1. finds the faces in the photo (BlazeFace + FaceMesh, :mod:`unmasked.faces.detect`; with
   dlib's HOG, faces with a margin below :data:`AUTO_MIN_SCORE` are not trusted);
2. fills the whole hole with the scene filler (``layout_patchmatch`` by default), which also
   validates the input and handles an empty mask; a patch-copying scene filler may not copy
   from those faces (their boxes enlarged by half: ``avoid``), so no piece of a face lands on
   a wall;
3. keeps the faces whose enlarged box holds hole pixels, or, when there are none, looks for
   such faces in the plain fill (a hole can hide a face either way);
4. for each such face, aligns it (FFHQ-style) at the face model's working size, fills the
   hole there with the face model, warps the fill back and replaces the hole pixels inside
   the aligned crop (:func:`fill_in_face`, shared with reference-guided filling).

Pixels outside the hole keep their exact bytes, as with every other model.
"""

from __future__ import annotations

import numpy as np

from unmasked.faces import detect_faces
from unmasked.hub import DEFAULT_FACE_PRESET, DEFAULT_SCENE_MODEL
from unmasked.models.base import InpaintModel
from unmasked.pipelines.face_crop import face_zone, faces_at_hole, fill_in_face
from unmasked.pipelines.fill import FillResult, InputError, WholeImageFiller, fill_array, validate_inputs

#: the presets ``auto`` combines (named in :mod:`unmasked.hub`); see the README for the measurements behind them
AUTO_FACE_MODEL = DEFAULT_FACE_PRESET
AUTO_SCENE_MODEL = DEFAULT_SCENE_MODEL


#: with the "hog" detector, the margin below which ``auto`` does not trust a face: dlib's HOG finds faces in
#: textures now and then with small margins (0.12 on the mission patch of scikit-image's
#: astronaut, against 1.16 for her face); a face model filling a non-face does harm
AUTO_MIN_SCORE = 0.3


def face_avoid(faces: list, shape: tuple[int, int]) -> np.ndarray | None:
    """bool (H, W): the :func:`face_zone` of every face, the pixels a patch-copying filler must not
    copy from (None without faces)."""
    if not faces:
        return None
    avoid = np.zeros(shape, bool)
    for face in faces:
        x0, y0, x1, y1 = face_zone(face, shape)
        avoid[y0:y1, x0:x1] = True
    return avoid


class FaceAwareFill(WholeImageFiller):
    """The ``auto`` model: ``face_model`` inside detected faces, ``scene_model`` everywhere else.

    ``detector`` defaults to BlazeFace + FaceMesh (:mod:`unmasked.faces.detect`; tens of ms a
    photo, and it finds faces that a hole or a worn mask covers in part); dlib's HOG (upsampled
    once), the earlier default, is kept as an option, with its weak detections (margin below
    :data:`AUTO_MIN_SCORE`) left to the scene filler. A pipeline rather than a network:
    :func:`unmasked.pipelines.fill.fill_array` hands it the whole image (:meth:`fill`); calling
    it on tensors raises ``TypeError``.
    """

    trainable = False
    #: :func:`unmasked.pipelines.fill.fill_array` hands this filler the whole image (:meth:`fill`)
    fills_whole_image = True

    def __init__(self, face_model: InpaintModel, scene_model: InpaintModel, *, detector: str = "blazeface",
                 face_name: str = AUTO_FACE_MODEL, scene_name: str = AUTO_SCENE_MODEL):
        if face_model.uses_reference:
            raise ValueError("auto's face model fills without a reference; use fill_with_reference for two_face")
        self.face_model = face_model
        self.scene_model = scene_model
        self.detector = detector
        self.face_name, self.scene_name = face_name, scene_name
        self.config = {"name": "auto", "kwargs": {"face": face_name, "scene": scene_name}}

    def fill(self, rgb: np.ndarray, hole: np.ndarray) -> FillResult:
        """Fill ``hole`` (bool (H, W)) of ``rgb`` (uint8 (H, W, 3)); a FillResult whose note says
        which model filled what."""
        validate_inputs(rgb, hole)
        hole = hole.astype(bool)
        if not hole.any():
            return fill_array(rgb, hole, self.scene_model)  # a copy with the empty-mask note
        min_score = AUTO_MIN_SCORE if self.detector == "hog" else None  # a dlib margin, not a probability
        seen = [f for f in detect_faces(rgb, detector=self.detector)
                if min_score is None or not f.score < min_score]
        base = fill_array(rgb, hole, self.scene_model, avoid=face_avoid(seen, hole.shape))
        out = base.image.copy()
        # the photo as given first (what covers the face is often still face-shaped), then the
        # plain fill (a blanked-out mouth can hide a face from the detector)
        faces = (faces_at_hole(rgb, hole, faces=seen)
                 or faces_at_hole(out, hole, self.detector, min_score=min_score))
        done = 0
        remaining = hole.copy()
        for face in faces:  # a pixel is filled by the first (most-covered) face whose crop holds it
            try:
                replaced = fill_in_face(out, remaining, face, self.face_model)
            except InputError:  # the hole covers the whole face crop: nothing to go on, the scene fill stays
                continue
            if replaced.any():
                done += 1
                remaining &= ~replaced
        total = int(hole.sum())
        by_face = total - int(remaining.sum())
        if done == 0:
            note = f"no face at the hole: filled with {self.scene_name}"
        else:
            note = (f"{by_face} of {total} hole pixels inside {done} face(s) filled with {self.face_name}, "
                    f"the rest with {self.scene_name}")
        return FillResult(out, note=note, regions=base.regions)

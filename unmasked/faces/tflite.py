"""Run the MediaPipe face models shipped in ``unmasked/faces/models`` (Apache-2.0, see the card there).

The ``.tflite`` files are MediaPipe's own (from the ``mediapipe`` 0.10.21 wheel, unchanged) and are
run with ``ai-edge-litert``, the stand-alone TensorFlow Lite runtime (XNNPACK on CPU). Why this and
not the ``mediapipe`` package: mediapipe 0.10.21 pulls ``jax``/``jaxlib``, a second, non-headless
OpenCV build and ``numpy<2``, and newer mediapipe releases ship no model files; the runtime alone
adds ~22 MB and three small pure packages, and runs the published graphs exactly (no conversion
to check).

Each model is loaded once per process; an interpreter keeps its tensors between calls, so each is
also called under its own lock (a server may call from several threads).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).parent / "models"

#: name -> file in :data:`MODEL_DIR`
MODEL_FILES = {
    "blazeface_short": "face_detection_short_range.tflite",
    "blazeface_full": "face_detection_full_range_sparse.tflite",
    "facemesh": "face_landmark.tflite",
}

#: threads each interpreter may use (the machines this runs on have 2 cores)
NUM_THREADS = 2

_lock = threading.Lock()
_models: dict[str, TFLiteModel] = {}


class TFLiteModel:
    """One ``.tflite`` graph with a single float32 NHWC input; ``__call__`` returns its outputs in order."""

    def __init__(self, path: str | Path, num_threads: int = NUM_THREADS):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ImportError("the MediaPipe face models need ai-edge-litert: pip install ai-edge-litert") from e
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"face model file missing: {path}")
        self.path = path
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        self._input = inp["index"]
        self.input_size = (int(inp["shape"][1]), int(inp["shape"][2]))  # (H, W)
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._use = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """``x`` float32 (1, H, W, 3) -> the graph's outputs (copies)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape[1:3] != self.input_size:
            raise ValueError(f"{self.path.name} takes {self.input_size} inputs, got {x.shape}")
        with self._use:
            self._interpreter.set_tensor(self._input, x)
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(i).copy() for i in self._outputs]


def load_tflite(name: str) -> TFLiteModel:
    """The shipped model ``name`` (a key of :data:`MODEL_FILES`), loaded once per process."""
    if name not in MODEL_FILES:
        raise ValueError(f"unknown face model {name!r}; choose from {', '.join(MODEL_FILES)}")
    model = _models.get(name)
    if model is None:
        with _lock:
            model = _models.get(name)
            if model is None:
                model = _models[name] = TFLiteModel(MODEL_DIR / MODEL_FILES[name])
    return model

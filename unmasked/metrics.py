"""Per-image quality metrics for inpainting: ℓ1 %, PSNR and SSIM.

All functions take uint8 RGB arrays ``(H, W, 3)``. ``output`` must already be composited
(known pixels copied from the ground truth, hole pixels from the model; see
:func:`unmasked.conventions.composite`), so every metric is computed over the whole image,
as in the evaluation protocol of the Partial Convolutions paper (Liu et al., "Image
Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018, Sec. 5.1 / Table 1),
which reports ℓ1 in percent, PSNR and SSIM per hole-ratio bucket.

Decisions, stated once here:

* **ℓ1 %** is the mean absolute error over all pixels and channels with values scaled to
  [0, 1], times 100 (PConv's "ℓ1 (%)").
* **PSNR** uses ``data_range=255``. Identical images have zero error and PSNR = ``math.inf``;
  this is returned without calling skimage (so no divide-by-zero warning). Aggregation caps
  every PSNR at :data:`PSNR_CAP_DB` = 100 dB before averaging (see
  :mod:`unmasked.evaluation.report`), so one perfect image cannot make a mean infinite.
* **SSIM** (Wang et al., "Image Quality Assessment: From Error Visibility to Structural
  Similarity", IEEE TIP 2004) uses scikit-image's *defaults*, not the paper's Gaussian window:
  a uniform 7×7 window (``gaussian_weights=False``), sample covariance, K1 = 0.01,
  K2 = 0.03, ``data_range=255``, computed per channel (``channel_axis=-1``) and averaged
  over channels; skimage averages the SSIM map after cropping ``(win_size - 1) // 2``
  border pixels. Images with a side shorter than 7 use the largest odd window that fits
  (3 or 5); images with a side shorter than 3 are rejected. Numbers with Wang et al.'s
  11×11 Gaussian (σ = 1.5) window are typically a little different, so compare SSIM only
  across runs that use these same settings.
* **detail %** (:func:`detail_percent`, this project's addition): the fill's mean gradient
  magnitude inside the hole as a percentage of the original's. PSNR/SSIM prefer a blurred
  fill to a plausible but different face; this number shows the blur. Closer to 100 is better.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

#: PSNR assigned to identical images when aggregating (per-image :func:`psnr` returns inf)
PSNR_CAP_DB: float = 100.0

#: SSIM window side for images at least this large on both sides (skimage's default)
SSIM_WIN_SIZE: int = 7

METRIC_NAMES: tuple[str, ...] = ("l1", "psnr", "ssim")


def _check_pair(output: np.ndarray, target: np.ndarray) -> None:
    """Raise ValueError unless both are uint8 arrays of the same (H, W, 3) shape."""
    output, target = np.asarray(output), np.asarray(target)
    if output.shape != target.shape:
        raise ValueError(f"output and target shapes differ: output {output.shape}, target {target.shape}")
    if output.dtype != np.uint8 or target.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 images, got output {output.dtype} {output.shape}, target {target.dtype} {target.shape}"
        )
    if output.ndim != 3 or output.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) RGB images, got output {output.shape}, target {target.shape}")


def l1_percent(output: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error in percent of the full range: ``100 * mean(|o - t|) / 255``.

    ``output``, ``target``: uint8 (H, W, 3). Returns a value in [0, 100]; lower is better.
    """
    _check_pair(output, target)
    diff = np.abs(output.astype(np.float64) - target.astype(np.float64))
    return float(diff.mean() / 255.0 * 100.0)


def psnr(output: np.ndarray, target: np.ndarray, where: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 * log10(255² / MSE)``; higher is better.

    ``output``, ``target``: uint8 (H, W, 3). ``where``: bool (H, W), the pixels the MSE is taken
    over (all by default; must not be empty). Identical pixels return ``math.inf`` (no warning);
    aggregation caps values at :data:`PSNR_CAP_DB`.
    """
    _check_pair(output, target)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.shape != output.shape[:2]:
            raise ValueError(f"where is {where.shape}, images are {output.shape[:2]}")
        if not where.any():
            raise ValueError("psnr needs a non-empty where")
        output, target = output[where], target[where]
    if np.array_equal(output, target):
        return math.inf
    return float(peak_signal_noise_ratio(target, output, data_range=255))


def ssim_win_size(height: int, width: int) -> int:
    """SSIM window side used for an image of this size: 7, or the largest odd side that fits."""
    side = min(height, width, SSIM_WIN_SIZE)
    if side % 2 == 0:
        side -= 1
    if side < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return side


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004) with scikit-image's default settings.

    Uniform 7×7 window (``gaussian_weights=False``, smaller odd window for images under 7 px
    on a side), sample covariance, K1 = 0.01, K2 = 0.03, ``data_range=255``,
    ``channel_axis=-1`` (mean over R, G, B). ``output``, ``target``: uint8 (H, W, 3), at
    least 3×3. Returns a value in [-1, 1]; 1 for identical images; higher is better.
    """
    _check_pair(output, target)
    height, width = output.shape[:2]
    return float(
        structural_similarity(
            target,
            output,
            win_size=ssim_win_size(height, width),
            channel_axis=-1,
            data_range=255,
            gaussian_weights=False,
        )
    )


#: grey-level floor added to both gradient means of :func:`detail_percent` (flat holes give 100 %)
DETAIL_EPS: float = 1.0


def _gradient_magnitude(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def detail_percent(output: np.ndarray, target: np.ndarray, hole: np.ndarray) -> float:
    """How much image detail the fill has, as a percentage of the original's: 100 = as much.

    The mean Sobel gradient magnitude of the grey output over the hole, divided by that of the
    ground truth over the same pixels, times 100 (each mean plus :data:`DETAIL_EPS`). The hole
    is eroded by 2 px first (when that leaves any pixel), so the seam at its edge is not
    counted as detail. PSNR and SSIM reward a smooth average-looking fill; this number says
    how far from real texture and structure such a fill is: blurred fills score well below
    100, noisy or over-sharpened ones above it. Closer to 100 is better.
    """
    _check_pair(output, target)
    hole = np.asarray(hole, dtype=bool)
    if hole.shape != output.shape[:2]:
        raise ValueError(f"hole is {hole.shape}, images are {output.shape[:2]}")
    if not hole.any():
        raise ValueError("detail_percent needs a non-empty hole")
    inner = cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    region = inner if inner.any() else hole
    g_out = float(_gradient_magnitude(output)[region].mean())
    g_gt = float(_gradient_magnitude(target)[region].mean())
    return 100.0 * (g_out + DETAIL_EPS) / (g_gt + DETAIL_EPS)


def score_image(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All three metrics of one composited output: ``{"l1": %, "psnr": dB, "ssim": ...}``."""
    return {"l1": l1_percent(output, target), "psnr": psnr(output, target), "ssim": ssim(output, target)}


def bootstrap_mean_ci(values, *, seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of ``values`` (e.g. paired per-image differences)."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))

"""Differentiable 5-point alignment onto the SphereFace / ArcFace 96 x 112 face template.

Face recognisers such as MobileFaceNet (Chen et al. 2018) are trained on crops aligned by a
similarity transform that puts five points -- the eye centres, the nose tip and the mouth
corners -- onto fixed positions of a 96 x 112 (W x H) crop (SphereFace, Liu et al. CVPR 2017;
insightface). Here the transform is estimated in closed form (least squares, no reflection:
Umeyama, PAMI 1991, written with complex numbers: for centred points a_i -> b_i the best
scale-rotation is c = sum(conj(a_i) b_i) / sum(|a_i|^2)), and the image is resampled with
``F.affine_grid`` + ``F.grid_sample``, so gradients flow from the embedding back to every pixel
of the input image (the transform itself is treated as fixed, as in Two-Face's identity loss).

Coordinates are pixel-index coordinates (the centre of pixel (0, 0) is (0, 0)), as dlib
landmarks and the template are. Images are the library's (N, 3, S, S) tensors in [-1, 1];
landmarks are the 68 iBUG points (N, 68, 2) in those pixels. Without landmarks the mean
landmarks of FFHQ-aligned crops (:data:`FFHQ_MEAN_LANDMARKS`) give one
fixed warp.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Mean 68-point landmarks of FFHQ-aligned faces, as fractions of the crop side (x, y), measured
#: with dlib on 400 faces of celeba_wild256; used when an aligned crop has no detected landmarks.
FFHQ_MEAN_LANDMARKS = np.array([
    (0.219, 0.472), (0.221, 0.546), (0.229, 0.620), (0.244, 0.693), (0.272, 0.761), (0.315, 0.820), (0.369, 0.872), (0.429, 0.913),
    (0.497, 0.925), (0.564, 0.912), (0.624, 0.870), (0.678, 0.819), (0.722, 0.760), (0.749, 0.692), (0.763, 0.618), (0.772, 0.545),
    (0.774, 0.471), (0.271, 0.416), (0.307, 0.388), (0.355, 0.382), (0.403, 0.391), (0.449, 0.411), (0.542, 0.409), (0.589, 0.389),
    (0.637, 0.380), (0.685, 0.387), (0.721, 0.414), (0.496, 0.465), (0.496, 0.513), (0.496, 0.562), (0.496, 0.610), (0.442, 0.641),
    (0.468, 0.652), (0.496, 0.660), (0.524, 0.651), (0.549, 0.641), (0.327, 0.470), (0.357, 0.452), (0.394, 0.453), (0.425, 0.478),
    (0.391, 0.484), (0.355, 0.484), (0.567, 0.477), (0.598, 0.452), (0.635, 0.451), (0.665, 0.469), (0.638, 0.483), (0.602, 0.483),
    (0.385, 0.727), (0.426, 0.710), (0.467, 0.702), (0.496, 0.709), (0.526, 0.702), (0.566, 0.710), (0.606, 0.727), (0.568, 0.771),
    (0.528, 0.791), (0.496, 0.794), (0.464, 0.791), (0.424, 0.772), (0.402, 0.730), (0.467, 0.727), (0.496, 0.730), (0.526, 0.727),
    (0.589, 0.730), (0.526, 0.752), (0.496, 0.756), (0.466, 0.752),
], dtype=np.float64)

#: (x, y) of left eye, right eye, nose tip, left and right mouth corner in the 96 x 112 crop
#: (image left = the person's right), as in SphereFace / MobileFaceNet training
TEMPLATE_96x112 = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                            [33.5493, 92.3655], [62.7299, 92.2041]], dtype=np.float64)
TEMPLATE_SIZE = (112, 96)  # (H, W)


def five_points(landmarks68: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(N, 68, 2) or (68, 2) iBUG landmarks -> (N, 5, 2): eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54)."""
    lm = torch.as_tensor(np.asarray(landmarks68) if not isinstance(landmarks68, torch.Tensor) else landmarks68)
    lm = lm.float()
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (N, 68, 2), got {tuple(lm.shape)}")
    return torch.stack([lm[:, 36:42].mean(1), lm[:, 42:48].mean(1), lm[:, 30], lm[:, 48], lm[:, 54]], dim=1)


def mean_landmarks(size: int) -> torch.Tensor:
    """The mean 68 landmarks of an FFHQ-aligned ``size`` x ``size`` crop, (68, 2) pixels."""
    return torch.from_numpy(FFHQ_MEAN_LANDMARKS * size).float()


def similarity_transform(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (N, 2, 3) mapping points ``src`` (N, K, 2) onto ``dst`` (K, 2) or (N, K, 2)."""
    src = src.double()
    dst = torch.as_tensor(dst, dtype=torch.float64).expand_as(src)
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    a, b = src - mu_s, dst - mu_d
    # c = sum(conj(a) b) / sum |a|^2, with a = ax + i ay
    re = (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]).sum(1)
    im = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(1)
    norm = (a**2).sum((1, 2)).clamp_min(1e-12)
    cr, ci = re / norm, im / norm
    rot = torch.stack([torch.stack([cr, -ci], -1), torch.stack([ci, cr], -1)], 1)  # (N, 2, 2)
    t = mu_d[:, 0] - (rot @ mu_s[:, 0, :, None])[..., 0]
    return torch.cat([rot, t[..., None]], -1).float()


def apply_transform(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 2, 3) affine applied to (N, K, 2) points."""
    return points @ matrix[:, :, :2].transpose(1, 2) + matrix[:, None, :, 2]


def _pixel_to_norm(h: int, w: int) -> torch.Tensor:
    # align_corners=False: u = (2x + 1) / W - 1
    return torch.tensor([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def warp_affine(image: torch.Tensor, matrix: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Differentiable ``cv2.warpAffine``: output pixel q takes the input at p where ``q = matrix @ [p, 1]``.

    ``image`` (N, C, H, W), ``matrix`` (N, 2, 3) input -> output pixels; bilinear, border replicated.
    """
    n, _, h, w = image.shape
    full = torch.zeros(n, 3, 3, dtype=torch.float64)
    full[:, :2] = matrix.double()
    full[:, 2, 2] = 1.0
    inv = torch.linalg.inv(full)  # output pixel -> input pixel
    theta = _pixel_to_norm(h, w) @ inv @ torch.linalg.inv(_pixel_to_norm(*out_hw))
    grid = F.affine_grid(theta[:, :2].to(image.dtype), [n, image.shape[1], *out_hw], align_corners=False)
    return F.grid_sample(image, grid.to(image.device), mode="bilinear", padding_mode="border", align_corners=False)


def align_to_template(image: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None,
                      out_hw: tuple[int, int] = TEMPLATE_SIZE) -> torch.Tensor:
    """Warp faces onto the 5-point template: (N, 3, S, S) in [-1, 1] -> (N, 3, 112, 96) (or ``out_hw``).

    ``landmarks`` (N, 68, 2) or (68, 2) in ``image`` pixels; ``None`` uses the mean FFHQ-aligned
    face at this size. A crop much larger than the template is first reduced with an
    anti-aliased resize (also differentiable), so a 256 px crop does not alias.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (N, 3, H, W), got {tuple(image.shape)}")
    n, _, h, w = image.shape
    lm = mean_landmarks(h) if landmarks is None else landmarks
    pts = five_points(lm)
    if pts.shape[0] == 1 and n > 1:
        pts = pts.expand(n, -1, -1)
    if pts.shape[0] != n:
        raise ValueError(f"{pts.shape[0]} landmark sets for {n} images")
    template = torch.from_numpy(TEMPLATE_96x112).float()
    template = template * torch.tensor([out_hw[1] / 96.0, out_hw[0] / 112.0])
    matrix = similarity_transform(pts, template)
    scale = float(torch.linalg.det(matrix[:, :, :2].double()).abs().sqrt().min())
    if scale < 0.75:  # downsample first so bilinear sampling does not skip pixels
        f = scale * 1.1
        nh, nw = max(8, round(h * f)), max(8, round(w * f))
        image = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        # pixel p in the original sits at (p + 0.5) * new/old - 0.5 in the resized image
        sx, sy = nw / w, nh / h
        pts = (pts + 0.5) * torch.tensor([sx, sy]) - 0.5
        matrix = similarity_transform(pts, template)
    return warp_affine(image, matrix, out_hw)

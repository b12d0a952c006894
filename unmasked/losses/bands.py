"""A training penalty on horizontal bands the fill has and the photo has not.

Trained adversarially, the face model paints stacked horizontal bands and doubled mouths on the
holes of real photos: :func:`unmasked.faces.mean_face.horizontal_band_ratio` is 1.3 or more on
13 % of the held-out real photos' fills with the paper's pixel losses (phase 2 of
``pconv_unet_faces128``), 15 % with its perceptual and style terms (phase 3), and 46 % once the
SN-PatchGAN is added (phase 4; README "Bands come with the adversarial term"). A patch
discriminator accepts a lip-like edge repeated down the chin.

:func:`band_loss` is that measure made a loss: the energy of long horizontal edges (the vertical
gradient of the luminance smoothed along rows: a Gaussian of 3 px along, 0.6 px across, at 128²)
inside the hole, over the same energy of the photo in the same pixels, penalised only where the
fill has more, and relative to the photo's edge energy in both orientations (a structure tensor's
orientation energies; Bigün & Granlund 1987). The drawn landmark guide's lines (lips, nostrils,
jaw), grown by 3 px, are left out, as the measure leaves the lips out: the guide says where
edges belong. Images (N, 3, H, W) (or grey, (N, 1, H, W)) in [-1, 1]; hole (N, 1, H, W), 1 = hole;
guide (N, 1, H, W) or None.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unmasked.layers.blur import gaussian_1d

#: the smoothing along and across an edge, px at 128² (as :func:`~unmasked.faces.mean_face.horizontal_band_ratio`)
ALONG, ACROSS = 3.0, 0.6
#: the guide's lines are left out within this many px (at 128²)
GUIDE_MARGIN = 3
#: the hole is eroded by this many px (at 128²): its edge is the seam, not the fill's structure
HOLE_ERODE = 2
_EPS = 1e-4


def _smooth(lum: torch.Tensor, sigma_x: float, sigma_y: float) -> torch.Tensor:
    kx, ky = gaussian_1d(sigma_x).to(lum), gaussian_1d(sigma_y).to(lum)
    lum = F.conv2d(F.pad(lum, (kx.numel() // 2,) * 2 + (0, 0), mode="replicate"), kx.view(1, 1, 1, -1))
    return F.conv2d(F.pad(lum, (0, 0) + (ky.numel() // 2,) * 2, mode="replicate"), ky.view(1, 1, -1, 1))


_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def orientation_energies(image: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the mean over ``region`` (N, 1, H, W) of the squared vertical gradient of the
    luminance smoothed along rows (long horizontal edges) and of the squared horizontal gradient
    of it smoothed along columns (long upright edges): two (N,) tensors."""
    k = image.shape[-1] / 128.0
    if image.shape[1] == 3:
        r, g, b = image.unbind(1)
        lum = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)
    else:  # grey (MNIST)
        lum = image.mean(dim=1, keepdim=True)
    rows = F.pad(_smooth(lum, ALONG * k, ACROSS * k), (1, 1, 1, 1), mode="replicate")
    cols = F.pad(_smooth(lum, ACROSS * k, ALONG * k), (1, 1, 1, 1), mode="replicate")
    sobel = _SOBEL.to(image)
    gy = F.conv2d(rows, sobel.t().reshape(1, 1, 3, 3))
    gx = F.conv2d(cols, sobel.reshape(1, 1, 3, 3))
    area = region.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return (gy**2 * region).sum(dim=(1, 2, 3)) / area, (gx**2 * region).sum(dim=(1, 2, 3)) / area


def band_region(hole: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
    """The pixels :func:`band_loss` looks at: the hole eroded by :data:`HOLE_ERODE` px, less the
    guide's lines grown by :data:`GUIDE_MARGIN` px (both at 128², scaled with the side)."""
    k = hole.shape[-1] / 128.0
    e = max(1, round(HOLE_ERODE * k))
    region = -F.max_pool2d(-hole, 2 * e + 1, stride=1, padding=e)
    if guide is not None:
        m = max(1, round(GUIDE_MARGIN * k))
        region = region * (1.0 - F.max_pool2d((guide > 0.1).to(hole), 2 * m + 1, stride=1, padding=m))
    return region


def band_loss(output: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
              guide: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of max(0, E_h(output) - E_h(target)) / (E_h(target) + E_v(target) + eps)
    over :func:`band_region`: 0 when the fill has no more long horizontal edges than the photo
    there. ``output`` is the composite (or raw) fill; images whose region is empty add 0."""
    region = band_region(hole, guide)
    eh_out, _ = orientation_energies(output, region)
    eh_gt, ev_gt = orientation_energies(target, region)
    return (F.relu(eh_out - eh_gt) / (eh_gt + ev_gt + _EPS)).mean()

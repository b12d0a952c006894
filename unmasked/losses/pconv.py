"""The Partial Convolutions loss.

Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018, Sec. 3.4, Eq. (1)-(7):

    L_total = 1 * L_valid + 6 * L_hole + 0.05 * L_perceptual
              + 120 * (L_style_out + L_style_comp) + 0.1 * L_tv

**Mask convention.** In the paper's formulas M is the *valid* mask (1 = known pixel).
The functions here take the library's hole mask (1 = hole, to be filled) at their API and
flip it inside: ``M = 1 - mask``. ``I_comp`` is the raw output with the known pixels set
to the ground truth (:func:`unmasked.conventions.composite`).

Terms, for images (N, C, H, W) in the library range [-1, 1] (pixel terms are therefore
twice what they would be on [0, 1] images):

* ``hole``  = ||(1 - M) * (I_out - I_gt)||_1 / N_Igt and ``valid`` = ||M * (I_out - I_gt)||_1 / N_Igt,
  with N_Igt = C*H*W: the mean over *all* elements, not over the hole area (averaged over
  the batch too).
* ``perceptual`` = sum_p ||Psi_p(I_out) - Psi_p(I_gt)||_1 / N_Psi_p
  + ||Psi_p(I_comp) - Psi_p(I_gt)||_1 / N_Psi_p, i.e. per-layer mean absolute errors.
* ``style_out`` / ``style_comp`` = sum_p 1/(C_p C_p) ||K_p (Psi^T Psi)(I) - K_p (Psi^T Psi)(I_gt)||_1
  with K_p = 1/(C_p H_p W_p): the mean absolute difference of the normalised Gram
  matrices, exactly the paper's normalisation.
* ``tv`` = sum over horizontally and vertically adjacent pixel pairs that both lie in P of
  |I_comp(a) - I_comp(b)|, divided by N_Icomp = C*H*W (and averaged over the batch), where
  P is the hole dilated by one pixel (3x3 square structuring element).

Feature maps Psi_p come from :class:`~unmasked.losses.features.VGG19Relu31` (normalised
VGG-19, layers relu1_2, relu2_2, relu3_1), the nearest equivalent here of the paper's
VGG-16 pool1-pool3. Their magnitudes differ from VGG-16's, so the paper's 0.05 / 120
weights are a starting point, not a calibrated balance. Without weights the loss is
built without perceptual and style terms, and :meth:`PConvLoss.describe` says so.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.conventions import composite
from unmasked.losses.features import DEFAULT_LAYERS, VGG19Relu31, model_range_to_unit

# paper Sec. 3.4
PAPER_WEIGHTS = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}


def hole_valid_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_hole, L_valid): L1 in the hole / known region, each divided by all N*C*H*W elements.

    ``mask`` (N, 1, H, W), 1 = hole (the paper's 1 - M).
    """
    diff = (output - target).abs()
    hole = (diff * mask).mean()
    valid = (diff * (1.0 - mask)).mean()
    return hole, valid


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """K_p Psi^T Psi: (N, C, H, W) -> (N, C, C), divided by C*H*W (paper Eq. 4)."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def perceptual_loss(feats: dict[str, torch.Tensor], feats_gt: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum over layers of the mean absolute feature difference (one half of paper Eq. 3)."""
    return sum(F.l1_loss(feats[k], feats_gt[k]) for k in feats_gt)


def style_loss(feats: dict[str, torch.Tensor], grams_gt: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum over layers of the mean absolute Gram difference (paper Eq. 4/5: 1/C_p^2 * L1)."""
    return sum(F.l1_loss(gram_matrix(feats[k]), grams_gt[k]) for k in grams_gt)


def dilated_hole(mask: torch.Tensor) -> torch.Tensor:
    """The paper's region P: the hole (1 = hole) dilated by one pixel in all 8 directions."""
    return F.max_pool2d(mask, kernel_size=3, stride=1, padding=1)


def tv_loss(comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 6: L1 differences of adjacent pixels with both pixels in P, / N*C*H*W.

    ``comp`` (N, C, H, W), ``mask`` (N, 1, H, W) with 1 = hole; P = :func:`dilated_hole`.
    """
    region = dilated_hole(mask)
    pair_h = region[..., :, 1:] * region[..., :, :-1]
    pair_v = region[..., 1:, :] * region[..., :-1, :]
    diff_h = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * pair_h
    diff_v = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * pair_v
    return (diff_h.sum() + diff_v.sum()) / comp.numel()


class PConvLoss(nn.Module):
    """The PConv training loss (paper Eq. 7); see the module docstring for each term.

    ``forward(output, target, mask)``: ``output`` the model's raw (not composited)
    prediction and ``target`` the ground truth, both (N, 3, H, W) in [-1, 1]; ``mask``
    (N, 1, H, W) with **1 = hole** (flipped to the paper's valid mask inside). Returns a
    dict of scalar tensors: ``valid``, ``hole``, ``tv``, and, when feature weights were
    given, ``perceptual``, ``style_out``, ``style_comp``; plus ``total``, the weighted sum
    (``style_weight`` applies to both style terms).

    ``vgg_path``: the VGG-19 relu3_1 weights (``../shared/weights/vgg19_relu3_1.pth``);
    ``None`` turns the perceptual and style terms off. ``features`` passes an already
    loaded :class:`VGG19Relu31` instead (shared between losses).
    """

    def __init__(
        self,
        vgg_path: str | os.PathLike | None = None,
        *,
        features: VGG19Relu31 | None = None,
        valid_weight: float = PAPER_WEIGHTS["valid"],
        hole_weight: float = PAPER_WEIGHTS["hole"],
        perceptual_weight: float = PAPER_WEIGHTS["perceptual"],
        style_weight: float = PAPER_WEIGHTS["style"],
        tv_weight: float = PAPER_WEIGHTS["tv"],
        layers: tuple[str, ...] = DEFAULT_LAYERS,
    ) -> None:
        super().__init__()
        if vgg_path is not None and features is not None:
            raise ValueError("give either vgg_path or features, not both")
        if vgg_path is not None:
            features = VGG19Relu31.from_file(vgg_path, layers)
        self.features = features
        self.vgg_path = None if vgg_path is None else os.fspath(vgg_path)
        self.weights = {
            "valid": float(valid_weight),
            "hole": float(hole_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "tv": float(tv_weight),
        }

    @property
    def uses_features(self) -> bool:
        """True when the perceptual and style terms are computed."""
        return self.features is not None and (self.weights["perceptual"] != 0 or self.weights["style"] != 0)

    def describe(self) -> str:
        """One line saying which terms are on and with which weights."""
        w = self.weights
        terms = f"{w['valid']:g}*valid + {w['hole']:g}*hole + {w['tv']:g}*tv"
        if self.uses_features:
            source = self.vgg_path or "a given VGG19Relu31"
            terms += f" + {w['perceptual']:g}*perceptual + {w['style']:g}*(style_out + style_comp)"
            layers = "/".join(self.features.layers)
            return f"PConv loss: {terms}; perceptual/style on VGG-19 {layers} from {source}"
        why = "no VGG weights given" if self.features is None else "their weights are 0"
        return f"PConv loss: {terms}; perceptual and style terms OFF ({why})"

    def forward(self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if output.shape != target.shape or output.ndim != 4:
            raise ValueError(
                f"output and target must share a (N, C, H, W) shape, got {tuple(output.shape)}, {tuple(target.shape)}"
            )
        if (
            mask.ndim != 4
            or mask.shape[1] != 1
            or mask.shape[0] != output.shape[0]
            or mask.shape[-2:] != output.shape[-2:]
        ):
            raise ValueError(
                f"mask must have shape (N, 1, H, W) matching the images (1 = hole), got {tuple(mask.shape)}"
            )
        mask = mask.to(output.dtype)
        comp = composite(output, target, mask)
        terms: dict[str, torch.Tensor] = {}
        terms["hole"], terms["valid"] = hole_valid_l1(output, target, mask)
        terms["tv"] = tv_loss(comp, mask)
        if self.uses_features:
            n = output.shape[0]
            # one VGG pass over [out; comp] with gradients, one over gt without (no backward through it)
            feats = self.features(model_range_to_unit(torch.cat([output, comp], dim=0)))
            f_out = {k: v[:n] for k, v in feats.items()}
            f_comp = {k: v[n:] for k, v in feats.items()}
            with torch.no_grad():
                f_gt = self.features(model_range_to_unit(target))
                grams_gt = {k: gram_matrix(v) for k, v in f_gt.items()}
            terms["perceptual"] = perceptual_loss(f_out, f_gt) + perceptual_loss(f_comp, f_gt)
            terms["style_out"] = style_loss(f_out, grams_gt)
            terms["style_comp"] = style_loss(f_comp, grams_gt)
        w = self.weights
        total = w["valid"] * terms["valid"] + w["hole"] * terms["hole"] + w["tv"] * terms["tv"]
        if self.uses_features:
            total = total + w["perceptual"] * terms["perceptual"]
            total = total + w["style"] * (terms["style_out"] + terms["style_comp"])
        terms["total"] = total
        return terms

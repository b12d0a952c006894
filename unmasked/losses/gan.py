"""Hinge GAN losses, as used with the SN-PatchGAN discriminator of DeepFill v2.

Lim & Ye, "Geometric GAN", arXiv:1705.02894, 2017 (the hinge formulation); Miyato et al.,
"Spectral Normalization for GANs", ICLR 2018; Yu et al., "Free-Form Image Inpainting with
Gated Convolution", ICCV 2019, Eq. (1)-(2), where every element of the SN-PatchGAN score
map is one GAN term and the losses average over all of them.

Scores may have any shape (a patch map (N, C, h, w) or its flattened (N, C*h*w)); the
losses are means over all elements. The authors' code weights the two discriminator
terms by 0.5 each; here they are summed unweighted (the usual form, e.g. SAGAN/BigGAN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``mean(relu(1 - real)) + mean(relu(1 + fake))``.

    Pass the fake scores computed on *detached* generator outputs, so this loss does not
    reach the generator.
    """
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-mean(fake)``: push the discriminator's scores of fakes up."""
    return -fake_scores.mean()

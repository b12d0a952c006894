"""Face identity embedders: MobileFaceNet (Chen et al. 2018) and the shipped distilled student.

MobileFaceNet (Chen, Liu, Gao, Han, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices", CCBR 2018, arXiv:1804.07573) is a MobileNetV2-style network
(inverted residual bottlenecks with PReLU, Sandler et al. 2018) ending in a *global depthwise
convolution* (GDConv) whose kernel covers the whole 7 x 6 final feature map, then a linear 1 x 1
conv to a 128-d embedding. Its Table 1 layout, for a 112 x 96 (H x W) input:

    conv3x3 s2 64 -> depthwise conv3x3 64 -> bottlenecks (t, c, n, s) = (2,64,5,2) (4,128,1,2)
    (2,128,6,1) (4,128,1,2) (2,128,2,1) -> conv1x1 512 -> linear GDConv 7x6 -> linear conv1x1 128

:class:`MobileFaceNet` is written from the paper; its parameter names follow the public PyTorch
port whose ArcFace/CASIA-WebFace weights live in ``../shared/weights`` (research-only), so
:func:`load_mobilefacenet` loads them with ``strict=True``. ``width`` thins every layer for the
project's own student (:func:`build_student`), distilled from dlib's descriptor
(:mod:`unmasked.training.identity_distill`) and shipped as ``weights/face_identity.safetensors``.

Every embedder follows one interface (:class:`IdentityEmbedder`):
``embed(images (N, 3, S, S) in [-1, 1] FFHQ-aligned crops, landmarks=None (N, 68, 2)) -> (N, D)``
L2-normalised; :class:`FaceEmbedder` (torch) is differentiable w.r.t. the images through the
5-point template warp (:mod:`unmasked.layers.face_template`), :class:`unmasked.faces.descriptor.DlibEmbedder` is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unmasked.layers.face_template import TEMPLATE_SIZE, align_to_template
from unmasked.models.base import EmbedModel
from unmasked.registry import create_model, register_model

#: MobileFaceNet's bottleneck settings (expansion t, channels c, repeats n, first stride s)
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class IdentityEmbedder(Protocol):
    """What identity loss, reference retrieval and evaluation need from an embedder."""

    name: str
    dim: int
    differentiable: bool

    def embed(self, images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] FFHQ-aligned crops (+ optional (N, 68, 2) crop-pixel landmarks) -> (N, D) unit rows."""
        ...


# --------------------------------------------------------------------------- architecture


class ConvBlock(nn.Module):
    """conv -> BN -> PReLU (no PReLU when ``linear``); ``depthwise`` uses one group per channel."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0, *, depthwise: bool = False,
                 linear: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=cin if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand (PReLU) -> 3x3 depthwise (PReLU) -> 1x1 linear project (+ skip when shapes match)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.PReLU(mid),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.PReLU(mid),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(nn.Module):
    """(N, 3, 112, 96) normalised face crops -> (N, ``embedding_dim``) raw (not normalised) embeddings.

    ``width`` scales every channel count (1.0 = the paper); the GDConv kernel is the final
    feature map, ``ceil(input_hw / 16)`` (7 x 6 for the paper's 112 x 96).
    """

    def __init__(self, width: float = 1.0, embedding_dim: int = 128, input_hw: tuple[int, int] = TEMPLATE_SIZE) -> None:
        super().__init__()
        h, w = input_hw
        if h < 16 or w < 16:
            raise ValueError(f"input_hw must be at least 16 x 16, got {input_hw}")

        def ch(c: int) -> int:
            return max(8, int(round(c * width / 8)) * 8)

        self.input_hw = (h, w)
        self.conv1 = ConvBlock(3, ch(64), 3, 2, 1)
        self.dw_conv1 = ConvBlock(ch(64), ch(64), 3, 1, 1, depthwise=True)
        blocks, cin = [], ch(64)
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                blocks.append(Bottleneck(cin, ch(c), s if i == 0 else 1, t))
                cin = ch(c)
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(cin, ch(512), 1)
        # GDConv: one kernel over the whole final map (four stride-2 stages, each ceil(x / 2))
        self.linear7 = ConvBlock(ch(512), ch(512), (-(-h // 16), -(-w // 16)), depthwise=True, linear=True)
        self.linear1 = ConvBlock(ch(512), embedding_dim, 1, linear=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_hw:
            raise ValueError(f"MobileFaceNet expects (N, 3, {self.input_hw[0]}, {self.input_hw[1]}), got {tuple(x.shape)}")
        x = self.blocks(self.dw_conv1(self.conv1(x)))
        return self.linear1(self.linear7(self.conv2(x))).flatten(1)


# --------------------------------------------------------------------------- embedder


@register_model("face_embedder", "MobileFaceNet identity embedder (task 'embed': crops -> unit vectors)")
class FaceEmbedder(EmbedModel):
    """A torch :class:`IdentityEmbedder`: template warp -> input scaling -> :class:`MobileFaceNet` -> L2 norm.

    Registered (task "embed", so fill pipelines never offer it) so that
    :func:`unmasked.checkpoint.load_checkpoint` rebuilds a saved one. ``width``,
    ``embedding_dim``, ``input_hw``: the network; ``input_scale`` multiplies the [-1, 1] crop
    (MobileFaceNet's ``(x*255-127.5)/128`` is ``x * 127.5/128`` for x in [-1, 1]); ``flip_sum``
    adds the embedding of the mirrored crop (doubles the cost); ``working_size`` is the side of
    the FFHQ-aligned crops it was trained on (any crop size works). After :meth:`freeze` it stays
    in eval mode with ``requires_grad=False`` even inside a module switched to ``train()``: as a
    loss it passes gradients to the image and never changes.
    """

    differentiable = True

    def __init__(self, width: float = 1.0, embedding_dim: int = 128, input_hw: tuple[int, int] | list[int] = TEMPLATE_SIZE,
                 input_scale: float = 1.0, flip_sum: bool = True, working_size: int = 128) -> None:
        super().__init__()
        self.net = MobileFaceNet(width, embedding_dim, tuple(input_hw))
        self.input_scale, self.flip_sum, self.working_size = float(input_scale), bool(flip_sum), int(working_size)
        self.dim, self.name, self.frozen = embedding_dim, "face_embedder", False

    def freeze(self) -> FaceEmbedder:
        self.frozen = True
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FaceEmbedder:
        return super().train(False if getattr(self, "frozen", False) else mode)

    def aligned(self, images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """The network's input: crops warped onto the template, (N, 3, *input_hw) in [-1, 1]."""
        return align_to_template(images, landmarks, self.net.input_hw)

    def embed_aligned(self, x: torch.Tensor) -> torch.Tensor:
        """Template-aligned crops (N, 3, *input_hw) in [-1, 1] -> (N, D) unit embeddings."""
        x = x * self.input_scale
        e = self.net(x)
        if self.flip_sum:
            e = e + self.net(x.flip(-1))
        return F.normalize(e, dim=1)

    def embed(self, images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """(N, 3, S, S) FFHQ-aligned crops in [-1, 1] -> (N, D) unit embeddings (differentiable)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, S, S) in [-1, 1], got {tuple(images.shape)}")
        return self.embed_aligned(self.aligned(images, landmarks))

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        return self.embed(images, landmarks)


def load_mobilefacenet(path: str | os.PathLike, *, flip_sum: bool = True) -> FaceEmbedder:
    """The research MobileFaceNet (ArcFace, CASIA-WebFace) from ``path`` as a frozen :class:`FaceEmbedder`.

    ``path`` is the ``.ckpt`` from ``../shared/weights`` (``{'epoch', 'net_state_dict'}``), read
    with ``weights_only=True`` (no code runs); loaded with ``strict=True``. Training-time only:
    these weights are research-only and never ship.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MobileFaceNet weights not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("net_state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    emb = create_model("face_embedder", input_scale=127.5 / 128.0, flip_sum=flip_sum)
    emb.net.load_state_dict(state, strict=True)
    emb.name = "mobilefacenet"
    return emb.freeze()


# --------------------------------------------------------------------------- the shipped student

#: the student's configuration: MobileFaceNet at half width on a half-size (56 x 48) template crop
STUDENT = {"width": 0.5, "embedding_dim": 128, "input_hw": [56, 48], "input_scale": 1.0, "flip_sum": True,
           "working_size": 128}


def build_student(**overrides: Any) -> FaceEmbedder:
    """A fresh, trainable student embedder (:data:`STUDENT` configuration, ``overrides`` applied)."""
    return create_model("face_embedder", **{**STUDENT, **overrides})


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of (N, D) embeddings, (N,)."""
    return F.cosine_similarity(a, b, dim=1)

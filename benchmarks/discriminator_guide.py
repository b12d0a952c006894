"""Does a conditional discriminator read the guide it is given?

    python benchmarks/discriminator_guide.py --run ../train/pconv_faces-128-landmarks-dguide

A run with ``discriminator.guide_channels: 1`` shows its SN-PatchGAN the landmark drawing the
generator was given. Whether the discriminator uses it is not in the training logs: the hinge loss
falls as it learns to tell fills from photos by texture alone. This loads the run's saved
discriminator and scores the run's own validation photos (its fixed holes, its drawings) four ways:
with their own drawing, with the drawing's lower half moved 6 px down, with the next photo's
drawing, and with no drawing; and the generator's fills with their own drawing. A discriminator
that reads the drawing scores the photos lower with a wrong one than with their own; one that
ignores it scores them the same. Reported: the mean score of each, and the share of photos scored
higher than with their own drawing (0.5 = chance).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from unmasked.api import load_model
from unmasked.conventions import composite
from unmasked.training.config import load_config
from unmasked.training.module import InpaintingModule, load_discriminator

#: how far the drawing's lower half is moved, in pixels of the run's image size
SHIFT = 6


def probe(run: Path) -> list[tuple[str, float, float]]:
    """(what, mean score, share of photos above their own-drawing score) for the run in ``run``."""
    cfg = load_config(run / "config.yaml")
    if not (cfg.discriminator or {}).get("guide_channels"):
        raise SystemExit(f"error: {run} has no conditional discriminator (discriminator.guide_channels)")
    module = InpaintingModule(cfg)
    module.setup("fit")
    module.discriminator.load_state_dict(load_discriminator(run / "discriminator.safetensors", cfg.discriminator))
    module.discriminator.eval()
    generator = load_model(run / "generator.safetensors").eval()  # the run's, not the one it started from
    image = module.val_images.permute(0, 3, 1, 2).float() / 127.5 - 1
    mask = torch.from_numpy(module.val_masks).float()[:, None]
    own = torch.from_numpy(module.val_guides)[:, None].float()
    half = own.shape[-2] // 2
    moved = own.clone()
    moved[:, :, half:] = 0
    moved[:, :, half + SHIFT:] = own[:, :, half:-SHIFT]
    with torch.no_grad():
        def score(x, guide):
            return module.discriminator(x, mask, guide).mean(dim=(1, 2, 3))
        fill = composite(generator(image * (1 - mask), mask, guide=own).image, image, mask)
        base = score(image, own)
        rows = [("photo, its own drawing", base), (f"photo, lower half {SHIFT} px down", score(image, moved)),
                ("photo, the next photo's drawing", score(image, own.roll(1, 0))),
                ("photo, no drawing", score(image, torch.zeros_like(own))), ("fill, its own drawing", score(fill, own))]
    return [(name, float(v.mean()), float((v > base).float().mean())) for name, v in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True,
                    help="a run folder (config.yaml, discriminator.safetensors, generator.safetensors)")
    args = ap.parse_args()
    for f in ("config.yaml", "discriminator.safetensors", "generator.safetensors"):
        if not (args.run / f).is_file():
            raise SystemExit(f"error: {args.run / f} not found")
    print(f"{args.run}: the discriminator's mean score (higher = more like a photo)\n")
    print("| scored | mean | share above the photo's own-drawing score |\n|---|--:|--:|")
    for name, mean, share in probe(args.run):
        print(f"| {name} | {mean:+.3f} | {share:.2f} |")


if __name__ == "__main__":
    main()

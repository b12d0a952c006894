"""Face models on held-out faces given the holes ``unmask`` finds on held-out real photos, at 128².

    python benchmarks/real_holes_on_faces.py --images ../shared/data/faces/celeba_wild256 \\
        --photos ../shared/data/real_masked_photos --kid-weights ../shared/weights/vgg19_relu3_1.pth \\
        --model pconv_unet_faces128 --model runs/pconv_faces-128-realholes/generator.safetensors

Real worn masks are larger than synthetic ones, and on real photos the face model paints bands
and doubled mouths into them that it rarely paints into synthetic holes. Real photos have no
ground truth, so this puts their holes on faces that do: the hole the pipeline finds on each
masked face of the held-out real photos (every ``REAL_HOLDOUT_EVERY``-th, the README's by-eye
set, whose holes no training run sees; :func:`unmasked.training.data.real_worn_holes`) is laid,
in the aligned crop where it was found, on the held-out CelebA faces in turn, and each model fills
it. Scored on the 128² crop: PSNR, SSIM, detail in the hole (% of the photo's), and KID of the
VGG texture statistics of the square around the hole (0 = photo). A model ranks the same on this
as on real photos only as far as bands come from the hole's size and shape, not from the photos'
blur, compression or faces.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unmasked.api import load_model
from unmasked.evaluation.realism import KID_LAYERS, hole_patch, kid, texture_features
from unmasked.evaluation.run import load_eval_images
from unmasked.losses.features import VGG19Relu31
from unmasked.metrics import detail_percent, score_image
from unmasked.pipelines.fill import fill_array
from unmasked.training.data import real_worn_holes

SIZE = 128


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, required=True, help="<identity>/<image> folder of aligned faces")
    ap.add_argument("--photos", type=Path, required=True, help="real photos of people wearing masks")
    ap.add_argument("--model", action="append", required=True, help="a preset or checkpoint path; repeat")
    ap.add_argument("--kid-weights", type=Path, help="the research VGG-19 (relu3_1) for KID")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--cache", default="~/.cache/unmasked/holes")
    args = ap.parse_args()
    holes = real_worn_holes(args.photos, SIZE, args.cache, held_out=True).astype(bool)
    _, faces = load_eval_images(args.images, SIZE, split="val", limit=args.limit)
    pairs = [(face, holes[i % len(holes)]) for i, face in enumerate(faces)]
    vgg = VGG19Relu31.from_file(args.kid_weights, layers=KID_LAYERS) if args.kid_weights else None
    reals = texture_features(np.stack([hole_patch(f, h) for f, h in pairs]), vgg) if vgg else None
    print(f"{len(pairs)} held-out faces, {len(holes)} held-out real-photo holes (mean {100 * holes.mean():.1f} % of the crop)\n")
    print("| model | PSNR dB | SSIM | detail % | KID |\n|---|--:|--:|--:|--:|")
    for name in args.model:
        model = load_model(name)
        outs = [fill_array(f, h, model).image for f, h in pairs]
        scores = [score_image(o, f) for o, (f, _) in zip(outs, pairs, strict=True)]
        detail = np.mean([detail_percent(o, f, h) for o, (f, h) in zip(outs, pairs, strict=True)])
        k = "–"
        if vgg is not None:
            r = kid(texture_features(np.stack([hole_patch(o, h) for o, (_, h) in zip(outs, pairs, strict=True)]), vgg), reals)
            k = f"{r['kid']:.2f} ± {r['se']:.2f}"
        print(f"| {name} | {np.mean([s['psnr'] for s in scores]):.2f} | {np.mean([s['ssim'] for s in scores]):.3f} "
              f"| {detail:.1f} | {k} |")


if __name__ == "__main__":
    main()

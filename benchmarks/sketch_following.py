"""Does the fill follow the sketch? DeepFill v2's user-guided mode on held-out faces and scenes.

    python benchmarks/sketch_following.py                       # the shipped sketch preset
    python benchmarks/sketch_following.py --model runs/x/generator.safetensors --faces 48 --scenes 0
    python benchmarks/sketch_following.py --figure docs/sketch_guided.png

Faces: the held-out identities of ``celeba_wild256`` at 128² (the split the face models never
trained on), half with worn-mask holes and half with free-form strokes and boxes. Scenes: the
natural photos of ``../shared/data/scenes`` (no model here trained on them), centre-cropped to
128², free-form holes. The sketch is each image's own edges in the hole; see
:mod:`unmasked.evaluation.sketch_eval` for the conditions and measures. ``--baseline`` (default:
today's sketch-less ``deepfill_v2_faces128``) is scored on the same cases without a sketch.

``--figure`` writes the README figure from public-domain pictures that ship with scikit-image
(the astronaut's face, the coffee cup): hole | sketch | fill without | fill with | photo.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from unmasked.api import DEFAULT_SKETCH_MODEL, load_model
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.sketch_eval import SketchCase, evaluate_sketch, format_result, sketch_cases
from unmasked.masks import make_mask
from unmasked.masks.face_mask import face_mask_for_aligned

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def face_holes(count: int, size: int, seed: int, kinds: str = "mixed") -> list[np.ndarray]:
    """``mixed``: worn-mask holes (even indices) and free-form strokes with boxes (odd), seeded
    per index; ``worn`` / ``free``: only that kind, seeded alike."""
    holes = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        worn = kinds == "worn" or (kinds == "mixed" and i % 2 == 0)
        holes.append(face_mask_for_aligned(size, rng)[1] if worn else make_mask("free_form_box", size, rng))
    return holes


def scene_holes(count: int, size: int, seed: int) -> list[np.ndarray]:
    return [make_mask("free_form_box", size, np.random.default_rng([seed, 1000 + i])) for i in range(count)]


def load_cases(kind: str, count: int, size: int, seed: int, face_kinds: str = "mixed") -> list[SketchCase]:
    if kind == "faces":
        names, images = load_eval_images(DATA / "faces" / "celeba_wild256", size, split="val", limit=count)
        holes = face_holes(len(images), size, seed, face_kinds)
    else:
        names, images = load_eval_images(DATA / "scenes", size)
        pick = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)
        names, images = [names[i] for i in pick], images[pick]
        holes = scene_holes(len(images), size, seed)
    return sketch_cases(names, images, holes, seed=seed)


def figure(model, baseline, out: Path) -> None:
    """Two public-domain pictures (scikit-image): hole | sketch | without | with | photo, at 3x."""
    from skimage import data

    from unmasked.data.sketch import edge_sketch
    from unmasked.pipelines.fill import fill_array

    face = np.asarray(Image.fromarray(data.astronaut()[20:276, 110:366]).resize((128, 128), Image.LANCZOS))
    cup = np.asarray(Image.fromarray(data.coffee()[0:400, 100:500]).resize((128, 128), Image.LANCZOS))
    face_hole = np.zeros((128, 128), bool)
    face_hole[68:112, 38:96] = True  # mouth and chin
    cup_hole = np.zeros((128, 128), bool)
    cup_hole[30:90, 20:70] = True  # the cup's rim and side
    rows = []
    for rgb, hole in ((face, face_hole), (cup, cup_hole)):
        lines = edge_sketch(rgb, hole)
        shown = np.where(hole[..., None], 255, rgb).astype(np.uint8)
        drawn = shown.copy()
        drawn[lines] = (0, 0, 0)
        without = fill_array(rgb, hole, model).image
        with_sketch = fill_array(rgb, hole, model, sketch=lines).image
        rows.append(np.concatenate([shown, drawn, without, with_sketch, rgb], axis=1))
    grid = np.concatenate(rows, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_SKETCH_MODEL, help="a sketch model: preset or checkpoint")
    ap.add_argument("--baseline", default="deepfill_v2_faces128", help="a sketch-less model scored without a sketch ('' = none)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--face-holes", default="mixed", choices=("mixed", "worn", "free"),
                    help="holes of the face cases: worn masks and free-form alternately, or one kind only")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--figure", type=Path, help="write the README figure here (public-domain pictures)")
    ap.add_argument("--grid", type=Path, help="write a by-eye grid of the first 8 cases of each set here")
    ap.add_argument("--blend", default="baseline",
                    help="the diffusion blend at the hole edge for --model: 'baseline' (the baseline's, so that "
                         "a training snapshot is compared like for like), 'model' (its own metadata), 'none', "
                         "or METHOD:WIDTH[:SKETCH_WIDTH] (e.g. navier_stokes:12:4)")
    args = ap.parse_args()
    model = load_model(args.model)
    baseline = load_model(args.baseline) if args.baseline else None
    if args.blend == "baseline":
        model.classical_blend = getattr(baseline, "classical_blend", None)
    elif args.blend == "none":
        model.classical_blend = None
    elif args.blend != "model":
        method, width, *sketch_width = args.blend.split(":")
        spec = {"method": method, "width": float(width)}
        if sketch_width:
            spec["sketch_width"] = float(sketch_width[0])
        model.classical_blend = spec
    print(f"diffusion blend of the sketch model: {model.classical_blend}")
    if args.figure:
        figure(model, baseline, args.figure)
    results = {}
    for kind, count in (("faces", args.faces), ("scenes", args.scenes)):
        if count <= 0:
            continue
        t0 = time.perf_counter()
        cases = load_cases(kind, count, args.size, args.seed, args.face_holes)
        result = evaluate_sketch(model, cases, baseline=baseline if kind == "faces" else None, seed=args.seed)
        holes = f", {args.face_holes} holes" if kind == "faces" else ""
        title = (f"{kind}: {len(cases)} held-out images at {args.size}²{holes}, seed {args.seed}, model {args.model} "
                 f"({time.perf_counter() - t0:.0f} s)")
        print(format_result(result, title), "\n")
        if args.grid:
            rows = []
            for i, case in enumerate(cases[:8]):
                drawn = np.where(case.hole[..., None], 255, case.image).astype(np.uint8)
                drawn[case.sketch] = 0
                rows.append(np.concatenate([drawn, result["fills"]["no sketch"][i], result["fills"]["true edges"][i],
                                            result["fills"]["rough sketch"][i], case.image], axis=1))
            path = args.grid.with_name(f"{args.grid.stem}_{kind}{args.grid.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate(rows, 0)).resize((5 * 2 * args.size, len(rows) * 2 * args.size)).save(path)
            print(f"wrote {path}")
        results[kind] = {k: v for k, v in result.items() if k != "fills"}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

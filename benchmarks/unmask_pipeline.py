"""The whole `unmask` pipeline: speed against cv2.inpaint, and coverage on real masked photos.

1. **Speed.** scikit-image's astronaut (public domain) wears a synthetic surgical mask
   (MaskTheFace method) and is placed in a 512x512 and a 1920x1080 photo. The pipeline
   (detect -> align -> segment -> fill -> paste back) is timed on each, and so is OpenCV's
   Telea (``cv2.inpaint``, radius 5) on the same photo with the mask the pipeline found, in
   the same process; the ratio is reported, since absolute times drift on shared machines.
2. **Real photos** (``--real DIR``, e.g. ``../shared/data/real_masked_photos``): the share of
   photos where a face is found, and of found faces where a worn mask is found and restored.
3. **A group photo** (with ``--real``): :data:`GROUP` -- eight RMFD photos of one masked person
   each -- tiled 4 x 2 into a 1920 x 1080 photo; every face must be found and restored
   (``--group-figure PATH`` writes before | after).
4. ``--figure PATH`` writes the astronaut before | detected mask | after (for the README).

``--compare DETECTOR`` repeats the speed rows with another detector (e.g. dlib's ``all``, the
default before BlazeFace) in the same process.

    python benchmarks/unmask_pipeline.py --real ../shared/data/real_masked_photos --limit 200 --compare all
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from unmasked.api import DEFAULT_UNMASK_PRESET, load_model
from unmasked.conventions import load_image, save_image
from unmasked.faces import DEFAULT_DETECTOR, DETECTORS, detect_faces
from unmasked.masks.face_mask import put_face_mask
from unmasked.pipelines.unmask import load_segmenter, unmask_array

#: RMFD photos of one person in a worn mask each, for the group photo
GROUP = ["0000_0000.jpg", "0001_0017.jpg", "0001_0037.jpg", "0001_0075.jpg",
         "0003_0008.jpg", "0005_0000.jpg", "0012_0025.jpg", "0017_0000.jpg"]


def group_photo(folder: Path) -> np.ndarray:
    """The :data:`GROUP` photos, each fitted into a 480 x 540 cell of a 1920 x 1080 photo."""
    canvas = np.full((1080, 1920, 3), 128, np.uint8)
    for k, name in enumerate(GROUP):
        cell = in_canvas(load_image(folder / name).rgb, 480, 540)
        r, c = divmod(k, 4)
        canvas[540 * r:540 * (r + 1), 480 * c:480 * (c + 1)] = cell
    return canvas


def masked_astronaut(seed: int = 0) -> np.ndarray:
    rgb = data.astronaut()
    face = detect_faces(rgb)[0]
    masked, _ = put_face_mask(rgb, face, np.random.default_rng(seed), kind="surgical")
    return masked


def in_canvas(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` scaled to fit, centred on a mid-grey canvas of width x height."""
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    small = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_UNMASK_PRESET, help="face model (default: unmask's)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS, help="unmask's face detector")
    ap.add_argument("--compare", choices=DETECTORS, help="also time unmask with this detector")
    ap.add_argument("--group-figure", type=Path, help="write the group photo before | after here")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--real", type=Path, help="folder of real photos of people wearing masks")
    ap.add_argument("--limit", type=int, default=200, help="real photos to process (spread over the folder)")
    ap.add_argument("--figure", type=Path, help="write astronaut before | mask | after here")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    model = load_model(args.model)
    load_segmenter()  # loaded once, outside the timings
    masked = masked_astronaut()
    result: dict = {"model": args.model, "speed": []}
    print("| photo | detector | faces restored | unmask (s) | Telea on the same mask (s) | ratio |\n|---|---|--:|--:|--:|--:|")
    for detector in [args.detector] + ([args.compare] if args.compare else []):
        for width, height in ((512, 512), (1920, 1080)):
            photo = in_canvas(masked, width, height)
            out = unmask_array(photo, model, detector=detector)  # warm-up, and the mask Telea gets
            hole = out.mask.astype(np.uint8)
            t_unmask = best_of(lambda photo=photo, d=detector: unmask_array(photo, model, detector=d), args.repeats)
            t_telea = best_of(lambda photo=photo, hole=hole: cv2.inpaint(photo, hole, 5, cv2.INPAINT_TELEA),
                              args.repeats)
            row = {"photo": f"{width}x{height}", "detector": detector, "faces": len(out.faces),
                   "mask_found": sum(f.mask_found for f in out.faces),
                   "unmask_s": t_unmask, "telea_s": t_telea, "ratio": t_unmask / t_telea}
            result["speed"].append(row)
            print(f"| {row['photo']} | {detector} | {row['mask_found']} | {t_unmask:.3f} | {t_telea:.4f} | "
                  f"{row['ratio']:.0f}x |", flush=True)
            if args.figure and (width, height) == (512, 512) and detector == args.detector:
                mask_view = np.where(out.mask[..., None], np.array([255, 0, 0], np.uint8), photo)
                save_image(args.figure, np.concatenate([photo, mask_view, out.image], axis=1))

    if args.real:
        from unmasked.data.datasets import list_images

        group = group_photo(args.real)
        start = time.perf_counter()
        out = unmask_array(group, model, detector=args.detector)
        seconds = time.perf_counter() - start
        result["group"] = {"people": len(GROUP), "faces": len(out.faces),
                           "restored": sum(f.mask_found for f in out.faces), "seconds": seconds}
        print(f"\ngroup photo (1920x1080, {len(GROUP)} masked people): {len(out.faces)} faces found, "
              f"{result['group']['restored']} restored, {seconds:.2f} s")
        if args.group_figure:
            save_image(args.group_figure, np.concatenate([group, out.image], axis=0))

        paths = list_images(args.real)
        pick = np.linspace(0, len(paths) - 1, min(args.limit, len(paths))).round().astype(int)
        photos = with_face = faces = found = 0
        for i in pick:
            rgb = load_image(paths[i]).rgb
            out = unmask_array(rgb, model, detector=args.detector)
            photos += 1
            with_face += bool(out.faces)
            faces += len(out.faces)
            found += sum(f.mask_found for f in out.faces)
        result["real"] = {"photos": photos, "photos_with_face": with_face, "faces": faces, "faces_restored": found}
        print(f"\nreal masked photos: {photos} processed; a face found in {with_face} ({100 * with_face / photos:.1f} %); "
              f"{faces} faces, a worn mask found and restored on {found} ({100 * found / max(faces, 1):.1f} %)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

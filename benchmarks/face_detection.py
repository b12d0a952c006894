"""Finding faces under masks: the default BlazeFace + FaceMesh detector against dlib, side by side.

On real photos of people wearing face masks (``--real``, e.g. the 1,028 RMFD photos in
``../shared/data/real_masked_photos``) and on photos without faces (``--scenes``, e.g. the 148 in
``../shared/data/scenes``), for each detector: the share of real photos where at least one face
is found (of any size, and of at least 20 px), the faces found, the false faces on the scenes (per 50 scenes) and the time per photo,
as a ratio to the first detector run in the same process (absolute times drift on shared
machines). Ablation rows show BlazeFace's two models alone, before the FaceMesh presence filter.

``--sheet PATH`` writes a contact sheet of ``--sheet-n`` detections of the first detector, drawn
at random from the real photos (box and the five FFHQ points: eyes and mouth corners), to check
by eye that what is counted as a face is one.

    python benchmarks/face_detection.py --real ../shared/data/real_masked_photos \\
        --scenes ../shared/data/scenes --detectors blazeface all --sheet faces_sheet.png

dlib's "all" (the cascade ``unmask`` used before) takes ~1.5 s a photo here: ~30 minutes for both
folders; ``--limit N`` takes N photos spread over each folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.faces import blazeface, detect_faces
from unmasked.faces.align import align_face
from unmasked.faces.facemesh import MIN_PRESENCE, mesh_for_detection
from unmasked.faces.second_look import second_look_faces
from unmasked.hub import DEFAULT_SEGMENTER, load_segmenter
from unmasked.pipelines.unmask import MAX_MASK_AREA, MIN_MASK_AREA, segment_aligned

#: scenes in ../shared/data/scenes that show people (by eye; CBSD68 has portraits, a couple, a poster):
#: their faces are real, so false faces are counted on the other scenes only
SCENES_WITH_PEOPLE = {"101087", "119082", "145086", "157055", "170057", "189080", "216081", "220075", "229036",
                      "271035", "285079", "300091", "302008"}


def spread(paths: list[Path], limit: int | None) -> list[Path]:
    if not limit or limit >= len(paths):
        return paths
    return paths[:: max(1, len(paths) // limit)][:limit]


def wears_mask(rgb: np.ndarray, face, segmenter) -> bool:
    """Whether ``unmask``'s segmenter finds a worn mask on ``face`` (its aligned 128² crop, no reframing)."""
    area = float((segment_aligned(segmenter, align_face(rgb, face, 128).image) > 0.5).mean())
    return MIN_MASK_AREA <= area <= MAX_MASK_AREA


def run_detector(name: str, images: list[np.ndarray]) -> tuple[list[list], float]:
    """(boxes per image, seconds per image) for a detect_faces detector or an ablation row.

    "blazeface+second-look" is what ``unmask`` restores faces from: the default detector's faces
    of at least 20 px (``unmask``'s size) and, on a photo where the segmenter finds a worn mask on
    none of them, the second look's faces on which it does
    (:func:`~unmasked.faces.second_look.second_look_faces`); compare its "face >= 20 px" column."""
    out = []
    segmenter = load_segmenter(DEFAULT_SEGMENTER) if name == "blazeface+second-look" else None
    start = time.perf_counter()
    for rgb in images:
        if segmenter is not None:
            faces = detect_faces(rgb, detector="blazeface")
            if not any(wears_mask(rgb, f, segmenter) for f in faces):
                faces += [f for f in second_look_faces(rgb, exclude=[f.box for f in faces])
                          if wears_mask(rgb, f, segmenter)]
            out.append([(f.box, f.landmarks) for f in faces])
        elif name.startswith("bf-"):  # ablation: one BlazeFace model, optionally with the mesh filter
            model, _, filt = name[3:].partition("+")
            dets = blazeface.detect(rgb, model)
            if filt:
                dets = [d for d in dets
                        if mesh_for_detection(rgb, d.box, d.keypoints[0], d.keypoints[1]).presence >= MIN_PRESENCE]
            out.append([(tuple(d.box), None) for d in dets])
        else:
            out.append([(f.box, f.landmarks) for f in detect_faces(rgb, detector=name, min_size=1)])
    return out, (time.perf_counter() - start) / max(1, len(images))


def contact_sheet(images: list[np.ndarray], found: list[list], n: int, seed: int = 0, cell: int = 160) -> np.ndarray:
    """``n`` random detections, each cropped around its box (twice its side) and drawn."""
    items = [(i, k) for i, faces in enumerate(found) for k in range(len(faces))]
    rng = np.random.default_rng(seed)
    pick = [items[j] for j in rng.choice(len(items), size=min(n, len(items)), replace=False)]
    cols = 10
    sheet = np.full((cell * ((len(pick) + cols - 1) // cols), cell * cols, 3), 255, np.uint8)
    for j, (i, k) in enumerate(pick):
        rgb = images[i].copy()
        (x, y, w, h), lm = found[i][k]
        cv2.rectangle(rgb, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 1)
        if lm is not None:
            for p in (lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]):
                cv2.circle(rgb, (int(round(p[0])), int(round(p[1]))), 2, (255, 0, 0), -1)
        side = 2 * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        m = cv2.getAffineTransform(np.float32([[cx - side / 2, cy - side / 2], [cx + side / 2, cy - side / 2],
                                               [cx - side / 2, cy + side / 2]]),
                                   np.float32([[0, 0], [cell, 0], [0, cell]]))
        crop = cv2.warpAffine(rgb, m, (cell, cell), borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        cv2.putText(crop, str(j), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
        r, c = divmod(j, cols)
        sheet[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = crop
    return sheet


def second_look_sheet(images: list[np.ndarray], cell: int = 128, cols: int = 6) -> tuple[np.ndarray | None, int]:
    """Before | after crops of every face ``unmask`` (default model) restores from the second look, for
    the by-eye check; (sheet or None, face count)."""
    from unmasked.api import DEFAULT_UNMASK_PRESET, load_model
    from unmasked.pipelines.unmask import unmask_array

    model, tiles = load_model(DEFAULT_UNMASK_PRESET), []
    for rgb in images:
        result = unmask_array(rgb, model)
        for face in result.faces:
            if face.detector != "blazeface-second-look":
                continue
            x, y, w, h = face.box
            m = int(0.35 * w)
            y0, x0 = max(0, y - m), max(0, x - m)
            pair = [cv2.resize(im[y0:y + h + m, x0:x + w + m], (cell, cell), interpolation=cv2.INTER_CUBIC)
                    for im in (rgb, result.image)]
            tile = np.hstack(pair)
            cv2.putText(tile, str(len(tiles)), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
            tiles.append(tile)
    if not tiles:
        return None, 0
    n = len(tiles)
    tiles += [np.zeros_like(tiles[0])] * (-n % cols)
    return np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, required=True, help="folder of real photos of people wearing masks")
    ap.add_argument("--scenes", type=Path, help="folder of photos without faces")
    ap.add_argument("--detectors", nargs="+", default=["blazeface", "bf-full", "bf-short", "bf-full+mesh",
                                                        "bf-short+mesh", "all"],
                    help="detect_faces detectors, ablations bf-full / bf-short (+mesh: with the presence filter), "
                         "or blazeface+second-look (the faces unmask restores from)")
    ap.add_argument("--limit", type=int, help="photos per folder, spread over it (default all)")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet of the first detector's real-photo faces here")
    ap.add_argument("--sheet-n", type=int, default=50)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--second-look-sheet", type=Path,
                    help="write before | after crops of every real-photo face unmask restores from the second look here")
    args = ap.parse_args()

    real_paths = spread(list_images(args.real), args.limit)
    real = [load_image(p).rgb for p in real_paths]
    scene_paths = [p for p in list_images(args.scenes) if p.stem not in SCENES_WITH_PEOPLE] if args.scenes else []
    scenes = [load_image(p).rgb for p in spread(scene_paths, args.limit)]
    results, base = {}, None
    print(f"{len(real)} real masked photos, {len(scenes)} scenes without people")
    print(f"{'detector':16s} {'photos with a face':>19s} {'(face >= 20 px)':>16s} {'faces':>6s} {'false/50 scenes':>16s} "
          f"{'ms/photo':>9s} {'time ratio':>10s}")
    for name in args.detectors:
        found, sec = run_detector(name, real)
        false, _ = run_detector(name, scenes)
        base = base or sec
        row = {"photos_with_face": float(np.mean([bool(f) for f in found])),
               "photos_with_face_20px": float(np.mean([any(min(b[2], b[3]) >= 20 for b, _ in f) for f in found])),
               "faces": int(sum(map(len, found))),
               "false_faces": int(sum(map(len, false))),
               "false_per_50_scenes": 50 * sum(map(len, false)) / max(1, len(scenes)),
               "ms_per_photo": 1000 * sec, "time_ratio": sec / base,
               "faces_per_photo": {p.name: len(f) for p, f in zip(real_paths, found, strict=True)}}
        results[name] = row
        print(f"{name:16s} {row['photos_with_face']:19.1%} {row['photos_with_face_20px']:16.1%} {row['faces']:6d} {row['false_per_50_scenes']:16.2f} "
              f"{row['ms_per_photo']:9.1f} {row['time_ratio']:10.2f}", flush=True)
        if args.sheet and name == args.detectors[0]:
            cv2.imwrite(str(args.sheet), cv2.cvtColor(contact_sheet(real, found, args.sheet_n), cv2.COLOR_RGB2BGR))
            print(f"contact sheet: {args.sheet}")
    if args.second_look_sheet:
        sheet, n = second_look_sheet(real)
        if sheet is not None:
            cv2.imwrite(str(args.second_look_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"{n} faces restored from the second look" + (f": {args.second_look_sheet}" if sheet is not None else ""))
    if args.json:
        args.json.write_text(json.dumps({"real": len(real), "scenes": len(scenes), "results": results}, indent=2))


if __name__ == "__main__":
    main()

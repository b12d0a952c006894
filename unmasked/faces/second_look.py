"""A second look at the face boxes the "blazeface" detector passed over (:func:`second_look_faces`).

BlazeFace (Bazarevsky et al., CVPR-W 2019) scores many masked faces low, and FaceMesh's presence
check (Kartynnik et al., CVPR-W 2019) rejects most of them: on the 1,028 real photos of people in
masks, :func:`~unmasked.faces.detect.detect_faces` finds no face of 20 px or more on a quarter.
Each doubtful box is looked at again on its own FFHQ-aligned crop, where a real face sits at a
known place and size. Measured in the README ("Finding faces").
"""

from __future__ import annotations

import numpy as np

from unmasked.faces import blazeface
from unmasked.faces.align import align_face
from unmasked.faces.detect import MERGE_IOU, Face, box_iou, check_rgb, tile_detections
from unmasked.faces.facemesh import mesh_for_detection

#: the lowest BlazeFace score of a candidate box on the whole photo and on a tile, and at most this
#: many candidates, best first
SECOND_LOOK_MIN = (0.2, 0.3)
SECOND_LOOK_MAX = 8
#: ... each looked at again on its FFHQ crop zoomed out this much, at this side: there a face sits
#: at a known place, its box centred within SECOND_LOOK_CENTRE[1] of SECOND_LOOK_CENTRE[0] (x, y from
#: the crop's centre, shares of its side) and SECOND_LOOK_SIDE wide (5th-95th percentile of the faces
#: the detector finds on real photos: centre (0, 0.04), side 0.26-0.47), and it is kept when the
#: short-range model scores it SECOND_LOOK_SCORES[0] or more and the full-range one SECOND_LOOK_SCORES[1]
SECOND_LOOK_ZOOM = 1.6
SECOND_LOOK_SIZE = 128
SECOND_LOOK_CENTRE = ((0.0, 0.035), 0.1)
SECOND_LOOK_SIDE = (0.22, 0.55)
SECOND_LOOK_SCORES = (0.5, 0.3)


def second_look_faces(rgb: np.ndarray, exclude=(), min_size: int = 20) -> list[Face]:
    """Faces the "blazeface" detector passed over, found by looking at each doubtful box again.

    Many masked faces get a low BlazeFace score and fail FaceMesh's presence check, on the whole
    photo or on a tile. Here every box that either model scores at least :data:`SECOND_LOOK_MIN`
    (whole photo, tiles; none overlapping ``exclude``, boxes (x, y, w, h), by
    :data:`~unmasked.faces.detect.MERGE_IOU`; at most :data:`SECOND_LOOK_MAX`) gets its FaceMesh
    points and is aligned FFHQ-style, zoomed out by :data:`SECOND_LOOK_ZOOM`: a real face now lies
    centred, at the size a face has there, where both models see it whole. It is kept when both
    find a face of that size at that place (:data:`SECOND_LOOK_CENTRE`, :data:`SECOND_LOOK_SIDE`)
    with at least :data:`SECOND_LOOK_SCORES`. A crowd's box holds faces, but off-centre; most
    patterns are not faces on a second look either (one of 1,028 real photos: a character on a
    red banner, which both models confirm at 0.57).

    Not part of :func:`~unmasked.faces.detect.detect_faces`: ``unmask`` uses it when the detector
    found no masked face, and keeps a face from it only where the segmenter then finds a worn mask
    (measured in the README, "Finding faces"). ``Face.detector`` is "blazeface-second-look".
    """
    rgb = check_rgb(rgb)
    cands = [d for m in ("short", "full") for d in blazeface.detect(rgb, m, min_score=SECOND_LOOK_MIN[0])]
    cands += [d for m in ("short", "full") for d in tile_detections(rgb, m, SECOND_LOOK_MIN[1])]
    kept: list[blazeface.Detection] = []
    for d in sorted(cands, key=lambda d: -d.score):
        taken = [*exclude, *(k.box for k in kept)]
        if min(d.box[2], d.box[3]) < min_size or any(box_iou(d.box, o) >= MERGE_IOU for o in taken):
            continue
        kept.append(d)
    size, (centre, radius) = SECOND_LOOK_SIZE, SECOND_LOOK_CENTRE

    def seen(image: np.ndarray, model: str, min_score: float) -> bool:
        for d in blazeface.detect(image, model, min_score=min_score):
            cx, cy = (d.box[0] + d.box[2] / 2) / size - 0.5, (d.box[1] + d.box[3] / 2) / size - 0.5
            if (np.hypot(cx - centre[0], cy - centre[1]) <= radius
                    and SECOND_LOOK_SIDE[0] <= d.box[2] / size <= SECOND_LOOK_SIDE[1]):
                return True
        return False

    faces = []
    for d in kept[:SECOND_LOOK_MAX]:
        mesh = mesh_for_detection(rgb, d.box, d.keypoints[0], d.keypoints[1])
        face = Face(box=tuple(int(round(v)) for v in d.box), landmarks=mesh.ibug68, score=d.score,
                    detector="blazeface-second-look", extra={"mesh": mesh.points, "presence": mesh.presence})
        crop = align_face(rgb, face, size, zoom=SECOND_LOOK_ZOOM).image
        if not (seen(crop, "short", SECOND_LOOK_SCORES[0]) and seen(crop, "full", SECOND_LOOK_SCORES[1])):
            continue
        faces.append(face)
    return faces

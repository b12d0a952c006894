"""Request and response schemas of the REST API (pydantic v2).

Every request model forbids unknown fields (``extra="forbid"``), so a misspelt option is a
422 instead of being silently ignored. Image fields are files in ``multipart/form-data``
requests and base64 strings (optionally ``data:image/...;base64,`` URLs) in JSON requests;
the ``*Params`` models hold the non-image fields both kinds of request share.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from unmasked.hub import DEFAULT_UNMASK_PRESET


def _parse_box(value):
    """Accept "x,y,w,h" (form fields) as well as [x, y, w, h] (JSON)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            text = text.strip("[]")
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        return parts
    return value


def _parse_boxes(value):
    """Accept "x,y,w,h;x,y,w,h" (form fields) as well as [[x, y, w, h], ...] (JSON)."""
    if isinstance(value, str):
        import json

        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                return value
        return [_parse_box(b) for b in text.split(";") if b.strip()]
    return value


Box = Annotated[
    tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)], Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]],
    BeforeValidator(_parse_box),
]
Boxes = Annotated[list[Box], BeforeValidator(_parse_boxes), Field(max_length=32)]
ResponseFormat = Literal["image", "json"]
Detector = Literal["blazeface", "all", "auto", "hog", "cnn"]

RESPONSE_FORMAT_DOC = (
    "`image` (default): the PNG itself, with the model, elapsed time and any note in the X-Unmasked-* headers; "
    "`json`: a JSON object with the PNG as base64 and the details"
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class InpaintParams(StrictModel):
    model: str = Field("telea", description="Model name from GET /api/v1/models.")
    box: Box | None = Field(
        None,
        description="Optional face square x,y,w,h (pixels): the hole inside it is filled from this crop alone, "
        "so a face model sees the whole face at its working size. Hole pixels outside it are filled as usual.",
    )
    reference_box: Box | None = Field(
        None, description="Optional face square x,y,w,h on the reference photo (a group photo, or a face the detector "
                          "misses); without it the reference's largest face is used. Only with a reference.",
    )
    response_format: ResponseFormat = Field("image", description=RESPONSE_FORMAT_DOC)


class InpaintJSON(InpaintParams):
    image: str = Field(..., description="The photo, base64 (PNG, JPEG, WebP, ...).")
    mask: str = Field(..., description="The mask, base64; white (> 127) = hole; same size as the image.")
    reference: str | None = Field(
        None, description="Optional photo of the same person, base64; only for models with uses_reference."
    )
    sketch: str | None = Field(
        None, description="Optional sketch, base64: white (> 127) = a line the fill should follow, same size as the "
                          "image; lines outside the hole are ignored. Only for models with uses_sketch; not with a reference.",
    )


class UnmaskParams(StrictModel):
    model: str | None = Field(None, description=f"Face model from GET /api/v1/models; default: default_unmask there "
                                                f"({DEFAULT_UNMASK_PRESET} on a server that offers it).")
    boxes: Boxes | None = Field(None, description="Face squares x,y,w,h (skip detection); form: 'x,y,w,h;x,y,w,h'.")
    detector: Detector = Field(
        "blazeface", description="Face detector: blazeface (MediaPipe's BlazeFace + FaceMesh, made for faces under "
                                 "masks, milliseconds); dlib's all (every face HOG or the CNN finds) or auto (HOG, HOG "
                                 "upsampled, then the CNN, stopping at the first that finds a face); hog; cnn.")
    region: Literal["segmenter", "landmarks"] | None = Field(
        None, description="How the worn mask is found: the learned segmenter (pipeline default) or the landmark heuristic."
    )
    mean_face: Literal["off", "auto", "on"] = Field(
        "on", description="The restored face's structure (nose, one closed mouth, chin) from a mean face warped onto "
                          "the face's guessed landmarks: on every face (on, the default), on faces whose fill runs "
                          "in horizontal bands (auto) or never (off). Not with a reference.")
    mean_texture: bool = Field(True, description="With mean_face: use the mean face with its finest detail put back "
                                                 "(crisper lips, nostrils and chin crease); false: the plain, softer "
                                                 "average.")
    mean_chroma: bool = Field(True, description="With mean_face: take the lips' colour edge from the mean face too, "
                                                "at the photo's saturation (none on a black-and-white photo).")
    grain: bool = Field(True, description="Add the photo's own skin grain, synthesised from the visible skin, to "
                                          "the restored face.")
    second_look: bool = Field(True, description="With the blazeface detector: when no masked face is found, look "
                                                "again at the detector's doubtful boxes and restore those on which a "
                                                "worn mask is found (their detector is blazeface-second-look).")
    ear_loops: bool = Field(True, description="Also fill the mask's straps (ear loops) beside the restored region, "
                                              "from what lies around them.")
    reference_box: Box | None = Field(
        None, description="Optional face square x,y,w,h on the reference photo; without it its largest face is used.",
    )
    response_format: ResponseFormat = Field(
        "image", description=RESPONSE_FORMAT_DOC + "; `json` adds the detected masks, the filled region and the faces"
    )


class UnmaskJSON(UnmaskParams):
    image: str = Field(..., description="The photo, base64.")
    reference: str | None = Field(None, description="Optional photo of the same person, base64.")


class FaceMaskParams(StrictModel):
    kind: Literal["surgical", "n95", "kn95", "cloth", "random"] = Field("surgical", description="Mask type to draw.")
    seed: int = Field(0, ge=0, description="Random seed: the same seed gives the same mask.")
    boxes: Boxes | None = Field(None, description="Face squares x,y,w,h (skip detection).")
    detector: Detector = "blazeface"
    response_format: ResponseFormat = Field(
        "image", description=RESPONSE_FORMAT_DOC + "; `json` adds the synthetic mask and the face boxes"
    )


class FaceMaskJSON(FaceMaskParams):
    image: str = Field(..., description="The photo, base64.")


# --------------------------------------------------------------------------- responses


class ErrorBody(BaseModel):
    detail: str = Field(..., description="What went wrong, in one sentence.")


class ModelInfo(BaseModel):
    name: str
    kind: Literal["trained", "classical", "auto"]
    description: str
    uses_reference: bool
    uses_sketch: bool = Field(False, description="Takes a sketch (DeepFill v2's user-guided mode): lines the fill follows.")
    working_size: int | None = Field(None, description="Training resolution; larger holes are filled crop by crop.")
    face_model: bool = Field(..., description="Trained on aligned faces: use a face square (box) or /unmask.")
    uses_landmarks: bool = Field(False, description="Guided by the face's landmarks, which /unmask finds: /unmask "
                                                    "only (/inpaint refuses it).")


class ModelList(BaseModel):
    models: list[ModelInfo]
    default_fill: str
    default_face: str | None
    default_unmask: str | None = Field(None, description="The face model /unmask uses when none is named.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    running: int
    queued: int
    capacity: int
    loaded_models: list[str]


class FaceInfo(BaseModel):
    box: tuple[int, int, int, int] = Field(..., description="x, y, w, h in pixels")
    detector: str = Field(..., description="blazeface, blazeface-tile (found in a tile of a large photo), dlib's hog, hog+1, cnn, ... or box (given by the caller)")
    hole_ratio: float | None = Field(None, description="Fraction of the aligned face crop that was filled")
    mask_found: bool | None = Field(None, description="Whether a worn mask was found on this face")
    mask_area: float | None = Field(None, description="Fraction of the aligned face crop the worn mask covers")
    mean_face: bool | None = Field(None, description="Whether the restored face's structure came from the mean face")


class FilledImage(BaseModel):
    image: str = Field(..., description="Result as base64 PNG (same size and mode as the input).")
    width: int
    height: int
    model: str
    note: str | None = None
    elapsed_ms: float


class InpaintResponse(FilledImage):
    sketch_pixels: int | None = Field(
        None, description="Sketch line pixels inside the hole that guided the fill (header X-Unmasked-Sketch-Pixels); "
                          "null when no sketch was sent.")


class UnmaskResponse(FilledImage):
    mask: str = Field(..., description="Filled region as base64 PNG (white = pixels that changed).")
    detected: str = Field(..., description="Worn masks found on the faces, base64 PNG (white = mask).")
    faces: list[FaceInfo]


class FaceMaskResponse(BaseModel):
    image: str = Field(..., description="Photo with synthetic masks, base64 PNG.")
    mask: str = Field(..., description="The drawn masks as base64 PNG (white = mask).")
    width: int
    height: int
    faces: list[FaceInfo]
    elapsed_ms: float

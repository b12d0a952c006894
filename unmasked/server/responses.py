"""What the REST routes share: image responses (PNG with headers, or JSON) and their OpenAPI documentation."""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response

from unmasked.server.payloads import b64, header_safe
from unmasked.server.schemas import ErrorBody

API = "/api/v1"


def image_response(fmt: str, png: bytes, body: dict, response_model) -> Response:
    if fmt == "json":
        return JSONResponse(response_model(image=b64(png), **body).model_dump())
    headers = {"X-Unmasked-Elapsed-Ms": f"{body['elapsed_ms']:.1f}"}
    if body.get("model"):
        headers["X-Unmasked-Model"] = body["model"]
    if body.get("note"):
        headers["X-Unmasked-Note"] = header_safe(body["note"])
    if body.get("faces") is not None:
        headers["X-Unmasked-Faces"] = str(len(body["faces"]))
    if body.get("sketch_pixels") is not None:
        headers["X-Unmasked-Sketch-Pixels"] = str(body["sketch_pixels"])
    return Response(png, media_type="image/png", headers=headers)


def openapi_body(json_model, files: dict[str, bool]) -> dict:
    """requestBody documentation for an endpoint taking multipart or JSON."""
    schema = json_model.model_json_schema()
    form = {"type": "object", "properties": {}, "required": [k for k, req in files.items() if req]}
    for name, prop in schema["properties"].items():
        form["properties"][name] = {"type": "string", "format": "binary"} if name in files else prop
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form}, "application/json": {"schema": schema}}}}


ERRORS = {code: {"model": ErrorBody} for code in (404, 413, 415, 422, 503)}


def image_responses(model) -> dict:
    return {200: {"model": model, "content": {"image/png": {}}, "description": "PNG (default) or JSON"}, **ERRORS}

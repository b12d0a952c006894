"""Fill every image of a folder with the mask of the same name from another folder.

A mask for ``photos/a/b.jpg`` is ``masks/a/b.<any image suffix>`` or
``masks/a/b_mask.<suffix>``. Outputs mirror the input tree under the output folder, with
the input's file name. One bad file is reported and skipped; it never stops the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from unmasked.conventions import DEFAULT_MAX_PIXELS, ImageReadError, load_image, load_mask, save_image
from unmasked.data.datasets import IMAGE_EXTENSIONS, list_images
from unmasked.models.base import InpaintModel
from unmasked.pipelines.fill import InputError
from unmasked.pipelines.inpaint import inpaint


@dataclass
class BatchItem:
    """Outcome for one input: ``status`` is "filled", "copied" (empty mask) or "error"."""

    source: Path
    output: Path | None
    status: str
    message: str = ""


def find_mask(image: Path, input_dir: Path, mask_dir: Path) -> Path | None:
    """The mask file paired with ``image`` (see module docstring), or None."""
    rel = image.relative_to(input_dir).with_suffix("")
    for stem in (rel.name, rel.name + "_mask"):
        for suffix in IMAGE_EXTENSIONS:
            for candidate in (mask_dir / rel.parent / (stem + suffix), mask_dir / rel.parent / (stem + suffix.upper())):
                if candidate.is_file():
                    return candidate
    return None


def plan_folder(input_dir: str | Path, mask_dir: str | Path) -> list[Path]:
    """The images a folder run will visit (raises FileNotFoundError for a missing folder)."""
    input_dir, mask_dir = Path(input_dir), Path(mask_dir)
    if not mask_dir.is_dir():
        raise FileNotFoundError(f"mask folder not found: {mask_dir}")
    return list_images(input_dir)


def fill_folder(
    model: InpaintModel, input_dir: str | Path, mask_dir: str | Path, output_dir: str | Path, overwrite: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[BatchItem]:
    """Fill each image in ``input_dir`` with ``model`` (:func:`~unmasked.pipelines.inpaint.inpaint`);
    yields one :class:`BatchItem` per image, in order. Images and masks over ``max_pixels`` are refused."""
    input_dir, mask_dir, output_dir = Path(input_dir), Path(mask_dir), Path(output_dir)
    for image in plan_folder(input_dir, mask_dir):
        out = output_dir / image.relative_to(input_dir)
        mask = find_mask(image, input_dir, mask_dir)
        if mask is None:
            yield BatchItem(image, None, "error", f"no mask named {image.stem}.* or {image.stem}_mask.* in {mask_dir}")
            continue
        if out.exists() and not overwrite:
            yield BatchItem(image, out, "error", f"output exists: {out}")
            continue
        try:
            loaded = load_image(image, max_pixels)
            result = inpaint(loaded.rgb, load_mask(mask, max_pixels), model)
            save_image(out, loaded.to_pil(result.image))
        except (FileExistsError, NotADirectoryError) as e:  # the output's folder is a file
            yield BatchItem(image, None, "error", f"cannot write to {e.filename or out}: a file is in the way "
                                                  "where a folder is needed")
            continue
        except (ImageReadError, InputError, ValueError, OSError) as e:
            yield BatchItem(image, None, "error", str(e))
            continue
        yield BatchItem(image, out, "filled" if result.regions else "copied", result.note or "")

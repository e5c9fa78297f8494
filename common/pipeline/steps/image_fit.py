"""image.fit@v1: orient, convert to RGB and shrink an image to fit a box, as JPEG."""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any, cast

from PIL import ExifTags, Image, ImageOps
from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import Step, StepContext, StepError, StepManifest, StepParams

# Orientations that swap width and height once applied.
_TRANSPOSED = {5, 6, 7, 8}


class Resample(StrEnum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    LANCZOS = "lanczos"


class FitParams(StepParams):
    max_width: int = Field(640, ge=16, le=8192, description="Largest width of the result, px.")
    max_height: int = Field(640, ge=16, le=8192, description="Largest height of the result, px.")
    quality: int = Field(90, ge=1, le=95, description="JPEG quality of the result.")
    resample: Resample = Field(Resample.LANCZOS, description="Resampling filter.")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Wide grey: scale the real range to 8 bits instead of clipping everything to white.
        # As 32-bit floats first: getextrema() refuses some 16-bit layouts (e.g. I;16B).
        wide = img.convert("F")
        low, high = cast(tuple[float, float], wide.getextrema())
        scale = 255.0 / (high - low) if high > low else 0.0
        img = wide.point(lambda v: (v - low) * scale).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def fitted_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down (never up) to fit within `box`, keeping its aspect ratio."""
    width, height = size
    scale = min(box[0] / width, box[1] / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_image(
    data: bytes,
    max_width: int = 640,
    max_height: int = 640,
    quality: int = 90,
    resample: Resample = Resample.LANCZOS,
) -> bytes:
    """Return a JPEG of `data` turned upright and fitted within max_width x max_height."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            orientation = opened.getexif().get(ExifTags.Base.Orientation, 1)
            box = (max_height, max_width) if orientation in _TRANSPOSED else (max_width, max_height)
            target = fitted_size(opened.size, box)
            # A JPEG decodes at the smallest scale (1/2, 1/4, 1/8) that still covers the
            # target: pixels that would be thrown away are never decoded. Others ignore this.
            opened.draft(None, target)
            img: Image.Image = opened
            if img.mode in ("1", "P"):
                # Resizing a palette image would fall back to nearest-neighbour.
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            if img.size != target:
                filter_ = getattr(Image.Resampling, resample.name)
                img = img.resize(target, filter_, reducing_gap=3.0)
            upright = ImageOps.exif_transpose(img)
            rgb = _to_rgb(upright)
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=quality, optimize=False)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise StepError(f"cannot decode the image: {exc}") from exc
    return out.getvalue()


class FitImage(Step[ImageData, FitParams]):
    manifest = StepManifest(
        type_id="image.fit@v1",
        description="Apply EXIF orientation, convert to RGB and fit within a box, as JPEG.",
        accepts=ImageData,
        params=FitParams,
        aliases=("ImageHandler",),
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        p = self.params
        image = fit_image(data.image, p.max_width, p.max_height, p.quality, p.resample)
        return data.model_copy(update={"image": image, "content_type": "image/jpeg"})

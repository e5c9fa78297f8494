"""image.fit@v1: orient, convert to RGB and shrink an image to fit a box, as JPEG."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from PIL import Image
from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import NoOutput, Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import (
    TRANSPOSED,
    decode,
    orientation_of,
    to_jpeg,
    to_rgb,
    turned,
)


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
    """Return a JPEG of `data` turned upright and fitted within max_width x max_height.

    Raises StepError if the pixels cannot be decoded (metadata alone never fails it).
    """
    box = (max_width, max_height)

    def fit(opened: Image.Image) -> bytes:
        if opened.format == "JPEG":
            # A JPEG decodes at the smallest scale (1/2, 1/4, 1/8) that still covers the
            # target: pixels that would be thrown away are never decoded.
            turn = orientation_of(opened) in TRANSPOSED
            opened.draft(None, fitted_size(opened.size, box[::-1] if turn else box))
        opened.load()  # before the orientation is read: see _imaging
        orientation = orientation_of(opened)
        img: Image.Image = opened
        if img.mode in ("1", "P"):
            # Resizing a palette image would fall back to nearest-neighbour.
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        # The box is as the image is shown; it is resized as stored, then turned.
        stored_box = box[::-1] if orientation in TRANSPOSED else box
        target = fitted_size(img.size, stored_box)
        if img.size != target:
            filter_ = getattr(Image.Resampling, resample.name)
            img = img.resize(target, filter_, reducing_gap=3.0)
        return to_jpeg(to_rgb(turned(img, orientation)), quality)

    return decode(data, fit)


class FitImage(Step[ImageData, FitParams]):
    manifest = StepManifest(
        type_id="image.fit@v1",
        description="Apply EXIF orientation, convert to RGB and fit within a box, as JPEG.",
        accepts=ImageData,
        output=NoOutput,
        params=FitParams,
        aliases=("ImageHandler",),
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        p = self.params
        image = fit_image(data.image, p.max_width, p.max_height, p.quality, p.resample)
        return data.model_copy(update={"image": image, "content_type": "image/jpeg"})

"""image.resize@v1: the image at exactly the given size (stretched if need be), as JPEG.

image.fit@v1 keeps the aspect ratio and never enlarges; this is for inputs of a fixed shape.
"""

from __future__ import annotations

from typing import Any

from PIL import Image
from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import NoOutput, Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import DEFAULT_QUALITY, JPEG, load_upright_rgb, to_jpeg
from common.pipeline.steps.image_fit import Resample


class ResizeParams(StepParams):
    width: int = Field(640, ge=1, le=8192, description="Width of the result, px.")
    height: int = Field(640, ge=1, le=8192, description="Height of the result, px.")
    filter: Resample = Field(Resample.LANCZOS, description="Resampling filter.")
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=95, description="JPEG quality of the result.")


def resize_image(
    data: bytes,
    width: int = 640,
    height: int = 640,
    filter_: Resample = Resample.LANCZOS,
    quality: int = DEFAULT_QUALITY,
) -> bytes:
    """Return a JPEG of `data`, turned upright, at exactly width x height."""
    img = load_upright_rgb(data)
    if img.size != (width, height):
        img = img.resize((width, height), getattr(Image.Resampling, filter_.name))
    return to_jpeg(img, quality)


class ResizeImage(Step[ImageData, ResizeParams]):
    manifest = StepManifest(
        type_id="image.resize@v1",
        description="Resize the upright image to exactly width x height (no aspect kept), JPEG.",
        accepts=ImageData,
        output=NoOutput,
        params=ResizeParams,
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        p = self.params
        image = resize_image(data.image, p.width, p.height, p.filter, p.quality)
        return data.model_copy(update={"image": image, "content_type": JPEG})

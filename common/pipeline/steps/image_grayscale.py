"""image.grayscale@v1: the image in shades of grey, as a one-channel JPEG."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import NoOutput, Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import DEFAULT_QUALITY, JPEG, load_upright_rgb, to_jpeg


class GrayscaleParams(StepParams):
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=95, description="JPEG quality of the result.")


def grayscale_image(data: bytes, quality: int = DEFAULT_QUALITY) -> bytes:
    """Return a greyscale (mode L) JPEG of `data`, turned upright; luma per ITU-R 601-2."""
    return to_jpeg(load_upright_rgb(data).convert("L"), quality)


class GrayscaleImage(Step[ImageData, GrayscaleParams]):
    manifest = StepManifest(
        type_id="image.grayscale@v1",
        description="Convert the image to shades of grey (a one-channel JPEG).",
        accepts=ImageData,
        output=NoOutput,
        params=GrayscaleParams,
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        image = grayscale_image(data.image, self.params.quality)
        return data.model_copy(update={"image": image, "content_type": JPEG})

"""image.blur@v1: a Gaussian blur, as JPEG."""

from __future__ import annotations

from typing import Any

from PIL import ImageFilter
from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import NoOutput, Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import DEFAULT_QUALITY, JPEG, load_upright_rgb, to_jpeg


class BlurParams(StepParams):
    radius: float = Field(
        2.0, gt=0, le=100, description="Standard deviation of the Gaussian kernel, px."
    )
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=95, description="JPEG quality of the result.")


def blur_image(data: bytes, radius: float = 2.0, quality: int = DEFAULT_QUALITY) -> bytes:
    """Return a JPEG of `data`, turned upright and blurred with a Gaussian of `radius` px."""
    img = load_upright_rgb(data).filter(ImageFilter.GaussianBlur(radius))
    return to_jpeg(img, quality)


class BlurImage(Step[ImageData, BlurParams]):
    manifest = StepManifest(
        type_id="image.blur@v1",
        description="Blur the image with a Gaussian of the given radius, as JPEG.",
        accepts=ImageData,
        output=NoOutput,
        params=BlurParams,
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        image = blur_image(data.image, self.params.radius, self.params.quality)
        return data.model_copy(update={"image": image, "content_type": JPEG})

"""image.crop@v1: keep one box of the image, as JPEG."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.pipeline.datatypes import ImageData
from common.pipeline.step import NoOutput, Step, StepContext, StepError, StepManifest, StepParams
from common.pipeline.steps._imaging import DEFAULT_QUALITY, JPEG, load_upright_rgb, to_jpeg


class CropParams(StepParams):
    left: int = Field(0, ge=0, le=65535, description="Left edge of the box, px from the left.")
    top: int = Field(0, ge=0, le=65535, description="Top edge of the box, px from the top.")
    width: int = Field(ge=1, le=65535, description="Width of the box, px.")
    height: int = Field(ge=1, le=65535, description="Height of the box, px.")
    clamp: bool = Field(
        False,
        description="Cut a box that reaches past the image's edges down to the image, instead "
        "of failing the step. A box wholly outside the image always fails.",
    )
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=95, description="JPEG quality of the result.")


def crop_box(
    size: tuple[int, int], left: int, top: int, width: int, height: int, clamp: bool = False
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) to cut from an image of `size`; StepError if outside."""
    image_w, image_h = size
    right, bottom = left + width, top + height
    named = f"crop box left={left} top={top} width={width} height={height}"
    if left >= image_w or top >= image_h:
        raise StepError(f"{named} lies wholly outside the {image_w}x{image_h} image")
    if right > image_w or bottom > image_h:
        if not clamp:
            raise StepError(
                f"{named} reaches past the {image_w}x{image_h} image "
                "(set clamp to cut it down to the image)"
            )
        right, bottom = min(right, image_w), min(bottom, image_h)
    return left, top, right, bottom


def crop_image(
    data: bytes,
    left: int,
    top: int,
    width: int,
    height: int,
    clamp: bool = False,
    quality: int = DEFAULT_QUALITY,
) -> bytes:
    """Return a JPEG of the box of `data` (turned upright first: the box is as the image shows)."""
    img = load_upright_rgb(data)
    return to_jpeg(img.crop(crop_box(img.size, left, top, width, height, clamp)), quality)


class CropImage(Step[ImageData, CropParams]):
    manifest = StepManifest(
        type_id="image.crop@v1",
        description="Keep the box left/top/width/height of the upright image, as JPEG.",
        accepts=ImageData,
        output=NoOutput,
        params=CropParams,
    )

    def run(self, data: ImageData, ctx: StepContext) -> Any:
        p = self.params
        image = crop_image(data.image, p.left, p.top, p.width, p.height, p.clamp, p.quality)
        return data.model_copy(update={"image": image, "content_type": JPEG})

"""image.annotate@v1: draw the detected box on a copy of the image, kept as 'annotated'.

The image the next steps work on (the job's 'processed' image) does not change.
"""

from __future__ import annotations

from PIL import ImageDraw
from pydantic import Field

from common.pipeline.datatypes import CarDetection, Detection
from common.pipeline.step import NoOutput, Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import DEFAULT_QUALITY, JPEG, load_upright_rgb, to_jpeg
from common.repositories import ImageRepository

ANNOTATED = "annotated"


class AnnotateParams(StepParams):
    color: str = Field(
        "#ff0000", pattern=r"^#[0-9a-fA-F]{6}$", description="Colour of the box, as #rrggbb."
    )
    width: int = Field(3, ge=1, le=50, description="Line width of the box, px (drawn inward).")
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=95, description="JPEG quality of the result.")


def annotate_image(
    data: bytes,
    detection: Detection | None,
    color: str = "#ff0000",
    width: int = 3,
    quality: int = DEFAULT_QUALITY,
) -> bytes:
    """A JPEG of `data` with the detection's box outlined; without a detection, no box.

    The box covers pixels x in [left, left + width) and y in [top, top + height), as the model
    gave it on this image; the outline lies inside it, and what falls off the image is cut.
    """
    img = load_upright_rgb(data)
    if detection is not None and detection.width > 0 and detection.height > 0:
        x0, y0 = detection.top_left_x, detection.top_left_y
        x1, y1 = x0 + detection.width - 1, y0 + detection.height - 1
        ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), outline=color, width=width)
    return to_jpeg(img, quality)


class AnnotateImage(Step[CarDetection, AnnotateParams]):
    manifest = StepManifest(
        type_id="image.annotate@v1",
        description="Store a copy of the image with the detected box drawn on it as the job's "
        "'annotated' image (without a box when there is no car); the data is left unchanged.",
        accepts=CarDetection,
        output=NoOutput,
        params=AnnotateParams,
    )

    def run(self, data: CarDetection, ctx: StepContext) -> CarDetection:
        p = self.params
        annotated = annotate_image(data.image, data.detection, p.color, p.width, p.quality)
        ImageRepository(ctx.session).put(ctx.job_id, ANNOTATED, JPEG, annotated)
        return data

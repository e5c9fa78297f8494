"""image.stats@v1: measure the image's size and brightness."""

from __future__ import annotations

from PIL import ImageStat
from pydantic import Field

from common.pipeline.datatypes import ImageStats
from common.pipeline.step import Step, StepContext, StepManifest, StepOutput, StepParams
from common.pipeline.steps._imaging import load_upright_rgb


class Measured(StepOutput):
    """The figures image.stats@v1 measured: its output."""

    width: int = Field(ge=0, description="Width of the upright image, px.")
    height: int = Field(ge=0, description="Height of the upright image, px.")
    mean_brightness: float = Field(
        ge=0, le=255, description="Mean luma (ITU-R 601-2), 0 (black) to 255 (white)."
    )
    brightness_stddev: float = Field(ge=0, description="Standard deviation of the luma.")


def measure(data: bytes) -> Measured:
    """Size of the upright image, and the mean and spread of its luma."""
    grey = load_upright_rgb(data).convert("L")
    stat = ImageStat.Stat(grey)
    return Measured(
        width=grey.width,
        height=grey.height,
        mean_brightness=round(stat.mean[0], 3),
        brightness_stddev=round(stat.stddev[0], 3),
    )


class MeasureImage(Step[ImageStats, StepParams]):
    manifest = StepManifest(
        type_id="image.stats@v1",
        description="Measure the upright image's width, height, mean brightness (0-255) and "
        "its standard deviation; the image is left unchanged.",
        accepts=ImageStats,
        output=Measured,
    )

    def run(self, data: ImageStats, ctx: StepContext) -> ImageStats:
        m = measure(data.image)
        return data.model_copy(
            update={
                "width": m.width,
                "height": m.height,
                "mean_brightness": m.mean_brightness,
                "brightness_stddev": m.brightness_stddev,
            }
        )

    def output(self, before: ImageStats, after: ImageStats) -> Measured:
        return Measured.model_validate(after.model_dump(include=set(Measured.model_fields)))

"""image.stats@v1: measure the image's size and brightness."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import ImageStat

from common.pipeline.datatypes import ImageStats
from common.pipeline.step import Step, StepContext, StepManifest, StepParams
from common.pipeline.steps._imaging import load_upright_rgb


@dataclass(frozen=True)
class Measured:
    width: int
    height: int
    mean_brightness: float  # 0 (black) .. 255 (white), luma per ITU-R 601-2
    brightness_stddev: float


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

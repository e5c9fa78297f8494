"""detections.min_confidence@v1: drop a detection the model was not sure enough of."""

from __future__ import annotations

from pydantic import Field

from common.pipeline.datatypes import CarDetection, Detection
from common.pipeline.step import Step, StepContext, StepManifest, StepParams


class MinConfidenceParams(StepParams):
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Lowest confidence kept; a detection below it becomes 'no car'.",
    )


def keep_confident(detection: Detection | None, threshold: float) -> Detection | None:
    """The detection if its confidence reaches `threshold`, else None."""
    if detection is None or detection.conf < threshold:
        return None
    return detection


class MinConfidence(Step[CarDetection, MinConfidenceParams]):
    manifest = StepManifest(
        type_id="detections.min_confidence@v1",
        description="Treat a detection whose confidence is below the threshold as no car.",
        accepts=CarDetection,
        params=MinConfidenceParams,
        reads_image=False,
    )

    def run(self, data: CarDetection, ctx: StepContext) -> CarDetection:
        kept = keep_confident(data.detection, self.params.threshold)
        return data if kept is data.detection else data.model_copy(update={"detection": kept})

"""detections.min_confidence@v1: drop a detection the model was not sure enough of."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.pipeline.datatypes import CarDetection, Detection
from common.pipeline.step import Step, StepContext, StepManifest, StepOutput, StepParams


class MinConfidenceParams(StepParams):
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Lowest confidence kept; a detection below it becomes 'no car'.",
    )


class Verdict(StepOutput):
    """detections.min_confidence@v1's output: what it did with the detection it was given."""

    verdict: Literal["kept", "dropped", "no_detection"] = Field(
        description="kept: confident enough; dropped: below the threshold, now no car; "
        "no_detection: there was no detection to judge."
    )
    conf: float | None = Field(description="The detection's confidence; null without one.")
    threshold: float = Field(description="The threshold it was held to.")


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
        output=Verdict,
        params=MinConfidenceParams,
        reads_image=False,
    )

    def run(self, data: CarDetection, ctx: StepContext) -> CarDetection:
        kept = keep_confident(data.detection, self.params.threshold)
        return data if kept is data.detection else data.model_copy(update={"detection": kept})

    def output(self, before: CarDetection, after: CarDetection) -> Verdict:
        given = before.detection
        if given is None:
            verdict: Literal["kept", "dropped", "no_detection"] = "no_detection"
        else:
            verdict = "dropped" if after.detection is None else "kept"
        conf = None if given is None else given.conf
        return Verdict(verdict=verdict, conf=conf, threshold=self.params.threshold)

"""detections.min_confidence@v1: a detection below the threshold becomes 'no car'."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.orm import Session

from common.pipeline import (
    CarDetection,
    Detection,
    PipelineConfigError,
    StepContext,
    build_pipeline,
    default_registry,
)
from common.pipeline.steps.min_confidence import (
    MinConfidence,
    MinConfidenceParams,
    keep_confident,
)
from common.settings import get_settings


def box(conf: float) -> Detection:
    return Detection(top_left_x=10, top_left_y=20, width=30, height=40, conf=conf, label=1)


@pytest.mark.parametrize(
    ("conf", "threshold", "kept"),
    [
        (0.49, 0.5, False),
        (0.5, 0.5, True),
        (0.9, 0.5, True),
        (0.0, 0.0, True),
        (0.99, 1.0, False),
        (1.0, 1.0, True),
    ],
)
def test_detection_is_kept_only_from_the_threshold_up(
    conf: float, threshold: float, kept: bool
) -> None:
    detection = box(conf)

    assert keep_confident(detection, threshold) == (detection if kept else None)


def test_no_detection_stays_none() -> None:
    assert keep_confident(None, 0.0) is None


def test_step_flips_a_weak_detection_to_no_car_and_keeps_the_rest() -> None:
    weak = CarDetection(
        image=b"", content_type="image/jpeg", detection=box(0.3), model_answered=True
    )
    strong = weak.model_copy(update={"detection": box(0.8)})
    step = MinConfidence(MinConfidenceParams())
    with httpx.Client() as http, Session() as session:
        ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=get_settings())

        flipped, kept = step.run(weak, ctx), step.run(strong, ctx)

    assert flipped.detection is None
    assert flipped.model_answered is True
    assert flipped.content_type == "image/jpeg"
    assert kept.detection == box(0.8)


def test_step_needs_no_pixels_and_takes_only_car_detections() -> None:
    assert MinConfidence.manifest.reads_image is False
    raw = {"datatype": "ImageStats", "steps": [{"type": "detections.min_confidence@v1"}]}

    with pytest.raises(PipelineConfigError, match="accepts CarDetection"):
        build_pipeline(raw, default_registry())


@pytest.mark.parametrize("threshold", [-0.1, 1.01, "high"])
def test_threshold_outside_0_to_1_is_refused_by_the_config(threshold: object) -> None:
    raw = {
        "datatype": "CarDetection",
        "steps": [{"type": "detections.min_confidence@v1", "params": {"threshold": threshold}}],
    }

    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, default_registry())

    assert [(i.position, i.step_type) for i in caught.value.issues] == [
        (1, "detections.min_confidence@v1")
    ]
    assert "parameter threshold" in str(caught.value)


def test_default_threshold_is_filled_into_the_canonical_config() -> None:
    raw = {"datatype": "CarDetection", "steps": [{"type": "detections.min_confidence@v1"}]}

    config = build_pipeline(raw, default_registry()).canonical_config()

    assert config["steps"] == [
        {"type": "detections.min_confidence@v1", "params": {"threshold": 0.5}}
    ]

"""image.stats@v1 and its data type ImageStats: measured on pixels, and the type constraints
hold both ways (what an ImageStats pipeline takes and refuses, and what others refuse)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from common.pipeline import (
    ImageStats,
    PipelineConfigError,
    StepContext,
    StepError,
    build_pipeline,
    default_registry,
)
from common.pipeline.steps.image_fit import FitImage
from common.pipeline.steps.image_stats import MeasureImage, measure
from common.settings import get_settings
from tests import images


def run_pipeline(raw: dict[str, object], data: ImageStats) -> ImageStats:
    """Run a built pipeline in process, the way the worker hands data from step to step."""
    pipeline = build_pipeline(raw, default_registry())
    with httpx.Client() as http, Session() as session:
        ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=get_settings())
        for step in pipeline.steps:
            out = step.run(data, ctx)
            data = pipeline.datatype.model_validate(
                {**out.fields_without_image(), "image": out.image}
            )
    assert isinstance(data, ImageStats)
    return data


# --- measuring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "brightness"),
    [((0, 0, 0), 0), ((255, 255, 255), 255), ((128, 128, 128), 128), ((255, 0, 0), 76)],
)
def test_mean_brightness_of_a_solid_image_is_its_luma(
    colour: tuple[int, int, int], brightness: int
) -> None:
    m = measure(images.solid(40, 30, colour))

    assert (m.width, m.height) == (40, 30)
    assert abs(m.mean_brightness - brightness) <= 1
    assert m.brightness_stddev < 1


def test_half_black_half_white_has_mean_127_5_and_spread_127_5() -> None:
    img = Image.new("L", (100, 50), 0)
    img.paste(255, (50, 0, 100, 50))

    m = measure(images.encode(img, "PNG"))

    assert m.mean_brightness == pytest.approx(127.5)
    assert m.brightness_stddev == pytest.approx(127.5)


def test_size_is_measured_upright() -> None:
    m = measure(images.jpeg(300, 200, orientation=8))

    assert (m.width, m.height) == (200, 300)


def test_undecodable_image_fails_the_step() -> None:
    with pytest.raises(StepError, match="cannot decode the image"):
        measure(b"GIF89a and then nothing")


# --- the data type, both ways -----------------------------------------------------------------


def test_imagestats_pipeline_takes_an_imagedata_step_and_its_own_step() -> None:
    raw = {
        "datatype": "ImageStats",
        "steps": [{"type": "image.fit@v1"}, {"type": "image.stats@v1"}],
    }

    pipeline = build_pipeline(raw, default_registry())

    assert pipeline.datatype is ImageStats
    assert pipeline.step_types == ["image.fit@v1", "image.stats@v1"]
    assert isinstance(pipeline.steps[0], FitImage)
    assert isinstance(pipeline.steps[1], MeasureImage)


def test_imagestats_pipeline_refuses_a_car_detection_step() -> None:
    raw = {
        "datatype": "ImageStats",
        "steps": [{"type": "image.stats@v1"}, {"type": "model.detect_car@v1"}],
    }

    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, default_registry())

    assert [(i.position, i.step_type, i.reason) for i in caught.value.issues] == [
        (
            2,
            "model.detect_car@v1",
            "accepts CarDetection, but the pipeline's data type is ImageStats",
        )
    ]


@pytest.mark.parametrize("datatype", ["CarDetection", "ImageData", "Notifiable"])
def test_other_pipelines_refuse_the_stats_step(datatype: str) -> None:
    raw = {"datatype": datatype, "steps": [{"type": "image.fit@v1"}, {"type": "image.stats@v1"}]}

    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, default_registry())

    assert [(i.position, i.reason) for i in caught.value.issues] == [
        (2, f"accepts ImageStats, but the pipeline's data type is {datatype}")
    ]


def test_imagestats_pipeline_can_also_notify_a_webhook() -> None:
    raw = {
        "datatype": "ImageStats",
        "steps": [
            {"type": "image.stats@v1"},
            {"type": "notify.webhook@v1", "params": {"url": "https://example.test/hook"}},
        ],
    }

    assert build_pipeline(raw, default_registry()).step_types[1] == "notify.webhook@v1"


def test_fit_then_stats_measures_the_fitted_image() -> None:
    raw = {
        "datatype": "ImageStats",
        "steps": [
            {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 320}},
            {"type": "image.stats@v1"},
        ],
    }
    data = ImageStats(image=images.solid(1280, 640, (255, 255, 255)), content_type="image/png")

    result = run_pipeline(raw, data)

    assert (result.width, result.height) == (320, 160)
    assert result.mean_brightness is not None
    assert result.mean_brightness > 250
    assert result.fields_without_image() == {
        "content_type": "image/jpeg",
        "webhook_error": None,
        "width": 320,
        "height": 160,
        "mean_brightness": result.mean_brightness,
        "brightness_stddev": result.brightness_stddev,
    }

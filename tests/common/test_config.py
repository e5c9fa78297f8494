"""Stored pipeline configs: both formats parse; every problem is reported before anything runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.pipeline import (
    CarDetection,
    PipelineConfigError,
    Registry,
    build_pipeline,
    default_registry,
    parse_config,
)

CAR_STEP_TYPES = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
LEGACY_STEPS = {"1": "ImageHandler", "2": "MachineLearningModelRequest", "3": "SaveCarDetection"}


@pytest.fixture
def registry() -> Registry:
    return default_registry()


def config_error(raw: Any, registry: Registry) -> PipelineConfigError:
    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, registry)
    return caught.value


def car_config(*steps: dict[str, Any], datatype: str = "CarDetection") -> dict[str, Any]:
    return {"datatype": datatype, "steps": list(steps)}


# --- what loads -------------------------------------------------------------------------------


def test_canonical_config_builds_its_steps_in_order(registry: Registry) -> None:
    raw = car_config(
        {"type": "image.fit@v1", "params": {"max_width": 320}},
        {"type": "model.detect_car@v1"},
        {"type": "storage.save_car_detection@v1"},
    )

    pipeline = build_pipeline(raw, registry)

    assert pipeline.datatype is CarDetection
    assert pipeline.step_types == CAR_STEP_TYPES
    assert pipeline.steps[0].params.model_dump()["max_width"] == 320


def test_canonical_config_given_as_json_text_builds(registry: Registry) -> None:
    raw = json.dumps(car_config({"type": "image.fit@v1"}))

    pipeline = build_pipeline(raw, registry)

    assert pipeline.step_types == ["image.fit@v1"]


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(LEGACY_STEPS, id="object"),
        pytest.param(json.dumps(LEGACY_STEPS), id="json-string"),
        pytest.param(
            {"3": "SaveCarDetection", "1": "ImageHandler", "2": "MachineLearningModelRequest"},
            id="keys-out-of-order",
        ),
    ],
)
def test_earlier_format_resolves_to_current_type_ids(
    steps: dict[str, str] | str, registry: Registry
) -> None:
    raw = {"steps": steps, "datatype": "CarDetection"}

    pipeline = build_pipeline(raw, registry)

    assert pipeline.datatype is CarDetection
    assert pipeline.step_types == CAR_STEP_TYPES


def test_earlier_format_orders_keys_as_numbers_not_text() -> None:
    steps = {str(n): f"step.n{n}@v1" for n in (10, 2, 1)}

    config = parse_config({"datatype": "CarDetection", "steps": steps})

    assert [step.type for step in config.steps] == ["step.n1@v1", "step.n2@v1", "step.n10@v1"]


def test_earlier_format_may_give_a_step_with_its_parameters(registry: Registry) -> None:
    steps = {"1": {"type": "ImageHandler", "params": {"max_width": 320}}, "2": "SaveCarDetection"}

    pipeline = build_pipeline({"datatype": "CarDetection", "steps": steps}, registry)

    assert pipeline.step_types == ["image.fit@v1", "storage.save_car_detection@v1"]
    assert pipeline.canonical_config()["steps"][0]["params"]["max_width"] == 320


def test_earlier_format_with_non_numeric_keys_is_refused() -> None:
    with pytest.raises(PipelineConfigError, match="step keys must be numbers"):
        parse_config({"datatype": "CarDetection", "steps": {"first": "ImageHandler"}})


def test_canonical_config_fills_every_default_parameter(registry: Registry) -> None:
    raw = {"steps": LEGACY_STEPS, "datatype": "CarDetection"}

    canonical = build_pipeline(raw, registry).canonical_config()

    assert canonical == {
        "datatype": "CarDetection",
        "steps": [
            {
                "type": "image.fit@v1",
                "params": {
                    "max_width": 640,
                    "max_height": 640,
                    "quality": 90,
                    "resample": "lanczos",
                },
            },
            {"type": "model.detect_car@v1", "params": {"path": "/process_image/"}},
            {"type": "storage.save_car_detection@v1", "params": {}},
        ],
    }


def test_canonical_config_builds_the_same_pipeline_again(registry: Registry) -> None:
    canonical = build_pipeline({"steps": LEGACY_STEPS, "datatype": "CarDetection"}, registry)

    again = build_pipeline(canonical.canonical_config(), registry)

    assert again.canonical_config() == canonical.canonical_config()


# --- what is refused --------------------------------------------------------------------------


def test_unknown_step_is_reported_with_its_position_and_type(registry: Registry) -> None:
    raw = car_config({"type": "image.fit@v1"}, {"type": "image.sharpen@v1"})

    error = config_error(raw, registry)

    assert [(i.position, i.step_type) for i in error.issues] == [(2, "image.sharpen@v1")]
    assert "unknown step type" in error.issues[0].reason
    assert "step 2 (image.sharpen@v1)" in str(error)


def test_unknown_data_type_is_reported_with_the_known_ones(registry: Registry) -> None:
    error = config_error(car_config({"type": "image.fit@v1"}, datatype="Spaceship"), registry)

    assert len(error.issues) == 1
    assert error.issues[0].position is None
    assert "'Spaceship'" in error.issues[0].reason
    assert "CarDetection" in error.issues[0].reason
    assert "ImageData" in error.issues[0].reason


@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"max_width": -5}, "max_width", id="out-of-range"),
        pytest.param({"quality": "best"}, "quality", id="wrong-type"),
        pytest.param({"resample": "magic"}, "resample", id="not-a-choice"),
        pytest.param({"colour": "red"}, "colour", id="unknown-name"),
    ],
)
def test_bad_parameter_is_reported_by_name(
    params: dict[str, Any], name: str, registry: Registry
) -> None:
    raw = car_config({"type": "model.detect_car@v1"}, {"type": "image.fit@v1", "params": params})

    error = config_error(raw, registry)

    assert [(i.position, i.step_type) for i in error.issues] == [(2, "image.fit@v1")]
    assert f"parameter {name}" in error.issues[0].reason


def test_step_refuses_a_data_type_it_does_not_accept(registry: Registry) -> None:
    raw = car_config(
        {"type": "image.fit@v1"}, {"type": "model.detect_car@v1"}, datatype="ImageData"
    )

    error = config_error(raw, registry)

    assert [(i.position, i.step_type) for i in error.issues] == [(2, "model.detect_car@v1")]
    assert "accepts CarDetection" in error.issues[0].reason
    assert "ImageData" in error.issues[0].reason


def test_empty_step_list_is_refused(registry: Registry) -> None:
    error = config_error(car_config(), registry)

    assert len(error.issues) == 1
    assert "steps" in error.issues[0].reason
    assert "at least 1" in error.issues[0].reason


def test_more_than_fifty_steps_are_refused(registry: Registry) -> None:
    fifty = car_config(*[{"type": "image.fit@v1"}] * 50)
    assert len(build_pipeline(fifty, registry).steps) == 50

    error = config_error(car_config(*[{"type": "image.fit@v1"}] * 51), registry)

    assert "at most 50" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param([{"type": "image.fit@v1"}], id="list"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param("[1, 2]", id="json-list"),
    ],
)
def test_config_that_is_not_an_object_is_refused(raw: Any, registry: Registry) -> None:
    error = config_error(raw, registry)

    assert [i.reason for i in error.issues] == ["config must be a JSON object"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"datatype": "CarDetection", "steps": [', id="config"),
        pytest.param({"datatype": "CarDetection", "steps": '{"1": "ImageHandler"'}, id="steps"),
    ],
)
def test_invalid_json_text_is_refused_as_not_json(raw: Any, registry: Registry) -> None:
    error = config_error(raw, registry)

    assert len(error.issues) == 1
    assert "not JSON" in error.issues[0].reason


def test_unknown_top_level_key_is_refused(registry: Registry) -> None:
    raw = {**car_config({"type": "image.fit@v1"}), "name": "cars"}

    error = config_error(raw, registry)

    assert "name" in str(error)


def test_every_step_problem_is_reported_at_once(registry: Registry) -> None:
    raw = car_config(
        {"type": "image.sharpen@v1"},
        {"type": "image.fit@v1", "params": {"max_width": -5}},
        {"type": "model.detect_car@v1"},
        {"type": "image.fit@v1"},
        datatype="ImageData",
    )

    error = config_error(raw, registry)

    assert [(i.position, i.step_type) for i in error.issues] == [
        (1, "image.sharpen@v1"),
        (2, "image.fit@v1"),
        (3, "model.detect_car@v1"),
    ]
    assert "unknown step type" in error.issues[0].reason
    assert "max_width" in error.issues[1].reason
    assert "accepts CarDetection" in error.issues[2].reason


def test_unknown_data_type_is_reported_with_the_step_problems(registry: Registry) -> None:
    raw = car_config(
        {"type": "image.sharpen@v1"},
        {"type": "image.fit@v1", "params": {"max_width": -5}},
        datatype="Spaceship",
    )

    error = config_error(raw, registry)

    assert [(i.position, i.step_type) for i in error.issues] == [
        (None, None),
        (1, "image.sharpen@v1"),
        (2, "image.fit@v1"),
    ]
    assert "Spaceship" in str(error)


def test_step_and_parameter_problems_in_one_step_are_both_reported(registry: Registry) -> None:
    raw = car_config(
        {"type": "model.detect_car@v1", "params": {"path": "no-leading-slash"}},
        datatype="ImageData",
    )

    error = config_error(raw, registry)

    reasons = [i.reason for i in error.issues]
    assert len(reasons) == 2
    assert any("accepts CarDetection" in r for r in reasons)
    assert any("parameter path" in r for r in reasons)

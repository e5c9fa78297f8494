"""The registry: one class per name, aliases of the earlier implementation, new types plug in."""

from __future__ import annotations

import pytest

from common.pipeline import (
    CarDetection,
    ImageData,
    NoOutput,
    PipelineConfigError,
    Step,
    StepContext,
    StepManifest,
    StepParams,
    build_pipeline,
    default_registry,
)
from common.pipeline.registry import Registry, RegistryError
from common.pipeline.steps.detect_car import DetectCar
from common.pipeline.steps.image_fit import FitImage
from common.pipeline.steps.save_detection import SaveCarDetection


class GreyLevel(ImageData):
    """A data type defined outside the built-in ones: an image and its mean grey level."""

    mean: float | None = None


class MeasureGrey(Step[GreyLevel, StepParams]):
    manifest = StepManifest(
        type_id="measure.grey_level@v1",
        description="Measure the mean grey level.",
        accepts=GreyLevel,
        output=NoOutput,
        aliases=("GreyMeter",),
    )

    def run(self, data: GreyLevel, ctx: StepContext) -> GreyLevel:
        return data.model_copy(update={"mean": 0.0})


def step_named(type_id: str, *aliases: str) -> type[Step[ImageData, StepParams]]:
    """A do-nothing step class with the given names."""

    class Named(Step[ImageData, StepParams]):
        manifest = StepManifest(
            type_id=type_id,
            description="test step",
            accepts=ImageData,
            output=NoOutput,
            aliases=aliases,
        )

        def run(self, data: ImageData, ctx: StepContext) -> ImageData:
            return data

    return Named


@pytest.fixture
def registry() -> Registry:
    registry = default_registry()
    registry.add_datatype(GreyLevel)
    registry.add_step(MeasureGrey)
    return registry


# --- lookups ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_id", "alias", "cls"),
    [
        ("image.fit@v1", "ImageHandler", FitImage),
        ("model.detect_car@v1", "MachineLearningModelRequest", DetectCar),
        ("storage.save_car_detection@v1", "SaveCarDetection", SaveCarDetection),
    ],
)
def test_alias_and_type_id_find_the_same_step_class(
    type_id: str, alias: str, cls: type[Step[ImageData, StepParams]]
) -> None:
    registry = default_registry()

    assert registry.step(type_id) is cls
    assert registry.step(alias) is cls


def test_unknown_names_find_nothing() -> None:
    registry = default_registry()

    assert registry.step("image.fit@v2") is None
    assert registry.step("imagehandler") is None
    assert registry.datatype("Spaceship") is None


def test_steps_are_listed_once_each_despite_their_aliases() -> None:
    registry = default_registry()

    assert sorted(cls.manifest.type_id for cls in registry.steps) == [
        "detections.min_confidence@v1",
        "image.annotate@v1",
        "image.blur@v1",
        "image.crop@v1",
        "image.fit@v1",
        "image.grayscale@v1",
        "image.resize@v1",
        "image.stats@v1",
        "model.detect_car@v1",
        "notify.webhook@v1",
        "storage.save_car_detection@v1",
    ]


# --- duplicates are refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_id", "aliases", "taken"),
    [
        pytest.param("image.fit@v1", (), "image.fit@v1", id="same-type-id"),
        pytest.param("image.rotate@v1", ("ImageHandler",), "ImageHandler", id="alias-vs-alias"),
        pytest.param("image.rotate@v1", ("image.fit@v1",), "image.fit@v1", id="alias-vs-type-id"),
    ],
)
def test_step_with_a_taken_name_is_refused(
    type_id: str, aliases: tuple[str, ...], taken: str
) -> None:
    registry = default_registry()

    with pytest.raises(RegistryError, match=f"'{taken}'.*already taken by image.fit@v1"):
        registry.add_step(step_named(type_id, *aliases))


def test_type_id_equal_to_an_earlier_alias_is_refused() -> None:
    registry = Registry()
    registry.add_step(step_named("image.rotate@v1", "image.shrink@v1"))

    with pytest.raises(RegistryError, match=r"image\.shrink@v1"):
        registry.add_step(step_named("image.shrink@v1"))


def test_refused_step_registers_none_of_its_names() -> None:
    registry = default_registry()

    with pytest.raises(RegistryError):
        registry.add_step(step_named("image.rotate@v1", "Resizer", "ImageHandler"))

    assert registry.step("image.rotate@v1") is None
    assert registry.step("Resizer") is None
    assert registry.step("ImageHandler") is FitImage


def test_data_type_registered_twice_is_refused() -> None:
    registry = default_registry()

    with pytest.raises(RegistryError, match="'CarDetection'"):
        registry.add_datatype(CarDetection)


# --- new data types and steps plug in ---------------------------------------------------------


def test_new_data_type_and_step_build_a_pipeline(registry: Registry) -> None:
    raw = {
        "datatype": "GreyLevel",
        "steps": [{"type": "image.fit@v1"}, {"type": "GreyMeter"}],
    }

    pipeline = build_pipeline(raw, registry)

    assert pipeline.datatype is GreyLevel
    assert pipeline.step_types == ["image.fit@v1", "measure.grey_level@v1"]
    assert isinstance(pipeline.steps[1], MeasureGrey)


@pytest.mark.parametrize("datatype", ["ImageData", "CarDetection"])
def test_step_for_a_subclass_is_refused_for_other_data_types(
    datatype: str, registry: Registry
) -> None:
    raw = {"datatype": datatype, "steps": [{"type": "measure.grey_level@v1"}]}

    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, registry)

    assert [(i.position, i.step_type) for i in caught.value.issues] == [
        (1, "measure.grey_level@v1")
    ]
    assert f"accepts GreyLevel, but the pipeline's data type is {datatype}" in str(caught.value)


def test_step_for_the_base_type_is_accepted_for_a_subclass(registry: Registry) -> None:
    pipeline = build_pipeline(
        {"datatype": "GreyLevel", "steps": [{"type": "image.fit@v1"}]}, registry
    )

    assert pipeline.step_types == ["image.fit@v1"]


def test_step_for_a_sibling_type_is_refused(registry: Registry) -> None:
    raw = {"datatype": "GreyLevel", "steps": [{"type": "model.detect_car@v1"}]}

    with pytest.raises(PipelineConfigError, match="accepts CarDetection"):
        build_pipeline(raw, registry)


# --- manifests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_id",
    [
        "fit",
        "image.fit",
        "image.fit@1",
        "image.fit@v",
        "fit@v1",
        "Image.fit@v1",
        "image.Fit@v1",
        "image..fit@v1",
        "image.fit@v1 ",
        "image fit.x@v1",
        "ImageHandler",
        pytest.param("image.fit@v1\n", id="trailing-newline"),
    ],
)
def test_manifest_refuses_a_malformed_type_id(type_id: str) -> None:
    with pytest.raises(ValueError, match=r"group\.name@vN"):
        StepManifest(type_id=type_id, description="bad", accepts=ImageData, output=NoOutput)


@pytest.mark.parametrize("type_id", ["image.fit@v1", "a.b.c@v12", "storage.save_car_2@v3"])
def test_manifest_takes_a_well_formed_type_id(type_id: str) -> None:
    manifest = StepManifest(type_id=type_id, description="good", accepts=ImageData, output=NoOutput)

    assert manifest.type_id == type_id


def test_manifest_refuses_an_output_that_is_not_a_step_output_model() -> None:
    with pytest.raises(ValueError, match="output must be a StepOutput model or NoOutput"):
        StepManifest(
            type_id="a.b@v1",
            description="bad",
            accepts=ImageData,
            output=dict,  # type: ignore[arg-type]
        )

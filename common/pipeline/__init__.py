"""The pipeline core: data types, the step interface, the registry and config validation."""

from common.pipeline.config import (
    BuiltPipeline,
    ConfigIssue,
    PipelineConfigError,
    build_pipeline,
    parse_config,
)
from common.pipeline.datatypes import CarDetection, Detection, ImageData, ImageStats, Notifiable
from common.pipeline.registry import Registry
from common.pipeline.step import (
    NoOutput,
    Step,
    StepContext,
    StepError,
    StepManifest,
    StepOutput,
    StepParams,
    TransientStepError,
)


def default_registry() -> Registry:
    from common.pipeline.steps import BUILTIN_STEPS

    registry = Registry()
    for datatype in (ImageData, Notifiable, CarDetection, ImageStats):
        registry.add_datatype(datatype)
    for step in BUILTIN_STEPS:
        registry.add_step(step)
    return registry


__all__ = [
    "BuiltPipeline",
    "CarDetection",
    "ConfigIssue",
    "Detection",
    "ImageData",
    "ImageStats",
    "NoOutput",
    "Notifiable",
    "PipelineConfigError",
    "Registry",
    "Step",
    "StepContext",
    "StepError",
    "StepManifest",
    "StepOutput",
    "StepParams",
    "TransientStepError",
    "build_pipeline",
    "default_registry",
    "parse_config",
]

"""The pipeline core: data types, the step interface, the registry and config validation."""

import functools

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
    """A new registry of the built-in data types and steps (BUILTIN_STEPS); raises ValueError
    on a duplicate type id. Code that serves requests uses `registry()`, its one instance."""
    from common.pipeline.steps import BUILTIN_STEPS

    registry = Registry()
    for datatype in (ImageData, Notifiable, CarDetection, ImageStats):
        registry.add_datatype(datatype)
    for step in BUILTIN_STEPS:
        registry.add_step(step)
    return registry


@functools.cache
def registry() -> Registry:
    """The process's one registry, shared by the API, the worker and the queue routing: built
    on first use; the steps do not change while a process runs."""
    return default_registry()


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
    "registry",
]

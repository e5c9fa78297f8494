"""Stored pipeline configs: parsing (current and earlier formats) and validation into a pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.pipeline.datatypes import ImageData
from common.pipeline.registry import Registry
from common.pipeline.step import Step

MAX_STEPS = 50


class StepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class PipelineConfig(BaseModel):
    """Canonical form: `{"datatype": "CarDetection", "steps": [{"type": ..., "params": {}}]}`."""

    model_config = ConfigDict(extra="forbid")

    datatype: str = Field(min_length=1, max_length=100)
    steps: list[StepConfig] = Field(min_length=1, max_length=MAX_STEPS)


@dataclass(frozen=True)
class ConfigIssue:
    position: int | None  # 1-based step position; None when the issue is not about one step
    step_type: str | None
    reason: str

    def __str__(self) -> str:
        if self.position is None:
            return self.reason
        if self.step_type is None:
            return f"step {self.position}: {self.reason}"
        return f"step {self.position} ({self.step_type}): {self.reason}"


class PipelineConfigError(ValueError):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(issue) for issue in issues))


@dataclass(frozen=True)
class BuiltPipeline:
    datatype: type[ImageData]
    steps: list[Step[Any, Any]]

    @property
    def step_types(self) -> list[str]:
        return [step.manifest.type_id for step in self.steps]

    def canonical_config(self) -> dict[str, Any]:
        return {
            "datatype": self.datatype.__name__,
            "steps": [
                {"type": step.manifest.type_id, "params": step.params.model_dump(mode="json")}
                for step in self.steps
            ],
        }


def _from_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    """The earlier format: steps as `{"1": "ImageHandler", ...}`, or that as a JSON string."""
    steps = raw.get("steps")
    if isinstance(steps, str):
        steps = json.loads(steps)
    if isinstance(steps, dict):
        try:
            ordered = sorted(steps.items(), key=lambda item: int(item[0]))
        except ValueError as exc:
            raise PipelineConfigError(
                [ConfigIssue(None, None, f"step keys must be numbers: {exc}")]
            ) from exc
        steps = [{"type": name} if isinstance(name, str) else name for _, name in ordered]
    return {**raw, "steps": steps}


def parse_config(raw: Any) -> PipelineConfig:
    """Read a stored or submitted config, in the current format or the earlier one."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PipelineConfigError([ConfigIssue(None, None, f"not JSON: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise PipelineConfigError([ConfigIssue(None, None, "config must be a JSON object")])
    try:
        return PipelineConfig.model_validate(_from_legacy(raw))
    except json.JSONDecodeError as exc:
        raise PipelineConfigError([ConfigIssue(None, None, f"steps: not JSON: {exc}")]) from exc
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = err["loc"]
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                step = raw_steps_type(raw, loc[1])
                field = ".".join(str(part) for part in loc[2:]) or "step"
                issues.append(ConfigIssue(loc[1] + 1, step, f"{field}: {err['msg']}"))
            else:
                field = ".".join(str(part) for part in loc) or "config"
                issues.append(ConfigIssue(None, None, f"{field}: {err['msg']}"))
        raise PipelineConfigError(issues) from exc


def raw_steps_type(raw: dict[str, Any], index: int) -> str | None:
    try:
        value = _from_legacy(raw)["steps"][index]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value.get("type") if isinstance(value, dict) else None


def build_pipeline(
    raw: Any, registry: Registry, *, context: dict[str, Any] | None = None
) -> BuiltPipeline:
    """Parse and validate a config against the registry; every problem is reported at once.

    `context` reaches the parameters' validators: the API passes `{"egress": EgressPolicy}`
    when a pipeline is created or changed, so that a webhook to a refused literal address is
    refused then; a stored config is rebuilt without it (its webhooks are checked when sent).
    """
    config = parse_config(raw)
    issues: list[ConfigIssue] = []
    datatype = registry.datatype(config.datatype)
    if datatype is None:
        known = ", ".join(sorted(cls.__name__ for cls in registry.datatypes))
        issues.append(
            ConfigIssue(None, None, f"unknown data type {config.datatype!r} (known: {known})")
        )
    steps: list[Step[Any, Any]] = []
    for position, step_config in enumerate(config.steps, start=1):
        cls = registry.step(step_config.type)
        if cls is None:
            issues.append(ConfigIssue(position, step_config.type, "unknown step type"))
            continue
        manifest = cls.manifest
        if datatype is not None and not issubclass(datatype, manifest.accepts):
            issues.append(
                ConfigIssue(
                    position,
                    step_config.type,
                    f"accepts {manifest.accepts.__name__}, but the pipeline's data type is "
                    f"{datatype.__name__}",
                )
            )
        try:
            params = manifest.params.model_validate(step_config.params, context=context)
        except ValidationError as exc:
            for err in exc.errors():
                name = ".".join(str(part) for part in err["loc"]) or "params"
                issues.append(
                    ConfigIssue(position, step_config.type, f"parameter {name}: {err['msg']}")
                )
            continue
        steps.append(cls(params))
    if issues:
        raise PipelineConfigError(issues)
    assert datatype is not None
    return BuiltPipeline(datatype=datatype, steps=steps)

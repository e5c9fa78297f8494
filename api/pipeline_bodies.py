"""What POST /pipelines and PUT /pipelines/{id} take.

PUT takes the pipeline as GET answers it: `name`, `description` and `config` are what it
changes; `id`, `version`, `created_at` and `archived_at` are read-only, taken when they match
the stored pipeline (a client may send back what it read) and refused when they do not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from common.models import Pipeline

# Printable, without leading or trailing blanks; PostgreSQL text cannot hold NUL anyway.
NAME_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
DESCRIPTION_PATTERN = r"^[^\x00]*$"
EXAMPLE_CONFIG = {
    "datatype": "CarDetection",
    "steps": [
        {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 320}},
        {"type": "model.detect_car@v1"},
        {"type": "storage.save_car_detection@v1"},
    ],
}
READ_ONLY = ("id", "version", "created_at", "archived_at")


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, examples=["car-detection-320"]
    )
    description: str = Field("", max_length=2000, pattern=DESCRIPTION_PATTERN)
    config: dict[str, Any] = Field(
        description="A data type and the ordered steps, each with its parameters; checked against "
        "the steps' manifests and stored with every default filled in.",
        examples=[EXAMPLE_CONFIG],
    )


class PipelineUpdate(BaseModel):
    """The pipeline as GET /pipelines/{id} answers it, or only the fields to change."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(
        description="The config, checked as for POST /pipelines. The same config as the current "
        "one (once defaults are filled in) makes no new version."
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="A new name renames the pipeline (409 if another has it); left as it is if "
        "absent.",
    )
    description: str | None = Field(
        None, max_length=2000, pattern=DESCRIPTION_PATTERN, description="Left as it is if absent."
    )
    id: int | None = Field(None, description="Read-only: taken if it is the pipeline's id.")
    version: int | None = Field(
        None, description="Read-only: taken if it is the current version's number."
    )
    created_at: datetime | None = Field(None, description="Read-only: taken if it matches.")
    archived_at: datetime | None = Field(None, description="Read-only: taken if it matches.")


def _stored(pipeline: Pipeline, field: str) -> Any:
    return pipeline.current_version if field == "version" else getattr(pipeline, field)


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def refuse_changed_read_only(body: PipelineUpdate, pipeline: Pipeline) -> None:
    """422 `read_only_field` naming each read-only field sent with a value other than the
    stored one (a time is compared as an instant, whatever its offset)."""
    changed = [
        field
        for field in READ_ONLY
        if field in body.model_fields_set and getattr(body, field) != _stored(pipeline, field)
    ]
    if not changed:
        return
    details = [
        {
            "field": f"body.{field}",
            "message": f"read-only: it is {_shown(_stored(pipeline, field))}, "
            f"not {_shown(getattr(body, field))}",
        }
        for field in changed
    ]
    them = "it" if len(changed) == 1 else "them"
    raise ApiError(
        422,
        "read_only_field",
        f"{', '.join(changed)} cannot be changed: send {them} as GET /pipelines/{pipeline.id} "
        f"answers, or leave {them} out (a version number that moved on means the pipeline "
        "changed since it was read)",
        details=details,
    )

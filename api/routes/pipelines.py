"""Read pipelines, and create one whose config has been checked against the step manifests."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep
from api.errors import ApiError, responses
from api.schemas import PipelineView
from common.pipeline import (
    ConfigIssue,
    PipelineConfigError,
    Registry,
    build_pipeline,
    default_registry,
)
from common.repositories import PipelineRepository

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

# Printable, without leading or trailing blanks; PostgreSQL text cannot hold NUL anyway.
NAME_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
EXAMPLE_CONFIG = {
    "datatype": "CarDetection",
    "steps": [
        {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 320}},
        {"type": "model.detect_car@v1"},
        {"type": "storage.save_car_detection@v1"},
    ],
}


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, examples=["car-detection-320"]
    )
    description: str = Field("", max_length=2000, pattern=r"^[^\x00]*$")
    config: dict[str, Any] = Field(
        description="A data type and the ordered steps, each with its parameters; checked against "
        "the steps' manifests and stored with every default filled in.",
        examples=[EXAMPLE_CONFIG],
    )


@lru_cache(maxsize=1)
def registry() -> Registry:
    return default_registry()


def _issue(issue: ConfigIssue) -> dict[str, Any]:
    # Reasons may quote what the client sent (a step type, a parameter name): keep them short.
    step_type = None if issue.step_type is None else issue.step_type[:100]
    return {"position": issue.position, "step_type": step_type, "message": issue.reason[:300]}


def _describe(issue: dict[str, Any]) -> str:
    if issue["position"] is None:
        return str(issue["message"])
    where = f"step {issue['position']}"
    where += f" ({issue['step_type']!r})" if issue["step_type"] is not None else ""
    return f"{where}: {issue['message']}"


@router.get("", response_model=list[PipelineView])
def list_pipelines(session: SessionDep) -> list[PipelineView]:
    return [PipelineView.build(p) for p in PipelineRepository(session).list()]


@router.post(
    "",
    status_code=201,
    response_model=PipelineView,
    responses=responses(409, 422),
    summary="Create a pipeline; its config is validated before anything is stored",
)
def create_pipeline(session: SessionDep, body: PipelineCreate) -> JSONResponse:
    try:
        built = build_pipeline(body.config, registry())
    except PipelineConfigError as exc:
        issues = [_issue(issue) for issue in exc.issues]
        raise ApiError(
            422,
            "invalid_pipeline_config",
            "the pipeline config is invalid: " + "; ".join(_describe(i) for i in issues),
            details=issues,
        ) from exc
    except RecursionError as exc:
        raise ApiError(422, "invalid_pipeline_config", "the config is nested too deeply") from exc
    try:
        pipeline = PipelineRepository(session).add(
            body.name, body.description, built.canonical_config()
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(
            409,
            "pipeline_name_taken",
            f"a pipeline named {body.name!r} already exists; choose another name",
        ) from exc
    view = PipelineView.build(pipeline).model_dump(mode="json")
    return JSONResponse(view, status_code=201, headers={"Location": f"/pipelines/{pipeline.id}"})


@router.get("/{pipeline_id}", response_model=PipelineView, responses=responses(404, 422))
def get_pipeline(
    session: SessionDep, pipeline_id: Annotated[int, Path(gt=0, le=2**31 - 1)]
) -> PipelineView:
    pipeline = PipelineRepository(session).get(pipeline_id)
    if pipeline is None:
        raise ApiError(404, "pipeline_not_found", f"there is no pipeline {pipeline_id}")
    return PipelineView.build(pipeline)

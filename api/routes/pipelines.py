"""Pipelines: create one, or a new version of one, from a config checked against the step
manifests; read them and their versions; archive one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import db_session
from api.errors import ApiError, responses
from api.params import Id
from api.pipeline_bodies import PipelineCreate, PipelineUpdate, refuse_changed_read_only
from api.schemas import PipelineVersionView, PipelineView
from common.models import Pipeline
from common.pipeline import (
    BuiltPipeline,
    ConfigIssue,
    PipelineConfigError,
    build_pipeline,
    registry,
)
from common.repositories import PipelineRepository
from common.settings import get_settings

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

PipelineId = Annotated[Id, Path()]


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


def _validated(config: dict[str, Any]) -> BuiltPipeline:
    try:
        return build_pipeline(config, registry(), context={"egress": get_settings().egress_policy})
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


def _found(session: Session, pipeline_id: int, *, for_update: bool = False) -> Pipeline:
    pipeline = PipelineRepository(session).get(pipeline_id, for_update=for_update)
    if pipeline is None:
        raise ApiError(404, "pipeline_not_found", f"there is no pipeline {pipeline_id}")
    return pipeline


@router.get("", response_model=list[PipelineView], responses=responses(422))
def list_pipelines(
    archived: Annotated[
        bool | None,
        Query(description="true: only archived pipelines; false: only the others; absent: all."),
    ] = None,
) -> list[PipelineView]:
    with db_session() as session:
        pipelines = PipelineRepository(session).list(archived=archived)
        return [PipelineView.build(p) for p in pipelines]


@router.post(
    "",
    status_code=201,
    response_model=PipelineView,
    responses=responses(409, 422),
    summary="Create a pipeline; its config is validated before anything is stored",
)
def create_pipeline(body: PipelineCreate) -> JSONResponse:
    built = _validated(body.config)
    try:
        with db_session() as session:
            pipeline = PipelineRepository(session).add(
                body.name, body.description, built.canonical_config()
            )
            session.commit()
    except IntegrityError as exc:  # the session is closed (rolled back) by now
        raise ApiError(
            409,
            "pipeline_name_taken",
            f"a pipeline named {body.name!r} already exists; choose another name",
        ) from exc
    view = PipelineView.build(pipeline).model_dump(mode="json")
    return JSONResponse(view, status_code=201, headers={"Location": f"/pipelines/{pipeline.id}"})


@router.get("/{pipeline_id}", response_model=PipelineView, responses=responses(404, 422))
def get_pipeline(pipeline_id: PipelineId) -> PipelineView:
    with db_session() as session:
        return PipelineView.build(_found(session, pipeline_id))


@router.put(
    "/{pipeline_id}",
    response_model=PipelineView,
    responses=responses(404, 409, 422),
    summary="Change a pipeline (its config as a new version, its name, its description); "
    "takes the pipeline as GET answers it; jobs already submitted keep their version",
)
def update_pipeline(pipeline_id: PipelineId, body: PipelineUpdate) -> PipelineView:
    # The body is checked before the pipeline's row is locked, and the lock is held only for
    # the write: a burst of PUTs on one pipeline queues on it for moments, not for validations.
    with db_session() as session:
        # 404, 409 and a changed read-only field before a bad config, without a lock
        refuse_changed_read_only(body, _writable(_found(session, pipeline_id)))
    config = _validated(body.config).canonical_config()
    try:
        with db_session() as session:
            pipeline = _writable(_found(session, pipeline_id, for_update=True))
            refuse_changed_read_only(body, pipeline)  # the version may have moved on meanwhile
            if config != pipeline.config:
                PipelineRepository(session).add_version(pipeline, config)
            if body.description is not None:
                pipeline.description = body.description
            if body.name is not None:
                pipeline.name = body.name
            session.commit()
            return PipelineView.build(pipeline)
    except IntegrityError as exc:  # the session is closed (rolled back) by now
        if body.name is None:
            raise
        raise ApiError(
            409,
            "pipeline_name_taken",
            f"a pipeline named {body.name!r} already exists; choose another name",
        ) from exc


def _writable(pipeline: Pipeline) -> Pipeline:
    if pipeline.archived_at is not None:
        raise ApiError(
            409,
            "pipeline_archived",
            f"pipeline {pipeline.id} is archived and cannot change; create a new pipeline",
        )
    return pipeline


@router.delete(
    "/{pipeline_id}",
    response_model=PipelineView,
    responses=responses(404, 422),
    summary="Archive a pipeline: it takes no new jobs; it and its jobs stay readable",
)
def archive_pipeline(pipeline_id: PipelineId) -> PipelineView:
    with db_session() as session:
        pipeline = _found(session, pipeline_id, for_update=True)
        PipelineRepository(session).archive(pipeline)
        session.commit()
        return PipelineView.build(pipeline)


@router.get(
    "/{pipeline_id}/versions",
    response_model=list[PipelineVersionView],
    responses=responses(404, 422),
    summary="Every version of a pipeline, oldest first",
)
def list_versions(pipeline_id: PipelineId) -> list[PipelineVersionView]:
    with db_session() as session:
        _found(session, pipeline_id)
        versions = PipelineRepository(session).versions(pipeline_id)
        return [PipelineVersionView.build(version) for version in versions]


@router.get(
    "/{pipeline_id}/versions/{version}",
    response_model=PipelineVersionView,
    responses=responses(404, 422),
)
def get_version(
    pipeline_id: PipelineId,
    version: Annotated[Id, Path()],
) -> PipelineVersionView:
    with db_session() as session:
        _found(session, pipeline_id)
        found = PipelineRepository(session).version(pipeline_id, version)
    if found is None:
        raise ApiError(
            404,
            "pipeline_version_not_found",
            f"pipeline {pipeline_id} has no version {version}",
        )
    return PipelineVersionView.build(found)

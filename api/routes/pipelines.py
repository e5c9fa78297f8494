"""Read pipelines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import SessionDep
from api.errors import ApiError, responses
from api.schemas import PipelineView
from common.repositories import PipelineRepository

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


@router.get("", response_model=list[PipelineView])
def list_pipelines(session: SessionDep) -> list[PipelineView]:
    return [PipelineView.build(p) for p in PipelineRepository(session).list()]


@router.get("/{pipeline_id}", response_model=PipelineView, responses=responses(404, 422))
def get_pipeline(
    session: SessionDep, pipeline_id: Annotated[int, Path(gt=0, le=2**31 - 1)]
) -> PipelineView:
    pipeline = PipelineRepository(session).get(pipeline_id)
    if pipeline is None:
        raise ApiError(404, "pipeline_not_found", f"there is no pipeline {pipeline_id}")
    return PipelineView.build(pipeline)

"""The earlier implementation's endpoint: submit, wait for the job, answer "success"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, responses
from api.params import Id
from api.schemas import CompatSuccess
from api.submit import submit
from api.waiting import wait_for_job
from common.models import JobStatus
from common.settings import get_settings

router = APIRouter(tags=["compatibility"])

PipelineId = Annotated[Id | None, Query(description="Pipeline to run.")]
PipelineIdForm = Annotated[Id | None, Form(alias="pipeline_id")]


@router.post(
    "/process_image/",
    response_model=CompatSuccess,
    responses=responses(404, 409, 413, 415, 422, 502, 503, 504),
    summary="Run an image through a pipeline and wait for it (earlier interface)",
)
async def process_image(
    image: Annotated[UploadFile, File()],
    pipeline_id: PipelineId = None,
    pipeline_id_form: PipelineIdForm = None,
) -> CompatSuccess:
    settings = get_settings()
    chosen = pipeline_id if pipeline_id is not None else pipeline_id_form
    if chosen is None:
        raise ApiError(422, "invalid_request", "pipeline_id is required (query or form field)")
    [job] = await run_in_threadpool(submit, settings, chosen, [image])
    job_id = job.id
    outcome = await wait_for_job(job_id, settings.compat_wait_s)
    if outcome is None:
        raise ApiError(
            504,
            "job_timeout",
            f"the job did not finish within {settings.compat_wait_s:g} s; poll GET /jobs/{job_id}",
            job_id=str(job_id),
        )
    status, error = outcome
    if status != JobStatus.SUCCEEDED:
        raise ApiError(502, "job_failed", f"the job failed: {error}", job_id=str(job_id))
    return CompatSuccess(job_id=job_id)

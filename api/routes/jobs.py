"""Submit a job, then poll it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep, SettingsDep
from api.errors import ApiError, responses
from api.schemas import JobAccepted, JobView
from api.services import describe_job, retry_job, submit_job

router = APIRouter(prefix="/jobs", tags=["jobs"])

ImageField = Annotated[UploadFile, File(description="The image (JPEG, PNG, WebP, GIF, BMP, TIFF).")]
PipelineField = Annotated[int, Form(gt=0, le=2**31 - 1, description="Id of the pipeline to run.")]
SUBMIT_FIELDS = ("image", "pipeline_id")


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses=responses(404, 413, 415, 422, 503),
    summary="Submit an image to a pipeline",
)
async def create_job(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    image: ImageField,
    pipeline_id: PipelineField,
) -> JSONResponse:
    # The form is parsed already; refuse fields we would otherwise silently ignore.
    form = await request.form()
    names = [name for name, _ in form.multi_items()]
    unexpected = sorted({name for name in names if name not in SUBMIT_FIELDS})
    repeated = sorted({name for name in SUBMIT_FIELDS if names.count(name) > 1})
    if unexpected or repeated:
        problems = [f"unexpected field {name!r}" for name in unexpected]
        problems += [f"field {name!r} sent more than once" for name in repeated]
        raise ApiError(
            422,
            "unexpected_field",
            "; ".join(problems) + ": send exactly one 'image' file and one 'pipeline_id' field",
        )
    job = await run_in_threadpool(submit_job, session, settings, pipeline_id, image)
    body = JobAccepted(job_id=job.id).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{job.id}"})


@router.get("/{job_id}", response_model=JobView, responses=responses(404, 422))
def get_job(session: SessionDep, job_id: uuid.UUID) -> JobView:
    return describe_job(session, job_id)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=JobAccepted,
    responses=responses(404, 409, 422),
    summary="Run a failed job again from the step that failed",
)
def retry(session: SessionDep, job_id: uuid.UUID) -> JSONResponse:
    job = retry_job(session, job_id)
    body = JobAccepted(job_id=job.id).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{job.id}"})

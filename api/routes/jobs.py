"""Submit a job (or a batch), wait for it if asked, poll it, list jobs, fetch a job's images."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, db_session
from api.errors import ApiError, responses
from api.images import IMAGE_RESPONSES, Variant, image_response
from api.listing import DEFAULT_LIMIT, MAX_LIMIT, as_utc, list_jobs
from api.output_filter import parse_output_filters
from api.params import DECIMAL_NUMBER, WHOLE_NUMBER, Id
from api.schemas import BatchAccepted, JobAccepted, JobPage, JobView
from api.services import describe_job, retry_job
from api.submit import submit
from api.waiting import wait_for_job
from common.models import JobStatus
from common.pipeline import registry
from common.repositories import JobFilter

router = APIRouter(prefix="/jobs", tags=["jobs"])

ImageField = Annotated[UploadFile, File(description="The image (JPEG, PNG, WebP, GIF, BMP, TIFF).")]
ImagesField = Annotated[
    list[UploadFile],
    File(description="The images, one job each, as repeated 'images' parts; order is kept."),
]
PipelineField = Annotated[Id, Form(description="Id of the pipeline to run.")]
WaitQuery = Annotated[
    float,
    Ge(0),
    DECIMAL_NUMBER,
    Query(
        description="Seconds to wait for the job to end (at most MAX_WAIT_S): 200 with the job "
        "if it ends in time, else 202 as without waiting.",
    ),
]
SUBMIT_FIELDS = ("image", "pipeline_id")
BATCH_FIELDS = ("images", "pipeline_id")


async def _refuse_unexpected_fields(request: Request, allowed: tuple[str, str]) -> None:
    # The form is parsed already; refuse fields we would otherwise silently ignore.
    form = await request.form()
    names = [name for name, _ in form.multi_items()]
    unexpected = sorted({name for name in names if name not in allowed})
    repeated = sorted({name for name in ("pipeline_id", "image") if names.count(name) > 1})
    if unexpected or repeated:
        problems = [f"unexpected field {name!r}" for name in unexpected]
        problems += [f"field {name!r} sent more than once" for name in repeated]
        what = (
            "exactly one 'image' file and one 'pipeline_id' field"
            if "image" in allowed
            else "'images' files and one 'pipeline_id' field"
        )
        details = [{"field": f"body.{name}", "message": "unexpected field"} for name in unexpected]
        details += [
            {"field": f"body.{name}", "message": "sent more than once"} for name in repeated
        ]
        raise ApiError(
            422, "unexpected_field", "; ".join(problems) + f": send {what}", details=details
        )


def _accepted(job_id: uuid.UUID) -> JSONResponse:
    body = JobAccepted(job_id=job_id).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{job_id}"})


def _fresh_view(job_id: uuid.UUID) -> dict[str, Any]:
    with db_session() as session:
        return describe_job(session, job_id).model_dump(mode="json")


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={
        200: {"model": JobView, "description": "The job ended within `wait` seconds."},
        **responses(404, 409, 413, 415, 422, 503),
    },
    summary="Submit an image to a pipeline (and, with `wait`, wait for the job)",
)
async def create_job(
    request: Request,
    settings: SettingsDep,
    image: ImageField,
    pipeline_id: PipelineField,
    wait: WaitQuery = 0,
) -> JSONResponse:
    await _refuse_unexpected_fields(request, SUBMIT_FIELDS)
    if wait > settings.max_wait_s:
        raise ApiError(
            422,
            "invalid_request",
            f"wait: at most {settings.max_wait_s:g} seconds (MAX_WAIT_S); poll GET /jobs/{{id}} "
            "for longer",
            details=[{"field": "query.wait", "message": f"at most {settings.max_wait_s:g}"}],
        )
    [job] = await run_in_threadpool(submit, settings, pipeline_id, [image])
    if wait > 0 and await wait_for_job(job.id, wait) is not None:
        view = await run_in_threadpool(_fresh_view, job.id)
        return JSONResponse(view, status_code=200, headers={"Location": f"/jobs/{job.id}"})
    return _accepted(job.id)


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    responses=responses(404, 409, 413, 415, 422, 503),
    summary="Submit several images to a pipeline: one job each, all accepted or none stored",
)
async def create_batch(
    request: Request,
    settings: SettingsDep,
    images: ImagesField,
    pipeline_id: PipelineField,
) -> BatchAccepted:
    await _refuse_unexpected_fields(request, BATCH_FIELDS)
    jobs = await run_in_threadpool(partial(submit, batch=True), settings, pipeline_id, images)
    return BatchAccepted(jobs=[JobAccepted(job_id=job.id) for job in jobs])


@router.get(
    "",
    response_model=JobPage,
    responses=responses(422),
    summary="List jobs, newest first, filtered, a page at a time",
)
def get_jobs(
    pipeline_id: Annotated[Id | None, Query()] = None,
    status: Annotated[JobStatus | None, Query()] = None,
    detected: Annotated[
        bool | None,
        Query(
            description="true: the model found a car; false: it answered and found none "
            "(jobs without a stored detection match neither)."
        ),
    ] = None,
    output: Annotated[
        list[str] | None,
        Query(
            description="`<step type>:<field>=<value>`, repeatable (all must match): jobs in "
            "which a step of that type succeeded and reported that value, e.g. "
            "`notify.webhook@v1:status=failed` or `image.stats@v1:width=640`. Fields of one "
            "value only (see each step's `output` in GET /steps); `null` matches an empty one.",
        ),
    ] = None,
    created_since: Annotated[
        datetime | None, Query(description="Jobs created at or after this time (ISO 8601).")
    ] = None,
    created_until: Annotated[
        datetime | None, Query(description="Jobs created before this time (ISO 8601).")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Ge(1), Le(MAX_LIMIT), WHOLE_NUMBER, Query()] = DEFAULT_LIMIT,
) -> JobPage:
    where = JobFilter(
        pipeline_id=pipeline_id,
        status=None if status is None else status.value,
        detected=detected,
        outputs=parse_output_filters(output, registry()),
        created_since=as_utc(created_since, "created_since"),
        created_until=as_utc(created_until, "created_until"),
    )
    with db_session() as session:
        return list_jobs(session, where, limit, cursor)


@router.get("/{job_id}", response_model=JobView, responses=responses(404, 422))
def get_job(job_id: uuid.UUID) -> JobView:
    with db_session() as session:
        return describe_job(session, job_id)


@router.get(
    "/{job_id}/image",
    response_class=Response,
    responses={**IMAGE_RESPONSES, **responses(404, 422)},
    summary="One of the job's images: the upload, the processed image, or the annotated one",
)
def get_job_image(
    job_id: uuid.UUID,
    variant: Annotated[
        Variant, Query(description="Which image; the job's steps decide which it has.")
    ] = Variant.ORIGINAL,
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    with db_session() as session:
        return image_response(session, job_id, variant, if_none_match)


class RetryVersion(enum.StrEnum):
    SUBMITTED = "submitted"
    CURRENT = "current"


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=JobAccepted,
    responses=responses(404, 409, 422, 503),
    summary="Run a failed job again: from the step that failed, or on the current version",
)
def retry(
    settings: SettingsDep,
    job_id: uuid.UUID,
    version: Annotated[
        RetryVersion,
        Query(
            description="submitted: the version the job was submitted under, from the step "
            "that failed. current: the pipeline's current version (after a PUT), every step "
            "from the first, on the original image; 409 if the pipeline is archived."
        ),
    ] = RetryVersion.SUBMITTED,
) -> JSONResponse:
    job = retry_job(settings, job_id, current_version=version == RetryVersion.CURRENT)
    return _accepted(job.id)

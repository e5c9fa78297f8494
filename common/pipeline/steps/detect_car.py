"""model.detect_car@v1: ask the model server whether there is a car in the image."""

from __future__ import annotations

import httpx
from pydantic import Field, ValidationError, field_validator

from common.messages import describe_exception
from common.pipeline.datatypes import CarDetection, Detection
from common.pipeline.step import (
    Step,
    StepContext,
    StepError,
    StepManifest,
    StepOutput,
    StepParams,
    TransientStepError,
)


class DetectCarParams(StepParams):
    # A path only, so that a pipeline's author cannot send the image anywhere but the model
    # server: no scheme, no "@", no "//" (a network-path reference), no "." or ".." segment.
    path: str = Field(
        "/process_image/",
        max_length=200,
        pattern=r"^/([A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]*$",
        description="Endpoint path on the model server (MODEL_URL): segments of letters, "
        "digits, '_', '.' and '-' after single slashes; never another host.",
    )

    @field_validator("path")
    @classmethod
    def _no_dot_segments(cls, value: str) -> str:
        if any(segment in (".", "..") for segment in value.split("/")):
            raise ValueError("must have no '.' or '..' segment")
        return value


class ModelAnswer(StepOutput):
    """model.detect_car@v1's output: what the model server answered."""

    detection: Detection | None = Field(
        description="The box the model found, in its own keys; null when it saw no car."
    )


def model_endpoint(model_url: str, path: str) -> str:
    """MODEL_URL's scheme, host and port with `path` appended to its path: whatever `path`
    holds, the result names the model server's host (raises httpx.InvalidURL for a bad
    MODEL_URL)."""
    base = httpx.URL(model_url)
    return str(base.copy_with(path=base.path.rstrip("/") + path, query=None, fragment=None))


def request_detection(
    http: httpx.Client,
    url: str,
    image: bytes,
    content_type: str,
    timeout: float,
    job_id: str | None = None,
) -> Detection | None:
    """POST the image as multipart `image` (and the job id as `X-Job-Id`, for the model's
    logs); None means the model saw no car."""
    headers = {"X-Job-Id": job_id} if job_id else None
    try:
        response = http.post(
            url, files={"image": ("image", image, content_type)}, headers=headers, timeout=timeout
        )
    except httpx.TimeoutException as exc:
        raise TransientStepError(f"model server did not answer within {timeout:g} s") from exc
    except httpx.TransportError as exc:
        raise TransientStepError(f"model server unreachable: {describe_exception(exc)}") from exc
    if response.status_code >= 500:
        raise TransientStepError(f"model server answered HTTP {response.status_code}")
    if response.status_code >= 400:
        raise StepError(
            f"model server refused the image: HTTP {response.status_code} {response.text[:200]}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise TransientStepError(f"model server answered malformed JSON: {exc}") from exc
    if body is None:
        return None
    try:
        return Detection.model_validate(body)
    except ValidationError as exc:
        raise TransientStepError(f"model server answered an unexpected object: {exc}") from exc


class DetectCar(Step[CarDetection, DetectCarParams]):
    manifest = StepManifest(
        type_id="model.detect_car@v1",
        description="Send the image to the model server and keep its answer (a box, or none).",
        accepts=CarDetection,
        output=ModelAnswer,
        params=DetectCarParams,
        aliases=("MachineLearningModelRequest",),
        io_bound=True,
    )

    def run(self, data: CarDetection, ctx: StepContext) -> CarDetection:
        url = model_endpoint(ctx.settings.model_url, self.params.path)
        detection = request_detection(
            ctx.http,
            url,
            data.image,
            data.content_type,
            ctx.settings.model_timeout_s,
            job_id=str(ctx.job_id),
        )
        return data.model_copy(update={"detection": detection, "model_answered": True})

    def output(self, before: CarDetection, after: CarDetection) -> ModelAnswer:
        return ModelAnswer(detection=after.detection)

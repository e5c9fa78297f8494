"""POST /jobs: what it refuses (storing nothing), what it accepts, and what it answers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from common.models import StepStatus
from common.repositories import ImageRepository, JobRepository
from tests import images
from tests.conftest import count_rows
from tests.helpers.api import assert_error, submit, wait_until_idle
from tests.system import wait_for_job

TABLES = ("jobs", "job_images", "job_steps")
JPEG = images.jpeg(64, 48)
TEXT = b"this is plain text, not a photo\n" * 4
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
Upload = tuple[str, bytes, str]


def row_counts() -> dict[str, int]:
    return {table: count_rows(table) for table in TABLES}


def refused(
    case_id: str,
    status: int,
    code: str,
    mentions: str,
    *,
    image: Upload | str | None = ("photo.jpg", JPEG, "image/jpeg"),
    pipeline_id: str | None = "1",
) -> Any:
    """One refused request: `image` None leaves the file out, a str sends it as a text field."""
    files = {"image": image} if isinstance(image, tuple) else None
    data = {} if pipeline_id is None else {"pipeline_id": pipeline_id}
    if isinstance(image, str):
        data["image"] = image
    return pytest.param(files, data or None, status, code, mentions, id=case_id)


REFUSED = [
    refused("unknown-pipeline", 404, "pipeline_not_found", "999999", pipeline_id="999999"),
    refused("missing-image", 422, "invalid_request", "image", image=None),
    refused("image-as-text-field", 422, "invalid_request", "image", image="not a file"),
    refused("missing-pipeline_id", 422, "invalid_request", "pipeline_id", pipeline_id=None),
    *(
        refused(f"pipeline_id={value}", 422, "invalid_request", "pipeline_id", pipeline_id=value)
        for value in ("0", "-1", "abc", "1.5", "99999999999")
    ),
    refused("empty-file", 422, "empty_image", "empty", image=("photo.jpg", b"", "image/jpeg")),
    *(
        refused(case_id, 415, "unsupported_image_type", "image", image=upload)
        for case_id, upload in (
            ("text-named-photo.jpg", ("photo.jpg", TEXT, "image/jpeg")),
            ("pdf", ("doc.pdf", PDF, "application/pdf")),
            ("riff-wav-named-webp", ("a.webp", WAV, "image/webp")),
            ("png-signature-cut-short", ("a.png", b"\x89PN", "image/png")),
        )
    ),
]


@pytest.mark.parametrize(("files", "data", "status", "code", "mentions"), REFUSED)
def test_submit_refuses_bad_request_with_error_body_and_stores_nothing(
    api: httpx.Client,
    files: Any,
    data: dict[str, str] | None,
    status: int,
    code: str,
    mentions: str,
) -> None:
    # Given: no job in flight, so only this request could add rows
    wait_until_idle()
    before = row_counts()

    # When
    response = api.post("/jobs", files=files, data=data)

    # Then
    error = assert_error(response, status, code)
    assert mentions in error["message"], error
    assert "job_id" not in error
    assert row_counts() == before


def test_submit_refuses_text_that_starts_with_the_bmp_signature(api: httpx.Client) -> None:
    # Given: plain text whose first two letters happen to be the BMP magic
    wait_until_idle()
    before = row_counts()
    text = b"BMW X5 service history: oil changed, tyres rotated.\n"

    # When
    response = submit(api, text, name="notes.txt", content_type="text/plain")

    # Then
    if response.status_code == 202:  # let a wrongly accepted job end before failing
        wait_for_job(api, response.json()["job_id"])
    assert_error(response, 415, "unsupported_image_type")
    assert row_counts() == before


def test_submit_validation_error_lists_each_invalid_field(api: httpx.Client) -> None:
    # Given: neither field is present
    # When
    response = api.post("/jobs", data={"unrelated": "x"})

    # Then
    error = assert_error(response, 422, "invalid_request")
    fields = {detail["field"] for detail in error["details"]}
    assert fields == {"body.image", "body.pipeline_id"}
    assert all(detail["message"] for detail in error["details"])


def test_submit_identifies_png_by_its_bytes_not_its_name_or_content_type(
    api: httpx.Client, session: Session
) -> None:
    # Given: a PNG that claims to be a JPEG
    data = images.png(64, 48)

    # When
    response = submit(api, data, name="x.jpg", content_type="image/jpeg")

    # Then
    assert response.status_code == 202, response.text
    job_id = uuid.UUID(response.json()["job_id"])
    original = ImageRepository(session).get(job_id, "original")
    assert original is not None
    assert original.content_type == "image/png"
    assert original.data == data
    assert original.size == len(data)
    assert wait_for_job(api, str(job_id))["status"] == "succeeded"


@pytest.mark.parametrize(
    ("fmt", "content_type", "params"),
    [
        ("WEBP", "image/webp", {}),
        ("GIF", "image/gif", {}),
        ("BMP", "image/bmp", {}),
        ("TIFF", "image/tiff", {}),
        ("TIFF", "image/tiff", {"compression": "tiff_lzw"}),
    ],
    ids=["webp", "gif", "bmp", "tiff", "tiff-lzw"],
)
def test_submit_accepts_and_processes_every_supported_format(
    api: httpx.Client, session: Session, fmt: str, content_type: str, params: dict[str, Any]
) -> None:
    # Given: an image in the format, sent under a neutral name and type
    data = images.encode(images.photo(64, 48, seed=3), fmt, **params)

    # When
    response = submit(api, data, name="upload.bin", content_type="application/octet-stream")

    # Then
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    original = ImageRepository(session).get(uuid.UUID(job_id), "original")
    assert original is not None
    assert original.content_type == content_type
    assert wait_for_job(api, job_id)["status"] == "succeeded"


def test_submit_answers_202_with_location_and_creates_job_at_once(
    api: httpx.Client, session: Session
) -> None:
    # Given
    data = images.jpeg(320, 240, seed=7)

    # When
    response = submit(api, data)

    # Then: the answer
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"job_id", "status"}
    assert body["status"] == "queued"
    job_id = uuid.UUID(body["job_id"])
    assert response.headers["location"] == f"/jobs/{job_id}"
    # Then: the job is already stored, with its steps, before anyone polls
    job = JobRepository(session).get(job_id)
    assert job is not None
    assert job.pipeline_id == 1
    assert [step.position for step in job.steps] == [1, 2, 3]
    assert [step.step_type for step in job.steps] == [
        "image.fit@v1",
        "model.detect_car@v1",
        "storage.save_car_detection@v1",
    ]
    assert all(step.status in set(StepStatus) for step in job.steps)
    assert ImageRepository(session).get(job_id, "original") is not None
    # Then: the Location answers
    assert api.get(response.headers["location"]).status_code == 200
    wait_for_job(api, str(job_id))

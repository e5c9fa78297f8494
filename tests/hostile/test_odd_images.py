"""Odd but valid images are accepted and processed; a corrupt one that looks whole fails cleanly."""

from __future__ import annotations

import uuid

import httpx
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from common.repositories import ImageRepository
from tests import images
from tests.helpers.api import submit
from tests.hostile import corpus
from tests.system import wait_for_job

ODD = corpus.odd_valid_images()


def _big_endian_16_bit_tiff() -> bytes:
    grey = images.photo(96, 64, seed=9).convert("L").tobytes()
    return images.encode(
        Image.frombytes("I;16B", (96, 64), bytes(b for v in grey for b in (v, 0))), "TIFF"
    )


CASES = [
    *(pytest.param(*ODD[name], id=name) for name in sorted(ODD)),
    pytest.param(
        _big_endian_16_bit_tiff(),
        "image/tiff",
        id="tiff-16-bit-big-endian",
    ),
]


@pytest.mark.parametrize(("data", "content_type"), CASES)
def test_odd_image_is_accepted_and_its_job_succeeds(
    api: httpx.Client, session: Session, data: bytes, content_type: str
) -> None:
    # Given: the image under a neutral name and declared type

    # When
    response = submit(api, data, name="upload", content_type="application/octet-stream")

    # Then: accepted, stored as sent, recognised by its bytes
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    original = ImageRepository(session).get(uuid.UUID(job_id), "original")
    assert original is not None
    assert original.content_type == content_type
    assert original.data == data
    # Then: processed into an upright RGB JPEG
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job["error"]
    processed = ImageRepository(session).get(uuid.UUID(job_id), "processed")
    assert processed is not None
    assert processed.data[:3] == b"\xff\xd8\xff"


def test_exif_rotated_image_is_processed_upright(api: httpx.Client, session: Session) -> None:
    # Given: 96x64 pixels stored sideways, with EXIF orientation 6 (rotate 90 degrees)
    data, _ = ODD["jpeg-exif-rotated"]

    # When
    job_id = submit(api, data).json()["job_id"]
    job = wait_for_job(api, job_id)

    # Then
    assert job["status"] == "succeeded", job["error"]
    processed = ImageRepository(session).get(uuid.UUID(job_id), "processed")
    assert processed is not None
    assert images.size_of(processed.data) == (64, 96)


def test_corrupt_pixels_behind_a_valid_header_fail_the_job_with_a_reason(
    api: httpx.Client,
) -> None:
    # Given: a PNG whose header, chunks and end are all in order, but whose pixels are not zlib
    data = corpus.png(64, 48, idat=b"these bytes are not a deflate stream" * 4)

    # When
    response = submit(api, data, name="x.png", content_type="image/png")

    # Then: the gateway could not tell; the worker fails the job and says why
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["job_id"])
    assert job["status"] == "failed"
    error = str(job["error"])
    assert "step 1 (image.fit@v1)" in error
    assert "cannot decode the image" in error
    assert job["steps"][0]["status"] == "failed"  # type: ignore[index]

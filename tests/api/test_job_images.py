"""GET /jobs/{id}/image: a job's upload, processed and annotated images, with type and caching."""

from __future__ import annotations

import uuid

import httpx
import pytest

from api.catalogue import registry
from api.submit import INLINE_UPLOAD_MAX
from tests import images
from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import car_config, create_pipeline, image_of
from tests.system import wait_for_job

IMMUTABLE = "private, max-age=31536000, immutable"


def test_the_original_is_the_upload_byte_for_byte_with_its_type(api: httpx.Client) -> None:
    # Given: a PNG upload, which the car pipeline turns into a JPEG
    upload = images.png(800, 600, seed=51)
    job_id = submit_ok(api, upload, 1)
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    # When
    original = image_of(api, job_id, "original")
    processed = image_of(api, job_id, "processed")

    # Then
    assert original.status_code == 200
    assert original.content == upload
    assert original.headers["content-type"] == "image/png"
    assert original.headers["content-length"] == str(len(upload))
    assert original.headers["cache-control"] == IMMUTABLE
    assert processed.status_code == 200
    assert processed.headers["content-type"] == "image/jpeg"
    assert processed.headers["content-length"] == str(len(processed.content))
    assert processed.headers["cache-control"] == IMMUTABLE  # the job succeeded
    assert images.size_of(processed.content) == (640, 480)


@pytest.mark.parametrize("over_1_mib", [False, True])
def test_an_upload_is_stored_whole_whether_with_its_job_or_streamed(
    api: httpx.Client, over_1_mib: bool
) -> None:
    # Up to 1 MiB the upload goes in with the job's rows in one statement; over it, it streams
    # into the database (COPY) within the job's transaction.
    upload = images.encode(images.photo(1600, 1200, seed=54), "JPEG", quality=97)
    if not over_1_mib:
        upload = images.jpeg(640, 480, seed=54)
    assert (len(upload) > INLINE_UPLOAD_MAX) is over_1_mib

    job_id = submit_ok(api, upload, 1)
    job = wait_for_job(api, job_id)

    assert job["status"] == "succeeded"
    original = image_of(api, job_id, "original")
    assert original.content == upload
    steps = job["steps"]
    assert isinstance(steps, list)
    assert [step["status"] for step in steps] == ["succeeded"] * 3


def test_without_a_variant_the_original_is_answered(api: httpx.Client) -> None:
    upload = images.jpeg(64, 48, seed=52)
    job_id = submit_ok(api, upload, 1)

    response = api.get(f"/jobs/{job_id}/image")

    assert response.status_code == 200
    assert response.content == upload


def test_a_matching_etag_is_answered_304(api: httpx.Client) -> None:
    job_id = submit_ok(api, images.jpeg(64, 48, seed=53), 1)
    first = image_of(api, job_id, "original")

    again = api.get(
        f"/jobs/{job_id}/image",
        params={"variant": "original"},
        headers={"If-None-Match": first.headers["etag"]},
    )

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_a_failed_jobs_processed_image_must_be_revalidated(api: httpx.Client) -> None:
    # Given: the image step ran, the model step failed; a retry may write the image again
    pipeline_id = create_pipeline(api, car_config(320, model_path="/no-such-endpoint"), "failing")
    job_id = submit_ok(api, images.jpeg(640, 480, seed=54), pipeline_id)
    assert wait_for_job(api, job_id)["status"] == "failed"

    # When
    processed = image_of(api, job_id, "processed")

    # Then
    assert processed.status_code == 200
    assert processed.headers["cache-control"] == "private, no-cache"
    assert images.size_of(processed.content) == (320, 240)


def test_a_variant_the_job_does_not_have_is_404_image_not_found(api: httpx.Client) -> None:
    job_id = submit_ok(api, images.jpeg(64, 48, seed=55), 1)
    wait_for_job(api, job_id)

    response = image_of(api, job_id, "annotated")

    error = assert_error(response, 404, "image_not_found")
    assert "annotated" in error["message"]


def test_an_unknown_variant_is_422(api: httpx.Client) -> None:
    job_id = submit_ok(api, images.jpeg(64, 48, seed=56), 1)

    response = image_of(api, job_id, "thumbnail")

    error = assert_error(response, 422, "invalid_request")
    assert "variant" in error["message"]


def test_an_unknown_job_is_404_job_not_found(api: httpx.Client) -> None:
    assert_error(image_of(api, str(uuid.uuid4()), "original"), 404, "job_not_found")


@pytest.mark.skipif(
    registry().step("image.annotate@v1") is None, reason="no image.annotate@v1 step registered"
)
def test_the_annotated_image_a_step_stored_is_served(api: httpx.Client) -> None:
    # Given
    config = car_config(320)
    config["steps"].insert(2, {"type": "image.annotate@v1"})
    pipeline_id = create_pipeline(api, config, "annotated")
    job_id = submit_ok(api, images.jpeg(640, 480, seed=57), pipeline_id)
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    # When
    annotated = image_of(api, job_id, "annotated")

    # Then
    assert annotated.status_code == 200
    assert annotated.headers["content-type"] == "image/jpeg"
    assert annotated.headers["cache-control"] == IMMUTABLE
    assert images.size_of(annotated.content) == (320, 240)

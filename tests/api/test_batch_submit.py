"""POST /jobs/batch: one job per image in upload order; one bad image and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.uploads import ENVELOPE_SLACK
from tests import images
from tests.helpers.api import assert_error, spy_on_queue, stored_rows, wait_until_idle
from tests.helpers.product import batch, image_of, noise_png, side_api
from tests.system import System, wait_for_job

SMALL_UPLOAD = 100_000


@pytest.fixture(scope="module")
def small_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API taking at most 3 images a batch, of at most 100 kB each."""
    logs = tmp_path_factory.mktemp("small-api")
    with side_api(logs, MAX_BATCH_IMAGES="3", MAX_UPLOAD_BYTES=str(SMALL_UPLOAD)) as api:
        yield api


def test_a_batch_makes_one_job_per_image_in_upload_order(api: httpx.Client) -> None:
    # Given
    uploads = [images.png(200 + 40 * n, 100, seed=70 + n) for n in range(4)]

    # When
    with spy_on_queue() as spy:
        response = batch(api, uploads, 1)
        published = spy.collect()

    # Then: 202 listing the jobs in order, each job with its own image, each handed over once
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert [job["status"] for job in jobs] == ["queued"] * 4
    assert len({job["job_id"] for job in jobs}) == 4
    for job, upload in zip(jobs, uploads, strict=True):
        assert image_of(api, job["job_id"], "original").content == upload
    assert sorted(
        str(task["args"]) for task in published if task["task"] == "pipeline.step.image.fit@v1"
    ) == (sorted(repr((job["job_id"], 1)) for job in jobs))
    for job in jobs:
        assert wait_for_job(api, job["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [
        (images.jpeg(64, 48)[:-200], 422, "corrupt_image"),
        (b"not an image at all", 415, "unsupported_image_type"),
        (b"", 422, "empty_image"),
    ],
    ids=["truncated-jpeg", "not-an-image", "empty"],
)
def test_one_bad_image_refuses_the_whole_batch_naming_it(
    api: httpx.Client, bad: bytes, status: int, code: str
) -> None:
    # Given: the third of four images is bad
    uploads = [images.jpeg(64, 48, seed=n) for n in range(4)]
    uploads[2] = bad
    wait_until_idle()
    before = stored_rows()

    # When
    with spy_on_queue() as spy:
        response = batch(api, uploads, 1)
        published = spy.collect()

    # Then
    error = assert_error(response, status, code)
    assert error["message"].startswith("images[2] ('img-2.png'): ")
    assert error["details"] == [{"index": 2, "filename": "img-2.png"}]
    assert stored_rows() == before
    assert published == []


def test_a_batch_for_an_unknown_pipeline_is_404_and_stores_nothing(api: httpx.Client) -> None:
    wait_until_idle()
    before = stored_rows()

    response = batch(api, [images.jpeg(64, 48)], 999999)

    assert_error(response, 404, "pipeline_not_found")
    assert stored_rows() == before


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ([], {"pipeline_id": "1"}),
        ([("images", ("a.jpg", images.jpeg(64, 48)))], {}),
        ([("image", ("a.jpg", images.jpeg(64, 48)))], {"pipeline_id": "1"}),
        ([("images", ("a.jpg", images.jpeg(64, 48)))], {"pipeline_id": "1", "priority": "high"}),
    ],
    ids=["no-images", "no-pipeline", "image-not-images", "unknown-field"],
)
def test_a_malformed_batch_is_422(
    api: httpx.Client, files: list[tuple[str, tuple[str, bytes]]], data: dict[str, str]
) -> None:
    response = api.post("/jobs/batch", files=files or None, data=data)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_request", "unexpected_field")


def test_a_batch_may_exceed_one_uploads_limit_in_all(small_api: httpx.Client) -> None:
    # Given: three images of about 67 kB: together over what a single upload's body may be
    uploads = [noise_png(150) for _ in range(3)]
    assert all(len(upload) < SMALL_UPLOAD for upload in uploads)
    assert sum(len(upload) for upload in uploads) > SMALL_UPLOAD + ENVELOPE_SLACK

    # When
    response = batch(small_api, uploads, 1)

    # Then
    assert response.status_code == 202, response.text
    assert len(response.json()["jobs"]) == 3


def test_each_file_of_a_batch_is_held_to_the_upload_limit(small_api: httpx.Client) -> None:
    wait_until_idle()
    before = stored_rows()
    uploads = [noise_png(60), noise_png(200)]
    assert len(uploads[1]) > SMALL_UPLOAD

    response = batch(small_api, uploads, 1)

    error = assert_error(response, 413, "image_too_large")
    assert error["message"].startswith("images[1]")
    assert stored_rows() == before


def test_more_images_than_max_batch_images_is_422(small_api: httpx.Client) -> None:
    response = batch(small_api, [images.jpeg(64, 48, seed=n) for n in range(4)], 1)

    error = assert_error(response, 422, "too_many_images")
    assert "limit is 3" in error["message"]


def test_a_batch_body_over_the_batch_limit_is_413_before_it_is_read(
    small_api: httpx.Client,
) -> None:
    # 3 images of 100 kB with their part headers at most; this declares more.
    response = small_api.post(
        "/jobs/batch",
        content=b"x" * 400_000,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )

    error = assert_error(response, 413, "batch_too_large")
    assert "3 images" in error["message"]


def test_a_single_upload_keeps_its_own_limit(small_api: httpx.Client) -> None:
    response = small_api.post(
        "/jobs", files={"image": ("big.png", noise_png(200))}, data={"pipeline_id": "1"}
    )

    assert_error(response, 413, "image_too_large")

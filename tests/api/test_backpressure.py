"""Backpressure: with MAX_QUEUED_JOBS jobs waiting, submissions get 503 and Retry-After."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from api.backpressure import CachedCount
from common.db import session_scope
from common.models import JobStatus
from common.repositories import JobRepository
from tests import images
from tests.helpers.api import assert_error, spy_on_queue, stored_rows, submit, wait_until_idle
from tests.helpers.jobs import fail_again, failed_job, failing_pipeline
from tests.helpers.product import drop_queue, side_api, unique
from tests.rows import add_job
from tests.system import System, wait_for_job


@pytest.fixture(scope="module")
def strict_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A second API on the test database that refuses work once one job is waiting."""
    with side_api(
        tmp_path_factory.mktemp("strict-api-logs"), MAX_QUEUED_JOBS="1", QUEUE_DEPTH_CACHE_S="0"
    ) as client:
        yield client


@pytest.fixture
def one_waiting_job() -> Iterator[None]:
    """A queued job that no worker was told about; it fails at the end so nothing waits on it."""
    wait_until_idle()
    with session_scope() as session:
        job_id = add_job(session, 1, ["image.fit@v1"]).id
    try:
        yield
    finally:
        with session_scope() as session:
            jobs = JobRepository(session)
            job = jobs.get(job_id)
            assert job is not None
            if job.status != JobStatus.FAILED:
                jobs.fail(job, "placeholder of the backpressure test")


@pytest.mark.usefixtures("one_waiting_job")
@pytest.mark.parametrize(
    ("path", "params"),
    [("/jobs", {}), ("/process_image/", {"pipeline_id": "1"})],
    ids=["jobs", "process_image"],
)
def test_full_queue_answers_503_with_retry_after_and_stores_nothing(
    strict_api: httpx.Client, path: str, params: dict[str, str]
) -> None:
    # Given
    before = stored_rows()

    # When
    with spy_on_queue() as spy:
        response = strict_api.post(
            path,
            params=params,
            files={"image": ("a.jpg", images.jpeg(64, 48), "image/jpeg")},
            data={} if params else {"pipeline_id": "1"},
        )
        published = spy.collect()

    # Then
    error = assert_error(response, 503, "queue_full")
    assert "try again in 5 s" in error["message"]
    assert response.headers["retry-after"] == "5"
    assert stored_rows() == before
    assert published == []


def test_queue_below_the_limit_accepts(strict_api: httpx.Client) -> None:
    # Given: nothing waiting
    wait_until_idle()

    # When
    response = submit(strict_api, images.jpeg(64, 48, seed=12))

    # Then
    assert response.status_code == 202, response.text
    wait_for_job(strict_api, response.json()["job_id"])


def test_count_is_reused_within_its_time_to_live() -> None:
    # Given: a clock we move by hand, and a count that changes on every call
    now = [100.0]
    calls = iter(range(1, 100))
    cached = CachedCount(clock=lambda: now[0])

    # When / Then
    assert cached.get(lambda: next(calls), ttl=0.5) == 1
    now[0] += 0.4
    assert cached.get(lambda: next(calls), ttl=0.5) == 1
    now[0] += 0.1
    assert cached.get(lambda: next(calls), ttl=0.5) == 2
    assert cached.get(lambda: next(calls), ttl=0) == 3


LIMIT = 20


@pytest.fixture(scope="module")
def limited_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API that admits LIMIT unfinished jobs, whose cached count, taken once, never
    refreshes (so only the atomic admission can hold the limit), on a queue of its own that no
    worker serves (so its jobs stay queued)."""
    queue = unique("backpressure-queue")
    logs = tmp_path_factory.mktemp("limited-api-logs")
    settings = {"MAX_QUEUED_JOBS": str(LIMIT), "QUEUE_DEPTH_CACHE_S": "3600", "QUEUE_NAME": queue}
    try:
        with side_api(logs, **settings) as client:
            yield client
    finally:
        drop_queue(queue)


def test_a_burst_of_100_submits_admits_exactly_the_limit_and_nothing_beyond_it(
    limited_api: httpx.Client,
) -> None:
    # Given: nothing unfinished, and a failed job to retry later
    wait_until_idle()
    failed = failed_job(failing_pipeline())
    before = stored_rows()
    data = images.jpeg(64, 48, seed=21)

    def send(_: int) -> httpx.Response:
        return submit(limited_api, data)

    # When: 100 submits at once
    try:
        with ThreadPoolExecutor(max_workers=100) as pool:
            answers = list(pool.map(send, range(100)))
        batch = limited_api.post(
            "/jobs/batch",
            files=[("images", ("a.jpg", data)), ("images", ("b.jpg", data))],
            data={"pipeline_id": "1"},
        )
        retried = limited_api.post(f"/jobs/{failed}/retry")
        after = stored_rows()
        unfinished = unfinished_jobs()
    finally:
        for job_id in [failed, *unfinished]:
            fail_again(job_id)

    # Then: exactly LIMIT admitted; the others, the batch and the retry refused; nothing more
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == LIMIT, Counter(a.status_code for a in answers)
    for answer in (*(a for a in answers if a.status_code != 202), batch, retried):
        error = assert_error(answer, 503, "queue_full")
        assert "nothing was stored" in error["message"]
        assert answer.headers["retry-after"] == "5"
    assert after["jobs"] == before["jobs"] + LIMIT
    assert after["job_images"] == before["job_images"] + LIMIT
    assert sorted(unfinished) == sorted(uuid.UUID(a.json()["job_id"]) for a in accepted)


def unfinished_jobs() -> list[uuid.UUID]:
    with session_scope() as session:
        rows = session.execute(text("SELECT id FROM jobs WHERE status IN ('queued', 'running')"))
        return [row.id for row in rows]

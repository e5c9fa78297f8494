"""Bursts on one job or one pipeline, larger than the API's thread pool (40), and a lock held
elsewhere: every request is answered, the API stays responsive, one retry wins.

They run against an API process of their own (started as the `system` one is), so that an API
frozen by a regression fails these tests and not the rest of the suite. Its queue has no
worker: a retried job stays queued, so no later retry of the burst can find it failed again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from common.db import session_scope
from common.models import JobStatus
from tests.helpers.api import assert_error
from tests.helpers.jobs import fail_again, failed_job, failing_pipeline
from tests.helpers.product import drop_queue, side_api, unique
from tests.system import System

BURSTS = [60, 200]
# A client that gets no answer in this long counts the API as frozen.
ANSWER_TIMEOUT_S = 60
VALID = {"datatype": "CarDetection", "steps": [{"type": "image.fit@v1"}]}
INVALID = {"datatype": "CarDetection", "steps": [{"type": "no.such.step@v1"}]}


@pytest.fixture(scope="module")
def burst_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an API of the bursts' own, on the test database, with a queue of its
    own that no worker serves."""
    queue = unique("burst-queue")
    try:
        with side_api(tmp_path_factory.mktemp("burst-api-logs"), QUEUE_NAME=queue) as client:
            yield str(client.base_url)
    finally:
        drop_queue(queue)


def burst(
    base_url: str, count: int, send: Callable[[httpx.Client], httpx.Response]
) -> tuple[list[httpx.Response], list[int | str]]:
    """`count` requests at once (one thread each), while GET /health is asked (at once, then
    every 0.1 s until the burst is answered) with a 1 s timeout. Every answer, and what each
    health probe got (a status, or the error's name)."""
    probes: list[int | str] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base_url, timeout=1) as client:
            for _ in range(1000):
                try:
                    probes.append(client.get("/health").status_code)
                except httpx.HTTPError as exc:
                    probes.append(type(exc).__name__)
                if done.wait(0.1):
                    return

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    with httpx.Client(base_url=base_url, timeout=ANSWER_TIMEOUT_S, limits=limits) as client:
        prober = threading.Thread(target=probe)
        prober.start()
        try:
            with ThreadPoolExecutor(max_workers=count) as pool:
                answers = list(pool.map(lambda _: send(client), range(count)))
        finally:
            done.set()
            prober.join()
    return answers, probes


def new_pipeline(base_url: str, *, archived: bool = False) -> int:
    with httpx.Client(base_url=base_url, timeout=ANSWER_TIMEOUT_S) as client:
        response = client.post("/pipelines", json={"name": unique("burst"), "config": VALID})
        assert response.status_code == 201, response.text
        pipeline_id = int(response.json()["id"])
        if archived:
            assert client.delete(f"/pipelines/{pipeline_id}").status_code == 200
    return pipeline_id


def assert_responsive(probes: list[int | str]) -> None:
    assert set(probes) == {200}, Counter(probes)


@pytest.mark.parametrize("count", BURSTS)
def test_a_burst_of_retries_of_one_job_has_one_winner_and_never_freezes_the_api(
    burst_api: str, count: int
) -> None:
    # Given
    job_id = failed_job(failing_pipeline())

    # When
    answers, probes = burst(burst_api, count, lambda c: c.post(f"/jobs/{job_id}/retry"))

    # Then
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {202: 1, 409: count - 1}, statuses
    for answer in answers:
        if answer.status_code == 409:
            assert_error(answer, 409, "job_not_failed")
    assert_responsive(probes)
    with httpx.Client(base_url=burst_api, timeout=10) as client:
        assert client.get(f"/jobs/{job_id}").json()["status"] == JobStatus.QUEUED
    fail_again(job_id)


@pytest.mark.parametrize("count", BURSTS)
def test_a_burst_of_invalid_pipeline_updates_answers_422_each_and_never_freezes_the_api(
    burst_api: str, count: int
) -> None:
    # Given
    pipeline_id = new_pipeline(burst_api)

    # When
    answers, probes = burst(
        burst_api, count, lambda c: c.put(f"/pipelines/{pipeline_id}", json={"config": INVALID})
    )

    # Then
    for answer in answers:
        assert_error(answer, 422, "invalid_pipeline_config")
    assert_responsive(probes)
    with httpx.Client(base_url=burst_api, timeout=10) as client:
        assert client.get(f"/pipelines/{pipeline_id}").json()["version"] == 1


@pytest.mark.parametrize("count", BURSTS)
def test_a_burst_of_updates_of_an_archived_pipeline_answers_409_each_and_never_freezes_the_api(
    burst_api: str, count: int
) -> None:
    # Given
    pipeline_id = new_pipeline(burst_api, archived=True)

    # When
    answers, probes = burst(
        burst_api, count, lambda c: c.put(f"/pipelines/{pipeline_id}", json={"config": VALID})
    )

    # Then
    for answer in answers:
        assert_error(answer, 409, "pipeline_archived")
    assert_responsive(probes)


def test_a_row_locked_elsewhere_fails_its_requests_with_503_and_nothing_else(
    burst_api: str,
) -> None:
    # Given: a failed job and a pipeline, their rows locked by a transaction that stays open
    job_id = failed_job(failing_pipeline())
    pipeline_id = new_pipeline(burst_api)
    with (
        session_scope() as holder,
        httpx.Client(base_url=burst_api, timeout=ANSWER_TIMEOUT_S) as client,
    ):
        holder.execute(text("SELECT 1 FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
        holder.execute(
            text("SELECT 1 FROM pipelines WHERE id = :id FOR UPDATE"), {"id": pipeline_id}
        )

        # When
        retried = client.post(f"/jobs/{job_id}/retry")
        updated = client.put(f"/pipelines/{pipeline_id}", json={"config": VALID})
        health = client.get("/health", timeout=1)
        holder.rollback()

        # Then: the lock timeout failed each, and they changed nothing
        for answer in (retried, updated):
            error = assert_error(answer, 503, "database_busy")
            assert "try again in 1 s" in error["message"]
            assert answer.headers["retry-after"] == "1"
        assert health.status_code == 200
        assert client.get(f"/jobs/{job_id}").json()["status"] == JobStatus.FAILED
        assert client.get(f"/pipelines/{pipeline_id}").json()["version"] == 1

        # And once the lock is gone, the same requests go through
        assert client.post(f"/jobs/{job_id}/retry").status_code == 202
        fail_again(job_id)
        assert client.put(f"/pipelines/{pipeline_id}", json={"config": INVALID}).status_code == 422

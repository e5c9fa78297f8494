"""GET /jobs: filters, and cursor pages that stay stable while new jobs arrive."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests import images
from tests.conftest import API_PORT
from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import car_config, create_pipeline
from tests.system import System, wait_for_job

JOBS = 10


@dataclass(frozen=True)
class Jobs:
    """Pipelines of the module's own, with finished jobs, so that counts are known."""

    pipeline_id: int
    jobs: list[dict[str, Any]]  # as GET /jobs/{id} answers, oldest first
    failing_pipeline_id: int
    failed: list[str]


@pytest.fixture(scope="module")
def known(system: System) -> Jobs:
    with httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=60) as api:
        pipeline_id = create_pipeline(api, car_config(160), "listing")
        ids = [
            submit_ok(api, images.jpeg(320, 240, seed=500 + n), pipeline_id) for n in range(JOBS)
        ]
        failing = create_pipeline(api, car_config(160, model_path="/no-such-endpoint"), "failing")
        failed = [submit_ok(api, images.jpeg(64, 48, seed=n), failing) for n in range(2)]
        jobs = [wait_for_job(api, job_id) for job_id in ids]
        assert all(wait_for_job(api, job_id)["status"] == "failed" for job_id in failed)
    assert all(job["status"] == "succeeded" for job in jobs)
    return Jobs(pipeline_id, jobs, failing, failed)


def created(job: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(job["created_at"])


def newest_first(jobs: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(jobs, key=lambda job: (created(job), job["job_id"]), reverse=True)
    return [str(job["job_id"]) for job in ordered]


def listed(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/jobs", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    items: list[dict[str, Any]] = body["items"]
    return items


def test_a_pipelines_jobs_are_listed_newest_first_as_get_answers_them(
    api: httpx.Client, known: Jobs
) -> None:
    # When
    items = listed(api, pipeline_id=known.pipeline_id)

    # Then
    assert [item["job_id"] for item in items] == newest_first(known.jobs)
    by_id = {str(job["job_id"]): job for job in known.jobs}
    assert all(item == by_id[item["job_id"]] for item in items)
    times = [created(item) for item in items]
    assert times == sorted(times, reverse=True)


def test_pages_follow_the_cursor_without_gaps_or_repeats_while_jobs_arrive(
    api: httpx.Client, known: Jobs
) -> None:
    # Given
    expected = newest_first(known.jobs)
    seen: list[str] = []
    cursor = None
    arrived = []

    # When: pages of 3, with a new job submitted to the pipeline before each next page
    while True:
        params: dict[str, Any] = {"pipeline_id": known.pipeline_id, "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        body = api.get("/jobs", params=params).json()
        seen += [item["job_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        arrived.append(
            submit_ok(api, images.jpeg(64, 48, seed=900 + len(arrived)), known.pipeline_id)
        )

    # Then: exactly the jobs there were at the first page, in order; the new ones come first
    assert seen == expected
    assert len(seen) == len(set(seen)) == JOBS
    assert len(arrived) == 3
    for job_id in arrived:
        wait_for_job(api, job_id)
    newest = listed(api, pipeline_id=known.pipeline_id, limit=len(arrived))
    assert {item["job_id"] for item in newest} == set(arrived)


def test_status_filter(api: httpx.Client, known: Jobs) -> None:
    failed = listed(api, pipeline_id=known.failing_pipeline_id, status="failed")
    succeeded = listed(api, pipeline_id=known.failing_pipeline_id, status="succeeded")
    everywhere = listed(api, status="failed", limit=500)

    assert {item["job_id"] for item in failed} == set(known.failed)
    assert succeeded == []
    assert all(item["status"] == "failed" for item in everywhere)
    assert set(known.failed) <= {item["job_id"] for item in everywhere}


def test_detected_filter_splits_the_answered_jobs_by_whether_a_car_was_found(
    api: httpx.Client, known: Jobs
) -> None:
    # When
    found = listed(api, pipeline_id=known.pipeline_id, detected="true", limit=500)
    none = listed(api, pipeline_id=known.pipeline_id, detected="false", limit=500)

    # Then: the seeded mock finds a car in some of these images and none in others
    assert found, "the seeded mock finds a car in some of the images"
    assert none, "the seeded mock answers null for some of the images"
    assert all(item["result"] is not None for item in found)
    assert all(item["result"] is None for item in none)
    ids = {str(job["job_id"]) for job in known.jobs}
    assert ids <= {item["job_id"] for item in found + none}
    assert not {item["job_id"] for item in found} & {item["job_id"] for item in none}
    failed = listed(api, pipeline_id=known.failing_pipeline_id, detected="false")
    assert failed == []  # no model answer was stored for them


def test_created_since_and_until_bound_the_creation_time(api: httpx.Client, known: Jobs) -> None:
    # Given: the time the fourth job was created
    ordered = sorted(known.jobs, key=created)
    middle = ordered[3]["created_at"]

    # When
    since = listed(api, pipeline_id=known.pipeline_id, created_since=middle, limit=500)
    until = listed(api, pipeline_id=known.pipeline_id, created_until=middle, limit=500)

    # Then: since includes the moment, until excludes it
    ids = {str(job["job_id"]) for job in known.jobs}
    assert {item["job_id"] for item in until} == {str(job["job_id"]) for job in ordered[:3]}
    assert {str(job["job_id"]) for job in ordered[3:]} <= {item["job_id"] for item in since}
    assert ids <= {item["job_id"] for item in since + until}


def test_an_unknown_pipeline_lists_nothing(api: httpx.Client) -> None:
    response = api.get("/jobs", params={"pipeline_id": 999999})

    assert response.json() == {"items": [], "next_cursor": None}


def test_limit_defaults_to_50_and_goes_up_to_500(api: httpx.Client, known: Jobs) -> None:
    assert len(listed(api)) <= 50
    assert len(listed(api, limit=500)) <= 500


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    ("params", "code", "mentions"),
    [
        ({"limit": 0}, "invalid_request", "limit"),
        ({"limit": 501}, "invalid_request", "limit"),
        ({"status": "done"}, "invalid_request", "status"),
        ({"detected": "maybe"}, "invalid_request", "detected"),
        ({"pipeline_id": 0}, "invalid_request", "pipeline_id"),
        ({"created_since": "yesterday"}, "invalid_request", "created_since"),
        ({"created_until": "2026-13-01T00:00:00Z"}, "invalid_request", "created_until"),
        (
            {"created_since": "2026-02-01T00:00:00Z", "created_until": "2026-01-01T00:00:00Z"},
            "invalid_request",
            "created_since",
        ),
        ({"cursor": "not a cursor"}, "invalid_cursor", "cursor"),
        ({"cursor": forged(["2026-01-01T00:00:00", "x"])}, "invalid_cursor", "cursor"),
        ({"cursor": forged({"created_at": 1})}, "invalid_cursor", "cursor"),
        ({"cursor": "x" * 201}, "invalid_request", "cursor"),
    ],
    ids=[
        "limit-zero",
        "limit-over-500",
        "unknown-status",
        "detected-not-boolean",
        "pipeline-id-zero",
        "since-not-a-time",
        "until-not-a-date",
        "since-after-until",
        "cursor-garbage",
        "cursor-forged-bad-id",
        "cursor-forged-wrong-shape",
        "cursor-too-long",
    ],
)
def test_bad_filter_values_are_422_in_the_error_shape(
    api: httpx.Client, params: dict[str, Any], code: str, mentions: str
) -> None:
    response = api.get("/jobs", params=params)

    error = assert_error(response, 422, code)
    assert mentions in error["message"]

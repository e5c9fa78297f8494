"""Figures come back rounded where they are made: step durations to 0.1 ms (succeeded and
failed steps alike), the mock's confidence to 4 decimals."""

from __future__ import annotations

import httpx

from tests import images
from tests.helpers.api import submit
from tests.hostile.corpus import png
from tests.system import wait_for_job


def decimals(value: float) -> int:
    """How many decimals `value` is written with (7.5 -> 1, 7.524977000002764 -> 15)."""
    text = repr(value)
    return len(text.split(".", 1)[1]) if "." in text else 0


def test_step_durations_are_given_to_a_tenth_of_a_millisecond(api: httpx.Client) -> None:
    # Given: seeded images until the model finds a car in one (so there is a conf to read)
    jobs = []
    for seed in range(8):
        response = submit(api, images.jpeg(800, 600, seed=700 + seed))
        assert response.status_code == 202, response.text
        jobs.append(wait_for_job(api, response.json()["job_id"]))
        if jobs[-1]["result"] is not None:
            break

    # Then
    for job in jobs:
        assert job["status"] == "succeeded", job
        durations = [step["duration_ms"] for step in job["steps"]]
        assert all(d is not None and d >= 0 and decimals(d) <= 1 for d in durations), durations
    found = [job["result"] for job in jobs if job["result"] is not None]
    assert found, "the model found no car in 8 images"
    assert decimals(found[0]["conf"]) <= 4, found[0]


def test_a_failed_steps_duration_is_rounded_too(api: httpx.Client) -> None:
    # Given: sound PNG chunks around pixel data that is not a deflate stream: step 1 fails
    broken = png(64, 48, idat=b"these bytes are not a deflate stream" * 4)

    # When
    response = submit(api, broken, name="broken.png", content_type="image/png")
    job = wait_for_job(api, response.json()["job_id"])

    # Then
    assert job["status"] == "failed", job
    failed = job["steps"][0]
    assert failed["status"] == "failed"
    assert failed["duration_ms"] is not None
    assert decimals(failed["duration_ms"]) <= 1, failed

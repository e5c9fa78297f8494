"""The new steps through the real API and worker: a pipeline created over HTTP that fits,
detects, drops weak detections, annotates, saves and notifies a webhook."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from common.repositories import CarDetectionRepository, ImageRepository
from tests import images
from tests.conftest import TEST_ENV
from tests.helpers.api import submit_ok
from tests.helpers.webhook import Receiver
from tests.system import System, free_port, make_env, wait_for_job

SECRET = "e2e-webhook-secret"
# With MLMOCK_SEED set the mock gives each image the same answer every run; among these,
# some get a box and some do not (asserted below, so a change of seed shows up).
SEEDS = range(40, 46)


@pytest.fixture(scope="module")
def signing_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API and a worker of their own (own queue) whose settings carry WEBHOOK_SECRET and
    allow webhooks to loopback."""
    env = make_env(
        {
            **TEST_ENV,
            "QUEUE_NAME": f"{TEST_ENV['QUEUE_NAME']}-signed",
            "WEBHOOK_SECRET": SECRET,
            # The receivers listen on loopback, which webhooks reach only when allowed.
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
    )
    other = System(env=env, logs=tmp_path_factory.mktemp("signed"))
    port = free_port()
    try:
        other.start_worker("signed-worker", concurrency=2)
        other.start_api(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        other.stop()


@pytest.fixture(scope="module")
def guarded_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API and a worker of their own whose settings carry WEBHOOK_SECRET and allow no
    internal network: the default policy, with something to sign."""
    env = make_env(
        {**TEST_ENV, "QUEUE_NAME": f"{TEST_ENV['QUEUE_NAME']}-guarded", "WEBHOOK_SECRET": SECRET}
    )
    other = System(env=env, logs=tmp_path_factory.mktemp("guarded"))
    port = free_port()
    try:
        other.start_worker("guarded-worker", concurrency=1)
        other.start_api(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        other.stop()


def create_pipeline(api: httpx.Client, steps: list[dict[str, Any]]) -> int:
    response = api.post(
        "/pipelines",
        json={
            "name": f"new-steps-{uuid.uuid4().hex[:8]}",
            "description": "fit, detect, filter, annotate, save, notify",
            "config": {"datatype": "CarDetection", "steps": steps},
        },
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def full_pipeline(url: str, threshold: float = 0.0, **webhook: Any) -> list[dict[str, Any]]:
    return [
        {"type": "image.fit@v1"},
        {"type": "model.detect_car@v1"},
        {"type": "detections.min_confidence@v1", "params": {"threshold": threshold}},
        {"type": "image.annotate@v1", "params": {"color": "#00ff00", "width": 4}},
        {"type": "storage.save_car_detection@v1"},
        {"type": "notify.webhook@v1", "params": {"url": url, "backoff_s": 0.05, **webhook}},
    ]


def run_jobs(api: httpx.Client, pipeline_id: int) -> list[dict[str, Any]]:
    job_ids = [
        submit_ok(api, images.jpeg(960, 720, seed=s), pipeline_id=pipeline_id) for s in SEEDS
    ]
    return [wait_for_job(api, job_id) for job_id in job_ids]


def left_edge(box: dict[str, int]) -> tuple[int, int]:
    """A point on the left side of the drawn box (its 4 px line lies inside the box)."""
    x = min(box["top_left_x"] + 1, 639)
    y = min(box["top_left_y"] + box["height"] // 2, 479)
    return x, y


def pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as img:
        value = img.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return (value[0], value[1], value[2])


def is_green(rgb: tuple[int, int, int]) -> bool:
    red, green, blue = rgb
    return green > 200 and red < 60 and blue < 60


def webhook_output(job: dict[str, Any]) -> dict[str, Any]:
    """What notify.webhook@v1 reported, as GET /jobs/{id} shows it."""
    (step,) = [step for step in job["steps"] if step["type"] == "notify.webhook@v1"]
    assert step["status"] == "succeeded", step
    output: dict[str, Any] = step["output"]
    return output


def test_full_pipeline_annotates_saves_and_delivers_a_signed_webhook(
    signing_api: httpx.Client, session: Session
) -> None:
    with Receiver() as receiver:
        pipeline_id = create_pipeline(signing_api, full_pipeline(receiver.url))

        jobs = run_jobs(signing_api, pipeline_id)
        calls = {call.json()["job_id"]: call for call in receiver.wait_for(len(jobs))}

    assert [job["status"] for job in jobs] == ["succeeded"] * len(jobs), jobs
    results = [job["result"] for job in jobs]
    assert any(r is None for r in results)
    assert any(r is not None for r in results)
    for job in jobs:
        job_id = str(job["job_id"])
        annotated = ImageRepository(session).get(uuid.UUID(job_id), "annotated")
        processed = ImageRepository(session).get(uuid.UUID(job_id), "processed")
        assert annotated is not None
        assert processed is not None
        assert annotated.content_type == "image/jpeg"
        assert images.size_of(annotated.data) == images.size_of(processed.data) == (640, 480)
        if job["result"] is not None:
            # The box is drawn on the copy; the processed image stays as image.fit made it.
            edge = left_edge(job["result"])
            assert is_green(pixel(annotated.data, edge))
            assert not is_green(pixel(processed.data, edge))
        call = calls[job_id]
        assert call.signed_with(SECRET)
        assert call.json()["datatype"] == "CarDetection"
        assert call.json()["data"]["detection"] == job["result"]
        assert webhook_output(job) == {
            "status": "delivered",
            "http_status": 200,
            "attempts": 1,
            "error": None,
        }


def test_a_threshold_of_1_turns_every_detection_into_no_car(
    signing_api: httpx.Client, session: Session
) -> None:
    with Receiver() as receiver:
        pipeline_id = create_pipeline(signing_api, full_pipeline(receiver.url, threshold=1.0))

        jobs = run_jobs(signing_api, pipeline_id)
        receiver.wait_for(len(jobs))

    # The same images found cars in the test above; below a confidence of 1 none is kept.
    assert [(job["status"], job["result"]) for job in jobs] == [("succeeded", None)] * len(jobs)
    for job in jobs:
        row = CarDetectionRepository(session).for_job(uuid.UUID(str(job["job_id"])))
        assert row is not None
        assert (row.label, row.width) == (0, None)
    assert all(call.json()["data"]["detection"] is None for call in receiver.received)


def test_a_webhook_that_keeps_failing_is_noted_and_the_job_still_succeeds(
    signing_api: httpx.Client, session: Session
) -> None:
    with Receiver([500] * 10) as receiver:
        pipeline_id = create_pipeline(signing_api, full_pipeline(receiver.url, max_attempts=2))

        job = wait_for_job(signing_api, submit_ok(signing_api, images.jpeg(seed=50), pipeline_id))

    assert job["status"] == "succeeded"
    assert len(receiver.received) == 2
    assert webhook_output(job) == {
        "status": "failed",
        "http_status": 500,
        "attempts": 2,
        "error": f"webhook {receiver.url}: answered HTTP 500 (2 attempts)",
    }
    assert CarDetectionRepository(session).for_job(uuid.UUID(str(job["job_id"]))) is not None


def test_without_webhook_secret_nothing_is_sent_and_the_job_says_why(api: httpx.Client) -> None:
    with Receiver() as receiver:
        # A host name: this API allows no loopback address, and a name is checked when sent.
        url = f"http://localhost:{receiver.port}/hooks/jobs"
        pipeline_id = create_pipeline(api, full_pipeline(url))

        job = wait_for_job(api, submit_ok(api, images.jpeg(seed=51), pipeline_id))

    assert job["status"] == "succeeded"
    assert receiver.received == []
    reported = webhook_output(job)
    assert (reported["status"], reported["http_status"], reported["attempts"]) == (
        "not_sent",
        None,
        0,
    )
    assert "not sent: WEBHOOK_SECRET is not set" in reported["error"]


def test_a_webhook_to_an_internal_address_is_refused_and_the_job_says_why(
    guarded_api: httpx.Client,
) -> None:
    with Receiver() as receiver:
        # A host name: a literal loopback address is refused when the pipeline is created; a
        # name is checked when the worker resolves it.
        url = f"http://localhost:{receiver.port}/hooks/jobs"
        pipeline_id = create_pipeline(guarded_api, full_pipeline(url))

        job = wait_for_job(guarded_api, submit_ok(guarded_api, images.jpeg(seed=52), pipeline_id))

    assert job["status"] == "succeeded"
    assert receiver.received == []
    reported = webhook_output(job)
    assert (reported["status"], reported["http_status"], reported["attempts"]) == (
        "not_sent",
        None,
        1,
    )
    assert f"webhook {url}: not sent: " in reported["error"]
    assert "127.0.0.1" in reported["error"]
    assert "public addresses only" in reported["error"]

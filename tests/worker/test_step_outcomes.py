"""How the worker ends jobs that cannot finish, and how it treats tasks delivered twice."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.db import session_scope
from common.queue import RUN_JOB_TASK, client, step_task_name
from common.repositories import (
    CarDetectionRepository,
    ImageRepository,
    JobRepository,
    PipelineRepository,
)
from tests import images
from tests.conftest import API_PORT, TEST_ENV
from tests.helpers.api import submit_ok
from tests.helpers.product import add_pipeline
from tests.hostile.corpus import png
from tests.rows import add_job
from tests.system import System, free_port, make_env, wait_for_job


def test_a_corrupt_image_fails_its_job_at_the_image_step(api: httpx.Client) -> None:
    # Well-formed chunks around pixel data that is not a deflate stream: the gateway reads
    # headers only, so this passes it.
    job_id = submit_ok(api, png(64, 48, idat=b"these bytes are not a deflate stream" * 4))

    job = wait_for_job(api, job_id)

    assert job["status"] == "failed"
    assert job["message"] is None
    assert str(job["error"]).startswith("step 1 (image.fit@v1): cannot decode the image")
    steps = job["steps"]
    assert isinstance(steps, list)
    assert [s["status"] for s in steps] == ["failed", "pending", "pending"]


def test_a_model_server_refusal_fails_the_job_without_retrying(api: httpx.Client) -> None:
    pipeline_id = add_pipeline(
        "refused",
        [
            {"type": "image.fit@v1"},
            {"type": "model.detect_car@v1", "params": {"path": "/no-such-endpoint"}},
            {"type": "storage.save_car_detection@v1"},
        ],
    )

    job = wait_for_job(api, submit_ok(api, images.jpeg(), pipeline_id=pipeline_id))

    assert job["status"] == "failed"
    assert "step 2 (model.detect_car@v1): model server refused the image: HTTP 404" in str(
        job["error"]
    )
    steps = job["steps"]
    assert isinstance(steps, list)
    assert steps[1]["attempts"] == 1


def test_a_stored_config_that_no_longer_validates_fails_the_job_with_the_reason(
    api: httpx.Client,
) -> None:
    pipeline_id = add_pipeline("stale", [{"type": "image.sharpen@v9"}])

    job = wait_for_job(api, submit_ok(api, images.jpeg(), pipeline_id=pipeline_id))

    assert job["status"] == "failed"
    assert "step 1 (image.sharpen@v9): unknown step type" in str(job["error"])


def test_the_earlier_config_format_runs_end_to_end(api: httpx.Client) -> None:
    with session_scope() as session:
        pipeline_id = (
            PipelineRepository(session)
            .add(
                name=f"legacy-{uuid.uuid4().hex[:6]}",
                description="stored in the earlier implementation's format",
                config={
                    "steps": '{"1": "ImageHandler", "2": "MachineLearningModelRequest", '
                    '"3": "SaveCarDetection"}',
                    "datatype": "CarDetection",
                },
            )
            .id
        )

    job = wait_for_job(api, submit_ok(api, images.jpeg(), pipeline_id=pipeline_id))

    assert job["status"] == "succeeded"
    steps = job["steps"]
    assert isinstance(steps, list)
    assert [s["type"] for s in steps] == [
        "image.fit@v1",
        "model.detect_car@v1",
        "storage.save_car_detection@v1",
    ]


def test_tasks_delivered_again_after_success_change_nothing(
    api: httpx.Client, session: Session
) -> None:
    job_id = submit_ok(api, images.jpeg(seed=7))
    first = wait_for_job(api, job_id)
    assert first["status"] == "succeeded"
    before = CarDetectionRepository(session).for_job(uuid.UUID(job_id))
    assert before is not None

    client().send_task(RUN_JOB_TASK, args=[job_id], queue=TEST_ENV["QUEUE_NAME"])
    for position, step in enumerate(first["steps"], start=1):  # type: ignore[arg-type]
        client().send_task(
            step_task_name(step["type"]), args=[job_id, position], queue=TEST_ENV["QUEUE_NAME"]
        )
    # A job submitted afterwards finishing means the worker has consumed the re-sent tasks.
    assert wait_for_job(api, submit_ok(api, images.jpeg(seed=8)))["status"] == "succeeded"

    again = api.get(f"/jobs/{job_id}").json()
    assert again == first
    session.expire_all()
    after = CarDetectionRepository(session).for_job(uuid.UUID(job_id))
    assert after is not None
    assert (after.id, after.created_at) == (before.id, before.created_at)


def test_a_run_delivered_again_goes_on_past_the_steps_it_finds_done(
    api: httpx.Client, session: Session
) -> None:
    pipeline_id = add_pipeline(
        "two-cpu-steps", [{"type": "image.fit@v1"}, {"type": "image.grayscale@v1"}]
    )
    # A job whose first step succeeded and whose second did not start, as when a task running
    # both is delivered again after a worker died between them. No task was sent for it.
    with session_scope() as setup:
        job = add_job(setup, pipeline_id, ["image.fit@v1", "image.grayscale@v1"])
        ImageRepository(setup).put(job.id, "original", "image/jpeg", images.jpeg(seed=23))
        job.steps[0].status = "succeeded"
        job_id = str(job.id)

    client().send_task(
        step_task_name("image.fit@v1"), args=[job_id, 1, 2], queue=TEST_ENV["QUEUE_NAME"]
    )
    job_view = wait_for_job(api, job_id)

    assert job_view["status"] == "succeeded"
    steps = job_view["steps"]
    assert isinstance(steps, list)
    # The fit was not run again; the grayscale step ran once, in the same task.
    assert [(s["status"], s["attempts"]) for s in steps] == [("succeeded", 0), ("succeeded", 1)]
    processed = ImageRepository(session).get(uuid.UUID(job_id), "processed")
    assert processed is not None


def test_no_transaction_stays_open_while_the_model_server_answers(api: httpx.Client) -> None:
    # The mock answers after MLMOCK_LATENCY_MS (150 ms). Sampled meanwhile: any session of the
    # test database that has sat idle inside a transaction for over 50 ms.
    watch = sa.create_engine(TEST_ENV["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    sample = sa.text(
        """
        SELECT (SELECT now() - started_at > interval '60 ms' FROM job_steps
                 WHERE job_id = :job_id AND position = 2 AND status = 'running') AS asking,
               (SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND state LIKE 'idle in transaction%'
                   AND now() - state_change > interval '50 ms') AS holding
        """
    )
    job_id = submit_ok(api, images.jpeg(seed=31))
    samples: list[int] = []
    try:
        with watch.connect() as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                asking, holding = conn.execute(sample, {"job_id": job_id}).one()
                if asking:
                    samples.append(holding)
                elif samples:
                    break  # the model step is over
                time.sleep(0.005)
    finally:
        watch.dispose()

    assert wait_for_job(api, job_id)["status"] == "succeeded"
    assert samples, "never saw the job waiting on the model server"
    assert set(samples) == {0}


@pytest.fixture
def unreachable_model(system: System, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A second worker and API on their own queue, whose model server address answers nothing."""
    queue = f"{TEST_ENV['QUEUE_NAME']}-dead-model"
    port = free_port()
    env = make_env(
        {
            **TEST_ENV,
            "QUEUE_NAME": queue,
            "MODEL_URL": f"http://127.0.0.1:{free_port()}",
            "STEP_MAX_RETRIES": "2",
            "STEP_RETRY_BACKOFF_S": "0.05",
        }
    )
    other = System(env=env, logs=tmp_path_factory.mktemp("dead-model"))
    try:
        other.start_worker("dead-model-worker", concurrency=1)
        other.start_api(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            yield api
    finally:
        other.stop()
    assert port != API_PORT


def test_an_unreachable_model_server_is_retried_then_fails_the_job(
    unreachable_model: httpx.Client,
) -> None:
    job = wait_for_job(unreachable_model, submit_ok(unreachable_model, images.jpeg()))

    assert job["status"] == "failed"
    error = str(job["error"])
    assert error.startswith("step 2 (model.detect_car@v1): model server unreachable")
    assert error.endswith("(gave up after 3 attempts)")
    steps = job["steps"]
    assert isinstance(steps, list)
    assert steps[1]["attempts"] == 3
    assert [s["status"] for s in steps] == ["succeeded", "failed", "pending"]


@pytest.mark.parametrize(
    "args",
    [
        ["not-a-uuid", 1],
        [None, 1],
        ["JOB", "1"],
        ["JOB", 1.0],
        ["JOB", True],
        ["JOB", 1, "3"],
        ["JOB", 2, 1],
    ],
)
def test_malformed_task_arguments_are_refused_and_change_no_job(
    api: httpx.Client, system: System, args: list[Any]
) -> None:
    # A queued job no task was sent for: only the malformed task could touch it.
    with session_scope() as session:
        job = add_job(session, 1, ["image.fit@v1", "model.detect_car@v1", "x@v1"])
        ImageRepository(session).put(job.id, "original", "image/jpeg", images.jpeg(seed=21))
        job_id = str(job.id)
    sent = [job_id if arg == "JOB" else arg for arg in args]
    crashes_before = system.log("worker").count("raised unexpected")

    client().send_task(step_task_name("image.fit@v1"), args=sent, queue=TEST_ENV["QUEUE_NAME"])
    # A job submitted afterwards finishing means the worker has consumed the odd task.
    assert wait_for_job(api, submit_ok(api, images.jpeg(seed=22)))["status"] == "succeeded"

    with session_scope() as session:
        jobs = JobRepository(session)
        untouched = jobs.get(uuid.UUID(job_id))
        assert untouched is not None
        assert untouched.status == "queued"
        assert [step.attempts for step in untouched.steps] == [0, 0, 0]
        jobs.fail(untouched, "made by a test")
    # Refused as a bad message, not crashed on.
    assert system.log("worker").count("raised unexpected") == crashes_before

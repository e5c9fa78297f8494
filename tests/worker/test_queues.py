"""Steps that compute go to the CPU queue, steps that wait to the I/O queue; a deployment can
serve each with its own kind of worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from common.pipeline import default_registry
from common.queue import celery_config, queue_names, step_queue, step_runs
from common.settings import Settings
from tests import images
from tests.conftest import TEST_ENV
from tests.helpers.api import QueueSpy, submit
from tests.system import System, free_port, make_env, wait_for_job

pytestmark = pytest.mark.system

WAITING_STEPS = {"model.detect_car@v1", "storage.save_car_detection@v1", "notify.webhook@v1"}


def test_the_steps_that_wait_go_to_the_io_queue_and_the_rest_to_the_cpu_queue() -> None:
    settings = Settings(queue_name="jobs")

    queues = {
        step.manifest.type_id: step_queue(step.manifest.type_id, settings)
        for step in default_registry().steps
    }

    assert {t for t, q in queues.items() if q == "jobs.io"} == WAITING_STEPS
    assert {q for t, q in queues.items() if t not in WAITING_STEPS} == {"jobs"}
    # A worker started without -Q serves both.
    declared = [queue.name for queue in celery_config(settings)["task_queues"]]
    assert declared == list(queue_names(settings)) == ["jobs", "jobs.io"]


@pytest.fixture
def split(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An API, a process-pool worker on the CPU queue only and a thread-pool worker on the I/O
    queue only, on a queue name of their own."""
    queue = f"{TEST_ENV['QUEUE_NAME']}-split"
    port = free_port()
    deployment = System(
        env=make_env({**TEST_ENV, "QUEUE_NAME": queue}), logs=tmp_path_factory.mktemp("split")
    )
    try:
        deployment.start_worker("cpu-worker", 1, "-Q", queue)
        deployment.start_worker("io-worker", 4, "-Q", f"{queue}.io", "--pool", "threads")
        deployment.start_api(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            yield deployment, api, queue
    finally:
        deployment.stop()


def test_a_split_deployment_runs_each_step_on_its_own_kind_of_worker(split: Any) -> None:
    deployment, api, queue = split
    client = redis.Redis.from_url(TEST_ENV["BROKER_URL"])
    spy = QueueSpy(client, queue)
    spy.start()
    try:
        jobs = [submit(api, images.jpeg(seed=seed)).json()["job_id"] for seed in range(3)]
        finished = [wait_for_job(api, job_id) for job_id in jobs]
    finally:
        pushed = spy.collect()
        client.close()

    assert [job["status"] for job in finished] == ["succeeded"] * 3
    # One task per run of adjacent steps on a queue: the fit on the CPU queue, then the model
    # call and the detection's row in one task on the I/O queue; once per job.
    by_task = [(p["task"], p["queue"], re.findall(r", (\d+)", p["args"])) for p in pushed]
    assert sorted(by_task) == sorted(
        [
            *[("pipeline.step.image.fit@v1", queue, ["1"])] * 3,
            *[("pipeline.step.model.detect_car@v1", f"{queue}.io", ["2", "3"])] * 3,
        ]
    )
    # And each worker ran only its own kind of step (the worker logs "step <n> (<type>) done").
    cpu_log, io_log = deployment.log("cpu-worker"), deployment.log("io-worker")

    def done(log: str, position: int, type_id: str) -> int:
        return log.count(f"step {position} ({type_id}) done")

    car_steps = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
    assert [done(cpu_log, n, t) for n, t in enumerate(car_steps, start=1)] == [3, 0, 0]
    assert [done(io_log, n, t) for n, t in enumerate(car_steps, start=1)] == [0, 3, 3]


def test_adjacent_steps_on_the_same_queue_make_one_run() -> None:
    settings = Settings(queue_name="jobs")
    steps = [
        (1, "image.fit@v1"),
        (2, "model.detect_car@v1"),
        (3, "storage.save_car_detection@v1"),
        (4, "image.grayscale@v1"),
        (5, "notify.webhook@v1"),
    ]

    assert step_runs(steps, settings) == [
        ("jobs", [(1, "image.fit@v1")]),
        ("jobs.io", [(2, "model.detect_car@v1"), (3, "storage.save_car_detection@v1")]),
        ("jobs", [(4, "image.grayscale@v1")]),
        ("jobs.io", [(5, "notify.webhook@v1")]),
    ]
    # Only adjacent positions: steps left after a retry may have gaps between them.
    gapped = [(2, "model.detect_car@v1"), (4, "storage.save_car_detection@v1")]
    assert [positions for _, positions in step_runs(gapped, settings)] == [
        [(2, "model.detect_car@v1")],
        [(4, "storage.save_car_detection@v1")],
    ]

"""A running step's lease: a step's message delivered again while the step runs does not run it
twice, and a step whose worker died runs again once its lease lapsed.

Each test starts a deployment of its own (the mock, a process-pool worker on the CPU queue, a
thread-pool worker on the I/O queue, the API) with a 2 s lease and a slow model, as compose
and `make run` lay them out.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from common.logs import job_id_var, step_var
from common.queue import client, step_task_name
from common.settings import Settings
from tests import images
from tests.conftest import TEST_ENV
from tests.helpers.api import submit_ok
from tests.system import System, free_port, make_env, wait_for_job, wait_until
from worker import logcontext
from worker.lease import check_visibility_timeout, longest_task_s

pytestmark = pytest.mark.system

LEASE = {
    "STEP_LEASE_S": "2",
    "RECOVERY_GRACE_S": "3",
    "RECOVERY_INTERVAL_S": "0.5",
}
CLASH = "was created in a different Context"


@dataclass
class Deployment:
    system: System
    api: httpx.Client
    queue: str

    def start_io_worker(self) -> None:
        self.system.start_worker("io-worker", 4, "-Q", f"{self.queue}.io", "--pool", "threads")

    def model_calls(self, job_id: str) -> int:
        """Detections the mock answered for the job (it logs each with the job id)."""
        return self.system.log("mlmock").count(f"detection for job {job_id}:")

    def logs(self) -> str:
        return self.system.log("cpu-worker") + self.system.log("io-worker")


@contextmanager
def deployment(logs: Path, **overrides: str) -> Iterator[Deployment]:
    queue = f"{TEST_ENV['QUEUE_NAME']}-lease-{uuid.uuid4().hex[:6]}"
    mlmock_port, api_port = free_port(), free_port()
    env = make_env(
        {
            **TEST_ENV,
            **LEASE,
            "QUEUE_NAME": queue,
            "MODEL_URL": f"http://127.0.0.1:{mlmock_port}",
            **overrides,
        }
    )
    system = System(env=env, logs=logs)
    try:
        system.start_mlmock(mlmock_port)
        system.start_worker("cpu-worker", 1, "-Q", queue)
        d = Deployment(system, httpx.Client(base_url=f"http://127.0.0.1:{api_port}"), queue)
        d.start_io_worker()
        system.start_api(api_port)
        yield d
        d.api.close()
    finally:
        system.stop()


def step_view(api: httpx.Client, job_id: str, position: int) -> dict[str, object]:
    steps = api.get(f"/jobs/{job_id}").json()["steps"]
    assert isinstance(steps, list)
    step: dict[str, object] = steps[position - 1]
    return step


def wait_for_model_step(api: httpx.Client, job_id: str) -> None:
    wait_until(
        lambda: step_view(api, job_id, 2)["status"] == "running", 30, "the model step running"
    )


def test_a_step_delivered_again_while_it_runs_is_not_run_twice(tmp_path: Path) -> None:
    # At DEBUG, Celery's own line per delivery ("Task ...[id] retry", "... succeeded") is written:
    # at INFO, only ours, which do not name the delivery (common.logs.PER_TASK_LOGGERS).
    slow = {"MLMOCK_LATENCY_MS": "4000", "MODEL_TIMEOUT_S": "10"}
    with deployment(tmp_path, LOG_LEVEL="DEBUG", **slow) as d:
        job_id = submit_ok(d.api, images.jpeg(seed=41))
        wait_for_model_step(d.api, job_id)
        # The same task as the one running (steps 2 and 3 on the I/O queue), sent again.
        duplicate = str(uuid.uuid4())
        client().send_task(
            step_task_name("model.detect_car@v1"),
            args=[job_id, 2, 3],
            queue=f"{d.queue}.io",
            task_id=duplicate,
        )

        job = wait_for_job(d.api, job_id, timeout=30)
        wait_until(
            lambda: f"[{duplicate}] succeeded" in d.system.log("io-worker"),
            30,
            "the duplicate handled",
            interval=0.2,
        )

        assert job["status"] == "succeeded"
        assert step_view(d.api, job_id, 2)["attempts"] == 1
        assert d.model_calls(job_id) == 1
        # It waited for the lease rather than finding the step done at once.
        assert f"[{duplicate}] retry" in d.system.log("io-worker")


def test_a_step_longer_than_the_visibility_timeout_runs_once(tmp_path: Path) -> None:
    # Redis delivers the model step's message again every ~2 s while the step takes 7 s.
    slow = {"MLMOCK_LATENCY_MS": "7000", "MODEL_TIMEOUT_S": "15"}
    with deployment(tmp_path, BROKER_VISIBILITY_TIMEOUT_S="2", **slow) as d:
        job_id = submit_ok(d.api, images.jpeg(seed=42))

        job = wait_for_job(d.api, job_id, timeout=60)

        assert job["status"] == "succeeded"
        assert step_view(d.api, job_id, 2)["attempts"] == 1
        assert d.model_calls(job_id) == 1
        logs = d.logs()
        # the message was delivered again meanwhile, and put off while the lease held
        assert "step 2 is held by another run; this delivery tries again in" in logs
        assert "BROKER_VISIBILITY_TIMEOUT_S=2 is shorter than the longest" in logs
        assert CLASH not in logs


def test_a_step_whose_worker_was_killed_runs_again_once_and_the_job_succeeds(
    tmp_path: Path,
) -> None:
    # After the kill, both the recovery sweep and Redis's redelivery hand the step over again;
    # only one of them may run it.
    slow = {"MLMOCK_LATENCY_MS": "4000", "MODEL_TIMEOUT_S": "10"}
    with deployment(tmp_path, BROKER_VISIBILITY_TIMEOUT_S="2", **slow) as d:
        job_id = submit_ok(d.api, images.jpeg(seed=43))
        wait_for_model_step(d.api, job_id)
        d.system.stop("io-worker", sig=signal.SIGKILL)
        d.start_io_worker()

        job = wait_for_job(d.api, job_id, timeout=60)

        assert job["status"] == "succeeded"
        assert step_view(d.api, job_id, 2)["attempts"] == 2
        # Redelivered copies that arrive after the success change nothing.
        time.sleep(3)
        assert step_view(d.api, job_id, 2)["attempts"] == 2


def test_two_runs_of_one_task_in_two_threads_keep_their_own_log_context() -> None:
    # Thread A enters, then B enters with the same task id, then A leaves before B does.
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, object] = {}
    task = "pipeline.step.model.detect_car@v1"

    def run(name: str, job: str, first: threading.Event, then: threading.Event) -> None:
        try:
            first.wait(5)
            logcontext.enter("same-task-id", task, [job, 2])
            then.set()
            if name == "b":
                a_left.wait(5)
            else:
                b_entered.wait(5)
            seen[name] = job_id_var.get()
            logcontext.leave("same-task-id")
            seen[f"{name}-after"] = (job_id_var.get(), step_var.get())
            if name == "a":
                a_left.set()
        except BaseException as exc:
            errors.append(exc)

    started = threading.Event()
    started.set()
    a = threading.Thread(target=run, args=("a", "job-a", started, a_entered))
    b = threading.Thread(target=run, args=("b", "job-b", a_entered, b_entered))
    a.start()
    b.start()
    a.join(10)
    b.join(10)

    assert errors == []
    assert (seen["a"], seen["b"]) == ("job-a", "job-b")
    assert seen["a-after"] == seen["b-after"] == (None, None)


@pytest.mark.parametrize(
    ("visibility", "problem"), [(300, False), (20, True)], ids=["default", "too-short"]
)
def test_the_visibility_timeout_is_checked_against_the_longest_task(
    visibility: int, problem: bool
) -> None:
    settings = Settings(
        broker_url="redis://127.0.0.1:6379/15",
        broker_visibility_timeout_s=visibility,
        model_timeout_s=10,
    )

    # The model call, five webhook attempts of 30 s with 10 s between them, and a margin.
    assert longest_task_s(settings) == 10 + 5 * 30 + 4 * 10 + 30
    assert (check_visibility_timeout(settings) is not None) is problem

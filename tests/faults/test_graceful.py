"""SIGTERM stops a process gracefully: work in flight finishes, nothing has to be redone."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests import images
from tests.conftest import TEST_ENV
from tests.faults.harness import cluster, settle

pytestmark = pytest.mark.system


def test_sigterm_to_a_worker_lets_running_steps_finish(tmp_path: Path) -> None:
    with cluster(tmp_path, MLMOCK_LATENCY_MS="800", MODEL_TIMEOUT_S="5") as c:
        ids = [
            uuid.UUID(
                c.api.post(
                    "/jobs",
                    files={"image": ("a.jpg", images.jpeg(seed=n))},
                    data={"pipeline_id": "1"},
                ).json()["job_id"]
            )
            for n in range(6)
        ]
        engine = sa.create_engine(TEST_ENV["DATABASE_URL"])
        in_model_step = sa.text(
            "SELECT count(*) FROM job_steps WHERE job_id = ANY(:ids) "
            "AND position = 2 AND status = 'running'"
        )
        deadline = time.monotonic() + 20
        with engine.connect() as conn:
            while conn.execute(in_model_step, {"ids": ids}).scalar_one() == 0:
                assert time.monotonic() < deadline, "no job reached the model step"
                time.sleep(0.02)

        c.system.stop("worker", sig=signal.SIGTERM, timeout=60)
        log = (tmp_path / "worker.log").read_text()
        c.restart_worker()
        verdict = settle([str(job_id) for job_id in ids], timeout_s=60)
        with engine.connect() as conn:
            redone = conn.execute(
                sa.text("SELECT count(*) FROM job_steps WHERE job_id = ANY(:ids) AND attempts > 1"),
                {"ids": ids},
            ).scalar_one()
        engine.dispose()

    assert "warm shutdown" in log.lower()
    assert verdict.statuses["succeeded"] == len(ids)
    assert redone == 0, "a step interrupted by SIGTERM had to run again"


def test_sigterm_to_the_api_finishes_requests_in_flight(tmp_path: Path) -> None:
    with cluster(tmp_path, MLMOCK_LATENCY_MS="1500", MODEL_TIMEOUT_S="5") as c:
        answers: list[httpx.Response] = []

        def slow_request() -> None:
            answers.append(
                c.api.post(
                    "/process_image/",
                    params={"pipeline_id": 1},
                    files={"image": ("a.jpg", images.jpeg(seed=99))},
                )
            )

        request = threading.Thread(target=slow_request)
        request.start()
        time.sleep(0.5)  # the request is in flight: its job waits on the slow model
        api = c.system.procs["api"]
        api.send_signal(signal.SIGTERM)
        request.join(30)
        api.wait(30)

        assert answers, "the request in flight got no answer"
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["message"] == "success"
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert api.returncode in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):
            c.api.get("/health")

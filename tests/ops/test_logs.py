"""One job's story in every service's log: its id on a line of the API, the worker and the mock."""

from __future__ import annotations

import httpx

from tests.ops.helpers import run_jobs
from tests.system import System


def test_a_job_id_is_on_lines_of_every_service(api: httpx.Client, system: System) -> None:
    job = run_jobs(api, 1, 1)[0]
    job_id = str(job["job_id"])
    api.get(f"/jobs/{job_id}")

    lines = {
        name: [line for line in system.log(name).splitlines() if job_id in line]
        for name in ("api", "worker", "mlmock")
    }

    assert job["status"] == "succeeded"
    assert any("handed to the workers" in line for line in lines["api"]), lines["api"]
    # uvicorn's access line of GET /jobs/{id}, in the same format, tagged with the job
    assert any(f"[job={job_id}]" in line and "GET /jobs/" in line for line in lines["api"])
    # Celery's own lines about each task, from the worker's main process, tagged with the
    # task's first step; each step's own line, from the pool, tagged with the step (the
    # detection's row is stored by the model call's task: adjacent steps on one queue).
    steps = ("image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1")
    for position, step in enumerate(steps, start=1):
        tag = f"[job={job_id} step={position}:{step}]"
        whats = ("done in",) if position == 3 else ("received", "done in", "succeeded in")
        for what in whats:
            assert any(tag in line and what in line for line in lines["worker"]), (tag, what)
    assert any(
        f"[job={job_id}]" in line and "detection for job" in line for line in lines["mlmock"]
    )

"""The workers' tasks: one per step type runs a step of a job, and the adjacent steps after it
that go to the same queue (worker.runner); `pipeline.run_job` plans a job's chain.

A job is handed over as the chain of its tasks (common.queue.enqueue_job), so the planning task
only serves messages sent that way before, and jobs with no step left. Tasks pass the job id and
step positions (the first, and the last of a run); data and images go through the database.
Their log records carry the job id and step by worker.logcontext, from Celery's signals.

A task that cannot reach the database is retried by Celery (`autoretry_for`), after 0 to 1,
2, 4 ... s (at most 10 s, full jitter: `retry_backoff`, `retry_jitter`), DB_OUTAGE_MAX_RETRIES
times; then the job keeps its state and the recovery sweep hands it over again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task

from common.pipeline import StepManifest, registry
from common.queue import RUN_JOB_TASK, enqueue_job, step_task_name
from common.settings import get_settings
from worker.celery_app import app
from worker.claim import plan
from worker.records import JobFailedError
from worker.runner import DB_UNAVAILABLE, StepRun

log = logging.getLogger(__name__)

RETRY_OPTIONS: dict[str, Any] = {
    "bind": True,
    "throws": (JobFailedError,),
    "autoretry_for": DB_UNAVAILABLE,
    "retry_backoff": 1,
    "retry_backoff_max": 10,
    "retry_jitter": True,
    "max_retries": get_settings().db_outage_max_retries,
}


def _job_id(value: Any) -> uuid.UUID:
    """Messages are JSON from anyone who can reach the broker: check what they carry."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise JobFailedError(f"task argument is not a job id: {value!r}") from exc


@app.task(name=RUN_JOB_TASK, **RETRY_OPTIONS)
def run_job(self: Task, job_id: str) -> None:
    """Check the job's pipeline and send the chain of its steps still to run."""
    jid = _job_id(job_id)
    remaining = plan(jid)
    if remaining:
        enqueue_job(jid, remaining, app)
        log.info("chained %d step(s) from step %d", len(remaining), remaining[0][0])


def _register_step_task(manifest: StepManifest) -> None:
    @app.task(name=step_task_name(manifest.type_id), **RETRY_OPTIONS)
    def step_task(self: Task, job_id: str, position: int, last: int | None = None) -> None:
        """Run step `position` (from 1) of the job, and the steps after it up to `last`."""
        jid = _job_id(job_id)
        if type(position) is not int:
            raise JobFailedError(f"task argument is not a step position: {position!r}")
        if last is not None and (type(last) is not int or last < position):
            raise JobFailedError(f"task argument is not a last step position: {last!r}")
        run = StepRun(self, jid, position, position if last is None else last)
        run.run(manifest.reads_image)


for _step in registry().steps:
    _register_step_task(_step.manifest)

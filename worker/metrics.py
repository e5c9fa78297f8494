"""Worker metrics: how long steps take, by step type and outcome, and retries by cause.

Tasks run in the pool's processes, so the metrics use prometheus_client's multiprocess mode:
at start-up the worker's main process takes its port, empties a folder of its own and points
PROMETHEUS_MULTIPROC_DIR at it before the pool forks; every process then writes its values to
files there, the main process serves their sum on WORKER_METRICS_PORT, and a pool process that
exits is marked dead (`worker_process_shutdown`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy.exc import InterfaceError, OperationalError

from common.logs import STEP_TASK_PREFIX
from common.pipeline import TransientStepError
from common.queue import RUN_JOB_TASK
from common.settings import Settings
from worker.lease import StepLeasedError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

STEP_DURATION = Histogram(
    "pipeline_step_duration_seconds",
    "Time a step took in the worker, from its claim to its result, by step type and outcome.",
    ["step", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    "pipeline_task_retries",
    "Task retries by step type (`plan` for pipeline.run_job) and cause.",
    ["step", "cause"],
)


def step_of(task_name: str) -> str | None:
    """The step type a task runs: `image.fit@v1` for `pipeline.step.image.fit@v1`, `plan` for
    the planning task, None for any other task."""
    if task_name.startswith(STEP_TASK_PREFIX):
        return task_name.removeprefix(STEP_TASK_PREFIX)
    return "plan" if task_name == RUN_JOB_TASK else None


def retry_cause(exc: BaseException | None) -> str:
    if isinstance(exc, TransientStepError):
        return "transient_step_error"  # the model server or another service failing for now
    if isinstance(exc, OperationalError | InterfaceError):
        return "database_unavailable"
    if isinstance(exc, StepLeasedError):
        return "step_leased"  # delivered again while another run holds the step
    return "other"


def step_finished(step: str, outcome: str, seconds: float) -> None:
    """A step a worker started ended: `outcome` is succeeded, failed, retried or superseded."""
    STEP_DURATION.labels(step=step, outcome=outcome).observe(seconds)


def retried(step: str, exc: BaseException | None) -> None:
    """A task is sent again because of `exc`, met in `step` (a step type, or `plan`)."""
    RETRIES.labels(step=step, cause=retry_cause(exc)).inc()


def multiproc_folder(settings: Settings, port: int) -> Path:
    """PROMETHEUS_MULTIPROC_DIR if set (one per worker), else a folder of this port's under
    DATA_DIR: the port is this worker's alone, so is the folder."""
    given = os.environ.get(MULTIPROC_ENV)
    return Path(given) if given else settings.data_dir / "prometheus" / f"worker-{port}"


def serve(settings: Settings) -> bool:
    """In the main process, before the pool starts: serve the pool's metrics. A port taken by
    another worker on the host is logged and the worker goes on without an endpoint."""
    port = settings.worker_metrics_port
    if port == 0:
        log.info("worker metrics are off (WORKER_METRICS_PORT=0)")
        return False
    registry = CollectorRegistry()
    try:
        start_http_server(port, addr=settings.worker_metrics_host, registry=registry)
    except OSError as exc:
        log.warning(
            "worker metrics: cannot listen on %s:%d (%s); this worker's metrics are not served",
            settings.worker_metrics_host,
            port,
            exc,
        )
        return False
    folder = multiproc_folder(settings, port)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # the library's rule: start from an empty folder
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)  # inherited by the pool's processes
    # prometheus_client picks its value class when first imported, which the celery command
    # does before this app is loaded (Flower's plugin imports it): pick again, now.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    log.info(
        "worker metrics on http://%s:%d/metrics (%s)", settings.worker_metrics_host, port, folder
    )
    return True


def process_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]

"""The API's Prometheus metrics: what this process counts, and what the database and the broker
say at scrape time.

Counted here: jobs handed to the workers and the latency of the submit routes. Read at each
scrape, so that every API process answers the same and the figures hold across worker hosts:
jobs by pipeline and status, finished jobs by outcome, and the queue's depth. With
PROMETHEUS_MULTIPROC_DIR set (several API processes on a host: set it before they start, to an
empty folder), the counted metrics are the sum over the host's processes, as prometheus_client
documents for multiprocess mode.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.db import session_scope
from common.models import JobStatus
from common.queue import check_broker, queue_depths
from common.repositories import JobRepository

log = logging.getLogger(__name__)

# POST routes that submit jobs; their latency includes any waiting they do (`wait`, compat).
SUBMIT_ROUTES = frozenset({"/jobs", "/jobs/batch", "/process_image/"})

SUBMITTED = Counter(
    "pipeline_jobs_submitted",
    "Jobs the API handed to the workers, by pipeline; kind: new, or retry (POST /jobs/{id}/retry).",
    ["pipeline", "kind"],
)
SUBMIT_LATENCY = Histogram(
    "pipeline_submit_duration_seconds",
    "Time the API took to answer a submit request, by route and HTTP status.",
    ["route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def job_submitted(job_id: uuid.UUID, pipeline_id: int, kind: str) -> None:
    """Count and log a job handed to the workers: `kind` is new, or retry."""
    SUBMITTED.labels(pipeline=str(pipeline_id), kind=kind).inc()
    log.info(
        "job %s handed to the workers (pipeline %d, %s)",
        job_id,
        pipeline_id,
        kind,
        extra={"job_id": str(job_id)},
    )


class SubmitTimer:
    """ASGI middleware: the submit latency histogram, from the request to the response's end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in SUBMIT_ROUTES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            SUBMIT_LATENCY.labels(route=path, status=str(status)).observe(
                time.perf_counter() - started
            )


class JobsCollector(Collector):
    """Jobs by pipeline and status, and the finished ones by outcome, counted in the database.

    A retried job leaves `failed` for `queued`: the failed count then drops, which Prometheus
    reads as a counter reset of that series. A job the retention sweep deleted
    (JOB_RETENTION_DAYS) leaves `pipeline_jobs` but stays counted in `pipeline_jobs_finished`.
    """

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("pipeline_database_up", "1 if the database answered the scrape.")
        try:
            with session_scope() as session:
                stored, expired = JobRepository(session).counts_by_pipeline_and_status()
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying so
            log.warning("metrics: cannot count jobs: %r", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        jobs = GaugeMetricFamily(
            "pipeline_jobs",
            "Jobs in the database by pipeline and status.",
            labels=["pipeline", "status"],
        )
        finished = CounterMetricFamily(
            "pipeline_jobs_finished",
            "Jobs that ended, by pipeline and outcome (succeeded, failed), from the database.",
            labels=["pipeline", "outcome"],
        )
        ended: Tally[tuple[str, str]] = Tally()
        for pipeline_id, status, count in stored:
            jobs.add_metric([str(pipeline_id), status], count)
            if JobStatus(status).terminal:
                ended[str(pipeline_id), status] += count
        for pipeline_id, outcome, count in expired:
            ended[str(pipeline_id), outcome] += count
        for labels, count in sorted(ended.items()):
            finished.add_metric(list(labels), count)
        yield from (up, jobs, finished)


class QueueCollector(Collector):
    """Messages waiting in each of the jobs' queues (CPU and I/O), asked of the broker at
    scrape time."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("pipeline_broker_up", "1 if the broker answered the scrape.")
        depth = GaugeMetricFamily(
            "pipeline_queue_depth",
            "Messages waiting in the queue (not those a worker holds).",
            labels=["queue"],
        )
        try:
            check_broker(timeout=1.0)
            for name, count in queue_depths().items():
                depth.add_metric([name], count)
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying so
            log.warning("metrics: cannot read the queue's depth: %r", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, depth)


class _ThisProcess(Collector):
    """The process's own registry (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition for one scrape, in the format the scraper asked for."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(JobsCollector())
    registry.register(QueueCollector())
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type

"""Scraping Prometheus endpoints, and clusters of our own for the operations tests."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests import images
from tests.conftest import TEST_ENV
from tests.system import System, free_port, http_ok, make_env, wait_for_job, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PHOTO = images.jpeg(320, 240, seed=7)
CAR_STEPS = ("image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1")
# Not "worker": the suite's own worker has that name, and node names must differ.
WORKER = "opsworker"


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled series not yet seen (it starts at 0)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def has(samples: Samples, name: str, **labels: str) -> bool:
    return (name, frozenset(labels.items())) in samples


def run_jobs(api: httpx.Client, pipeline_id: int, count: int) -> list[dict[str, object]]:
    ids = []
    for _ in range(count):
        response = api.post(
            "/jobs", files={"image": ("car.jpg", PHOTO)}, data={"pipeline_id": str(pipeline_id)}
        )
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["job_id"]))
    return [wait_for_job(api, job_id, timeout=60) for job_id in ids]


def wait_idle(timeout: float = 60) -> None:
    """Wait (up to `timeout`) for the jobs other tests left running to end, so that the step
    metrics move by this test's jobs alone."""
    engine = sa.create_engine(TEST_ENV["DATABASE_URL"])
    query = sa.text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query).scalar_one() == 0:
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()


def json_lines(text: str) -> list[dict[str, object]]:
    """The log's JSON lines (Celery prints its start-up banner as plain text)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def node_name(name: str) -> str:
    """The Celery node name System.start_worker gives a worker it starts as `name`."""
    return f"{name}-{os.getpid()}@{socket.gethostname()}"


@dataclass
class Cluster:
    system: System
    api: httpx.Client
    api_url: str
    worker_metrics_url: str
    worker_metrics_port: int


@contextmanager
def cluster(logs: Path, *worker_options: str, **overrides: str) -> Iterator[Cluster]:
    """The mock, a worker serving its metrics and the API, on a queue of their own."""
    mlmock_port, api_port, metrics_port = free_port(), free_port(), free_port()
    env = make_env(
        {
            **TEST_ENV,
            "QUEUE_NAME": f"{TEST_ENV['QUEUE_NAME']}-ops-{uuid.uuid4().hex[:6]}",
            "MODEL_URL": f"http://127.0.0.1:{mlmock_port}",
            "MLMOCK_LATENCY_MS": "0",
            "STEP_RETRY_BACKOFF_S": "0.05",
            "WORKER_METRICS_PORT": str(metrics_port),
            **overrides,
        }
    )
    system = System(env=env, logs=logs)
    try:
        system.start_mlmock(mlmock_port)
        system.start_worker(WORKER, 2, *worker_options)
        system.start_api(api_port)
        api_url = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=api_url, timeout=60) as api:
            yield Cluster(
                system, api, api_url, f"http://127.0.0.1:{metrics_port}/metrics", metrics_port
            )
    finally:
        system.stop()


def start_flower(system: System) -> str:
    """Flower as the Procfile starts it (`python -m worker.flower`), on a free port, with the
    system's environment; its URL, once it answers its health check (which is no use of it)."""
    port = free_port()
    system.start(
        "flower", sys.executable, "-m", "worker.flower", f"--port={port}", "--address=127.0.0.1"
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(http_ok(f"{url}/healthcheck"), 30, "Flower")
    return url

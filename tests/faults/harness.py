"""Load with faults: a cluster of real processes, a batch of jobs, and a verdict on every job."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests import images
from tests.conftest import TEST_ENV
from tests.system import System, free_port, make_env

JOBS = 200
# Small photos: the faults, not the pixels, are under test.
PHOTOS = [images.jpeg(320, 240, seed=seed) for seed in range(8)]

FAST_RECOVERY = {
    "RECOVERY_GRACE_S": "3",
    "RECOVERY_INTERVAL_S": "0.5",
    "STEP_LEASE_S": "2",  # a killed worker's steps are claimable again 2 s after it died
    "STEP_RETRY_BACKOFF_S": "0.05",
    "MODEL_TIMEOUT_S": "1",
    "MLMOCK_LATENCY_MS": "0",
    "DB_OUTAGE_MAX_RETRIES": "60",
}


@dataclass
class Cluster:
    system: System
    api: httpx.Client
    mlmock_port: int

    def restart_worker(self, name: str = "worker") -> None:
        self.system.start_worker(name)


@contextmanager
def cluster(logs: Path, **overrides: str) -> Iterator[Cluster]:
    """The mock, a worker and the API on a queue of their own, with fast recovery settings."""
    mlmock_port, api_port = free_port(), free_port()
    env = make_env(
        {
            **TEST_ENV,
            **FAST_RECOVERY,
            "QUEUE_NAME": f"{TEST_ENV['QUEUE_NAME']}-{uuid.uuid4().hex[:6]}",
            "MODEL_URL": f"http://127.0.0.1:{mlmock_port}",
            **overrides,
        }
    )
    system = System(env=env, logs=logs)
    try:
        system.start_mlmock(mlmock_port)
        system.start_worker()
        system.start_api(api_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
            yield Cluster(system, api, mlmock_port)
    finally:
        system.stop()


@dataclass
class Load:
    accepted: list[str] = field(default_factory=list)
    refused: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit_all(api: httpx.Client, count: int = JOBS, deadline_s: float = 90) -> Load:
    """Submit `count` jobs from 8 threads; a client retries 503s and dropped connections."""
    load = Load()
    stop_at = time.monotonic() + deadline_s

    def one(n: int) -> None:
        delay = 0.1
        while time.monotonic() < stop_at:
            try:
                response = api.post(
                    "/jobs",
                    files={"image": (f"{n}.jpg", PHOTOS[n % len(PHOTOS)])},
                    data={"pipeline_id": "1"},
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 202:
                with load.lock:
                    load.accepted.append(response.json()["job_id"])
                return
            with load.lock:
                load.refused[response.status_code if response is not None else 0] += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
    return load


def run_with_fault(api: httpx.Client, fault: Callable[[], None], after_s: float = 1.5) -> Load:
    """Submit the batch while `fault` runs in another thread once the load is under way."""
    errors: list[BaseException] = []

    def inject() -> None:
        time.sleep(after_s)
        try:
            fault()
        except BaseException as exc:
            errors.append(exc)

    injector = threading.Thread(target=inject)
    injector.start()
    load = submit_all(api)
    injector.join()
    assert not errors, errors
    return load


@dataclass
class Verdict:
    statuses: Counter[str]
    failures: dict[str, str]
    results_per_job: dict[str, int]


def _verdict(engine: sa.Engine, job_ids: list[str]) -> Verdict:
    ids = [uuid.UUID(job_id) for job_id in job_ids]
    jobs = sa.table("jobs", sa.column("id"), sa.column("status"), sa.column("error"))
    detections = sa.table("car_detections", sa.column("job_id"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.status, jobs.c.error).where(jobs.c.id.in_(ids))
        ).all()
        counts = conn.execute(
            sa.select(detections.c.job_id, sa.func.count())
            .where(detections.c.job_id.in_(ids))
            .group_by(detections.c.job_id)
        ).all()
    return Verdict(
        statuses=Counter(row.status for row in rows) + Counter({"missing": len(ids) - len(rows)}),
        failures={str(row.id): row.error for row in rows if row.status == "failed"},
        results_per_job={str(job_id): n for job_id, n in counts},
    )


def settle(job_ids: list[str], timeout_s: float = 120) -> Verdict:
    """Wait until every job has ended (or the time is up), then describe every job."""
    engine = sa.create_engine(TEST_ENV["DATABASE_URL"], pool_pre_ping=True)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                verdict = _verdict(engine, job_ids)
            except sa.exc.OperationalError:
                verdict = None  # the database is restarting
            if verdict is not None:
                unfinished = verdict.statuses["queued"] + verdict.statuses["running"]
                if unfinished == 0 or time.monotonic() > deadline:
                    return verdict
            time.sleep(0.25)
    finally:
        engine.dispose()


def assert_nothing_lost(load: Load, verdict: Verdict, expect: int = JOBS) -> None:
    """Every accepted job ended, none is missing, none has two results, failures say why."""
    assert len(load.accepted) == expect, f"accepted {len(load.accepted)}; refused {load.refused}"
    assert len(set(load.accepted)) == expect
    assert verdict.statuses["missing"] == 0
    assert verdict.statuses["queued"] == 0, verdict.statuses
    assert verdict.statuses["running"] == 0, verdict.statuses
    assert verdict.statuses["succeeded"] + verdict.statuses["failed"] == expect
    assert all(n == 1 for n in verdict.results_per_job.values()), "a job has two results"
    assert all(reason for reason in verdict.failures.values())
    succeeded = {job for job in load.accepted if job not in verdict.failures}
    assert set(verdict.results_per_job) >= succeeded, "a succeeded job has no result row"

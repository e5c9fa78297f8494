"""Soak run: steady load for a bounded time while workers are killed and the model misbehaves.

    make soak                      # 3 minutes
    python -m bench.soak --seconds 60 --rate 8 --fault-rate 0.1

Starts its own database and queue, on the servers SOAK_POSTGRES_URL and SOAK_REDIS_URL name or
else on a private PostgreSQL and Redis (tools/servers) started for the run, the model mock with
injected faults, two Celery workers and the API; kills a worker (SIGKILL) or one of its pool
processes every few seconds; then waits for every job to end and prints what happened. Exits 1
if a job was lost or has more than one result.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests import images
from tests.system import System, free_port, make_env
from tools.servers import given_or_private

WORKERS = ("worker-a", "worker-b")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="how long to submit jobs")
    parser.add_argument("--rate", type=float, default=10, help="jobs submitted per second")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of model faults")
    parser.add_argument("--kill-every", type=float, default=12, help="mean seconds between kills")
    parser.add_argument("--drain-seconds", type=float, default=180, help="wait for the last jobs")
    return parser.parse_args()


def kill_something(system: System, rng: random.Random) -> str:
    name = rng.choice(WORKERS)
    main = system.procs[name].pid
    children = subprocess.run(
        ["pgrep", "-P", str(main)], capture_output=True, text=True, check=False
    ).stdout.split()
    if children and rng.random() < 0.5:
        os.kill(int(rng.choice(children)), signal.SIGKILL)
        return f"{name} pool process"
    system.stop(name, sig=signal.SIGKILL)
    system.start_worker(name)
    return f"{name} (whole worker)"


def submit_steadily(
    api: httpx.Client, seconds: float, rate: float
) -> tuple[list[str], Counter[str]]:
    photos = [images.jpeg(640, 480, seed=seed) for seed in range(12)]
    accepted: list[str] = []
    refused: Counter[str] = Counter()
    lock = threading.Lock()

    def one(n: int) -> None:
        try:
            response = api.post(
                "/jobs",
                files={"image": (f"{n}.jpg", photos[n % len(photos)])},
                data={"pipeline_id": "1"},
            )
        except httpx.HTTPError as exc:
            with lock:
                refused[type(exc).__name__] += 1
            return
        with lock:
            if response.status_code == 202:
                accepted.append(response.json()["job_id"])
            else:
                refused[str(response.status_code)] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            pool.submit(one, n)
            n += 1
            time.sleep(max(0.0, n / rate - elapsed))
    return accepted, refused


def reason_kind(reason: str) -> str:
    """A failure reason without the parts that differ from job to job: "<step type>: <cause>"."""
    match = re.match(r"step \d+ \(([^)]+)\): ([^:(]+)", reason)
    return f"{match.group(1)}: {match.group(2).strip()}" if match else reason.split(":")[0]


def report(
    engine: sa.Engine, accepted: list[str], drain_s: float
) -> tuple[dict[str, object], bool]:
    ids = [uuid.UUID(job_id) for job_id in accepted]
    query = sa.text(
        "SELECT j.id, j.status, j.error, j.created_at, j.finished_at, "
        "(SELECT count(*) FROM car_detections d WHERE d.job_id = j.id) AS results "
        "FROM jobs j WHERE j.id = ANY(:ids)"
    )
    deadline = time.monotonic() + drain_s
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query, {"ids": ids}).all()
        unfinished = sum(row.status in ("queued", "running") for row in rows)
        if unfinished == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    statuses = Counter(row.status for row in rows)
    lost = len(ids) - statuses["succeeded"] - statuses["failed"]
    duplicated = sum(row.results > 1 for row in rows)
    longest = max(
        ((row.finished_at - row.created_at).total_seconds() for row in rows if row.finished_at),
        default=0.0,
    )
    figures: dict[str, object] = {
        "submitted": len(ids),
        "succeeded": statuses["succeeded"],
        "failed": statuses["failed"],
        "failed by reason": dict(Counter(reason_kind(row.error) for row in rows if row.error)),
        "lost": lost,
        "duplicated": duplicated,
        "longest job (s)": round(longest, 2),
    }
    return figures, lost == 0 and duplicated == 0


def main() -> int:
    args = parse_args()
    given = os.environ.get("SOAK_POSTGRES_URL"), os.environ.get("SOAK_REDIS_URL")
    with given_or_private(*given, redis_db=14, say=lambda line: print(f"soak: {line}")) as urls:
        return soak(args, *urls)


def soak(args: argparse.Namespace, admin_url: str, broker_url: str) -> int:
    run_id = uuid.uuid4().hex[:8]
    database = f"pipelines_soak_{run_id}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    database_url = sa.make_url(admin_url).set(database=database).render_as_string(False)
    mock_port, api_port = free_port(), free_port()
    env = make_env(
        {
            "DATABASE_URL": database_url,
            "BROKER_URL": broker_url,
            "QUEUE_NAME": f"soak-{run_id}",
            "DATA_DIR": tempfile.mkdtemp(prefix="soak-"),
            "MODEL_URL": f"http://127.0.0.1:{mock_port}",
            "MODEL_TIMEOUT_S": "1",
            "MLMOCK_FAULT_RATE": str(args.fault_rate),
            "MLMOCK_SLOW_MS": "3000",
            "RECOVERY_GRACE_S": "10",
            "RECOVERY_INTERVAL_S": "2",
            "STEP_LEASE_S": "5",
            "LOG_LEVEL": "INFO",
        }
    )
    logs = Path(tempfile.mkdtemp(prefix="soak-logs-"))
    system = System(env=env, logs=logs)
    rng = random.Random()
    kills: list[str] = []
    stop = threading.Event()
    engine = sa.create_engine(database_url, pool_pre_ping=True)
    try:
        done = system.run(sys.executable, "-m", "common.bootstrap")
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 2
        system.start_mlmock(mock_port)
        for name in WORKERS:
            system.start_worker(name, concurrency=1)
        system.start_api(api_port)

        def killer() -> None:
            while not stop.wait(rng.expovariate(1 / args.kill_every)):
                kills.append(kill_something(system, rng))

        threading.Thread(target=killer, daemon=True).start()
        print(
            f"soak: {args.seconds:g} s at {args.rate:g} jobs/s, "
            f"model faults {args.fault_rate:.0%}, logs in {logs}",
            flush=True,
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as api:
            accepted, refused = submit_steadily(api, args.seconds, args.rate)
        stop.set()
        figures, ok = report(engine, accepted, args.drain_seconds)
    finally:
        stop.set()
        system.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    figures["refused at submit"] = dict(refused)
    figures["kills"] = f"{len(kills)} ({Counter(k.split(' ', 1)[1] for k in kills)})"
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

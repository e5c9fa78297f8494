"""The suite runs against the machine's real PostgreSQL and Redis, in a database of its own.

Settings reach the code under test (in-process and in subprocesses) through the environment,
which is set here before anything reads it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.system import System, free_port, make_env

PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUN_ID = uuid.uuid4().hex[:10]
DB_NAME = f"pipelines_test_{RUN_ID}"
QUEUE = f"test-{RUN_ID}"
DATA_DIR = Path(tempfile.mkdtemp(prefix="pipelines-test-"))
MLMOCK_PORT = free_port()
API_PORT = free_port()
WORKER_METRICS_PORT = free_port()

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}

TEST_ENV = {
    "DATABASE_URL": sa.make_url(PG_ADMIN_URL).set(database=DB_NAME).render_as_string(False),
    "BROKER_URL": REDIS_URL,
    "QUEUE_NAME": QUEUE,
    "DATA_DIR": str(DATA_DIR),
    "MODEL_URL": f"http://127.0.0.1:{MLMOCK_PORT}",
    "MODEL_TIMEOUT_S": "5",
    "STEP_RETRY_BACKOFF_S": "0.1",
    "COMPAT_WAIT_S": "30",
    "MLMOCK_SEED": "20261129",
    "MLMOCK_NULL_RATE": "0.5",
    # Long enough that a poller sees a job sitting in the model step.
    "MLMOCK_LATENCY_MS": "150",
    "LOG_LEVEL": "INFO",
    # Off for the workers tests start; the `system` worker serves its metrics (tests/ops).
    "WORKER_METRICS_PORT": "0",
}


def _unreachable() -> list[str]:
    problems = []
    try:
        sa.create_engine(PG_ADMIN_URL).connect().close()
    except sa.exc.OperationalError as exc:
        problems.append(f"PostgreSQL at {PG_ADMIN_URL} ({exc.orig})")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {REDIS_URL} ({exc})")
    return problems


def pytest_configure(config: pytest.Config) -> None:
    problems = _unreachable()
    if problems:
        lines = ["The tests need PostgreSQL and Redis; not reachable:", *problems, "Start them:"]
        lines += [f"  {name}: {cmd}" for name, cmd in HOW_TO_START.items()]
        pytest.exit("\n".join(lines), returncode=3)
    os.environ.update(TEST_ENV)
    from common import bootstrap, db
    from common.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()
    with sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    bootstrap.migrate()
    bootstrap.ensure_car_pipeline()


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get("DATABASE_URL") != TEST_ENV["DATABASE_URL"]:
        return
    from common import db

    db.reset_engine()
    with sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    client = redis.Redis.from_url(REDIS_URL)
    keys = [QUEUE, f"_kombu.binding.{QUEUE}", *client.keys(f"{QUEUE}\x06\x16*")]
    client.delete(*keys)


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The model mock, a Celery worker (2 processes) and the API, on the test database."""
    env = make_env({**TEST_ENV, "WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)})
    running = System(env=env, logs=tmp_path_factory.mktemp("logs"))
    try:
        running.start_mlmock(MLMOCK_PORT)
        running.start_worker()
        running.start_api(API_PORT)
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(system: System) -> Iterator[httpx.Client]:
    """An HTTP client of the API process."""
    with httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def mlmock_url(system: System) -> str:
    return TEST_ENV["MODEL_URL"]


@pytest.fixture
def session() -> Iterator[Session]:
    from common.db import session_factory

    with session_factory()() as s:
        yield s


def count_rows(table: str) -> int:
    from common.db import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

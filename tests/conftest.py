"""The suite runs against real PostgreSQL and Redis servers, in a database and a queue of its own.

TEST_POSTGRES_URL (a PostgreSQL URL whose user may create databases) and TEST_REDIS_URL (a
Redis URL; its database is written to) point the suite at existing servers, as .ci/run does;
unset, the session starts private ones (tests/servers.py) the first time a test needs them.
A test needs them when it carries the `system` marker, which every test using the fixtures
below gets by itself; tests that start processes of their own (the API, a worker, scripts) carry
it too, and `browser` and `faults` say what else a test needs. `make test-fast` runs the tests
with none of the three, with any process start refused: it starts no server.

Settings reach the code under test (in-process and in subprocesses) through the environment,
which is set here before anything reads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.servers import Servers
from tests.system import System, free_port, make_env

RUN_ID = uuid.uuid4().hex[:10]
DB_NAME = f"pipelines_test_{RUN_ID}"
QUEUE = f"test-{RUN_ID}"
DATA_DIR = Path(tempfile.mkdtemp(prefix="pipelines-test-"))
MLMOCK_PORT = free_port()
API_PORT = free_port()
WORKER_METRICS_PORT = free_port()
# Fixtures that need the servers or start processes; a test using one is marked `system`.
SYSTEM_FIXTURES = {"servers", "system", "api", "session", "mlmock_url"}
# Folders whose every test needs more than the code under test; other tests are marked `system`
# by the fixtures they use, or by a `pytestmark` of their module.
FOLDER_MARKS = {"ui": "browser", "faults": "faults", "chaos": "faults", "ops": "system"}

# DATABASE_URL and BROKER_URL are added once the servers are up (`servers()`).
TEST_ENV = {
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

_servers: Servers | None = None


def servers() -> Servers:
    """The session's servers, started (or reached) on first call, with the test database
    created, migrated and holding the test pipeline, and the environment set to use them."""
    global _servers
    if _servers is not None:
        return _servers
    running = Servers.start(DATA_DIR / "servers")
    _servers = running
    problems = running.unreachable()
    if problems:
        pytest.exit("\n".join(["The tests' servers are not reachable:", *problems]), 3)
    TEST_ENV["DATABASE_URL"] = running.database_url(DB_NAME)
    TEST_ENV["BROKER_URL"] = running.redis_url
    os.environ.update(TEST_ENV)
    from common import bootstrap, db
    from common.settings import get_settings

    get_settings.cache_clear()
    db.reset_engine()
    with sa.create_engine(running.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    bootstrap.migrate()
    bootstrap.ensure_car_pipeline()
    return running


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(TEST_ENV)
    for name in ("DATABASE_URL", "BROKER_URL"):
        os.environ.pop(name, None)  # never a server the tests were not given


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(Path(__file__).parent).parts[0]
        if folder in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[folder])
        if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _servers is None:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        return
    from common import db

    db.reset_engine()
    if _servers.postgres is None:
        with sa.create_engine(_servers.admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    if _servers.redis is None:
        client = redis.Redis.from_url(_servers.redis_url)
        keys = [QUEUE, f"_kombu.binding.{QUEUE}", *client.keys(f"{QUEUE}\x06\x16*")]
        client.delete(*keys)
    _servers.stop()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _servers_of_system_tests(request: pytest.FixtureRequest) -> None:
    """A `system` test gets the servers before anything else runs."""
    if request.node.get_closest_marker("system") is not None:
        servers()


@pytest.fixture(scope="session", name="servers")
def servers_fixture() -> Servers:
    return servers()


@pytest.fixture
def fresh_database(servers: Servers) -> Iterator[str]:
    """The URL of an empty database of its own."""
    name = f"pipelines_fresh_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(servers.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield servers.database_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `make test-fast` (NO_TEST_PROCESSES=1) a test that starts a process fails,
    saying it needs the `system` mark."""
    if os.environ.get("NO_TEST_PROCESSES") != "1":
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("this test starts a process: mark it `system` (tests/conftest.py)")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture(scope="session")
def system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
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
def session(servers: Servers) -> Iterator[Session]:
    from common.db import session_factory

    with session_factory()() as s:
        yield s


def count_rows(table: str) -> int:
    from common.db import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

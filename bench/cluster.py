"""The system under test: a database and a queue of its own, the mock, the API and one worker.

The database and the queue are made on the servers the run is given (bench.bench: those
BENCH_POSTGRES_URL and BENCH_REDIS_URL name, or private ones started for the run).

The processes are started as `make run` starts them (tests/system.py's helpers), except that
the log level is the benchmark's (WARNING by default, so logging costs what it costs in a quiet
production setting) and the worker's readiness is asked over the broker (a control ping from
this process) instead of being read from an INFO log line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
import sqlalchemy as sa
from celery import Celery

from bench import procstat
from common.settings import Settings
from tests.system import BIN, System, free_port, http_ok, wait_until

# The Redis database a private server is used with (a given URL names its own).
REDIS_DB = 13


def clean_env(overrides: dict[str, str]) -> dict[str, str]:
    """The environment without any of the project's settings, then `overrides`."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("MLMOCK_")}
    env.update(overrides)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class Cluster:
    """The processes under test, on a database and a queue of this run's own.

    `admin_url`: a PostgreSQL URL whose user may create databases; `broker_url`: a Redis URL
    (its database holds the queue). Nothing is created until `create_database`."""

    def __init__(self, workers: int, log_level: str, admin_url: str, broker_url: str) -> None:
        self.admin_url = admin_url
        self.broker_url = broker_url
        self.run_id = uuid.uuid4().hex[:8]
        self.database = f"pipelines_bench_{self.run_id}"
        self.queue = f"bench-{self.run_id}"
        self.workers = workers
        self.log_level = log_level.upper()
        self.api_port, self.mock_port, self.floor_port = free_port(), free_port(), free_port()
        self.database_url = (
            sa.make_url(admin_url).set(database=self.database).render_as_string(False)
        )
        self.settings = {
            "DATABASE_URL": self.database_url,
            "BROKER_URL": broker_url,
            "QUEUE_NAME": self.queue,
            "DATA_DIR": tempfile.mkdtemp(prefix="bench-data-"),
            "MODEL_URL": f"http://127.0.0.1:{self.mock_port}",
            "LOG_LEVEL": self.log_level,
            "MLMOCK_LATENCY_MS": "0",
            "MLMOCK_FAULT_RATE": "0",
            "MLMOCK_SEED": "1",
        }
        self.logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        self.system = System(env=clean_env(self.settings), logs=self.logs)
        self.hostname = f"bench-{self.run_id}@bench"
        self.io_hostname = f"bench-io-{self.run_id}@bench"
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.engine: sa.Engine | None = None
        self.database_created = False
        # The PostgreSQL server's main process, when it runs on this machine (servers()).
        self.postmaster: int | None = None
        self.redis = redis.Redis.from_url(broker_url, socket_connect_timeout=5)
        self.control = Celery("bench-control", broker=broker_url)
        self.control.conf.broker_connection_retry_on_startup = True

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def redis_port(self) -> int:
        return int(self.redis.connection_pool.connection_kwargs.get("port", 6379))

    def servers(self) -> dict[str, str]:
        """The servers' versions ("postgres", "redis"); finds the PostgreSQL server's main
        process if it runs here (the parent of this connection's backend). Raises
        RuntimeError naming each server that cannot be reached."""
        found, problems = {}, []
        try:
            with self.admin.connect() as conn:
                version = str(conn.execute(sa.text("SHOW server_version")).scalar())
                found["postgres"] = version.split()[0]  # without a packager's suffix
                backend = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            with contextlib.suppress(OSError):
                self.postmaster = procstat.parent(backend)
        except sa.exc.SQLAlchemyError as exc:
            problems.append(f"PostgreSQL at {self.admin.url!r}: {exc}")
        try:
            found["redis"] = str(self.redis.info("server")["redis_version"])
        except redis.RedisError as exc:
            problems.append(f"Redis at {self.broker_url}: {exc}")
        if problems:
            raise RuntimeError("\n".join(["cannot reach the servers:", *problems]))
        return found

    def create_database(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        self.database_created = True
        done = self.system.run(sys.executable, "-m", "common.bootstrap")
        if done.returncode != 0:
            raise RuntimeError(f"bootstrap failed:\n{done.stderr}")
        self.engine = sa.create_engine(self.database_url, pool_size=2, pool_pre_ping=True)

    def _uvicorn(self, name: str, app: str, port: int) -> None:
        self.system.start(
            name,
            str(BIN / "python"),
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            self.log_level.lower(),
        )
        wait_until(http_ok(f"http://127.0.0.1:{port}/health"), 30, name)

    def start_mock(self) -> None:
        self._uvicorn("mlmock", "mlmock.main:app", self.mock_port)

    def start_api(self) -> None:
        self._uvicorn("api", "api.main:app", self.api_port)

    def _celery_worker(self, name: str, hostname: str, *options: str, app: str = "worker") -> None:
        self.system.start(
            name,
            str(BIN / "python"),
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "--loglevel",
            self.log_level,
            "--hostname",
            hostname,
            *options,
        )

    def start_worker(self, split: bool = True) -> None:
        """As compose deploys them: `workers` processes on the CPU queue, and a worker with a
        pool of threads on the I/O queue (the model call, the detection's row). Not `split`:
        one worker whose processes serve both queues."""
        if not split:
            self._celery_worker("worker", self.hostname, "--concurrency", str(self.workers))
            names, hosts = ["worker"], [self.hostname]
        else:
            self._celery_worker(
                "worker", self.hostname, "-Q", self.queue, "--concurrency", str(self.workers)
            )
            self._celery_worker(
                "worker-io",
                self.io_hostname,
                "-Q",
                f"{self.queue}.io",
                "--pool",
                "threads",
                "--concurrency",
                str(IO_THREADS),
            )
            names, hosts = ["worker", "worker-io"], [self.hostname, self.io_hostname]
        self._wait_for_workers(names, hosts, pool_of="worker")

    def _wait_for_workers(self, names: list[str], hosts: list[str], pool_of: str) -> None:
        """Until every worker answers a ping and `pool_of`'s pool has `workers` processes."""

        def answers() -> bool:
            for name in names:
                if self.system.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.system.log(name)[-3000:]}")
            replies = self.control.control.ping(destination=hosts, timeout=0.5)
            return len(replies) == len(hosts)

        wait_until(answers, 60, "Celery workers", interval=0.1)
        # Ping answers once the consumer runs; the pool may still be forking.
        wait_until(lambda: len(self.pool_pids(pool_of)) >= self.workers, 30, f"{pool_of} pool")

    def stop_workers(self) -> None:
        for name in ("worker", "worker-io"):
            if name in self.system.procs:
                self.system.stop(name)

    def restart_mock(self, latency_ms: int) -> None:
        """The mock again, answering after `latency_ms`, as a model server would."""
        self.system.stop("mlmock")
        self.system.env["MLMOCK_LATENCY_MS"] = str(latency_ms)
        self.settings["MLMOCK_LATENCY_MS"] = str(latency_ms)
        self.start_mock()

    def start_floor_api(self) -> None:
        """bench.floor's gateway, on this run's database, broker and mock."""
        from bench import floor

        assert self.engine is not None
        with self.engine.begin() as conn:
            for statement in floor.SCHEMA:
                conn.execute(sa.text(statement))
        self.system.env.update(
            {
                "FLOOR_DATABASE_URL": sa.make_url(self.database_url)
                .set(drivername="postgresql")
                .render_as_string(False),
                "FLOOR_BROKER_URL": self.broker_url,
                "FLOOR_QUEUE": f"{self.queue}.floor",
                "FLOOR_MODEL_URL": f"http://127.0.0.1:{self.mock_port}",
            }
        )
        self._uvicorn("floor-api", "bench.floor:app", self.floor_port)

    def start_floor_worker(self) -> None:
        """bench.floor's worker, with `workers` processes."""
        hostname = f"bench-floor-{self.run_id}@bench"
        self._celery_worker(
            "floor-worker",
            hostname,
            "-Q",
            f"{self.queue}.floor",
            "--concurrency",
            str(self.workers),
            app="bench.floor:celery_app",
        )
        self._wait_for_workers(["floor-worker"], [hostname], pool_of="floor-worker")

    def purge_floor_queue(self) -> None:
        self.redis.delete(f"{self.queue}.floor")

    def stop_floor(self) -> None:
        for name in ("floor-api", "floor-worker"):
            if name in self.system.procs:
                self.system.stop(name)

    @property
    def floor_url(self) -> str:
        return f"http://127.0.0.1:{self.floor_port}"

    def pid(self, name: str) -> int:
        return self.system.procs[name].pid

    def pool_pids(self, worker: str = "worker") -> list[int]:
        from bench.procstat import children

        if worker not in self.system.procs:
            return []
        return children(self.pid(worker))

    def purge_messages(self) -> int:
        """Drop the messages waiting in this run's two queues (Kombu's queue_purge), keeping
        the exchange's bindings that running workers and the API route by; how many."""
        with self.control.connection_for_write() as conn:
            channel = conn.default_channel
            return sum(int(channel.queue_purge(q) or 0) for q in (self.queue, f"{self.queue}.io"))

    def purge_queue(self) -> int:
        """Delete this run's queue keys in Redis; the number of keys deleted."""
        keys = list(self.redis.scan_iter(match=f"*{self.queue}*"))
        return int(self.redis.delete(*keys)) if keys else 0

    def delete_jobs(self, ids: list[str]) -> None:
        engine = self.engine
        assert engine is not None

        def delete() -> None:
            with engine.begin() as conn:
                conn.execute(
                    sa.text("DELETE FROM jobs WHERE id = ANY(:ids)"),
                    {"ids": [uuid.UUID(each) for each in ids]},
                )

        retrying(delete, DB_RESTART_S)

    def _admin_execute(self, statement: sa.TextClause) -> None:
        with self.admin.connect() as conn:
            conn.execute(statement)

    def sessions(self) -> int:
        """PostgreSQL sessions opened on this run's database so far."""
        query = sa.text("SELECT sessions FROM pg_stat_database WHERE datname = :db")

        def read() -> int:
            with self.admin.connect() as conn:
                return int(conn.execute(query, {"db": self.database}).scalar_one())

        return retrying(read, DB_RESTART_S)

    def stop(self) -> list[str]:
        """Stop every process, drop the database, delete the queue keys; what went wrong."""
        problems = []
        try:
            self.system.stop()
        except Exception as exc:  # noqa: BLE001 - keep cleaning up
            problems.append(f"stopping processes: {exc!r}")
        if self.engine is not None:
            self.engine.dispose()
        drop = sa.text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        try:
            # Retried: the server may be restarting (the fault tests restart it).
            if self.database_created:
                retrying(lambda: self._admin_execute(drop), DB_RESTART_S)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"dropping {self.database}: {exc!r}")
        self.admin.dispose()
        try:
            self.purge_queue()
            # The worker's control queue, bound in the pidbox exchange's binding set.
            for key in self.redis.scan_iter(match="_kombu.binding.*"):
                for member in self.redis.smembers(key):
                    if self.run_id.encode() in member:
                        self.redis.srem(key, member)
            for key in self.redis.scan_iter(match=f"*{self.run_id}*"):
                self.redis.delete(key)
            # Kombu's exchange bookkeeping, once no binding of any run is left in this db.
            if not list(self.redis.scan_iter(match="_kombu.binding.*")):
                self.redis.delete("_kombu.binding_deadlines")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"cleaning Redis: {exc!r}")
        with contextlib.suppress(Exception):
            self.redis.close()
            self.control.close()
        shutil.rmtree(self.settings["DATA_DIR"], ignore_errors=True)
        return problems


DB_RESTART_S = 60.0
# Threads of the I/O worker: enough that the model calls of every CPU process overlap.
IO_THREADS = 16
T = TypeVar("T")


def retrying(action: Callable[[], T], timeout: float) -> T:
    """`action()`, tried again for up to `timeout` s while the database cannot be reached."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def wait_jobs_done(
    engine: sa.Engine, ids: list[str], timeout: float, interval: float = 0.25
) -> list[sa.Row[tuple[object, ...]]]:
    """Poll with one query until every job ended or `timeout`; the jobs' rows then."""
    uuids = [uuid.UUID(each) for each in ids]
    count = sa.text(
        "SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')) FROM jobs "
        "WHERE id = ANY(:ids)"
    )
    rows = sa.text(
        "SELECT id, status, error, created_at, started_at, finished_at FROM jobs "
        "WHERE id = ANY(:ids)"
    )

    def ended() -> int:
        with engine.connect() as conn:
            return int(conn.execute(count, {"ids": uuids}).scalar_one())

    def read() -> list[sa.Row[tuple[object, ...]]]:
        with engine.connect() as conn:
            return list(conn.execute(rows, {"ids": uuids}).all())

    deadline = time.monotonic() + timeout
    while retrying(ended, DB_RESTART_S) < len(uuids) and time.monotonic() < deadline:
        time.sleep(interval)
    return retrying(read, DB_RESTART_S)

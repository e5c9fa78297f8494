"""The PostgreSQL and Redis of a test session: the ones TEST_POSTGRES_URL and TEST_REDIS_URL
name, or else private servers (tools/servers) started on first use with their data in a
temporary folder. Tests that need neither never start them (`pytest -m "not system"`)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis
import sqlalchemy as sa

from tools.servers.postgres import Postgres
from tools.servers.redis import Redis

# Where the machine's own PostgreSQL is restarted from when the tests are pointed at it.
_MACHINE_RESTART = "pg_ctlcluster --skip-systemctl-redirect {version} main restart"


@dataclass
class Servers:
    admin_url: str  # SQLAlchemy URL of the server's `postgres` database
    redis_url: str  # Redis URL, with the database the tests may fill and empty
    postgres: Postgres | None = None  # set when started here
    redis: Redis | None = None

    @classmethod
    def start(cls, folder: Path) -> Servers:
        """The servers named by TEST_POSTGRES_URL / TEST_REDIS_URL, or private ones in
        `folder`; raises pytest's exit if a named one cannot be reached."""
        given_pg = os.environ.get("TEST_POSTGRES_URL")
        given_redis = os.environ.get("TEST_REDIS_URL")
        postgres = redis_server = None
        if given_pg:
            admin_url = given_pg
        else:
            postgres = Postgres(folder / "postgres")
            postgres.start()
            admin_url = postgres.url()
        if given_redis:
            redis_url = given_redis
        else:
            redis_server = Redis(folder / "redis", persist=False)
            redis_server.start()
            redis_url = redis_server.url(15)
        return cls(admin_url, redis_url, postgres, redis_server)

    def unreachable(self) -> list[str]:
        problems = []
        try:
            sa.create_engine(self.admin_url).connect().close()
        except sa.exc.OperationalError as exc:
            problems.append(f"PostgreSQL at {self.admin_url} ({exc.orig})")
        try:
            redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis at {self.redis_url} ({exc})")
        return problems

    def database_url(self, name: str) -> str:
        return sa.make_url(self.admin_url).set(database=name).render_as_string(False)

    def restart_postgres(self) -> None:
        """Restart the PostgreSQL the tests use: the private one through its wrapper, else the
        machine's cluster (tests/faults only: never point them at a server others use)."""
        if self.postgres is not None:
            self.postgres.restart()
            return
        version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
        command = _MACHINE_RESTART.format(version=version).split()
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()

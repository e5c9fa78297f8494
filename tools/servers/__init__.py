"""The private PostgreSQL and Redis that `make run`, the tests, `make soak` and `make bench`
start when none is given."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

DATABASE = "pipelines"


@contextmanager
def started_unless_given(
    environ: Mapping[str, str], data_dir: Path, say: Callable[[str], None]
) -> Iterator[dict[str, str]]:
    """DATABASE_URL and BROKER_URL for the processes: each one `environ` gives is kept; for each
    one it lacks, a private server is started with its data under `data_dir` (postgres/,
    redis/), and stopped when the block ends. Raises what a failed start raises."""
    env: dict[str, str] = {}
    with ExitStack() as stack:
        if not environ.get("DATABASE_URL"):
            from tools.servers.postgres import Postgres, ensure_database

            postgres = Postgres(data_dir / "postgres")
            postgres.start()
            stack.callback(postgres.stop)
            stack.callback(say, "stopping PostgreSQL")
            ensure_database(postgres.url(), DATABASE)
            env["DATABASE_URL"] = postgres.url(DATABASE)
            say(f"PostgreSQL started, data in {postgres.folder}: {env['DATABASE_URL']}")
        if not environ.get("BROKER_URL"):
            from tools.servers.redis import Redis

            redis = Redis(data_dir / "redis")
            redis.start()
            stack.callback(redis.stop)
            stack.callback(say, "stopping Redis")
            env["BROKER_URL"] = redis.url()
            say(f"Redis started, data in {redis.folder}: {env['BROKER_URL']}")
        yield env


@contextmanager
def given_or_private(
    postgres_url: str | None, redis_url: str | None, redis_db: int, say: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """For a run that creates a database and a queue of its own (`make soak`, `make bench`):
    a PostgreSQL URL whose user may create databases, and a Redis URL. Each URL given is kept
    (nothing is started for it); for each one missing or empty, a private server is started
    with its data in a temporary folder, Redis's URL naming database `redis_db`. The servers
    started here are stopped, and the folder removed, when the block ends. Raises what a
    failed start raises."""
    folder = Path(tempfile.mkdtemp(prefix="private-servers-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        if not postgres_url:
            from tools.servers.postgres import Postgres

            postgres = Postgres(folder / "postgres")
            postgres.start()
            stack.callback(postgres.stop)
            stack.callback(say, "stopping the private PostgreSQL")
            postgres_url = postgres.url()
            say(f"private PostgreSQL started: {postgres_url}")
        if not redis_url:
            from tools.servers.redis import Redis

            redis = Redis(folder / "redis", persist=False)
            redis.start()
            stack.callback(redis.stop)
            stack.callback(say, "stopping the private Redis")
            redis_url = redis.url(redis_db)
            say(f"private Redis started: {redis_url}")
        yield postgres_url, redis_url

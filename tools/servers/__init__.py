"""The private PostgreSQL and Redis that `make run` and the tests start when none is given."""

from __future__ import annotations

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

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
def private_unless_given(
    postgres_url: str | None,
    redis_url: str | None,
    folder: Path,
    say: Callable[[str], None],
    *,
    persist: bool,
    database: str | None = None,
    redis_db: int = 0,
) -> Iterator[tuple[str, str]]:
    """A PostgreSQL URL and a Redis URL: each one given is kept (nothing is started for it);
    for each one missing or empty, a private server is started with its data under `folder`
    (postgres/, redis/), and stopped when the block ends. PostgreSQL's URL names `database`,
    created if missing, or else the server's own (whose user may create databases); Redis's
    names database `redis_db`, and keeps its data on disk only if `persist`. Raises what a
    failed start raises."""
    with ExitStack() as stack:
        if not postgres_url:
            from tools.servers.postgres import Postgres, ensure_database

            postgres = Postgres(folder / "postgres")
            postgres.start()
            stack.callback(postgres.stop)
            stack.callback(say, "stopping PostgreSQL")
            postgres_url = postgres.url()
            if database is not None:
                ensure_database(postgres_url, database)
                postgres_url = postgres.url(database)
            say(f"PostgreSQL started, data in {postgres.folder}: {postgres_url}")
        if not redis_url:
            from tools.servers.redis import Redis

            redis = Redis(folder / "redis", persist=persist)
            redis.start()
            stack.callback(redis.stop)
            stack.callback(say, "stopping Redis")
            redis_url = redis.url(redis_db)
            say(f"Redis started, data in {redis.folder}: {redis_url}")
        yield postgres_url, redis_url


@contextmanager
def started_unless_given(
    environ: Mapping[str, str], data_dir: Path, say: Callable[[str], None]
) -> Iterator[dict[str, str]]:
    """DATABASE_URL and BROKER_URL for `make run`'s processes: each one `environ` gives is kept;
    for each one it lacks, a private server is started with its data (kept) under `data_dir`,
    and stopped when the block ends; the mapping holds the URLs of the servers started."""
    given = {name: environ.get(name) for name in ("DATABASE_URL", "BROKER_URL")}
    with private_unless_given(
        given["DATABASE_URL"], given["BROKER_URL"], data_dir, say, persist=True, database=DATABASE
    ) as urls:
        yield {name: url for (name, was), url in zip(given.items(), urls, strict=True) if not was}


@contextmanager
def given_or_private(
    postgres_url: str | None, redis_url: str | None, redis_db: int, say: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """For a run that creates a database and a queue of its own (`make soak`, `make bench`):
    a PostgreSQL URL whose user may create databases, and a Redis URL (`private_unless_given`,
    Redis naming database `redis_db` and keeping nothing on disk), the private servers' data in
    a temporary folder that is removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="private-servers-"))
    try:
        with private_unless_given(
            postgres_url, redis_url, folder, say, persist=False, redis_db=redis_db
        ) as urls:
            yield urls
    finally:
        shutil.rmtree(folder, ignore_errors=True)

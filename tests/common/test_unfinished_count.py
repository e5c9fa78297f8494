"""The count of unfinished jobs that admission reads (migration 0007's triggers on `jobs`) equals
count(*) of the queued and running jobs whatever changes them: inserts, status changes, deletes,
a truncate, concurrent transactions and rolled-back ones; the migration counts the jobs already
there."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from common.bootstrap import alembic_config

pytestmark = pytest.mark.system

BEFORE_COUNTS = "0006"


def migrate(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


@pytest.fixture
def engine(fresh_database: str) -> Iterator[sa.Engine]:
    """A database of its own, migrated to the revision before the count, with one pipeline."""
    engine = sa.create_engine(fresh_database)
    migrate(engine, BEFORE_COUNTS)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pipelines (id, name, description, config, created_at)"
                " VALUES (1, 'p', '', '{}', now())"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO pipeline_versions (id, pipeline_id, version, config, created_at)"
                " VALUES (1, 1, 1, '{}', now())"
            )
        )
    yield engine
    engine.dispose()


def add_jobs(conn: sa.Connection, statuses: list[str]) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in statuses]
    conn.execute(
        sa.text(
            "INSERT INTO jobs (id, pipeline_id, pipeline_version_id, status, payload, created_at,"
            " updated_at, enqueue_count) VALUES (:id, 1, 1, :status, '{}', now(), now(), 0)"
        ),
        [{"id": job_id, "status": status} for job_id, status in zip(ids, statuses, strict=True)],
    )
    return ids


def set_status(conn: sa.Connection, ids: list[uuid.UUID], status: str) -> None:
    conn.execute(
        sa.text("UPDATE jobs SET status = :status WHERE id = ANY(:ids)"),
        {"status": status, "ids": ids},
    )


def counts(engine: sa.Engine) -> tuple[int, int]:
    """(the kept count, count(*) of the unfinished jobs), as a new transaction sees them."""
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT sum(jobs) FROM unfinished_job_counts")).scalar_one()
        real = conn.execute(
            sa.text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
        ).scalar_one()
    return int(kept), int(real)


def test_the_migration_counts_the_jobs_already_there(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_jobs(conn, ["queued"] * 3 + ["running"] * 2 + ["succeeded"] * 4 + ["failed"])

    migrate(engine, "head")

    assert counts(engine) == (5, 5)


def test_every_status_change_moves_the_count(engine: sa.Engine) -> None:
    migrate(engine, "head")
    with engine.begin() as conn:
        queued = add_jobs(conn, ["queued"] * 6)
        finished = add_jobs(conn, ["succeeded", "failed"])
    assert counts(engine) == (6, 6)

    steps = [
        lambda conn: set_status(conn, queued[:4], "running"),  # unfinished to unfinished
        lambda conn: set_status(conn, queued[:2], "succeeded"),
        lambda conn: set_status(conn, queued[2:3], "failed"),
        lambda conn: set_status(conn, queued[2:3] + finished[1:], "queued"),  # retried
        lambda conn: conn.execute(sa.text("UPDATE jobs SET error = 'x'")),  # status untouched
        lambda conn: conn.execute(
            sa.text("DELETE FROM jobs WHERE id = ANY(:ids)"), {"ids": queued[4:] + finished[:1]}
        ),
    ]
    expected = [6, 4, 3, 5, 5, 3]
    for step, unfinished in zip(steps, expected, strict=True):
        with engine.begin() as conn:
            step(conn)
        assert counts(engine) == (unfinished, unfinished)


def test_a_rolled_back_change_leaves_the_count(engine: sa.Engine) -> None:
    migrate(engine, "head")
    with engine.begin() as conn:
        ids = add_jobs(conn, ["queued"] * 2)
    with engine.connect() as conn:
        add_jobs(conn, ["queued"] * 5)
        set_status(conn, ids, "succeeded")
        inside = conn.execute(sa.text("SELECT sum(jobs) FROM unfinished_job_counts")).scalar_one()
        conn.rollback()

    assert inside == 5  # the transaction sees its own changes, others do not
    assert counts(engine) == (2, 2)


def test_a_truncate_empties_the_count(engine: sa.Engine) -> None:
    migrate(engine, "head")
    with engine.begin() as conn:
        add_jobs(conn, ["queued", "running", "succeeded"])
        conn.execute(sa.text("TRUNCATE jobs CASCADE"))
    assert counts(engine) == (0, 0)
    with engine.begin() as conn:
        add_jobs(conn, ["queued"])
    assert counts(engine) == (1, 1)


def test_concurrent_transactions_add_up(engine: sa.Engine) -> None:
    migrate(engine, "head")
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for round_ in range(15):
                with engine.begin() as conn:
                    ids = add_jobs(conn, ["queued"] * 3)
                with engine.begin() as conn:
                    set_status(conn, ids[:1], "running")
                    set_status(conn, ids[1:2], "succeeded" if (seed + round_) % 2 else "failed")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    # Each round leaves two of its three jobs unfinished.
    assert counts(engine) == (8 * 15 * 2, 8 * 15 * 2)

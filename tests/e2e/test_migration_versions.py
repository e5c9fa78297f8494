"""Migration 0004 on a database holding data from revision 0003: every pipeline gets version 1,
every job is pinned to it, and nothing is lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from common.bootstrap import alembic_config
from common.db import make_engine
from tests.servers import Servers

LEGACY_CONFIG = {
    "steps": '{"1": "ImageHandler", "2": "MachineLearningModelRequest", "3": "SaveCarDetection"}',
    "datatype": "CarDetection",
}
CHILD_TABLES = ("job_steps", "job_images", "car_detections")


@pytest.fixture
def engine(servers: Servers) -> Iterator[sa.Engine]:
    """An empty scratch database of its own (with the app's engine settings)."""
    name = f"pipelines_migration_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(servers.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    scratch = make_engine(servers.database_url(name))
    try:
        yield scratch
    finally:
        scratch.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def insert_0003_data(engine: sa.Engine) -> list[str]:
    """Two pipelines as revision 0003 stored them, and a finished job of the first one."""
    job_id = uuid.uuid4()
    jid = str(job_id)
    now = "2026-11-01 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pipelines (id, name, description, config, created_at) VALUES "
                "(7, 'legacy', 'from before versions', :legacy, :now), "
                "(8, 'other', '', :other, :now)"
            ),
            {
                "legacy": json.dumps(LEGACY_CONFIG),
                "other": json.dumps({"datatype": "ImageData", "steps": []}),
                "now": now,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, pipeline_id, status, current_step, payload, created_at, "
                "updated_at, enqueued_at, enqueue_count) "
                "VALUES (:id, 7, 'succeeded', 3, '{}', :now, :now, :now, 1)"
            ),
            {"id": jid, "now": now},
        )
        for position in (1, 2, 3):
            conn.execute(
                sa.text(
                    "INSERT INTO job_steps (job_id, position, step_type, status, attempts) "
                    "VALUES (:id, :position, 'image.fit@v1', 'succeeded', 1)"
                ),
                {"id": jid, "position": position},
            )
        conn.execute(
            sa.text(
                "INSERT INTO job_images (id, job_id, variant, content_type, size, data, "
                "created_at) VALUES (1, :id, 'original', 'image/jpeg', 3, :data, :now)"
            ),
            {"id": jid, "data": b"\xff\xd8\xff", "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO car_detections (job_id, image_id, label, created_at) "
                "VALUES (:id, 1, 0, :now)"
            ),
            {"id": jid, "now": now},
        )
    return [jid]


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("pipelines", "jobs", *CHILD_TABLES)
        }


def test_upgrade_gives_every_pipeline_version_1_and_pins_every_job_to_it(
    engine: sa.Engine,
) -> None:
    # Given: a database at 0003 with pipelines and a job with its steps, image and detection
    migrate(engine, "0003")
    [job_id] = insert_0003_data(engine)
    before = counts(engine)

    # When
    migrate(engine, "head")

    # Then
    assert counts(engine) == before
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT id, pipeline_id, version, config FROM pipeline_versions ORDER BY id")
        ).all()
        pipelines = conn.execute(
            sa.text("SELECT id, current_version, archived_at, config FROM pipelines ORDER BY id")
        ).all()
        pinned = conn.execute(
            sa.text("SELECT pipeline_version_id FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert [(v.pipeline_id, v.version) for v in versions] == [(7, 1), (8, 1)]
    legacy = versions[0]
    stored = legacy.config if isinstance(legacy.config, dict) else json.loads(legacy.config)
    assert stored == LEGACY_CONFIG
    assert [(p.id, p.current_version, p.archived_at) for p in pipelines] == [
        (7, 1, None),
        (8, 1, None),
    ]
    assert pinned == legacy.id


def test_after_upgrade_a_job_must_name_an_existing_version(engine: sa.Engine) -> None:
    # Given
    migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pipelines (id, name, description, config, created_at) "
                "VALUES (1, 'p', '', '{}', '2026-11-01 10:00:00+00:00')"
            )
        )
    insert = (
        "INSERT INTO jobs (id, pipeline_id, {column}status, payload, created_at, updated_at, "
        "enqueue_count) VALUES (:id, 1, {value}'queued', '{{}}', :now, :now, 0)"
    )
    values = {"id": uuid.uuid4().hex, "now": "2026-11-01 10:00:00+00:00"}

    # Then: a version that does not exist is refused
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(insert.format(column="pipeline_version_id, ", value="999, ")), values)
    # and none at all
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(insert.format(column="", value="")), values)


def test_downgrade_and_upgrade_again_keep_every_row(engine: sa.Engine) -> None:
    # Given
    migrate(engine, "0003")
    insert_0003_data(engine)
    before = counts(engine)
    migrate(engine, "head")

    # When
    migrate(engine, "0003", down=True)
    after_downgrade = counts(engine)
    migrate(engine, "head")

    # Then
    assert after_downgrade == before
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pipeline_versions")).scalar_one() == 2

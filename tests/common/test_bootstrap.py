"""Migrations and the start-up bootstrap: the schema matches the models, restarts keep rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from common.bootstrap import CAR_PIPELINE_ID, alembic_config, ensure_car_pipeline
from tests.conftest import TEST_ENV, count_rows
from tests.system import bootstrap_sqlite


def test_migrations_match_the_models() -> None:
    # Raises if autogenerate finds anything the migrations do not create.
    command.check(alembic_config())


def test_bootstrap_again_keeps_every_row() -> None:
    before = {table: count_rows(table) for table in ("pipelines", "jobs", "car_detections")}

    created = ensure_car_pipeline()

    assert created is False
    assert {table: count_rows(table) for table in before} == before


def test_bootstrap_creates_the_car_pipeline_on_a_fresh_sqlite_database(tmp_path: Path) -> None:
    for _ in range(2):  # the second run finds everything in place
        done = bootstrap_sqlite(tmp_path)
        assert done.returncode == 0, done.stderr

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pipeline.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, name, config FROM pipelines")).all()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert [(row.id, row.name) for row in rows] == [(CAR_PIPELINE_ID, "car-detection")]
    assert '"model.detect_car@v1"' in rows[0].config
    assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert "already present" in done.stderr


def test_a_pipeline_added_after_the_seed_gets_the_next_id() -> None:
    # The seed inserts id 1 explicitly; PostgreSQL's sequence must have moved past it.
    from common.db import session_scope
    from common.repositories import PipelineRepository

    with session_scope() as session:
        pipeline = PipelineRepository(session).add("after-seed", "", {"datatype": "x", "steps": []})
        new_id = pipeline.id
        session.rollback()
    assert new_id > CAR_PIPELINE_ID
    assert TEST_ENV["DATABASE_URL"].startswith("postgresql")

"""Migrations and the start-up bootstrap: the schema matches the models, restarts keep rows."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from common.bootstrap import CAR_PIPELINE_ID, alembic_config, ensure_car_pipeline
from tests.conftest import TEST_ENV, count_rows
from tests.system import ROOT, free_port, make_env, run_bootstrap, wait_until

pytestmark = pytest.mark.system


def test_migrations_match_the_models() -> None:
    # Raises if autogenerate finds anything the migrations do not create.
    command.check(alembic_config())


def test_bootstrap_again_keeps_every_row() -> None:
    before = {table: count_rows(table) for table in ("pipelines", "jobs", "car_detections")}

    created = ensure_car_pipeline()

    assert created is False
    assert {table: count_rows(table) for table in before} == before


def test_bootstrap_creates_the_car_pipeline_on_a_fresh_database(fresh_database: str) -> None:
    for _ in range(2):  # the second run finds everything in place
        done = run_bootstrap(fresh_database)
        assert done.returncode == 0, done.stderr

    engine = sa.create_engine(fresh_database)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, name, config FROM pipelines")).all()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert [(row.id, row.name) for row in rows] == [(CAR_PIPELINE_ID, "car-detection")]
    assert rows[0].config["steps"][1]["type"] == "model.detect_car@v1"
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


class _Forward(socketserver.BaseRequestHandler):
    """Relays one client connection to the real PostgreSQL, both ways."""

    target: tuple[str, int]

    def handle(self) -> None:
        with socket.create_connection(self.target) as upstream:

            def pump(source: socket.socket, sink: socket.socket) -> None:
                while data := source.recv(65536):
                    sink.sendall(data)
                sink.shutdown(socket.SHUT_WR)

            back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
            back.start()
            pump(self.request, upstream)
            back.join(10)


@contextmanager
def postgres_on(port: int) -> Iterator[None]:
    """From now on, 127.0.0.1:`port` answers as the test PostgreSQL does."""
    url = sa.make_url(TEST_ENV["DATABASE_URL"])
    handler = type("Forward", (_Forward,), {"target": (url.host, url.port or 5432)})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def bootstrap(port: int, wait_s: float, log: Path) -> subprocess.Popen[bytes]:
    """`python -m common.bootstrap` against the test database, reached through `port`."""
    url = sa.make_url(TEST_ENV["DATABASE_URL"]).set(port=port)
    env = make_env(
        {
            **TEST_ENV,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "DATABASE_WAIT_S": str(wait_s),
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "common.bootstrap"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def test_bootstrap_waits_for_a_database_that_starts_late(tmp_path: Path) -> None:
    # Given: nothing listens yet where the database will be (compose's first `up`)
    port, log = free_port(), tmp_path / "bootstrap.log"
    proc = bootstrap(port, 60, log)
    try:
        wait_until(lambda: "database not ready" in log.read_text(), 30, "a refused attempt")

        # When: the server starts answering
        with postgres_on(port):
            status = proc.wait(60)
    finally:
        proc.kill()
        proc.wait()

    # Then: the bootstrap went on and finished
    assert status == 0, log.read_text()
    assert "test pipeline 1 already present" in log.read_text()


def test_bootstrap_gives_up_once_database_wait_s_is_over(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "bootstrap.log"

    proc = bootstrap(port, 2.5, log)
    status = proc.wait(60)

    text = log.read_text()
    assert status != 0
    assert text.count("database not ready") >= 2, text

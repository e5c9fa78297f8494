"""The private servers: the PostgreSQL wrapper never signals a process that is not its own
server, and a run given servers starts none."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

import tools.servers
from tools.servers import given_or_private
from tools.servers.postgres import SETTINGS, Postgres


@pytest.mark.system  # it starts a process
def test_stop_leaves_alone_a_process_named_by_a_stale_pid_file(tmp_path: Path) -> None:
    # Given: a folder whose postmaster.pid names a live process that is not its server (a
    # killed server's file, its PID since given to another process)
    other = subprocess.Popen(["sleep", "30"])
    try:
        folder = tmp_path / "postgres"
        folder.mkdir()
        (folder / "postmaster.pid").write_text(f"{other.pid}\n{folder}\n")

        # When
        Postgres(folder).stop(timeout_s=1)

        # Then: the other process was not signalled
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_servers_given_are_used_as_given_and_nothing_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: both URLs (make bench's BENCH_*, make soak's SOAK_*); the folder private servers
    # would use
    folder = tmp_path / "private"
    folder.mkdir()
    monkeypatch.setattr(tools.servers.tempfile, "mkdtemp", lambda prefix: str(folder))
    said: list[str] = []
    postgres_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

    # When
    with given_or_private(postgres_url, "redis://127.0.0.1:6379/13", 13, said.append) as urls:
        inside = folder.exists()

    # Then: the same URLs, no server announced, the folder removed at the end
    assert urls == (postgres_url, "redis://127.0.0.1:6379/13")
    assert said == []
    assert inside
    assert not folder.exists()


@pytest.mark.system  # it starts a PostgreSQL server
def test_a_private_postgres_runs_with_the_settings_compose_gives_it(tmp_path: Path) -> None:
    # Given: the settings compose's PostgreSQL runs with
    compose = (Path(__file__).parents[2] / "docker-compose.yml").read_text()
    for name, value in SETTINGS.items():
        assert f'"-c", "{name}={value}"' in compose

    # When: a private server starts on a new folder
    server = Postgres(tmp_path / "postgres")
    server.start()
    try:
        engine = sa.create_engine(server.url())
        with engine.connect() as conn:
            running = {name: conn.execute(sa.text(f"SHOW {name}")).scalar() for name in SETTINGS}
        engine.dispose()
    finally:
        server.stop()

    # Then
    assert running == SETTINGS

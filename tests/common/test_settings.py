"""Settings: the database URL the engine is built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgres://u@db/app", "postgresql+psycopg://u@db/app"),
        ("postgresql+psycopg2://u@db/app", "postgresql+psycopg2://u@db/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_a_postgresql_url_without_a_driver_takes_psycopg_3(given: str, used: str) -> None:
    assert Settings(database_url=given).sqlalchemy_url == used


def test_no_database_url_means_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(database_url=None, data_dir=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'pipeline.db'}"


def test_a_setting_set_to_nothing_keeps_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes each setting as ${NAME:-}: "" when .env leaves it out
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "")
    monkeypatch.setenv("COMPAT_WAIT_S", "")

    settings = Settings()

    assert settings.max_upload_bytes == Settings.model_fields["max_upload_bytes"].default
    assert settings.compat_wait_s == Settings.model_fields["compat_wait_s"].default

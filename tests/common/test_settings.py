"""Settings: the database URL the engine is built from, and the two URLs no process runs without."""

from __future__ import annotations

import pytest

from common.settings import MissingSettingError, Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgres://u@db/app", "postgresql+psycopg://u@db/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        (
            "postgresql://postgres@/app?host=/var/pg",
            "postgresql+psycopg://postgres@/app?host=/var/pg",
        ),
    ],
)
def test_a_postgresql_url_without_a_driver_takes_psycopg_3(given: str, used: str) -> None:
    assert Settings(database_url=given).sqlalchemy_url == used


@pytest.mark.parametrize(
    "given", ["postgresql+psycopg2://u@db/app", "sqlite:////tmp/x.db", "mysql://u@db/app"]
)
def test_a_url_for_another_driver_or_database_is_refused_with_its_scheme(given: str) -> None:
    with pytest.raises(ValueError, match="must be postgresql://") as raised:
        Settings(database_url=given).sqlalchemy_url  # noqa: B018
    assert given.partition("://")[0] in str(raised.value)
    assert "u@db" not in str(raised.value)  # no credentials or hosts in the message


def test_no_database_url_or_broker_url_says_which_and_how() -> None:
    settings = Settings(database_url=None, broker_url=None)
    with pytest.raises(MissingSettingError, match="DATABASE_URL is not set: `make run`"):
        settings.sqlalchemy_url  # noqa: B018
    with pytest.raises(MissingSettingError, match="BROKER_URL is not set"):
        settings.celery_broker_url  # noqa: B018


def test_a_setting_set_to_nothing_keeps_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes each setting as ${NAME:-}: "" when .env leaves it out
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "")
    monkeypatch.setenv("COMPAT_WAIT_S", "")

    settings = Settings()

    assert settings.max_upload_bytes == Settings.model_fields["max_upload_bytes"].default
    assert settings.compat_wait_s == Settings.model_fields["compat_wait_s"].default

"""The engine's pool hands out live connections without a round trip to check them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from common.db import make_engine
from tests.conftest import TEST_ENV

pytestmark = pytest.mark.system

BACKEND_PID = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = make_engine(TEST_ENV["DATABASE_URL"])
    yield engine
    engine.dispose()


def test_an_idle_pooled_connection_closed_by_the_server_is_not_handed_out(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        idle = conn.execute(BACKEND_PID).scalar_one()
    admin = sa.create_engine(TEST_ENV["DATABASE_URL"], poolclass=sa.pool.NullPool)
    with admin.connect() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": idle})
    admin.dispose()
    time.sleep(0.2)

    # Without the check on checkout this statement would fail with "server closed the
    # connection unexpectedly".
    with engine.connect() as conn:
        assert conn.execute(BACKEND_PID).scalar_one() != idle


def test_connections_are_bounded_against_a_silent_server(engine: sa.Engine) -> None:
    # Given: the settings that bound a wait on a server that stopped answering
    from common.settings import get_settings

    settings = get_settings()

    # When: the engine opens a connection
    with engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        idle_ms = conn.execute(
            sa.text(
                "SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'"
            )
        ).scalar_one()

    # Then: libpq got the timeouts and keepalives, and the server the idle-transaction limit
    assert params["connect_timeout"] == str(settings.database_connect_timeout_s)
    assert params["keepalives"] == "1"
    assert params["tcp_user_timeout"] == str(settings.database_tcp_timeout_s * 1000)
    assert int(idle_ms) == round(settings.database_idle_in_transaction_s * 1000)

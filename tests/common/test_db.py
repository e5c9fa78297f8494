"""The engine's pool hands out live connections without a round trip to check them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from common.db import make_engine
from tests.conftest import TEST_ENV

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

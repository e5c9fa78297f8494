"""What routes get to work with: the settings, and database sessions.

A route opens its session itself, with `db_session()`, inside the one sync function that does
the request's unit of work (a `def` route, or a function an `async def` route hands to the
thread pool). The session is opened and closed on that thread: whatever the route raises, its
transaction is rolled back, its row locks are released and its connection is back in the pool
before the error becomes a response. A session handed out by a dependency instead is closed
after the route, by a teardown that needs a pool thread of its own; under a burst every pool
thread may be waiting for a lock held by a session whose teardown is queued behind them, and
the whole API freezes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from common.db import session_factory
from common.settings import Settings, get_settings


@contextmanager
def db_session() -> Iterator[Session]:
    """A session for one request; the caller commits. Leaving the block closes it, rolling back
    whatever was not committed, on the calling thread, before any error goes further."""
    session = session_factory()()
    try:
        yield session
    finally:
        session.close()


async def settings() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings)]

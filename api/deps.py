"""Dependencies handed to routes.

They are coroutines: FastAPI runs a plain function dependency on its thread pool, and these do
no I/O worth a thread (a session connects on first use, in the route's own thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from common.db import session_factory
from common.settings import Settings, get_settings


async def get_session() -> AsyncIterator[Session]:
    session = session_factory()()
    try:
        yield session
    finally:
        if session.in_transaction():  # it holds a connection, whose rollback is a round trip
            await run_in_threadpool(session.close)
        else:
            session.close()


async def settings() -> Settings:
    return get_settings()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(settings)]

"""Liveness with dependencies: the database and the broker must answer."""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import db_session
from api.schemas import Health
from common.queue import check_broker

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


# The checks run on threads of their own, at most this many at once: a burst that keeps every
# thread of the request pool busy does not make the probe wait in line behind it.
_PROBES = 4
_limiter: anyio.CapacityLimiter | None = None


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health() -> JSONResponse:
    """200 if the database and the broker answer, else 503 saying which did not."""
    global _limiter
    if _limiter is None:  # made in the event loop's thread, the first time it is needed
        _limiter = anyio.CapacityLimiter(_PROBES)
    body = await anyio.to_thread.run_sync(_check, limiter=_limiter)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


def _check() -> Health:
    database = broker = "ok"
    try:
        with db_session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        database = f"unavailable: {type(exc).__name__}"
    try:
        check_broker()
    except Exception as exc:  # noqa: BLE001
        broker = f"unavailable: {type(exc).__name__}"
    ok = database == broker == "ok"
    body = Health(status="ok" if ok else "unavailable", database=database, broker=broker)
    if not ok:
        log.warning("health check failed: %s", body)
    return body

"""Liveness with dependencies: the database and the broker must answer."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionDep
from api.schemas import Health
from common.queue import check_broker

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(session: SessionDep) -> JSONResponse:
    database = broker = "ok"
    try:
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
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

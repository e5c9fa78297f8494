"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import compat, health, jobs, pipelines
from common.logs import configure_logging
from common.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    settings.ensure_dirs()
    app = FastAPI(
        title="Image pipelines",
        version="0.1.0",
        description=(
            "Submit an image to a pipeline with `POST /jobs`, then poll `GET /jobs/{id}`. "
            'Every error answers `{"error": {"code": ..., "message": ...}}`.'
        ),
    )
    install_error_handlers(app)
    for module in (jobs, pipelines, health, compat):
        app.include_router(module.router)
    return app


app = create_app()

"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from api.docs import documented_app
from api.errors import document_body_errors, install_error_handlers
from api.metrics import SubmitTimer
from api.routes import compat, health, jobs, pipelines, steps, ui
from api.routes.metrics import router as metrics_router
from api.security import install_api_keys
from api.uploads import install_upload_limits
from common.db import use_statement_limits
from common.gcfreeze import freeze_startup_objects
from common.logs import configure_logging
from common.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    settings.ensure_dirs()
    use_statement_limits(settings.api_db_statement_timeout_s, settings.api_db_lock_timeout_s)
    app = documented_app(
        title="Image pipelines",
        version="0.1.0",
        description=(
            "Submit an image to a pipeline with `POST /jobs`, then poll `GET /jobs/{id}`. "
            'Every error answers `{"error": {"code": ..., "message": ...}}`. When the service has '
            "API keys, send one as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
        ),
    )
    install_error_handlers(app)
    for module in (jobs, pipelines, steps, health, compat, ui):
        app.include_router(module.router)
    app.include_router(metrics_router)
    # The last added runs first: keys are checked before the size of a body is even looked at.
    install_upload_limits(app, settings)
    install_api_keys(app, settings)
    # Outermost: a submit's latency includes the key check and the upload limits.
    app.add_middleware(SubmitTimer)
    document_body_errors(app)
    return app


app = create_app()
# Everything built so far lives as long as the process: full collections need not walk it.
freeze_startup_objects()

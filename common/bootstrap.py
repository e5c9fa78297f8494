"""Prepare a database for the services: wait for it, apply migrations, then create the test
pipeline.

Run before the services start (`python -m common.bootstrap`); running it again changes nothing.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError

from common.db import get_engine, session_scope
from common.logs import configure_logging
from common.pipeline import build_pipeline, registry
from common.repositories import PipelineRepository
from common.settings import get_settings

log = logging.getLogger(__name__)

CAR_PIPELINE_ID = 1
CAR_PIPELINE_NAME = "car-detection"
CAR_PIPELINE_CONFIG = {
    "datatype": "CarDetection",
    "steps": [
        {"type": "image.fit@v1", "params": {"max_width": 640, "max_height": 640}},
        {"type": "model.detect_car@v1"},
        {"type": "storage.save_car_detection@v1"},
    ],
}


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "common:migrations")
    config.attributes["configure_logger"] = False
    return config


def wait_for_database(timeout_s: float, interval_s: float = 1.0) -> int:
    """Connect until the database accepts, trying every `interval_s` seconds for at most
    `timeout_s` (DATABASE_WAIT_S): compose's PostgreSQL may still be starting. Returns the
    attempts it took; raises the last OperationalError once the time is up."""
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            with get_engine().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return attempts
        except OperationalError as exc:
            if time.monotonic() + interval_s > deadline:
                raise
            # The driver's first line says why (refused, starting up); no URL, no password.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            log.info("database not ready (%s); trying again in %.0f s", reason, interval_s)
            time.sleep(interval_s)


def migrate() -> None:
    command.upgrade(alembic_config(), "head")


def ensure_car_pipeline() -> bool:
    """Create the test car pipeline, with its version 1, unless it exists; True when it was
    created."""
    config = build_pipeline(CAR_PIPELINE_CONFIG, registry()).canonical_config()
    with session_scope() as session:
        pipelines = PipelineRepository(session)
        if pipelines.get(CAR_PIPELINE_ID) is not None:
            return False
        pipelines.add(
            name=CAR_PIPELINE_NAME,
            description="Fits the image into 640x640, asks the model for a car, saves the answer.",
            config=config,
            pipeline_id=CAR_PIPELINE_ID,
        )
        pipelines.sync_id_sequence()
    return True


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    settings.ensure_dirs()
    wait_for_database(settings.database_wait_s)
    migrate()
    created = ensure_car_pipeline()
    log.info(
        "database ready; test pipeline %d %s",
        CAR_PIPELINE_ID,
        "created" if created else "already present",
    )


if __name__ == "__main__":
    main()

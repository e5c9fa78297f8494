"""The workers' Celery app. Forked children build their own database engine and HTTP client."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_process_init

from common import db
from common.imagetypes import limit_decoder_pixels
from common.logs import configure_logging
from common.queue import make_celery
from common.settings import get_settings
from worker.recovery import RecoverySweep

# Pillow refuses images far above the gateway's pixel limit: a second fence behind the header
# check, inherited by the forked pool processes.
limit_decoder_pixels(get_settings().max_image_pixels)

app = make_celery("pipeline-worker")
app.conf.include = ["worker.tasks"]
app.steps["worker"].add(RecoverySweep)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings().log_level)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    from worker import resources

    db.reset_engine()
    resources.reset_http_client()

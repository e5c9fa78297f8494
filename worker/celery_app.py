"""The workers' Celery app. Forked children build their own database engine and HTTP client."""

from __future__ import annotations

import logging
from typing import Any

import tornado.options as tornado_options
from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    task_postrun,
    task_prerun,
    task_retry,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from common import db
from common.gcfreeze import freeze_startup_objects
from common.imagetypes import limit_decoder_pixels
from common.logs import configure_logging
from common.queue import make_celery
from common.settings import get_settings
from worker import logcontext, metrics
from worker.events import TaskEventsLease
from worker.lease import check_visibility_timeout
from worker.recovery import RecoverySweep

log = logging.getLogger(__name__)

# Pillow refuses images far above the gateway's pixel limit: a second fence behind the header
# check, inherited by the forked pool processes.
limit_decoder_pixels(get_settings().max_image_pixels)

app = make_celery("pipeline-worker")
app.conf.include = ["worker.tasks"]
app.steps["worker"].add(RecoverySweep)
app.steps["consumer"].add(TaskEventsLease)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(get_settings().log_level)


# Flower (`python -m worker.flower`, which runs `celery -A worker flower`) loads this app, then
# parses its options with tornado, whose parse callback puts a plain-text handler on the root
# logger. Ours, registered later, runs after it and puts the LOG_FORMAT handler in its place, so
# Flower's lines read like every other service's. Nothing else parses tornado options, so in a
# worker it never runs.
tornado_options.add_parse_callback(configure_logging)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    from worker import resources

    db.reset_engine()
    resources.reset_http_client()
    freeze_startup_objects()  # a pool process: what it inherited and built lives as long


@worker_ready.connect
def _ready(**_: Any) -> None:
    # The worker's own process (and, in a worker of threads, its tasks' threads): what it
    # built to start lives as long as it does (common/gcfreeze.py).
    freeze_startup_objects()


# Metrics and log context come from Celery's signals, so the tasks need not know about them.
# The endpoint starts once logging is set up, before the pool forks (the folder must be set).
@celeryd_after_setup.connect
def _serve_metrics(**_: Any) -> None:
    metrics.serve(get_settings())


@celeryd_after_setup.connect
def _check_timeouts(**_: Any) -> None:
    # Loud, not fatal: the step leases keep a redelivered task from running its step twice.
    problem = check_visibility_timeout(get_settings())
    if problem is not None:
        log.error("%s", problem)


@task_prerun.connect
def _task_starts(task_id: str, task: Any, args: Any = (), **_: Any) -> None:
    logcontext.enter(task_id, task.name, args)


@task_retry.connect
def _task_retried(sender: Any = None, reason: Any = None, **_: Any) -> None:
    # Every retry, whoever sent it (Celery's autoretry_for, the runner): by the step the task
    # was at, else its own step type; by the cause the Retry carries.
    step = logcontext.current_step() or metrics.step_of(getattr(sender, "name", "")) or "plan"
    metrics.retried(step, getattr(reason, "exc", None))


@task_postrun.connect
def _task_ends(task_id: str, **_: Any) -> None:
    logcontext.leave(task_id)


@worker_process_shutdown.connect
def _pool_process_exits(pid: int, **_: Any) -> None:
    metrics.process_exited(pid)

"""Celery configuration shared by the gateway (which only sends) and the workers."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.entity import Queue
from kombu.exceptions import ChannelError

from common import broker
from common.settings import Settings, get_settings

RUN_JOB_TASK = "pipeline.run_job"


def step_task_name(type_id: str) -> str:
    return f"pipeline.step.{type_id}"


def io_queue_name(settings: Settings) -> str:
    """The queue of the steps that wait rather than compute (StepManifest.io_bound)."""
    return f"{settings.queue_name}.io"


def queue_names(settings: Settings | None = None) -> tuple[str, str]:
    """The CPU queue (the planning task and the steps that compute) and the I/O queue."""
    settings = settings or get_settings()
    return settings.queue_name, io_queue_name(settings)


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.celery_broker_url,
        "broker_connection_retry_on_startup": True,
        # Job state lives in the database; Celery's result store would only duplicate it.
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_default_queue": settings.queue_name,
        # A worker started without -Q serves both; a deployment may give each its own workers
        # (a process pool for the CPU queue, a thread pool for the I/O queue).
        "task_queues": [Queue(name) for name in queue_names(settings)],  # type: ignore[no-untyped-call]
        # A task is acknowledged once it finished, so a killed worker's task is delivered again.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Task events cost every task three messages: on only while a monitor asks for them
        # (Flower does, every 5 s while it is in use; see worker/events.py, worker/flower.py).
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
    }
    visibility = settings.broker_visibility_timeout_s
    config["broker_transport_options"] = {
        # Redis: an unacknowledged task is delivered again after this long.
        "visibility_timeout": visibility,
        # kombu looks for messages whose visibility timeout passed every interval times
        # throttle seconds (100 s by default): every interval here, so that a message held
        # by a worker that died is delivered again within about 1.5 x the timeout.
        "unacked_restore_interval": max(1, min(10, visibility // 2)),
        "unacked_restore_throttle": 1,
        # A silent link (no RST ever comes) must break a connection, not hang it: every
        # command and every new connection waits at most BROKER_SOCKET_TIMEOUT_S, and
        # kombu drops a consuming connection whose BRPOP reply is overdue by
        # BROKER_HEALTH_CHECK_S (checked every as many seconds).
        "socket_timeout": settings.broker_socket_timeout_s,
        "socket_connect_timeout": settings.broker_socket_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": settings.broker_health_check_s,
    }
    if settings.celery_broker_url.startswith("redis://"):
        # kombu's Redis transport, sharing a client object instead of building one per command
        # (common/broker.py). rediss:// keeps kombu's own, which checks its TLS options.
        config["broker_transport"] = broker.TRANSPORT
    config["broker_connection_timeout"] = settings.broker_socket_timeout_s
    # A publish that fails is tried again once, at once, on a new connection; the caller
    # (the gateway, the sweep) then leaves the job to the recovery sweep instead of waiting.
    config["task_publish_retry_policy"] = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
    return config


def make_celery(main: str, settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    settings.ensure_dirs()
    app = Celery(main)
    # Read when the configuration is first needed (to connect, to start a worker), not on
    # import: importing the tasks needs no broker, and an unset BROKER_URL fails then.
    app.add_defaults(lambda: celery_config(settings))
    return app


_client: Celery | None = None


def client() -> Celery:
    """The gateway's sending-only Celery app; it knows task names, not the tasks' code."""
    global _client
    if _client is None:
        _client = make_celery("pipeline-gateway")
    return _client


@functools.cache
def _io_bound_by_type() -> dict[str, bool]:
    """Each step type id that has a task (aliases of the earlier config format excluded), and
    whether its tasks go to the I/O queue."""
    from common.pipeline import registry

    return {step.manifest.type_id: step.manifest.io_bound for step in registry().steps}


def step_queue(type_id: str, settings: Settings | None = None) -> str:
    """The queue a step type's tasks go to."""
    settings = settings or get_settings()
    return io_queue_name(settings) if _io_bound_by_type()[type_id] else settings.queue_name


def step_runs(
    steps: Sequence[tuple[int, str]], settings: Settings | None = None
) -> list[tuple[str, list[tuple[int, str]]]]:
    """The steps, (position, step type) in order, cut into runs of adjacent positions that go
    to the same queue: (queue, steps of the run). A run is one task, so a job whose model call
    and detection row are both on the I/O queue goes through the broker twice, not three times.
    """
    settings = settings or get_settings()
    runs: list[tuple[str, list[tuple[int, str]]]] = []
    for position, step_type in steps:
        queue = step_queue(step_type, settings)
        if runs and runs[-1][0] == queue and runs[-1][1][-1][0] == position - 1:
            runs[-1][1].append((position, step_type))
        else:
            runs.append((queue, [(position, step_type)]))
    return runs


def enqueue_job(
    job_id: uuid.UUID, steps: Sequence[tuple[int, str]], app: Celery | None = None
) -> None:
    """Hand the job's steps still to run, (position, step type) in order, to the workers
    (through `app`, by default the gateway's client).

    One message: the first task, carrying the rest of the chain, which the worker sends on as
    each task succeeds. A task runs a run of steps (`step_runs`): it is named after the run's
    first step and its arguments are the job id, the first position and, for a run of more than
    one step, the last. A job with no step left, or with a step type not known here, gets the
    planning task instead, which settles it.
    """
    app = app or client()
    settings = get_settings()
    known = _io_bound_by_type()
    if not steps or any(step_type not in known for _, step_type in steps):
        # The planning task fails a job whose steps this code does not know, saying why.
        app.send_task(RUN_JOB_TASK, args=[str(job_id)], queue=settings.queue_name)
        return
    signatures = []
    for queue, run in step_runs(steps, settings):
        (first, step_type), last = run[0], run[-1][0]
        args = (str(job_id), first) if last == first else (str(job_id), first, last)
        signatures.append(
            app.signature(step_task_name(step_type), args=args, immutable=True, queue=queue)
        )
    # The message `chain(*signatures).apply_async()` sends, without building the canvas (which
    # gives every task an id and a result object up front: a quarter of the send's CPU). The
    # worker sends each next task as the one before it succeeds; the list is last first.
    head, rest = signatures[0], signatures[1:]
    app.send_task(
        head.task,
        args=head.args,
        queue=head.options["queue"],
        chain=[dict(signature) for signature in reversed(rest)] or None,
    )


def queue_depths(app: Celery | None = None) -> dict[str, int]:
    """Messages waiting in each of the jobs' queues (not those a worker holds)."""
    depths = {}
    with (app or client()).connection_for_read() as connection:
        for name in queue_names():
            try:
                declared = connection.default_channel.queue_declare(queue=name, passive=True)
            except ChannelError:
                depths[name] = 0  # Redis drops an empty list: no queue means nothing waiting
            else:
                depths[name] = int(declared.message_count)
    return depths


def queue_depth(app: Celery | None = None) -> int:
    """Messages waiting in all of the jobs' queues."""
    return sum(queue_depths(app).values())


def check_broker(timeout: float = 2.0) -> None:
    """Raise if the broker cannot be reached."""
    with client().connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)

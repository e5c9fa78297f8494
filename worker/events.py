"""Task events only while a monitor asks for them.

Every task costs its worker three event messages (received, started, succeeded) when task
events are on, and whoever listens parses them all. A worker started without --task-events
sends none, until a monitor asks with the `enable_events` control command: Flower asks every
5 s (its `enable_events` option, on by default; as the Procfile and compose start it,
worker/flower.py, only while someone uses it), `celery -A worker control enable_events` once.
Celery's own command leaves them on for good, so a worker whose monitor has gone kept paying;
here the request is a lease: task events go off again once no request came for
TASK_EVENTS_LEASE_S seconds (three of Flower's intervals by default). A worker started with
--task-events sends them always, as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps
from celery.worker import control
from celery.worker.consumer import Consumer
from celery.worker.consumer.events import Events

from common.settings import get_settings

log = logging.getLogger(__name__)

TASK = "task"  # the dispatcher's group of task events
# When a monitor last asked for task events (time.monotonic()); None: never since the start.
_last_asked: float | None = None
_celery_enable_events = control.enable_events


@control.control_command()  # the same name as Celery's: this one replaces it
def enable_events(state: Any) -> dict[str, Any]:
    """Tell the worker to send task events, for TASK_EVENTS_LEASE_S seconds from now."""
    global _last_asked
    _last_asked = time.monotonic()
    return dict(_celery_enable_events(state))


class TaskEventsLease(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer step: turns task events off once their lease ran out (checked every second).

    Does nothing in a worker started with --task-events (`task_events`), nor with a lease of 0.
    """

    requires = (Events,)

    def __init__(self, c: Consumer, task_events: bool = False, **kwargs: Any) -> None:
        self.lease_s = get_settings().task_events_lease_s
        self.always = bool(task_events)
        self.timer: Any = None
        super().__init__(c, **kwargs)

    def start(self, c: Consumer) -> None:
        if self.always or self.lease_s <= 0:
            return
        self.timer = c.timer.call_repeatedly(1.0, self.expire, (c,), priority=10)

    def stop(self, c: Consumer) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self, c: Consumer) -> None:
        dispatcher = c.event_dispatcher
        if dispatcher is None or not dispatcher.groups or TASK not in dispatcher.groups:
            return
        if _last_asked is None or time.monotonic() - _last_asked > self.lease_s:
            dispatcher.groups.discard(TASK)
            log.info("task events off: no monitor asked for them in %g s", self.lease_s)

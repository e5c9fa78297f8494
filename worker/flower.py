"""Flower that asks the workers for task events only while someone uses it.

    python -m worker.flower [Flower's options]    (what `celery -A worker flower [...]` does)

Workers send task events only while a monitor asks (worker/events.py), and Flower asks every
5 s for as long as it runs, so with Flower attached every task costs three events that Flower
parses, whether anyone looks or not. Flower has no option to ask only while it is in use, so
this launcher runs Flower's own command (every option, FLOWER_* variable and config file as
before) with two changes to its application:

- Flower's 5 s timer asks only if Flower had a request in the last FLOWER_EVENTS_WINDOW_S
  seconds: a page, the API or /metrics, answered without an error; not /healthcheck, static
  files, nor a request Flower refused (401 without the password, 404), so that health probes
  and strangers do not turn task events on.
- The first such request after an idle spell asks at once (in Flower's executor, as its timer
  does, so Tornado's loop never waits), so the page shows tasks from that moment on.

Tasks that ran while nobody used Flower are not in it. FLOWER_EVENTS_WINDOW_S=0 leaves Flower as
it is (asking always). Flower's --enable_events=False still turns asking off altogether.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import flower.command
from celery.bin.celery import celery as celery_command
from flower.app import Flower
from flower.views.monitor import Healthcheck
from tornado.ioloop import PeriodicCallback
from tornado.web import RequestHandler, StaticFileHandler

from common.settings import get_settings

log = logging.getLogger("worker.flower")  # not __main__ under `python -m`

# Requests that say nothing about anyone looking at Flower: probes and the pages' assets.
NOT_USE = (Healthcheck, StaticFileHandler)


def counts_as_use(handler: type[RequestHandler], status: int) -> bool:
    """Whether a finished request (its handler class, its HTTP status) means someone uses
    Flower: any handler but the health check and static files, answered with a status < 400."""
    return status < 400 and not issubclass(handler, NOT_USE)


class UseWindow:
    """When Flower was last used, against a window of `window_s` seconds (times are
    time.monotonic() seconds); a window of 0 means always in use."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.last: float | None = None

    def active(self, now: float) -> bool:
        """Whether Flower was used within the window before `now`."""
        if self.window_s <= 0:
            return True
        return self.last is not None and now - self.last <= self.window_s

    def seen(self, now: float) -> bool:
        """Record a use at `now`; True if it ends an idle spell (Flower should ask at once).
        Always False with a window of 0: Flower asks every 5 s anyway."""
        starts = not self.active(now)
        self.last = now
        return starts


class OnUseFlower(Flower):  # type: ignore[misc]
    """Flower's application, asking for task events only while in use (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use = UseWindow(get_settings().flower_events_window_s)
        self.asking: bool | None = None  # None: not decided since the start
        if self.use.window_s > 0:
            # Flower's Events starts and stops `timer`; this one asks only while in use.
            self.events.timer = PeriodicCallback(
                self.ask_while_in_use, self.events.events_enable_interval
            )

    async def ask_while_in_use(self) -> None:
        """Flower's periodic ask (every 5 s), skipped while nobody uses Flower."""
        if self.use.active(time.monotonic()):
            self.asking = True
            await self.events.on_enable_events()
        elif self.asking is not False:
            self.asking = False
            log.info(
                "Flower idle: not asking the workers for task events until its next request "
                "(FLOWER_EVENTS_WINDOW_S=%g)",
                self.use.window_s,
            )

    def log_request(self, handler: RequestHandler) -> None:
        """Tornado calls this once a request is answered: note the use, and ask at once if
        Flower was idle."""
        super().log_request(handler)
        if not counts_as_use(type(handler), handler.get_status()):
            return
        if self.use.seen(time.monotonic()) and self.events.enable_events:
            self.asking = True
            log.info("Flower in use: asking the workers for task events")
            # on_enable_events runs Celery's broadcast in Flower's executor.
            self.io_loop.add_callback(self.events.on_enable_events)


def main(argv: list[str] | None = None) -> None:
    """Run `celery -A worker flower` with `argv` (default: this command's arguments) as
    Flower's options, with OnUseFlower as its application. Exits as that command does."""
    # Flower's command builds its application by this module-level name.
    flower.command.Flower = OnUseFlower
    args = sys.argv[1:] if argv is None else argv
    celery_command.main(
        args=["-A", "worker", "flower", *args], prog_name="celery", auto_envvar_prefix="CELERY"
    )


if __name__ == "__main__":
    main()

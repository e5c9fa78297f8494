"""When Flower counts as in use, and that it asks for task events only then (worker/flower.py).
The system tests (tests/ops/test_flower.py) run it against a real worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from celery import Celery
from flower.api.tasks import ListTasks
from flower.views.error import NotFoundErrorHandler
from flower.views.monitor import Healthcheck, Metrics
from flower.views.tasks import TasksDataTable
from flower.views.workers import WorkersView
from tornado.ioloop import IOLoop
from tornado.web import StaticFileHandler

from common.settings import get_settings
from worker.flower import OnUseFlower, UseWindow, counts_as_use

WINDOW_S = 300.0


@pytest.mark.parametrize("handler", [WorkersView, TasksDataTable, ListTasks, Metrics])
def test_a_page_the_api_and_metrics_answered_count_as_use(handler: type) -> None:
    assert counts_as_use(handler, 200)
    assert counts_as_use(handler, 304)


@pytest.mark.parametrize("handler", [Healthcheck, StaticFileHandler])
def test_health_checks_and_static_files_do_not_count_as_use(handler: type) -> None:
    assert not counts_as_use(handler, 200)


@pytest.mark.parametrize(("handler", "status"), [(WorkersView, 401), (NotFoundErrorHandler, 404)])
def test_requests_flower_refused_do_not_count_as_use(handler: type, status: int) -> None:
    assert not counts_as_use(handler, status)


def test_flower_is_in_use_for_the_window_after_each_request() -> None:
    use = UseWindow(WINDOW_S)
    assert not use.active(1000.0)  # nothing since the start

    assert use.seen(1000.0)  # the first request ends the idle spell: ask at once
    assert use.active(1000.0 + WINDOW_S)
    assert not use.seen(1100.0)  # within the window: Flower's timer keeps asking
    assert use.active(1100.0 + WINDOW_S)
    assert not use.active(1100.0 + WINDOW_S + 0.1)

    assert use.seen(1100.0 + WINDOW_S + 0.1)  # after an idle spell: ask at once again


def test_a_window_of_0_means_always_in_use_and_never_an_extra_ask() -> None:
    use = UseWindow(0)

    assert use.active(0.0)
    assert not use.seen(1.0)
    assert use.active(1e9)


def run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` to its end on an event loop of its own, in a thread of its own: the
    test's thread may already run a loop (Playwright's sync API leaves one in the browser
    tests' thread), where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, coroutine).result(timeout=30)


@pytest.fixture
def loop() -> Iterator[IOLoop]:
    loop = IOLoop(make_current=False)
    yield loop
    loop.close()


def on_use_flower(loop: IOLoop, monkeypatch: pytest.MonkeyPatch, window_s: float) -> OnUseFlower:
    monkeypatch.setenv("FLOWER_EVENTS_WINDOW_S", str(window_s))
    get_settings.cache_clear()
    try:
        flower = OnUseFlower(capp=Celery("flower-test", broker="memory://"), io_loop=loop)
    finally:
        get_settings.cache_clear()
    flower.executor.shutdown()
    return flower


def test_flowers_timer_asks_for_task_events_only_while_flower_is_in_use(
    loop: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    flower = on_use_flower(loop, monkeypatch, WINDOW_S)
    asked: list[None] = []

    async def enable_events() -> None:
        asked.append(None)

    monkeypatch.setattr(flower.events, "on_enable_events", enable_events)
    # Flower starts and stops this timer; it fires every 5 s, as Flower's own.
    timer = flower.events.timer
    assert timer.callback == flower.ask_while_in_use
    assert timer.callback_time == 5000

    run_apart(flower.ask_while_in_use())
    assert asked == []  # no request yet

    flower.use.seen(time.monotonic())  # a request just now
    run_apart(flower.ask_while_in_use())
    assert len(asked) == 1


def test_a_window_of_0_leaves_flowers_own_timer(
    loop: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    flower = on_use_flower(loop, monkeypatch, 0)

    assert flower.events.timer.callback == flower.events.on_enable_events

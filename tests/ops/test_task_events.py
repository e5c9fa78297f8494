"""Task events only while a monitor asks for them: a worker started as the Procfile starts it
(no --task-events) sends none, sends them once asked, and stops when no one asked again; Flower,
as the Procfile starts it, asks only while someone uses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery

from tests.conftest import TEST_ENV
from tests.ops.helpers import PHOTO, WORKER, cluster, node_name, run_jobs, start_flower
from tests.system import wait_until

pytestmark = pytest.mark.system

# Long enough that the watched job runs within it on a busy machine, short for the test.
LEASE_S = "5"
FLOWER_AUTH = ("ops", "flower-events")


@contextmanager
def task_events_of(node: str) -> Iterator[list[dict[str, Any]]]:
    """The task events `node` sends meanwhile, as a list that grows; ready on return (the
    worker's own heartbeat, always sent, has come through)."""
    app = Celery("test-events", broker=TEST_ENV["BROKER_URL"])
    seen: list[dict[str, Any]] = []
    heartbeat = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("hostname") != node:
            return
        if event["type"].startswith("task-"):
            seen.append(event)
        elif event["type"] == "worker-heartbeat":
            heartbeat.set()

    with app.connection() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": on_event})
        thread = threading.Thread(target=receiver.capture, kwargs={"limit": None}, daemon=True)
        thread.start()
        try:
            assert heartbeat.wait(30), "no heartbeat from the worker"
            yield seen
        finally:
            receiver.should_stop = True
            thread.join(10)
    app.close()


def received_jobs(events: list[dict[str, Any]]) -> set[str]:
    """The job ids in the arguments of the task-received events."""
    return {str(e["args"]).split("'")[1] for e in events if e["type"] == "task-received"}


def test_a_worker_sends_task_events_only_while_a_monitor_asks_for_them(tmp_path: Path) -> None:
    node = node_name(WORKER)
    with cluster(tmp_path, TASK_EVENTS_LEASE_S=LEASE_S) as running, task_events_of(node) as seen:
        # Given a worker started without --task-events, and nobody asking: no task events
        unwatched = str(run_jobs(running.api, 1, 1)[0]["job_id"])
        assert seen == []

        # When a monitor asks (as Flower does every 5 s while in use), the next job's tasks are seen
        control = Celery("test-control", broker=TEST_ENV["BROKER_URL"])
        replies = control.control.enable_events(destination=[node], reply=True, timeout=10)
        control.close()
        assert replies, "the worker did not answer enable_events"
        watched = str(run_jobs(running.api, 1, 1)[0]["job_id"])
        wait_until(lambda: watched in received_jobs(seen), 10, "the watched job's events")

        # Then, once nobody asked again within the lease, they stop
        wait_until(lambda: "task events off" in running.system.log(WORKER), 30, "the lease to end")
        before = len(seen)
        after_lease = str(run_jobs(running.api, 1, 1)[0]["job_id"])

        assert unwatched not in received_jobs(seen)
        assert seen[before:] == []
        assert after_lease not in received_jobs(seen)


def test_flower_asks_for_task_events_only_while_someone_uses_it(tmp_path: Path) -> None:
    node = node_name(WORKER)
    settings = {
        "FLOWER_EVENTS_WINDOW_S": "2",
        # Longer than Flower's 5 s between asks, so that events flow on while it is in use.
        "TASK_EVENTS_LEASE_S": "10",
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
    }
    with cluster(tmp_path, **settings) as running, task_events_of(node) as seen:
        system = running.system
        # Given Flower running, asked only for its health (a probe), a static file and, without
        # its password, a page: no use of it
        url = start_flower(system)
        assert httpx.get(f"{url}/static/css/flower.css", timeout=10).status_code == 200
        assert httpx.get(f"{url}/api/tasks", timeout=10).status_code == 401
        # its 5 s timer has fired (where Flower on its own would ask) and it did not ask
        wait_until(lambda: "Flower idle" in system.log("flower"), 30, "Flower's first timer")
        unwatched = str(run_jobs(running.api, 1, 1)[0]["job_id"])
        assert seen == []
        assert "enabled by remote" not in system.log(WORKER)

        # When someone opens a page, Flower asks at once, and its task list shows the next job,
        # for as long as its pages are used (here: asked for the task list)
        page = httpx.get(f"{url}/workers", auth=FLOWER_AUTH, timeout=10)
        assert page.status_code == 200
        wait_until(lambda: "enabled by remote" in system.log(WORKER), 10, "Flower asking")
        posted = running.api.post(
            "/jobs", files={"image": ("car.jpg", PHOTO)}, data={"pipeline_id": "1"}
        )
        assert posted.status_code == 202, posted.text
        watched = str(posted.json()["job_id"])

        def listed() -> set[str]:
            answer = httpx.get(f"{url}/api/tasks", auth=FLOWER_AUTH, timeout=10)
            assert answer.status_code == 200
            return {t["name"] for t in answer.json().values() if watched in str(t["args"])}

        wait_until(lambda: len(listed()) == 2, 30, "Flower listing the job's tasks", interval=0.3)
        assert listed() == {"pipeline.step.image.fit@v1", "pipeline.step.model.detect_car@v1"}
        wait_until(lambda: watched in received_jobs(seen), 10, "the watched job's events")

        # Then, once nobody used Flower within its window, it stops asking, and after the
        # worker's lease its tasks send no events
        wait_until(lambda: system.log("flower").count("Flower idle") == 2, 30, "Flower idle")
        wait_until(lambda: "task events off" in system.log(WORKER), 30, "the lease to end")
        before = len(seen)
        after_use = str(run_jobs(running.api, 1, 1)[0]["job_id"])

        assert unwatched not in received_jobs(seen)
        assert seen[before:] == []
        assert after_use not in received_jobs(seen)

"""Task events only while a monitor asks for them: a worker started as the Procfile starts it
(no --task-events) sends none, sends them once asked, and stops when no one asked again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.conftest import TEST_ENV
from tests.ops.helpers import WORKER, cluster, node_name, run_jobs
from tests.system import wait_until

pytestmark = pytest.mark.system

# Long enough that the watched job runs within it on a busy machine, short for the test.
LEASE_S = "5"


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

        # When a monitor asks (as Flower does every 5 s), the next job's tasks are seen
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

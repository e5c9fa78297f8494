"""Talking to the API: submitting an upload (the one submit helper), checking the one error
shape, and watching what reaches the queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import redis
import sqlalchemy as sa

ERROR_KEYS = {"code", "message", "job_id", "details"}
STORED = ("jobs", "job_steps", "job_images")


def submit(
    api: httpx.Client,
    data: bytes,
    pipeline_id: object = 1,
    *,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **params: Any,
) -> httpx.Response:
    """POST /jobs with one image as a multipart file (file name `name`, declared type
    `content_type`) and the pipeline id as a form field; `params` go in the query."""
    return api.post(
        "/jobs",
        params=params,
        files={"image": (name, data, content_type)},
        data={"pipeline_id": str(pipeline_id)},
    )


def submit_ok(api: httpx.Client, data: bytes, pipeline_id: int = 1, name: str = "photo.jpg") -> str:
    """POST /jobs, which must answer 202 with the job queued and its Location; the job's id."""
    response = submit(api, data, pipeline_id, name=name)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    return str(body["job_id"])


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is `status` with body `{"error": {"code": code, "message": "...", ...}}`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert {"code", "message"} <= set(error) <= ERROR_KEYS, body
    assert error["code"] == code, body
    assert isinstance(error["message"], str), body
    assert error["message"].strip(), body
    return dict(error)


def wait_until_idle(timeout: float = 30) -> None:
    """Wait until no job is queued or running, so the worker adds no rows while we count."""
    from common.db import get_engine

    query = sa.text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
    deadline = time.monotonic() + timeout
    while True:
        with get_engine().connect() as conn:
            if conn.execute(query).scalar_one() == 0:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still unfinished after {timeout} s")
        time.sleep(0.05)


def stored_rows() -> dict[str, int]:
    from tests.conftest import count_rows

    return {table: count_rows(table) for table in STORED}


class QueueSpy:
    """Records the tasks pushed onto the test queue while it watches Redis (MONITOR).

    A worker takes messages off the queue within milliseconds, so the queue's length says little;
    watching the pushes counts what was published, even if it was consumed at once.
    """

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        self.db = client.connection_pool.connection_kwargs.get("db", 0)
        self.marker = f"queue-spy-stop-{uuid.uuid4().hex}"
        self.pushed: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.client.monitor() as monitor:
            self._ready.set()
            while True:
                command = monitor.next_command()
                text = str(command["command"])
                if self.marker in text:
                    return
                verb, _, rest = text.partition(" ")
                key, _, payload = rest.partition(" ")
                # The CPU queue and the I/O queue, each with its priority sub-queues.
                is_ours = any(
                    key == queue or key.startswith(f"{queue}\\x06\\x16")
                    for queue in (self.queue, f"{self.queue}.io")
                )
                if command["db"] == self.db and verb.upper() == "LPUSH" and is_ours:
                    headers = json.loads(payload).get("headers", {})
                    task = {
                        "task": headers.get("task"),
                        "args": headers.get("argsrepr"),
                        "queue": key.split("\\x06\\x16")[0],
                    }
                    self.pushed.append(task)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(5), "Redis MONITOR did not start"

    def collect(self) -> list[dict[str, Any]]:
        """Stop watching; what was pushed (commands reach MONITOR before their replies)."""
        if self._thread.is_alive():
            self.client.echo(self.marker)
            self._thread.join(10)
        return self.pushed


@contextmanager
def spy_on_queue() -> Iterator[QueueSpy]:
    from tests.conftest import QUEUE, TEST_ENV

    client = redis.Redis.from_url(TEST_ENV["BROKER_URL"])
    spy = QueueSpy(client, QUEUE)
    spy.start()
    try:
        yield spy
    finally:
        spy.collect()
        client.close()


def queue_length() -> int:
    """Messages waiting in the CPU and the I/O queue."""
    from tests.conftest import QUEUE, TEST_ENV

    with redis.Redis.from_url(TEST_ENV["BROKER_URL"]) as client:
        return int(client.llen(QUEUE)) + int(client.llen(f"{QUEUE}.io"))

"""The broker transport: kombu's Redis transport sharing one client object per connection pool
(common/broker.py), which sends what kombu's own sends."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from common import broker
from common.queue import enqueue_job, make_celery
from common.settings import Settings
from tests.conftest import TEST_ENV

pytestmark = pytest.mark.system

STEPS = [(1, "image.fit@v1"), (2, "model.detect_car@v1"), (3, "storage.save_car_detection@v1")]


@pytest.fixture
def queue(servers: object) -> Iterator[str]:
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(TEST_ENV["BROKER_URL"])
    client.delete(name, f"{name}.io")
    client.close()


def test_a_redis_url_gets_the_shared_client_transport_and_rediss_keeps_kombus() -> None:
    config = make_celery("t", Settings(broker_url="redis://127.0.0.1:6379/0")).conf
    assert config.broker_transport == broker.TRANSPORT
    tls = make_celery("t", Settings(broker_url="rediss://127.0.0.1:6379/0")).conf
    assert tls.broker_transport is None


def test_publishes_share_one_client_object_and_carry_the_rest_of_the_chain(
    queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the gateway's app on the test broker, keeping every client object its channels
    # send a command with (kombu shares producers, and so channels, between apps of one process)
    settings = Settings(broker_url=TEST_ENV["BROKER_URL"], queue_name=queue)
    monkeypatch.setattr("common.queue.get_settings", lambda: settings)  # no worker reads it
    app = make_celery("t", settings)
    used: list[object] = []
    acquire = broker.Channel.conn_or_acquire

    @contextmanager
    def recording(self: broker.Channel, client: object = None) -> Iterator[object]:
        with acquire(self, client) as acquired:
            used.append(acquired)
            yield acquired

    monkeypatch.setattr(broker.Channel, "conn_or_acquire", recording)
    jobs = [uuid.uuid4() for _ in range(20)]

    # When
    for job in jobs:
        enqueue_job(job, STEPS, app)

    # Then: every message arrived, sent with one client object (kombu's own builds one each)
    assert len(used) >= len(jobs)
    assert len({id(client) for client in used}) == 1
    client = redis.Redis.from_url(TEST_ENV["BROKER_URL"])
    messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    client.close()
    assert sorted(m["headers"]["argsrepr"] for m in messages) == sorted(
        repr((str(job), 1)) for job in jobs
    )
    # The message is the chain's: the fit task, carrying the I/O run of steps 2 and 3.
    body = json.loads(base64.b64decode(messages[0]["body"]))
    args, _kwargs, embed = body
    assert embed["chain"] == [
        {
            "task": "pipeline.step.model.detect_car@v1",
            "args": [args[0], 2, 3],
            "kwargs": {},
            "options": {"queue": f"{queue}.io"},
            "subtask_type": None,
            "immutable": True,
        }
    ]
    app.close()

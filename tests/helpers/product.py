"""What the tests of pipelines-as-a-product share: pipelines of their own, side APIs, images."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import redis
from PIL import Image

from tests import images
from tests.conftest import TEST_ENV
from tests.system import System, free_port, make_env

MODEL_PATH = "/process_image/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def car_config(box: int = 640, model_path: str = MODEL_PATH) -> dict[str, Any]:
    """The car pipeline, fitting images into box x box, asking the model at `model_path`."""
    return {
        "datatype": "CarDetection",
        "steps": [
            {"type": "image.fit@v1", "params": {"max_width": box, "max_height": box}},
            {"type": "model.detect_car@v1", "params": {"path": model_path}},
            {"type": "storage.save_car_detection@v1"},
        ],
    }


def create_pipeline(api: httpx.Client, config: dict[str, Any], prefix: str = "p") -> int:
    response = api.post("/pipelines", json={"name": unique(prefix), "config": config})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def add_pipeline(name: str, steps: list[dict[str, Any]], datatype: str = "CarDetection") -> int:
    """A pipeline stored straight in the database, with no check of its steps."""
    from common.db import session_scope
    from common.repositories import PipelineRepository

    with session_scope() as session:
        pipeline = PipelineRepository(session).add(
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            description=name,
            config={"datatype": datatype, "steps": steps},
        )
        return pipeline.id


def batch(
    api: httpx.Client, uploads: list[bytes], pipeline_id: object, **extra: str
) -> httpx.Response:
    files = [("images", (f"img-{n}.png", data)) for n, data in enumerate(uploads)]
    return api.post("/jobs/batch", files=files, data={"pipeline_id": str(pipeline_id), **extra})


def image_of(api: httpx.Client, job_id: str, variant: str) -> httpx.Response:
    return api.get(f"/jobs/{job_id}/image", params={"variant": variant})


def processed_size(api: httpx.Client, job_id: str) -> tuple[int, int]:
    response = image_of(api, job_id, "processed")
    assert response.status_code == 200, response.text
    return images.size_of(response.content)


def noise_png(side: int) -> bytes:
    """A PNG of random pixels: it does not compress, so it is about 3 x side^2 bytes."""
    return images.encode(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)), "PNG")


@contextmanager
def side_api(logs: Any, **settings: str) -> Iterator[httpx.Client]:
    """Another API process on the test database, with some settings of its own."""
    port = free_port()
    running = System(env=make_env({**TEST_ENV, **settings}), logs=logs)
    try:
        running.start_api(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        running.stop()


def drop_queue(queue: str) -> None:
    with redis.Redis.from_url(TEST_ENV["BROKER_URL"]) as client:
        client.delete(queue, f"_kombu.binding.{queue}", *client.keys(f"{queue}\x06\x16*"))

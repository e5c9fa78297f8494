"""What the API tests share: submitting an upload, and checking the one error shape."""

from __future__ import annotations

import time
from typing import Any

import httpx
import sqlalchemy as sa

ERROR_KEYS = {"code", "message", "job_id", "details"}


def submit(
    api: httpx.Client,
    data: bytes,
    *,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
    pipeline_id: object = 1,
) -> httpx.Response:
    """POST /jobs with one image as a multipart file and the pipeline id as a form field."""
    return api.post(
        "/jobs",
        files={"image": (name, data, content_type)},
        data={"pipeline_id": str(pipeline_id)},
    )


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

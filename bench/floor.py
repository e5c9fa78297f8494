"""The stack's floor: what FastAPI, Celery on Redis, PostgreSQL and an HTTP model call cost per
image with none of the project's own work around them.

A gateway (`app`) takes the multipart upload, stores its bytes in one statement and sends one
task; the task (`celery_app`, a prefork pool acknowledging late with a prefetch of 1, as the
project's workers do) reads the bytes, runs the project's fit_image, asks the model mock, and
stores the processed image and the answer in one statement. No job states, steps, attempts,
retries, recovery sweep, validation, logs or metrics: nothing a client could poll, nothing that
survives a fault. Its end-to-end ratio to the bare loop is a ceiling for any system built from
these parts on the machine; the benchmark runs it beside the project (`make bench`, phase
"stack floor") and reports both.

Configured by the environment: FLOOR_DATABASE_URL (a libpq URL), FLOOR_BROKER_URL,
FLOOR_QUEUE and FLOOR_MODEL_URL.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import httpx
import psycopg
from celery import Celery
from fastapi import FastAPI, UploadFile

from common.pipeline.steps.image_fit import fit_image

DATABASE_URL = os.environ.get("FLOOR_DATABASE_URL", "")
QUEUE = os.environ.get("FLOOR_QUEUE", "floor")
MODEL_URL = os.environ.get("FLOOR_MODEL_URL", "http://127.0.0.1:8001")
TASK = "floor.run"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS floor_uploads (id uuid PRIMARY KEY, content_type text, data bytea)",
    "ALTER TABLE floor_uploads ALTER data SET STORAGE EXTERNAL",
    "CREATE TABLE IF NOT EXISTS floor_results (id uuid PRIMARY KEY, image bytea, answer jsonb, "
    "finished_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "ALTER TABLE floor_results ALTER image SET STORAGE EXTERNAL",
)

celery_app = Celery("floor", broker=os.environ.get("FLOOR_BROKER_URL", "redis://"))
celery_app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

# One connection per thread (the gateway's thread pool) or per pool process (made after fork).
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(DATABASE_URL, autocommit=True)
        _local.conn = conn
    return conn


def _http() -> httpx.Client:
    client: httpx.Client | None = getattr(_local, "http", None)
    if client is None:
        client = httpx.Client(timeout=10)
        _local.http = client
    return client


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/jobs", status_code=202)
def submit(image: UploadFile) -> dict[str, str]:
    job_id = uuid.uuid4()
    _connection().execute(
        "INSERT INTO floor_uploads (id, content_type, data) VALUES (%s, %s, %s)",
        (job_id, image.content_type, image.file.read()),
    )
    celery_app.send_task(TASK, args=[str(job_id)], queue=QUEUE)
    return {"job_id": str(job_id)}


@celery_app.task(name=TASK)
def run(job_id: str) -> None:
    conn = _connection()
    with conn.cursor(binary=True) as cursor:
        cursor.execute("SELECT content_type, data FROM floor_uploads WHERE id = %s", (job_id,))
        row = cursor.fetchone()
    assert row is not None
    fitted = fit_image(bytes(row[1]), max_width=640, max_height=640)
    answer = _http().post(
        f"{MODEL_URL}/process_image/", files={"image": ("image", fitted, "image/jpeg")}
    )
    answer.raise_for_status()
    conn.execute(
        "INSERT INTO floor_results (id, image, answer) VALUES (%s, %s, %s::jsonb)",
        (job_id, fitted, answer.text),
    )

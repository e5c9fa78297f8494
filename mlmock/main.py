"""`POST /process_image/`: answers `null` or a random car box inside the received image.

Settings (environment): MLMOCK_SEED makes answers reproducible (the same image gets the same
answer), MLMOCK_NULL_RATE is the share of `null` answers, MLMOCK_LATENCY_MS delays each answer.

Injected faults, for tests and soak runs: MLMOCK_FAULT_RATE is the share of requests that get
one of MLMOCK_FAULTS (comma-separated): `error` (HTTP 503), `malformed` (a 200 whose body is
not JSON), `slow` (the answer comes after MLMOCK_SLOW_MS). Faults are drawn afresh for every
request, seeded or not, so a retry can succeed.

Each detection request is logged with the job id the worker sends as `X-Job-Id`; LOG_FORMAT
(`text` or `json`) and LOG_LEVEL are read as the other services read them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Header, HTTPException, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MockSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLMOCK_", extra="ignore")

    seed: int | None = Field(
        None,
        description="Unset: random answers; set: the same image always gets the same answer.",
    )
    null_rate: float = Field(0.5, ge=0, le=1, description="Share of `null` (no car) answers.")
    latency_ms: float = Field(0, ge=0, description="Delay added to every answer, ms.")
    fault_rate: float = Field(
        0, ge=0, le=1, description="Share of requests that get one of MLMOCK_FAULTS."
    )
    faults: str = Field(
        "error,malformed,slow",
        pattern=r"^(error|malformed|slow)(,(error|malformed|slow))*$",
        description="Which faults, comma-separated: `error` (HTTP 503), `malformed` (a 200 "
        "whose body is not JSON), `slow` (the answer comes after MLMOCK_SLOW_MS).",
    )
    slow_ms: float = Field(15000, ge=0, description="Delay of a `slow` fault, ms.")
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias="LOG_FORMAT", description="As for the services."
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL", description="As for the services.")

    @property
    def fault_kinds(self) -> list[str]:
        return self.faults.split(",")


@lru_cache
def get_settings() -> MockSettings:
    return MockSettings()


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the image header; the pixels are not decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise HTTPException(422, f"not an image: {exc}") from exc


def detect(rng: random.Random, width: int, height: int, null_rate: float) -> dict[str, Any] | None:
    """A random answer: None (no car) with probability null_rate, else a box inside the image."""
    if rng.random() < null_rate:
        return None
    box_w = rng.randint(1, width)
    box_h = rng.randint(1, height)
    return {
        "top_left_x": rng.randint(0, width - box_w),
        "top_left_y": rng.randint(0, height - box_h),
        "width": box_w,
        "height": box_h,
        # To 4 decimals, rounded down so that it stays below 1.
        "conf": math.floor(rng.random() * 10_000) / 10_000,
        "label": 1,
    }


def rng_for(data: bytes, seed: int | None) -> random.Random:
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}:{hashlib.sha256(data).hexdigest()}")


log = logging.getLogger("mlmock")


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _JobId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None)
        record.job_id, record.context = job_id, f"job={job_id or '-'}"
        return True


def configure_logging(settings: MockSettings) -> None:
    """The services' line format (this mock imports nothing of theirs: it plays an outside
    service), uvicorn's own lines included."""
    handler = logging.StreamHandler()
    handler.addFilter(_JobId())
    if settings.log_format == "json":
        handler.setFormatter(_JsonLines())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(context)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


app = FastAPI(title="Model server mock", version="1.0.0")
configure_logging(get_settings())
_faults = random.Random()  # never seeded: a retried request must be able to pass


@app.post("/process_image/", response_model=None)
async def process_image(
    image: Annotated[UploadFile, File()],
    x_job_id: Annotated[str | None, Header(max_length=64)] = None,
) -> dict[str, Any] | Response | None:
    settings = get_settings()
    data = await image.read()
    width, height = image_size(data)
    said = {"job_id": x_job_id}
    if settings.latency_ms:
        await asyncio.sleep(settings.latency_ms / 1000)
    if settings.fault_rate and _faults.random() < settings.fault_rate:
        fault = _faults.choice(settings.fault_kinds)
        log.info(
            "detection for job %s: %dx%d image, injected fault %s",
            x_job_id,
            width,
            height,
            fault,
            extra=said,
        )
        if fault == "error":
            return JSONResponse({"detail": "injected fault"}, status_code=503)
        if fault == "malformed":
            return Response(b'{"top_left_x": 12, "wid', media_type="application/json")
        await asyncio.sleep(settings.slow_ms / 1000)
    answer = detect(rng_for(data, settings.seed), width, height, settings.null_rate)
    log.info(
        "detection for job %s: %dx%d image, %s",
        x_job_id,
        width,
        height,
        "no car" if answer is None else f"car (conf {answer['conf']:.2f})",
        extra=said,
    )
    return answer


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}

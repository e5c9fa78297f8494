"""Log format shared by every process; records carry the job id, and the step, when there is one.

LOG_FORMAT=text gives readable lines (`make run`); LOG_FORMAT=json one JSON object per line
(compose), with the fields `time`, `level`, `logger`, `message`, `job_id`, `step`, `position`
and, for an error, `exception`. Celery's own task lines and uvicorn's access lines go through
the same handler, and take the job id from the task's arguments or the request's path. At INFO
a job's step writes one line, its own (see PER_TASK_LOGGERS).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
# The step a worker runs: (position from 1, type id).
step_var: ContextVar[tuple[int, str] | None] = ContextVar("step", default=None)

FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(context)s] %(message)s"
STEP_TASK_PREFIX = "pipeline.step."
# Loggers that would otherwise print with handlers and formats of their own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# At INFO, a step's own line ("step 2 (model.detect_car@v1) done in 6.0 ms") is the one line a
# step of a job writes: Celery's "Task ... received" and "... succeeded in" lines and httpx's
# line per request say nothing more, so these loggers write warnings and errors only (a retry or
# a failure has a WARNING line of ours besides). At DEBUG they write everything.
PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "httpx")

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_JOB_PATH = re.compile(rf"^/jobs/({_UUID})(?:[/?]|$)")
# A task's arguments as Celery prints them: ('<job id>', 2), or ['<job id>', 2] in a chain.
_TASK_ARGS = re.compile(rf"^[(\[]?'({_UUID})'(?:,\s*(\d+))?")


def _from_celery(record: logging.LogRecord) -> tuple[str, tuple[int, str] | None] | None:
    """Job id and step from a Celery task record ("Task ... received"), whose `data` carries
    the task's name and its arguments as text: (job_id,) or (job_id, position)."""
    data = getattr(record, "data", None)
    if not isinstance(data, Mapping):
        return None
    name, args = str(data.get("name", "")), data.get("args")
    if not name.startswith("pipeline.") or not isinstance(args, str):
        return None
    found = _TASK_ARGS.match(args)
    if found is None:
        return None
    step = None
    if name.startswith(STEP_TASK_PREFIX) and found.group(2):
        step = (int(found.group(2)), name.removeprefix(STEP_TASK_PREFIX))
    return found.group(1), step


def _from_access_log(record: logging.LogRecord) -> str | None:
    """The job id in the path of a uvicorn access line (client, method, path, version, status)."""
    if record.name != "uvicorn.access" or not isinstance(record.args, tuple):
        return None
    if len(record.args) < 3 or not isinstance(record.args[2], str):
        return None
    found = _JOB_PATH.match(record.args[2])
    return found.group(1) if found else None


class JobIdFilter(logging.Filter):
    """Sets `job_id` and `step` on every record (None when there is none) and `context`, the
    text format's `job=… step=…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id: str | None = getattr(record, "job_id", None)
        step: tuple[int, str] | None = getattr(record, "step", None)
        if not hasattr(record, "job_id"):
            job_id, step = job_id_var.get(), step or step_var.get()
            if job_id is None:
                celery = _from_celery(record)
                job_id, step = celery if celery is not None else (_from_access_log(record), step)
        context = f"job={job_id or '-'}"
        if step:
            context += f" step={step[0]}:{step[1]}"
        record.job_id, record.step, record.context = job_id, step, context
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        step: tuple[int, str] | None = getattr(record, "step", None)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "step": step[1] if step else None,
            "position": step[0] if step else None,
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(FORMAT)
    raise ValueError(f"LOG_FORMAT: {fmt!r} is not 'text' or 'json'")


def configure_logging(
    level: str | None = None,
    fmt: str | None = None,
    extra_loggers: Iterable[str] = UVICORN_LOGGERS,
) -> None:
    """One handler on the root logger, in LOG_FORMAT; `extra_loggers` (uvicorn's, by default)
    lose their own handlers and pass their records to it."""
    if level is None or fmt is None:
        from common.settings import get_settings

        settings = get_settings()
        level, fmt = level or settings.log_level, fmt or settings.log_format
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.WARNING if root.level == logging.INFO else logging.NOTSET
    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in extra_loggers:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True

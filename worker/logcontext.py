"""Every log line of a task carries its job id, and for a step task the step: set from the
task's arguments (job_id[, position]) before it runs, reset after."""

from __future__ import annotations

from contextvars import Token
from typing import Any

from common.logs import STEP_TASK_PREFIX, job_id_var, step_var

_tokens: dict[str, tuple[Token[str | None], Token[tuple[int, str] | None]]] = {}


def enter(task_id: str, task_name: str, args: Any) -> None:
    if not task_name.startswith("pipeline.") or not args:
        return
    job_id = str(args[0])
    step = None
    if task_name.startswith(STEP_TASK_PREFIX) and len(args) > 1 and type(args[1]) is int:
        step = (args[1], task_name.removeprefix(STEP_TASK_PREFIX))
    _tokens[task_id] = (job_id_var.set(job_id), step_var.set(step))


def leave(task_id: str) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        job_tok, step_tok = tokens
        step_var.reset(step_tok)
        job_id_var.reset(job_tok)

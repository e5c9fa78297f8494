"""Every log line of a task carries its job id, and for a step task the step: set from the
task's arguments (job_id[, position]) before it runs, moved on by the runner as it claims each
step of a run (`at_step`), reset after. This is the one way a worker tags its records; the
lines Celery writes outside a task ("received", "succeeded") are tagged by common.logs from the
arguments Celery prints.

Celery sends `task_prerun` and `task_postrun` from the thread that runs the task, and a context
variable's token can only be reset in the context (so the thread) that set it. The tokens are
therefore kept per thread, keyed by task id within it: two runs of one task at once (a message
delivered again while its first run goes on) run in two threads, or two processes, and never
see each other's tokens.
"""

from __future__ import annotations

import threading
from contextvars import Token
from typing import Any

from common.logs import STEP_TASK_PREFIX, job_id_var, step_var

Tokens = tuple[Token[str | None], Token[tuple[int, str] | None]]


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.tokens: dict[str, Tokens] = {}


_local = _PerThread()


def enter(task_id: str, task_name: str, args: Any) -> None:
    """Tag this thread's log records with the task's job id (and step) until `leave`."""
    if not task_name.startswith("pipeline.") or not args:
        return
    job_id = str(args[0])
    step = None
    if task_name.startswith(STEP_TASK_PREFIX) and len(args) > 1 and type(args[1]) is int:
        step = (args[1], task_name.removeprefix(STEP_TASK_PREFIX))
    _local.tokens[task_id] = (job_id_var.set(job_id), step_var.set(step))


def at_step(position: int, type_id: str) -> None:
    """The task's records are about step `position` (from 1) of type `type_id` from now on,
    until the next call or the task's end (`leave` restores what was before `enter`)."""
    step_var.set((position, type_id))


def current_step() -> str | None:
    """The type id of the step this thread's task is at, if any."""
    step = step_var.get()
    return None if step is None else step[1]


def leave(task_id: str) -> None:
    """Undo `enter` for the task that ran in this thread."""
    tokens = _local.tokens.pop(task_id, None)
    if tokens is not None:
        job_tok, step_tok = tokens
        step_var.reset(step_tok)
        job_id_var.reset(job_tok)

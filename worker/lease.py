"""Step leases: a running step's claim holds it for STEP_LEASE_S, and a thread of the worker
process renews the leases of the steps it runs every third of that, until they end.

A delivery of a step's message that finds the step held by a live lease does not run it: it
tries again once the lease would lapse (see worker.tasks). So a message delivered twice (Redis
redelivers an unacknowledged message after BROKER_VISIBILITY_TIMEOUT_S; the recovery sweep hands
over a job that seems stuck) runs the step once, and a step whose worker died runs again once
its lease lapsed, at most STEP_LEASE_S after the death.

Also here: the longest a task may hold its message, which the broker's visibility timeout must
exceed (checked when a worker starts).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from annotated_types import Le

from common.db import session_scope
from common.pipeline.steps.notify_webhook import MAX_DELAY_S, WebhookParams
from common.repositories import JobRepository
from common.settings import Settings, get_settings

log = logging.getLogger(__name__)

# The steps that only compute or write a row (image steps, storing a detection): a bound with
# room to spare for the largest image the settings accept, and for the database's round trips.
COMPUTE_MARGIN_S = 30.0
# A task waiting for its retry holds its message as long: the backoff's cap (worker.runner).
RETRY_COUNTDOWN_CAP_S = 30.0

Held = tuple[uuid.UUID, int, int]  # job id, position, attempt


class StepLeasedError(Exception):
    """A delivery found step `position` (from 1) held by another run's live lease, so it is
    sent again: `lapses_in_s` is how long until that lease lapses, in seconds of the
    database's clock, None if the step was claimed by a concurrent delivery just now (whose
    lease is not known yet)."""

    def __init__(self, position: int, lapses_in_s: float | None) -> None:
        super().__init__(f"step {position} is held by another run")
        self.position, self.lapses_in_s = position, lapses_in_s


def _upper_bound(field: str) -> float:
    """The largest value a webhook parameter accepts (its `le` constraint)."""
    bounds = [m.le for m in WebhookParams.model_fields[field].metadata if isinstance(m, Le)]
    return float(bounds[0])  # type: ignore[arg-type]


def longest_webhook_s() -> float:
    """The longest notify.webhook@v1 may take, in seconds: every attempt timing out, with the
    longest delays between them (its parameters' upper bounds)."""
    attempts = _upper_bound("max_attempts")
    return attempts * _upper_bound("timeout_s") + (attempts - 1) * MAX_DELAY_S


def longest_task_s(settings: Settings) -> float:
    """The longest a worker may hold one task's message, in seconds.

    A task runs adjacent steps of one queue: at worst the model call (MODEL_TIMEOUT_S), the
    webhook (`longest_webhook_s`) and steps that only compute or write (COMPUTE_MARGIN_S). A
    task waiting to be retried holds its message up to the retry's countdown (at most
    RETRY_COUNTDOWN_CAP_S, or STEP_LEASE_S for a delivery waiting out a lease).
    """
    running = settings.model_timeout_s + longest_webhook_s() + COMPUTE_MARGIN_S
    return max(running, RETRY_COUNTDOWN_CAP_S, settings.step_lease_s)


def check_visibility_timeout(settings: Settings) -> str | None:
    """What is wrong with BROKER_VISIBILITY_TIMEOUT_S for these settings, or None.

    Redis hands a message that is not acknowledged within the visibility timeout to another
    worker (kombu's Redis transport, `visibility_timeout`). The step lease keeps such a second
    delivery from running the step again, but each one costs a deferral, and only a timeout
    above `longest_task_s` makes them rare.
    """
    longest = longest_task_s(settings)
    if settings.broker_visibility_timeout_s >= longest:
        return None
    return (
        f"BROKER_VISIBILITY_TIMEOUT_S={settings.broker_visibility_timeout_s} is shorter than the "
        f"longest a task may run with these settings ({longest:g} s, MODEL_TIMEOUT_S="
        f"{settings.model_timeout_s:g} and webhook retries included): Redis will deliver such "
        "tasks again while they run. Their steps' leases keep them from running twice, but "
        f"raise BROKER_VISIBILITY_TIMEOUT_S to at least {longest:g}."
    )


class LeaseKeeper:
    """Renews the leases of the steps this process runs, from one daemon thread.

    The thread starts with the first step held in a process (so a forked pool process starts
    its own) and renews every STEP_LEASE_S / 3; a failed renewal (the database is down) is
    tried again at the next tick, and the lease lapses if it keeps failing.
    """

    def __init__(self) -> None:
        self._held: Counter[Held] = Counter()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._wake = threading.Event()

    @contextmanager
    def hold(self, job_id: uuid.UUID, position: int, attempt: int) -> Iterator[None]:
        """Keep the step's lease (taken by its claim) renewed while the block runs."""
        key = (job_id, position, attempt)
        with self._lock:
            self._ensure_thread()
            self._held[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]

    def held(self) -> list[Held]:
        with self._lock:
            return list(self._held)

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._held.clear()  # what the parent held is not this process's to renew
        thread = threading.Thread(target=self._run, name="step-lease-keeper", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            lease_s = get_settings().step_lease_s
            self._wake.wait(lease_s / 3)
            self.renew(lease_s)

    def renew(self, lease_s: float) -> int:
        """Renew the held leases now; returns how many were renewed (0 if it failed)."""
        held = self.held()
        if not held:
            return 0
        try:
            with session_scope() as session:
                return JobRepository(session).renew_leases(held, lease_s)
        except Exception:
            log.warning("could not renew %d step lease(s)", len(held), exc_info=True)
            return 0


keeper = LeaseKeeper()

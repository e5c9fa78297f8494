"""A step's run as the workers write it: claim (under a lease), renew the lease, record the result.

Each is one statement, so it runs on its own (autocommit) in one round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    bindparam,
    func,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from common.models import JobStatus, JSONType, StepStatus, utcnow
from common.repositories._base import Repository, binary_row, psycopg_sql, steps_table
from common.repositories.images import StoredImage

# A step's output: None is stored as SQL NULL (no output), not as JSON null.
_OutputType = JSONB(none_as_null=True)


@dataclass(frozen=True)
class StepState:
    """What a worker needs to know of a job to start one of its steps."""

    status: str
    pipeline_id: int
    pipeline_version_id: int
    payload: dict[str, Any]
    step_count: int
    step_status: str | None  # None: the job has no step at that position
    # Until when a run of the step holds it, as read before the claim (None: no live lease)
    lease_expires_at: datetime | None = None
    # The database's clock when the claim ran: leases are set and compared on it alone, so that
    # hosts whose clocks differ agree on whether a lease lapsed
    db_now: datetime | None = None
    attempt: int | None = None  # set by `claim_step` when it started the step
    image: StoredImage | None = None  # set by `claim_step`: the image the steps work on

    def leased(self, now: datetime) -> bool:
        """A run of the step holds it at `now`: it is running and its lease has not lapsed."""
        return (
            self.step_status == StepStatus.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


class StepRuns(Repository):
    """The step cycle of `JobRepository`: claim, renew, record."""

    # A step's claim in one statement: one round trip and, run on its own, one transaction.
    # It locks the job's row, reads the job's state, step count and the step's status and lease
    # (as before this statement), and, if the job has not ended and the step has not succeeded
    # nor is held by a live lease, marks the job running (started now if queued) and the step
    # running under a new attempt and lease; `attempt` is NULL when it did not. The step's UPDATE
    # repeats its conditions, which PostgreSQL checks again against a row another claim or result
    # changed meanwhile (the subqueries above see the statement's snapshot only). Leases are set and
    # compared on the database's clock (now(): this statement's start), never a worker's.
    _CLAIM_STEP = (
        text(
            """
        WITH job AS (
            SELECT j.id, j.status, j.pipeline_id, j.pipeline_version_id, j.payload,
                   (SELECT count(*) FROM job_steps s WHERE s.job_id = j.id) AS step_count,
                   (SELECT s.status FROM job_steps s
                     WHERE s.job_id = j.id AND s.position = :p_position) AS step_status,
                   (SELECT s.lease_expires_at FROM job_steps s
                     WHERE s.job_id = j.id AND s.position = :p_position) AS lease_expires_at
              FROM jobs j
             WHERE j.id = :p_job_id
               FOR UPDATE
        ), started_job AS (
            UPDATE jobs
               SET status = 'running',
                   started_at = CASE WHEN jobs.status = 'queued' THEN :p_now
                                     ELSE jobs.started_at END,
                   current_step = :p_position,
                   updated_at = :p_now
              FROM job
             WHERE jobs.id = job.id
               AND job.status IN ('queued', 'running')
               AND job.step_status <> 'succeeded'
               AND (job.step_status <> 'running' OR job.lease_expires_at IS NULL
                    OR job.lease_expires_at <= now())
            RETURNING jobs.id
        ), started_step AS (
            UPDATE job_steps
               SET status = 'running', attempts = job_steps.attempts + 1, started_at = :p_now,
                   error = NULL, lease_expires_at = now() + make_interval(secs => :p_lease_s)
              FROM started_job
             WHERE job_steps.job_id = started_job.id AND job_steps.position = :p_position
               AND job_steps.status <> 'succeeded'
               AND (job_steps.status <> 'running' OR job_steps.lease_expires_at IS NULL
                    OR job_steps.lease_expires_at <= now())
            RETURNING job_steps.attempts
        )
        SELECT job.status, job.pipeline_id, job.pipeline_version_id, job.payload, job.step_count,
               job.step_status, job.lease_expires_at, now() AS db_now,
               (SELECT attempts FROM started_step) AS attempt,
               image.id AS image_id, image.variant, image.content_type, image.size, image.data
          FROM job
          LEFT JOIN LATERAL (
                SELECT i.id, i.variant, i.content_type, i.size,
                       CASE WHEN :p_with_data THEN i.data END AS data
                  FROM job_images i
                 WHERE i.job_id = job.id AND i.variant IN ('original', 'processed')
                 ORDER BY i.variant = 'processed' DESC
                 LIMIT 1
          ) image ON true
        """
        )
        .bindparams(
            bindparam("p_with_data", type_=Boolean()),
            bindparam("p_now", type_=DateTime(timezone=True)),
            bindparam("p_lease_s", type_=Float()),
        )
        .columns(
            status=String(),
            pipeline_id=Integer(),
            pipeline_version_id=Integer(),
            payload=JSONType,
            step_count=Integer(),
            step_status=String(),
            lease_expires_at=DateTime(timezone=True),
            db_now=DateTime(timezone=True),
            attempt=Integer(),
            image_id=Integer(),
            variant=String(),
            content_type=String(),
            size=Integer(),
            data=LargeBinary(),
        )
    )

    def claim_step(
        self, job_id: uuid.UUID, position: int, *, lease_s: float, with_data: bool = False
    ) -> StepState | None:
        """The job as a step sees it (None if the job is gone) and, if the step is claimable,
        the step started: its `attempt` set, its lease taken for `lease_s` seconds of the
        database's clock, and the image it works on read (its bytes too if `with_data`).

        A step that is running under a live lease is not started: `attempt` stays None and
        `lease_expires_at` says until when it is held (None if a concurrent claim took it in
        the meantime). One statement, which locks the job's row until the transaction ends,
        so it can run on its own (autocommit)."""
        now = utcnow()
        params = {
            "p_job_id": job_id,
            "p_position": position,
            "p_now": now,
            "p_lease_s": float(lease_s),
            "p_with_data": with_data,
        }
        row = binary_row(self.session, psycopg_sql(self._CLAIM_STEP), params)
        if row is None:
            return None
        return StepState(
            status=row.status,
            pipeline_id=row.pipeline_id,
            pipeline_version_id=row.pipeline_version_id,
            payload=row.payload,
            step_count=row.step_count,
            step_status=row.step_status,
            lease_expires_at=row.lease_expires_at,
            db_now=row.db_now,
            attempt=row.attempt,
            image=None
            if row.image_id is None
            else StoredImage(
                row.image_id, row.variant, row.content_type, row.size, row.data or b""
            ),
        )

    # A running step's lease, renewed while it runs, provided the attempt is still the current one
    # and has not let its lease go (`release_lease`).
    _RENEW_LEASE = (
        update(steps_table)
        .where(
            steps_table.c.job_id == bindparam("p_job_id"),
            steps_table.c.position == bindparam("p_position"),
            steps_table.c.attempts == bindparam("p_attempt"),
            steps_table.c.status == StepStatus.RUNNING,
            steps_table.c.lease_expires_at.is_not(None),
        )
        .values(
            lease_expires_at=func.now()
            + func.make_interval(0, 0, 0, 0, 0, 0, bindparam("p_lease_s", type_=Float()))
        )
    )

    def renew_leases(self, held: Iterable[tuple[uuid.UUID, int, int]], lease_s: float) -> int:
        """Extend to the database's now + `lease_s` the leases of the running steps `held`,
        (job id, position, attempt) each; an attempt that was superseded, ended or let its lease
        go is left alone. Returns how many leases were renewed."""
        params = [
            {
                "p_job_id": job_id,
                "p_position": position,
                "p_attempt": attempt,
                "p_lease_s": float(lease_s),
            }
            for job_id, position, attempt in held
        ]
        if not params:
            return 0
        result = self.session.execute(self._RENEW_LEASE, params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    # A step's result in one statement, which can commit itself: it locks the job's row (as a
    # claim does, first) while the job is running, marks the step succeeded if `p_attempt` is
    # still its current one, and only then updates the job's payload and status and stores the
    # processed image, if the step made one. A superseded attempt changes nothing.
    _FINISH_ATTEMPT = text(
        """
        WITH job AS (
            SELECT id FROM jobs WHERE id = :p_job_id AND status = 'running' FOR UPDATE
        ), step AS (
            UPDATE job_steps
               SET status = 'succeeded', finished_at = :p_now, duration_ms = :p_duration_ms,
                   lease_expires_at = NULL, output = :p_output
              FROM job
             WHERE job_steps.job_id = job.id AND job_steps.position = :p_position
               AND job_steps.attempts = :p_attempt AND job_steps.status = 'running'
            RETURNING job_steps.job_id
        ), finished_job AS (
            UPDATE jobs
               SET payload = :p_payload, status = :p_status, finished_at = :p_finished_at,
                   updated_at = :p_now
              FROM step
             WHERE jobs.id = step.job_id
            RETURNING jobs.id
        ), image AS (
            INSERT INTO job_images (job_id, variant, content_type, size, data, created_at)
            SELECT step.job_id, 'processed', :p_content_type, :p_size, :p_data, :p_now
              FROM step
             WHERE :p_has_image
            ON CONFLICT (job_id, variant) DO UPDATE
               SET content_type = excluded.content_type, size = excluded.size, data = excluded.data,
                   created_at = excluded.created_at
            RETURNING id
        )
        SELECT (SELECT count(*) FROM finished_job) AS jobs, (SELECT count(*) FROM step) AS steps,
               (SELECT count(*) FROM image) AS images
        """
    ).bindparams(
        bindparam("p_payload", type_=JSONType),
        bindparam("p_output", type_=_OutputType),
        bindparam("p_finished_at", type_=DateTime(timezone=True)),
        bindparam("p_now", type_=DateTime(timezone=True)),
        bindparam("p_data", type_=LargeBinary()),
        bindparam("p_has_image", type_=Boolean()),
    )

    def finish_attempt(
        self,
        job_id: uuid.UUID,
        position: int,
        attempt: int,
        duration_ms: float,
        payload: dict[str, Any],
        *,
        last: bool,
        image: tuple[str, bytes] | None = None,
        output: dict[str, Any] | None = None,
    ) -> bool:
        """Record a step's success, its `output` (JSON-safe; None: it reports nothing) and the
        processed `image` (content type, bytes) it made, if `attempt` is still its current one
        and the job is running; else False, having changed nothing (the caller rolls back what
        else its transaction wrote). One statement, so it can run on its own (autocommit).

        The job's row is locked first, as a claim locks it, so the two cannot deadlock.
        """
        now = utcnow()
        content_type, data = image if image is not None else (None, None)
        row = self.session.execute(
            self._FINISH_ATTEMPT,
            {
                "p_job_id": job_id,
                "p_position": position,
                "p_attempt": attempt,
                "p_duration_ms": duration_ms,
                "p_payload": payload,
                "p_output": output,
                "p_status": JobStatus.SUCCEEDED if last else JobStatus.RUNNING,
                "p_finished_at": now if last else None,
                "p_now": now,
                "p_content_type": content_type,
                "p_size": None if data is None else len(data),
                "p_data": data,
                "p_has_image": image is not None,
            },
        ).one()
        return bool(row.jobs == 1 and row.steps == 1)

"""Jobs: stored by the gateway (admitted under the queue's limit), read and listed.

A job's later states (lifecycle.py) and its steps' runs (steps.py) are part of this repository.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import psycopg
from sqlalchemy import DateTime, LargeBinary, bindparam, func, literal, select, text, tuple_
from sqlalchemy.orm import defer, selectinload

from common.models import (
    CarDetectionRow,
    ExpiredJobCount,
    Job,
    JobStatus,
    JobStep,
    StepStatus,
    UnfinishedJobCount,
    utcnow,
)
from common.repositories._base import jobs_table
from common.repositories.images import ORIGINAL, ImageRepository
from common.repositories.lifecycle import JobStates, QueuedJob
from common.repositories.steps import StepRuns

OutputKind = Literal["string", "integer", "float", "boolean"]


@dataclass(frozen=True)
class OutputMatch:
    """A job matches when a step of `step_type` succeeded and reported `value` (None: null) in
    the top-level `field` of its output, compared as `kind`."""

    step_type: str
    field: str
    kind: OutputKind
    value: str | int | float | bool | None


@dataclass(frozen=True)
class JobFilter:
    """What GET /jobs narrows to; None means any. `created_since` <= created_at < `until`;
    every one of `outputs` must match."""

    pipeline_id: int | None = None
    status: str | None = None
    detected: bool | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    outputs: tuple[OutputMatch, ...] = ()


def _output_matches(match: OutputMatch) -> Any:
    """EXISTS: a succeeded step of the job reported the match's value."""
    element = JobStep.output[match.field]
    typed = {
        "string": element.as_string,
        "integer": element.as_integer,
        "float": element.as_float,
        "boolean": element.as_boolean,
    }[match.kind]()
    return (
        select(JobStep.job_id)
        .where(
            JobStep.job_id == Job.id,
            JobStep.step_type == match.step_type,
            JobStep.status == StepStatus.SUCCEEDED,
            JobStep.output.is_not(None),
            typed.is_(None) if match.value is None else typed == match.value,
        )
        .exists()
    )


class JobRepository(JobStates, StepRuns):
    _INSERT_JOB = jobs_table.insert()

    def insert(
        self,
        pipeline_id: int,
        step_types: Sequence[str],
        pipeline_version_id: int,
        image: tuple[str, bytes] | None = None,
    ) -> QueuedJob:
        """A queued job running `pipeline_version_id`, counted as handed to the broker (see
        `not_enqueued` if that fails), with its original `image` (content type, bytes) if
        given. No ORM objects: submits of large uploads and batches run this (an upload stored
        with its job in one statement goes through `insert_if_current`)."""
        now = utcnow()
        job_id = uuid.uuid4()
        steps = list(enumerate(step_types, start=1))
        self.session.execute(
            self._INSERT_JOB,
            {
                "id": job_id,
                "pipeline_id": pipeline_id,
                "pipeline_version_id": pipeline_version_id,
                "status": JobStatus.QUEUED,
                "payload": {},
                "created_at": now,
                "updated_at": now,
                "enqueued_at": now,
                "enqueue_count": 1,
            },
        )
        self._insert_steps(job_id, steps)
        if image is not None:
            ImageRepository(self.session).put(job_id, ORIGINAL, *image)
        return QueuedJob(job_id, pipeline_id, steps)

    # A new job, its steps and its image in one statement (so one round trip and, run on its own,
    # one transaction), provided the version is the pipeline's current one and the
    # pipeline is not archived (else nothing is inserted). The steps' rows reference the job's row,
    # which the foreign key checks at the end of the statement find.
    _INSERT_JOB_WITH_IMAGE = text(
        """
        WITH job AS (
            INSERT INTO jobs (id, pipeline_id, pipeline_version_id, status, payload, created_at,
                              updated_at, enqueued_at, enqueue_count)
            SELECT :p_job_id, :p_pipeline_id, :p_version_id, 'queued', '{}', :p_now, :p_now,
                   :p_now, 1
             WHERE EXISTS (
                   SELECT 1 FROM pipelines p
                     JOIN pipeline_versions v
                       ON v.pipeline_id = p.id AND v.version = p.current_version
                    WHERE p.id = :p_pipeline_id AND p.archived_at IS NULL AND v.id = :p_version_id)
            RETURNING id
        ), steps AS (
            INSERT INTO job_steps (job_id, position, step_type, status, attempts)
            SELECT job.id, step.position, step.step_type, 'pending', 0
              FROM job, unnest(CAST(:p_positions AS integer[]), CAST(:p_types AS text[]))
                        AS step(position, step_type)
        )
        INSERT INTO job_images (job_id, variant, content_type, size, data, created_at)
        SELECT job.id, 'original', :p_content_type, :p_size, :p_data, :p_now FROM job
        """
    ).bindparams(
        bindparam("p_now", type_=DateTime(timezone=True)),
        bindparam("p_data", type_=LargeBinary()),
    )

    def insert_if_current(
        self,
        pipeline_id: int,
        step_types: Sequence[str],
        pipeline_version_id: int,
        image: tuple[str, bytes],
    ) -> QueuedJob | None:
        """`insert` with its image, provided `pipeline_version_id` is the pipeline's current
        version and the pipeline is not archived; else None, and nothing is stored. One
        statement, so a caller that remembers the current version stores a job in one round
        trip, and asks again only when it is told the version changed."""
        job_id = uuid.uuid4()
        steps = list(enumerate(step_types, start=1))
        content_type, data = image
        inserted = self.session.execute(
            self._INSERT_JOB_WITH_IMAGE,
            {
                "p_job_id": job_id,
                "p_pipeline_id": pipeline_id,
                "p_version_id": pipeline_version_id,
                "p_now": utcnow(),
                "p_positions": [position for position, _ in steps],
                "p_types": [step_type for _, step_type in steps],
                "p_content_type": content_type,
                "p_size": len(data),
                "p_data": data,
            },
        )
        if inserted.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return QueuedJob(job_id, pipeline_id, steps)

    def get(
        self, job_id: uuid.UUID, *, for_update: bool = False, fresh: bool = False
    ) -> Job | None:
        """The job with its steps; `fresh` re-reads rows this session has loaded before."""
        return self.session.get(Job, job_id, with_for_update=for_update, populate_existing=fresh)

    def status(self, job_id: uuid.UUID) -> tuple[str, str | None] | None:
        """The job's status and error, without loading the job; None if there is no such job."""
        row = self.session.execute(select(Job.status, Job.error).where(Job.id == job_id)).first()
        return None if row is None else (row[0], row[1])

    def page(
        self, where: JobFilter, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> Sequence[Job]:
        """Up to `limit` jobs, newest first with ties by id, from just past the `after` key
        (created_at, id): new jobs go before the first page, never between two pages."""
        stmt = select(Job).options(defer(Job.payload), selectinload(Job.pipeline_version))
        if where.pipeline_id is not None:
            stmt = stmt.where(Job.pipeline_id == where.pipeline_id)
        if where.status is not None:
            stmt = stmt.where(Job.status == where.status)
        if where.detected is not None:
            label = CarDetectionRow.label
            stmt = stmt.where(
                select(CarDetectionRow.id)
                .where(
                    CarDetectionRow.job_id == Job.id, label != 0 if where.detected else label == 0
                )
                .exists()
            )
        for match in where.outputs:
            stmt = stmt.where(_output_matches(match))
        if where.created_since is not None:
            stmt = stmt.where(Job.created_at >= where.created_since)
        if where.created_until is not None:
            stmt = stmt.where(Job.created_at < where.created_until)
        if after is not None:
            stmt = stmt.where(tuple_(Job.created_at, Job.id) < after)
        stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return self.session.scalars(stmt).all()

    def counts_by_pipeline_and_status(
        self,
    ) -> tuple[list[tuple[int, str, int]], list[tuple[int, str, int]]]:
        """(pipeline id, status, jobs) for every pair that has jobs stored, and (pipeline id,
        outcome, jobs) of the finished jobs the retention sweep deleted; one statement, so one
        snapshot: a job being deleted is in exactly one of the two."""
        stored = select(
            literal(True).label("stored"), Job.pipeline_id, Job.status, func.count()
        ).group_by(Job.pipeline_id, Job.status)
        expired = select(
            literal(False),
            ExpiredJobCount.pipeline_id,
            ExpiredJobCount.outcome,
            ExpiredJobCount.jobs,
        )
        rows = self.session.execute(stored.union_all(expired)).all()
        kept = [(int(p), str(s), int(n)) for is_stored, p, s, n in rows if is_stored]
        gone = [(int(p), str(s), int(n)) for is_stored, p, s, n in rows if not is_stored]
        return kept, gone

    # Simple-query protocol, several statements in one message: the first error skips the rest,
    # so COMMIT runs only if the count is within {limit}. PL/pgSQL takes a snapshot per statement:
    # the count, taken once the lock is held, sees every job committed by the lock's last holder.
    # The lock's key is any number no other advisory lock of the database uses.
    _ADMIT_AND_COMMIT = """
    DO $$
    DECLARE unfinished bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(7060000001);
        -- The count the triggers on jobs keep (migration 0007): 64 rows, whatever the backlog.
        SELECT sum(jobs) INTO unfinished FROM unfinished_job_counts;
        IF unfinished > {limit} THEN
            RAISE EXCEPTION 'queue_full' USING DETAIL = unfinished::text;
        END IF;
    END $$;
    COMMIT;
    """

    def commit_if_admitted(self, limit: int) -> int | None:
        """Commit the caller's transaction if the unfinished jobs (queued or running), its own
        included, are at most `limit`; else return their count, having committed nothing (the
        caller rolls back). Callers insert their jobs first: of concurrent callers each counts
        in turn, under the admission lock, and sees every job admitted before it, so that
        admissions never add up past the limit.

        One round trip takes the lock (a transaction-level advisory lock), counts and
        commits, so that the lock is held only while the server works, never while a thread of
        ours waits for its turn to send the next statement."""
        driver = self.session.connection().connection.driver_connection
        sql = self._ADMIT_AND_COMMIT.replace("{limit}", str(int(limit))).encode()
        try:
            with cast("psycopg.Connection[Any]", driver).cursor() as cursor:
                cursor.execute(sql)
        except psycopg.errors.RaiseException as exc:
            if exc.diag.message_primary != "queue_full" or exc.diag.message_detail is None:
                raise
            return int(exc.diag.message_detail)
        self.session.commit()  # the transaction has ended; this ends the session's
        return None

    _COUNT_UNFINISHED = select(func.sum(UnfinishedJobCount.jobs))

    def count_unfinished(self) -> int:
        """Jobs queued or running, as this transaction sees them: the sum of the count's slots
        (UnfinishedJobCount), which costs the same whatever the backlog."""
        return int(self.session.scalar(self._COUNT_UNFINISHED) or 0)

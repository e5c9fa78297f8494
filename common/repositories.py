"""Repositories: the only code that queries tables. Each wraps one session; callers commit."""

from __future__ import annotations

import functools
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Literal, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.sql.elements import TextClause

from common.messages import client_text
from common.models import (
    CarDetectionRow,
    Job,
    JobImage,
    JobStatus,
    JobStep,
    JSONType,
    Pipeline,
    PipelineVersion,
    StepStatus,
    utcnow,
)
from common.pipeline.datatypes import Detection

ORIGINAL = "original"
PROCESSED = "processed"

# A step's hot path runs these for every step of every job: statements built once (their
# compiled form is cached), on the tables, so no ORM objects are loaded or kept in sync.
_jobs = cast(Table, Job.__table__)
_steps = cast(Table, JobStep.__table__)
_images = cast(Table, JobImage.__table__)
# A step's output: None is stored as SQL NULL (no output), not as JSON null.
_OutputType = JSONB(none_as_null=True)
# A running step's lease, renewed while it runs, provided the attempt is still the current one
# and has not let its lease go (`release_lease`).
_RENEW_LEASE = (
    update(_steps)
    .where(
        _steps.c.job_id == bindparam("p_job_id"),
        _steps.c.position == bindparam("p_position"),
        _steps.c.attempts == bindparam("p_attempt"),
        _steps.c.status == StepStatus.RUNNING,
        _steps.c.lease_expires_at.is_not(None),
    )
    .values(lease_expires_at=bindparam("p_lease_until", type_=DateTime(timezone=True)))
)


# The image the steps work on: the processed one once a step made it, else the original; one
# row, so the original's bytes are not read once a processed image exists. psycopg 3 runs it
# with binary results (see `_binary_row`).
_CURRENT_IMAGE_SQL = (
    "SELECT id, variant, content_type, size, CASE WHEN %(with_data)s THEN data END AS data "
    "FROM job_images WHERE job_id = %(job_id)s AND variant IN ('original', 'processed') "
    "ORDER BY variant = 'processed' DESC LIMIT 1"
)

_COPY_CHUNK = 64 * 1024


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _binary_copy_row(
    job_id: uuid.UUID, variant: str, content_type: str, file: IO[bytes], size: int
) -> Iterator[bytes]:
    """A job_images row in COPY's binary format, its image read from `file` a chunk at a time:
    the signature and header, then the row's six fields, each its length and its bytes (uuid:
    16 bytes; text: UTF-8; int4; bytea: as is; timestamptz: microseconds since 2000), then the
    end marker."""

    def field(value: bytes) -> bytes:
        return struct.pack("!i", len(value)) + value

    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    yield (
        struct.pack("!h", 6)
        + field(job_id.bytes)
        + field(variant.encode())
        + field(content_type.encode())
        + field(struct.pack("!i", size))
        + struct.pack("!i", size)
    )
    left = size
    while left > 0:
        chunk = file.read(min(left, _COPY_CHUNK))
        if not chunk:
            raise ValueError(f"the file ended {left} bytes early")
        left -= len(chunk)
        yield chunk
    micros = (utcnow() - _PG_EPOCH) // timedelta(microseconds=1)
    yield field(struct.pack("!q", micros)) + struct.pack("!h", -1)


_CURRENT_VERSION = (
    select(Pipeline.archived_at, PipelineVersion.id)
    .join(
        PipelineVersion,
        and_(
            PipelineVersion.pipeline_id == Pipeline.id,
            PipelineVersion.version == Pipeline.current_version,
        ),
    )
    .where(Pipeline.id == bindparam("p_pipeline_id"))
)

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


# A step's claim in one statement, so in one round trip and, run on its own, one transaction.
# It locks the job's row, reads the job's state, its step count and the step's status and lease
# (as they were before this statement), and, if the job has not ended and the step has not
# succeeded nor is held by a live lease, marks the job running (started now if it was queued)
# and the step running under a new attempt and lease; `attempt` is NULL when it did not. The
# step's own conditions are repeated in its UPDATE, which PostgreSQL checks again against a row
# another claim or result changed meanwhile (the subqueries above see the statement's snapshot
# only).
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
               started_at = CASE WHEN jobs.status = 'queued' THEN :p_now ELSE jobs.started_at END,
               current_step = :p_position,
               updated_at = :p_now
          FROM job
         WHERE jobs.id = job.id
           AND job.status IN ('queued', 'running')
           AND job.step_status <> 'succeeded'
           AND (job.step_status <> 'running' OR job.lease_expires_at IS NULL
                OR job.lease_expires_at <= :p_now)
        RETURNING jobs.id
    ), started_step AS (
        UPDATE job_steps
           SET status = 'running', attempts = job_steps.attempts + 1, started_at = :p_now,
               error = NULL, lease_expires_at = :p_lease_until
          FROM started_job
         WHERE job_steps.job_id = started_job.id AND job_steps.position = :p_position
           AND job_steps.status <> 'succeeded'
           AND (job_steps.status <> 'running' OR job_steps.lease_expires_at IS NULL
                OR job_steps.lease_expires_at <= :p_now)
        RETURNING job_steps.attempts
    )
    SELECT job.status, job.pipeline_id, job.pipeline_version_id, job.payload, job.step_count,
           job.step_status, job.lease_expires_at, (SELECT attempts FROM started_step) AS attempt,
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
        bindparam("p_lease_until", type_=DateTime(timezone=True)),
    )
    .columns(
        status=String(),
        pipeline_id=Integer(),
        pipeline_version_id=Integer(),
        payload=JSONType,
        step_count=Integer(),
        step_status=String(),
        lease_expires_at=DateTime(timezone=True),
        attempt=Integer(),
        image_id=Integer(),
        variant=String(),
        content_type=String(),
        size=Integer(),
        data=LargeBinary(),
    )
)
# A step's result in one statement: the job's payload and status (while it is running), then
# the step succeeded (only its current attempt), then the processed image if the step made one
# (only if the step's row was updated). The caller rolls back unless both rows were updated.
_FINISH_ATTEMPT = text(
    """
    WITH job AS (
        UPDATE jobs
           SET payload = :p_payload, status = :p_status, finished_at = :p_finished_at,
               updated_at = :p_now
         WHERE id = :p_job_id AND status = 'running'
        RETURNING id
    ), step AS (
        UPDATE job_steps
           SET status = 'succeeded', finished_at = :p_now, duration_ms = :p_duration_ms,
               lease_expires_at = NULL, output = :p_output
          FROM job
         WHERE job_steps.job_id = job.id AND job_steps.position = :p_position
           AND job_steps.attempts = :p_attempt AND job_steps.status = 'running'
        RETURNING job_steps.job_id
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
    SELECT (SELECT count(*) FROM job) AS jobs, (SELECT count(*) FROM step) AS steps,
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


@functools.cache
def _psycopg_sql(statement: TextClause) -> str:
    """A text statement as psycopg 3 takes it from its own cursor (named `%(...)s` parameters)."""
    return str(statement.compile(dialect=_PSYCOPG_DIALECT))


_PSYCOPG_DIALECT = postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]


def _binary_row(session: Session, sql: str, params: Any) -> Any:
    """One row (a named tuple; None if there is none) of a statement run on the session's
    psycopg 3 connection with binary results, so bytea comes as stored rather than as hex text
    that the server encodes and the client decodes."""
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor(binary=True, row_factory=namedtuple_row) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@dataclass(frozen=True)
class StoredImage:
    id: int
    variant: str
    content_type: str
    size: int
    data: bytes = b""  # empty unless asked for


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
    attempt: int | None = None  # set by `claim_step` when it started the step
    image: StoredImage | None = None  # set by `claim_step`: the image the steps work on

    def leased(self, now: datetime) -> bool:
        """A run of the step holds it at `now`: it is running and its lease has not lapsed."""
        return (
            self.step_status == StepStatus.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


class _Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _upsert(
        self, model: Any, values: dict[str, Any], key: Sequence[str], update: Sequence[str]
    ) -> None:
        """Insert a row, or update it in place when one with the same `key` exists."""
        # The statement's columns are the parameters' names.
        stmt = _upsert_statement(model.__table__, tuple(key), tuple(update))
        self.session.execute(stmt, values)


@functools.cache
def _upsert_statement(table: Table, key: tuple[str, ...], update: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE, built once per table."""
    stmt = postgresql.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: stmt.excluded[name] for name in update}
    )


class PipelineRepository(_Repository):
    def get(self, pipeline_id: int, *, for_update: bool = False) -> Pipeline | None:
        """The pipeline; `for_update` locks its row and reads it afresh, even if loaded before.
        The lock (FOR NO KEY UPDATE) lets jobs referencing the pipeline be inserted meanwhile."""
        lock = {"key_share": True} if for_update else None
        return self.session.get(
            Pipeline, pipeline_id, with_for_update=lock, populate_existing=for_update
        )

    def current_version_id(self, pipeline_id: int) -> tuple[int, datetime | None] | None:
        """The id of the pipeline's current version, and when the pipeline was archived (None:
        it was not); None if there is no such pipeline. Every submit asks: one Core query."""
        row = self.session.execute(_CURRENT_VERSION, {"p_pipeline_id": pipeline_id}).first()
        return None if row is None else (int(row.id), row.archived_at)

    def list(self, *, archived: bool | None = None) -> Sequence[Pipeline]:
        """Every pipeline by id; only the archived ones, or only the others, if asked."""
        stmt = select(Pipeline).order_by(Pipeline.id)
        if archived is not None:
            is_archived = Pipeline.archived_at.is_not(None)
            stmt = stmt.where(is_archived if archived else ~is_archived)
        return self.session.scalars(stmt).all()

    def add(
        self, name: str, description: str, config: dict[str, Any], pipeline_id: int | None = None
    ) -> Pipeline:
        """A pipeline with its version 1."""
        pipeline = Pipeline(
            id=pipeline_id, name=name, description=description, config=config, current_version=1
        )
        self.session.add(pipeline)
        self.session.flush()
        self.session.add(PipelineVersion(pipeline_id=pipeline.id, version=1, config=config))
        self.session.flush()
        return pipeline

    def add_version(self, pipeline: Pipeline, config: dict[str, Any]) -> PipelineVersion:
        """The pipeline's next version, made current. Lock the row first (`for_update`): two
        versions written at once would otherwise take the same number (one then fails)."""
        version = PipelineVersion(
            pipeline_id=pipeline.id, version=pipeline.current_version + 1, config=config
        )
        self.session.add(version)
        pipeline.config = config
        pipeline.current_version = version.version
        self.session.flush()
        return version

    def archive(self, pipeline: Pipeline) -> None:
        if pipeline.archived_at is None:
            pipeline.archived_at = utcnow()

    def versions(self, pipeline_id: int) -> Sequence[PipelineVersion]:
        stmt = (
            select(PipelineVersion)
            .where(PipelineVersion.pipeline_id == pipeline_id)
            .order_by(PipelineVersion.version)
        )
        return self.session.scalars(stmt).all()

    def version(self, pipeline_id: int, number: int) -> PipelineVersion | None:
        return self.session.scalar(
            select(PipelineVersion).where(
                PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == number
            )
        )

    def version_by_id(self, version_id: int) -> PipelineVersion | None:
        return self.session.get(PipelineVersion, version_id)

    def sync_id_sequence(self) -> None:
        """After inserting explicit ids, move the id sequence past them."""
        self.session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('pipelines', 'id'), "
                "(SELECT COALESCE(MAX(id), 1) FROM pipelines))"
            )
        )


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


@dataclass(frozen=True)
class QueuedJob:
    """A job just stored, as the hand-over to the workers needs it."""

    id: uuid.UUID
    pipeline_id: int
    steps: list[tuple[int, str]]  # (position, step type), all pending


_INSERT_JOB = _jobs.insert()
_INSERT_STEPS = _steps.insert()


class JobRepository(_Repository):
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
            _INSERT_JOB,
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
        if steps:
            self.session.execute(
                _INSERT_STEPS,
                [
                    {
                        "job_id": job_id,
                        "position": position,
                        "step_type": step_type,
                        "status": StepStatus.PENDING,
                        "attempts": 0,
                    }
                    for position, step_type in steps
                ],
            )
        if image is not None:
            ImageRepository(self.session).put(job_id, ORIGINAL, *image)
        return QueuedJob(job_id, pipeline_id, steps)

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
            _INSERT_JOB_WITH_IMAGE,
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

    def add(
        self, pipeline_id: int, step_types: Sequence[str], pipeline_version_id: int | None = None
    ) -> Job:
        """`insert`, returning the job as an ORM object; it runs `pipeline_version_id`, by
        default the pipeline's current version."""
        if pipeline_version_id is None:
            pipeline_version_id = self.session.scalar(
                select(PipelineVersion.id)
                .join(Pipeline, Pipeline.id == PipelineVersion.pipeline_id)
                .where(
                    Pipeline.id == pipeline_id, PipelineVersion.version == Pipeline.current_version
                )
            )
        assert pipeline_version_id is not None, f"there is no pipeline {pipeline_id}"
        queued = self.insert(pipeline_id, step_types, pipeline_version_id)
        job = self.get(queued.id)
        assert job is not None
        return job

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

    def counts_by_pipeline_and_status(self) -> list[tuple[int, str, int]]:
        """(pipeline id, status, jobs) for every pair that has jobs."""
        stmt = select(Job.pipeline_id, Job.status, func.count()).group_by(
            Job.pipeline_id, Job.status
        )
        return [(int(p), str(s), int(n)) for p, s, n in self.session.execute(stmt).all()]

    def not_enqueued(self, job_id: uuid.UUID) -> None:
        """The broker did not take the job: the recovery sweep will hand it over."""
        self.session.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id)
            .values(enqueued_at=None, enqueue_count=_jobs.c.enqueue_count - 1)
        )

    def enqueued(self, job: Job) -> None:
        now = utcnow()
        job.enqueued_at = now
        job.enqueue_count += 1
        job.updated_at = now

    def never_enqueued(self, limit: int) -> Sequence[Job]:
        """Queued jobs the broker never took; locked, skipping rows another sweeper holds."""
        stmt = (
            select(Job)
            .where(Job.status == JobStatus.QUEUED, Job.enqueued_at.is_(None))
            .order_by(Job.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).all()

    def unfinished_and_still(
        self, moved_before: datetime, limit: int, now: datetime | None = None
    ) -> Sequence[Job]:
        """Queued or running jobs that have not moved since `moved_before` and have no step
        held by a live lease at `now` (a long step still running); locked, skipping rows
        another sweeper holds."""
        leased = (
            select(_steps.c.job_id)
            .where(_steps.c.job_id == Job.id, _steps.c.lease_expires_at > (now or utcnow()))
            .exists()
        )
        stmt = (
            select(Job)
            .where(
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
                Job.updated_at < moved_before,
                ~leased,
            )
            .order_by(Job.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).all()

    def set_step_types(self, job: Job, step_types: Sequence[str]) -> None:
        for step, step_type in zip(job.steps, step_types, strict=True):
            step.step_type = step_type

    def claim_step(
        self, job_id: uuid.UUID, position: int, *, lease_s: float, with_data: bool = False
    ) -> StepState | None:
        """The job as a step sees it (None if the job is gone) and, if the step is claimable,
        the step started: its `attempt` set, its lease taken for `lease_s` seconds, and the
        image it works on read (its bytes too if `with_data`).

        A step that is running under a live lease is not started: `attempt` stays None and
        `lease_expires_at` says until when it is held (None if a concurrent claim took it in
        the meantime). One statement, which locks the job's row until the transaction ends,
        so it can run on its own (autocommit)."""
        now = utcnow()
        params = {
            "p_job_id": job_id,
            "p_position": position,
            "p_now": now,
            "p_lease_until": now + timedelta(seconds=lease_s),
            "p_with_data": with_data,
        }
        row = _binary_row(self.session, _psycopg_sql(_CLAIM_STEP), params)
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
            attempt=row.attempt,
            image=None
            if row.image_id is None
            else StoredImage(
                row.image_id, row.variant, row.content_type, row.size, row.data or b""
            ),
        )

    def renew_leases(self, held: Iterable[tuple[uuid.UUID, int, int]], lease_s: float) -> int:
        """Extend to now + `lease_s` the leases of the running steps `held`, (job id, position,
        attempt) each; an attempt that was superseded, ended or let its lease go is left
        alone. Returns how many leases were renewed."""
        until = utcnow() + timedelta(seconds=lease_s)
        params = [
            {
                "p_job_id": job_id,
                "p_position": position,
                "p_attempt": attempt,
                "p_lease_until": until,
            }
            for job_id, position, attempt in held
        ]
        if not params:
            return 0
        result = self.session.execute(_RENEW_LEASE, params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    def is_current_attempt(self, job: Job, position: int, attempt: int) -> bool:
        """False once the job ended or a newer attempt of the step took over."""
        step = job.steps[position - 1]
        return (
            job.status == JobStatus.RUNNING
            and step.status == StepStatus.RUNNING
            and step.attempts == attempt
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
        processed `image` (content type, bytes) it made, if `attempt` is still its current one;
        else False (and the caller rolls back).

        The job's row is updated first, which takes the lock a claim takes too.
        """
        now = utcnow()
        content_type, data = image if image is not None else (None, None)
        row = self.session.execute(
            _FINISH_ATTEMPT,
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

    def succeed(self, job: Job) -> None:
        now = utcnow()
        job.status = JobStatus.SUCCEEDED
        job.finished_at = now
        job.updated_at = now

    def note_step_error(self, job: Job, position: int, error: str) -> None:
        """A failed attempt that will be retried: the step stays running, with the error shown
        (as common.messages.client_text makes it), and lets its lease go, so that the retry may
        claim it."""
        step = job.steps[position - 1]
        step.error = client_text(error)
        step.lease_expires_at = None
        job.updated_at = utcnow()

    def fail(
        self,
        job: Job,
        error: str,
        position: int | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Mark the job (and the step at `position`) failed; the error is stored as
        common.messages.client_text makes it, since clients are shown it."""
        error = client_text(error)
        now = utcnow()
        if position is not None:
            step = job.steps[position - 1]
            step.status = StepStatus.FAILED
            step.finished_at = now
            step.duration_ms = duration_ms
            step.error = error
            step.lease_expires_at = None
        job.status = JobStatus.FAILED
        job.error = error
        job.finished_at = now
        job.updated_at = now

    def requeue_failed(
        self, job_id: uuid.UUID, rerun: tuple[int, Sequence[str]] | None = None
    ) -> QueuedJob | None:
        """Queue a failed job again, in the caller's transaction: the steps that did not succeed
        run again, the others keep their results. With `rerun` (a pipeline version's id and its
        step types), the job runs that version instead, every step from the first, on its
        original image: what earlier steps made (payload, images, detection) is dropped.

        The job with the steps to run; None, and nothing changed, if the job is not failed or
        does not exist. One conditional update decides, so of concurrent
        calls exactly one gets the steps; it locks the job's row until the caller's commit."""
        now = utcnow()
        queued = self.session.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id, _jobs.c.status == JobStatus.FAILED)
            .values(
                status=JobStatus.QUEUED,
                error=None,
                finished_at=None,
                updated_at=now,
                enqueued_at=now,
                enqueue_count=1,
            )
            .returning(_jobs.c.pipeline_id)
        ).first()
        if queued is None:
            return None
        pipeline_id = int(queued.pipeline_id)
        if rerun is None:
            self.session.execute(
                update(_steps)
                .where(_steps.c.job_id == job_id, _steps.c.status != StepStatus.SUCCEEDED)
                .values(
                    status=StepStatus.PENDING,
                    error=None,
                    finished_at=None,
                    duration_ms=None,
                    output=None,
                )
            )
            rows = self.session.execute(
                select(_steps.c.position, _steps.c.step_type)
                .where(_steps.c.job_id == job_id, _steps.c.status != StepStatus.SUCCEEDED)
                .order_by(_steps.c.position)
            )
            return QueuedJob(job_id, pipeline_id, [(int(n), str(t)) for n, t in rows])
        version_id, step_types = rerun
        self.session.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id)
            .values(pipeline_version_id=version_id, payload={}, current_step=None)
        )
        self.session.execute(delete(_steps).where(_steps.c.job_id == job_id))
        self.session.execute(
            delete(_images).where(_images.c.job_id == job_id, _images.c.variant != ORIGINAL)
        )
        self.session.execute(delete(CarDetectionRow).where(CarDetectionRow.job_id == job_id))
        steps = list(enumerate(step_types, start=1))
        if steps:
            self.session.execute(
                _INSERT_STEPS,
                [
                    {
                        "job_id": job_id,
                        "position": position,
                        "step_type": step_type,
                        "status": StepStatus.PENDING,
                        "attempts": 0,
                    }
                    for position, step_type in steps
                ],
            )
        return QueuedJob(job_id, pipeline_id, steps)

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
        sql = _ADMIT_AND_COMMIT.replace("{limit}", str(int(limit))).encode()
        try:
            with cast("psycopg.Connection[Any]", driver).cursor() as cursor:
                cursor.execute(sql)
        except psycopg.errors.RaiseException as exc:
            if exc.diag.message_primary != "queue_full" or exc.diag.message_detail is None:
                raise
            return int(exc.diag.message_detail)
        self.session.commit()  # the transaction has ended; this ends the session's
        return None

    def count_unfinished(self) -> int:
        """Jobs queued or running, as this transaction sees them."""
        return int(self.session.scalar(_COUNT_UNFINISHED) or 0)


# Simple-query protocol, several statements in one message: the first error skips the rest,
# so COMMIT runs only if the count is within {limit}. PL/pgSQL takes a snapshot per statement:
# the count, taken once the lock is held, sees every job committed by the lock's last holder.
# The lock's key is any number no other advisory lock of the database uses.
_ADMIT_AND_COMMIT = """
DO $$
DECLARE unfinished bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7060000001);
    SELECT count(*) INTO unfinished FROM jobs WHERE status IN ('queued', 'running');
    IF unfinished > {limit} THEN
        RAISE EXCEPTION 'queue_full' USING DETAIL = unfinished::text;
    END IF;
END $$;
COMMIT;
"""
_COUNT_UNFINISHED = (
    select(func.count())
    .select_from(_jobs)
    .where(_jobs.c.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
)


class ImageRepository(_Repository):
    def put(self, job_id: uuid.UUID, variant: str, content_type: str, data: bytes) -> None:
        self._upsert(
            JobImage,
            {
                "job_id": job_id,
                "variant": variant,
                "content_type": content_type,
                "size": len(data),
                "data": data,
                "created_at": utcnow(),
            },
            key=("job_id", "variant"),
            update=("content_type", "size", "data", "created_at"),
        )

    def put_file(
        self, job_id: uuid.UUID, variant: str, content_type: str, file: IO[bytes], size: int
    ) -> None:
        """Insert a new image from a file of `size` bytes, read from its current position.

        The bytes stream in through binary COPY, a chunk at a time, so a large image is never
        held in memory whole (nor as the hex text a bytea parameter would become, which
        PostgreSQL parses three times slower than it stores binary).
        """
        dbapi = self.session.connection().connection.driver_connection
        assert dbapi is not None
        columns = "job_images (job_id, variant, content_type, size, data, created_at)"
        with (
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY {columns} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            for chunk in _binary_copy_row(job_id, variant, content_type, file, size):
                copy.write(chunk)

    def get(self, job_id: uuid.UUID, variant: str) -> JobImage | None:
        return self.session.scalar(
            select(JobImage).where(JobImage.job_id == job_id, JobImage.variant == variant)
        )

    def current(self, job_id: uuid.UUID, *, with_data: bool = False) -> StoredImage | None:
        """The image the job's steps work on: the processed one once a step produced it; its
        bytes only if `with_data`."""
        params = {"job_id": job_id, "with_data": with_data}
        row = _binary_row(self.session, _CURRENT_IMAGE_SQL, params)
        if row is None:
            return None
        return StoredImage(row.id, row.variant, row.content_type, row.size, row.data or b"")


class CarDetectionRepository(_Repository):
    def save(self, job_id: uuid.UUID, image_id: int | None, detection: Detection | None) -> None:
        values: dict[str, Any] = {
            "job_id": job_id,
            "image_id": image_id,
            "top_left_x": None,
            "top_left_y": None,
            "width": None,
            "height": None,
            "conf": None,
            "label": 0,
            "created_at": utcnow(),
        }
        if detection is not None:
            values.update(detection.model_dump())
        self._upsert(
            CarDetectionRow,
            values,
            key=("job_id",),
            update=[name for name in values if name != "job_id"],
        )

    def for_job(self, job_id: uuid.UUID) -> CarDetectionRow | None:
        return self.session.scalar(select(CarDetectionRow).where(CarDetectionRow.job_id == job_id))

    def for_jobs(self, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CarDetectionRow]:
        ids = list(job_ids)
        if not ids:
            return {}
        rows = self.session.scalars(select(CarDetectionRow).where(CarDetectionRow.job_id.in_(ids)))
        return {row.job_id: row for row in rows}

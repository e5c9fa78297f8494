"""What the database saw: every claim of a step, by which host, against the lease it took over;
the bounds recovery must keep, computed from the settings; the summary each fault prints.

The claims are recorded by a trigger on job_steps (an observer in the test database, installed
for the suite and dropped after it): a claim is an update that raises `attempts`, stamped with
the server's clock and the claiming connection's application_name (the host).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from tests.chaos.hosts import CHAOS_SETTINGS

INSTALL = [
    """CREATE TABLE chaos_claims (
         job_id uuid, position int, attempt int, host text, claimed_at timestamptz,
         taken_from_status text, taken_from_lease timestamptz)""",
    """CREATE FUNCTION chaos_record_claim() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO chaos_claims VALUES (NEW.job_id, NEW.position, NEW.attempts,
           current_setting('application_name'), clock_timestamp(), OLD.status,
           OLD.lease_expires_at);
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER chaos_claims AFTER UPDATE ON job_steps FOR EACH ROW
       WHEN (NEW.attempts > OLD.attempts) EXECUTE FUNCTION chaos_record_claim()""",
]
UNINSTALL = [
    "DROP TRIGGER IF EXISTS chaos_claims ON job_steps",
    "DROP FUNCTION IF EXISTS chaos_record_claim()",
    "DROP TABLE IF EXISTS chaos_claims",
]


@contextmanager
def claims_recorded(database_url: str) -> Iterator[sa.Engine]:
    """Record every claim of a step while the block runs; yields an engine on the database."""
    engine = sa.create_engine(database_url, pool_pre_ping=True)
    with engine.begin() as conn:
        for statement in UNINSTALL + INSTALL:
            conn.execute(sa.text(statement))
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            for statement in UNINSTALL:
                conn.execute(sa.text(statement))
        engine.dispose()


def db_now(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()  # type: ignore[no-any-return]


@dataclass
class Claims:
    total: int
    per_host: dict[str, int]
    repeated: int  # claims of a step that had been claimed before (a retry, or a takeover)
    over_live_lease: list[str]  # a claim while the previous run's lease was still live


def claims(engine: sa.Engine, job_ids: list[str]) -> Claims:
    ids = [uuid.UUID(job) for job in job_ids]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT job_id, position, attempt, host, claimed_at, taken_from_status, "
                "taken_from_lease FROM chaos_claims WHERE job_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
    per_host: dict[str, int] = {}
    for row in rows:
        per_host[row.host] = per_host.get(row.host, 0) + 1
    over = [
        f"job {row.job_id} step {row.position} attempt {row.attempt} by {row.host} at "
        f"{row.claimed_at}, lease of the run before live until {row.taken_from_lease}"
        for row in rows
        if row.taken_from_status == "running"
        and row.taken_from_lease is not None
        and row.taken_from_lease > row.claimed_at
    ]
    return Claims(len(rows), per_host, sum(1 for row in rows if row.attempt > 1), over)


def last_end(engine: sa.Engine, job_ids: list[str]) -> datetime | None:
    """When the last of the jobs ended (None for no job)."""
    if not job_ids:
        return None
    with engine.connect() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            sa.text("SELECT max(finished_at) FROM jobs WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(job) for job in job_ids]},
        ).scalar_one()


def setting(name: str) -> float:
    return float(CHAOS_SETTINGS[name])


# A job's own steps, once a worker has it: three short steps, a model call of at most
# MODEL_TIMEOUT_S, and its retries' backoff. Generous: this machine is shared and slow.
RUN_MARGIN_S = 15.0


def takeover_bound_s(backlog_s: float) -> float:
    """How long after a host stopped (lost, or cut off) its jobs may take to end elsewhere.

    Its running steps' leases lapse STEP_LEASE_S after their last renewal; the other hosts'
    recovery sweep, every RECOVERY_INTERVAL_S once the queue is empty (`backlog_s` after the
    fault), hands over a job not moved for RECOVERY_GRACE_S; then the job runs (RUN_MARGIN_S).
    """
    detect = max(setting("STEP_LEASE_S"), setting("RECOVERY_GRACE_S"))
    return backlog_s + detect + 2 * setting("RECOVERY_INTERVAL_S") + RUN_MARGIN_S


def handover_bound_s(backlog_s: float) -> float:
    """How long after the gateway reached the broker again its jobs left unsent may take to
    end: the sweep sends a job never handed over at its next pass, then the backlog drains."""
    return backlog_s + 2 * setting("RECOVERY_INTERVAL_S") + RUN_MARGIN_S


@dataclass
class Summary:
    fault: str
    jobs: int
    lost: int
    duplicated: int
    stuck: int
    failed: int
    recovery_s: float
    bound_s: float
    note: str

    def line(self) -> str:
        return (
            f"{self.fault}: {self.jobs} jobs, succeeded {self.jobs - self.failed - self.stuck}, "
            f"failed {self.failed} (each with a reason), lost {self.lost}, duplicated "
            f"{self.duplicated}, stuck {self.stuck}; recovery {self.recovery_s:.1f} s "
            f"(bound {self.bound_s:.0f} s); {self.note}"
        )


SUMMARIES: list[Summary] = []

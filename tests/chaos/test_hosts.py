"""Faults across hosts: two worker hosts and the API, each with its own links to Redis and
PostgreSQL through proxies (tests/chaos/proxy.py), and a batch of jobs in flight.

For each fault: every job ends `succeeded`, or `failed` with a reason; none is lost or has two
results; no step is claimed while the lease of its run before is live; and the jobs the fault
touched end within a bound computed from the settings (tests/chaos/audit.py). CHAOS_JOBS sets
the batch (`make chaos`: 200; the short run of `make test`: 100).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.chaos import audit
from tests.chaos.hosts import Cluster, chaos_cluster
from tests.chaos.load import QueueWatch, Uploads, upload
from tests.faults.harness import settle
from tests.system import wait_until

pytestmark = pytest.mark.system

JOBS = int(os.environ.get("CHAOS_JOBS", "100"))
SETTLE_S = 240.0


def _conclude(
    fault: str,
    engine: sa.Engine,
    uploads: Uploads,
    recovery_s: float,
    bound_s: float,
    note: str,
    expect: int = JOBS,
) -> audit.Summary:
    """Wait for every job to end, record and print the fault's summary, then assert it."""
    verdict = settle(uploads.accepted, SETTLE_S)
    claims = audit.claims(engine, uploads.accepted)
    summary = audit.Summary(
        fault=fault,
        jobs=len(uploads.accepted),
        lost=verdict.statuses["missing"] + max(0, expect - len(uploads.accepted)),
        duplicated=sum(1 for n in verdict.results_per_job.values() if n > 1),
        stuck=verdict.statuses["queued"] + verdict.statuses["running"],
        failed=verdict.statuses["failed"],
        recovery_s=recovery_s,
        bound_s=bound_s,
        note=f"{note}; claims per host {claims.per_host}, {claims.repeated} taken over",
    )
    audit.SUMMARIES.append(summary)
    print(summary.line())
    assert not uploads.errors, uploads.errors[:10]
    assert (summary.lost, summary.duplicated, summary.stuck) == (0, 0, 0), summary.line()
    assert all(verdict.failures.values()), "a failed job says no reason"
    assert not claims.over_live_lease, claims.over_live_lease[:5]
    # The bound is derived from the timeouts; the margin is generous for a shared machine.
    assert recovery_s <= 2 * bound_s, summary.line()
    return summary


def _since(engine: sa.Engine, start: datetime, job_ids: list[str]) -> float:
    end = audit.last_end(engine, job_ids)
    return 0.0 if end is None else max(0.0, (end - start).total_seconds())


def _unfinished_at(engine: sa.Engine, job_ids: list[str], at: datetime) -> list[str]:
    """Those of the jobs that had not ended at `at`."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id FROM jobs WHERE id = ANY(:ids) AND (finished_at IS NULL "
                "OR finished_at > :at)"
            ),
            {"ids": [uuid.UUID(j) for j in job_ids], "at": at},
        ).all()
    return [str(row.id) for row in rows]


def _running_on(engine: sa.Engine, host: str) -> list[str]:
    """Jobs whose step is running under a claim `host` made."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT c.job_id FROM chaos_claims c JOIN job_steps s "
                "ON s.job_id = c.job_id AND s.position = c.position AND s.attempts = c.attempt "
                "WHERE c.host = :host AND s.status = 'running'"
            ),
            {"host": host},
        ).all()
    return [str(row.job_id) for row in rows]


def _in_background(target: object) -> tuple[threading.Thread, list[Uploads]]:
    out: list[Uploads] = []
    thread = threading.Thread(target=lambda: out.append(target()))  # type: ignore[operator]
    thread.start()
    return thread, out


def test_a_worker_host_lost_with_running_and_prefetched_tasks(
    tmp_path: Path, recorder: sa.Engine
) -> None:
    with chaos_cluster(tmp_path) as c:
        watch = QueueWatch(c)
        thread, out = _in_background(lambda: upload(c.api, JOBS))
        held: dict[str, list[str]] = {}

        def holds_both() -> bool:
            held.update(c.inspect("host-a"))
            return bool(held["active"]) and bool(held["reserved"])

        wait_until(holds_both, 120, "host-a running and prefetching tasks", interval=0.2)
        c.kill_host("host-a")
        killed_at = audit.db_now(recorder)
        watch.mark()
        thread.join()
        uploads = out[0]
        settle(uploads.accepted, SETTLE_S)
        watch.close()
        affected = _unfinished_at(recorder, held["active"] + held["reserved"], killed_at)
        recovery = _since(recorder, killed_at, affected)
        note = (
            f"host-a held {len(held['active'])} running, {len(held['reserved'])} prefetched "
            f"({len(affected)} not ended at the kill)"
        )
        _conclude(
            "host lost",
            recorder,
            uploads,
            recovery,
            audit.takeover_bound_s(watch.backlog_s()),
            note,
        )


def test_a_worker_host_silently_partitioned_is_fenced_off(
    tmp_path: Path, recorder: sa.Engine
) -> None:
    with chaos_cluster(tmp_path) as c:
        watch = QueueWatch(c)
        thread, out = _in_background(lambda: upload(c.api, JOBS))
        running: list[str] = []

        def runs_steps() -> bool:
            running[:] = _running_on(recorder, "host-a")
            return len(running) >= 1

        wait_until(runs_steps, 120, "host-a running steps", interval=0.1)
        cut_at = audit.db_now(recorder)
        watch.mark()
        c.links["host-a"].go_silent()
        thread.join()
        uploads = out[0]
        verdict = settle(uploads.accepted, SETTLE_S)  # every job ends elsewhere, then it heals
        watch.close()
        recovery = _since(recorder, cut_at, running)
        before = _states(recorder, uploads.accepted)
        superseded_before = c.log("host-a").count("superseded; its result is dropped")
        c.links["host-a"].heal()
        # Once healed, the host's held writes arrive: each must be fenced off by its attempt.
        rejoined = _rejoins(c, recorder)
        after = _states(recorder, uploads.accepted)
        fenced = c.log("host-a").count("superseded; its result is dropped") - superseded_before
        note = (
            f"host-a cut off while running {len(running)} step(s); after the heal {fenced} late "
            f"result(s) fenced off, it {'rejoined' if rejoined else 'did NOT rejoin'}"
        )
        assert verdict.statuses["queued"] + verdict.statuses["running"] == 0
        _conclude(
            "host partitioned",
            recorder,
            uploads,
            recovery,
            audit.takeover_bound_s(watch.backlog_s()),
            note,
        )
        assert after == before, "a job changed after its host had healed"
        assert rejoined, "the healed host took no new step"


def _states(engine: sa.Engine, job_ids: list[str]) -> dict[str, tuple[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, status, finished_at FROM jobs WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(j) for j in job_ids]},
        ).all()
    return {str(row.id): (row.status, row.finished_at) for row in rows}


def _rejoins(c: Cluster, engine: sa.Engine) -> bool:
    """After a heal: new jobs until the healed host claims one of their steps (bounded)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        probe = upload(c.api, 4, threads=2)
        settle(probe.accepted, 60)
        if audit.claims(engine, probe.accepted).per_host.get("host-a"):
            return True
    return False


def test_the_api_silently_partitioned_from_redis_loses_no_upload(
    tmp_path: Path, recorder: sa.Engine
) -> None:
    partition_s = 30.0
    with chaos_cluster(tmp_path) as c:
        watch = QueueWatch(c)
        thread, out = _in_background(lambda: upload(c.api, JOBS, span_s=partition_s + 10))
        time.sleep(3)
        c.links["api"].redis.go_silent()
        time.sleep(partition_s)
        healed_at = audit.db_now(recorder)
        watch.mark()
        c.links["api"].redis.heal()
        thread.join()
        uploads = out[0]
        settle(uploads.accepted, SETTLE_S)
        watch.close()
        recovery = _since(recorder, healed_at, uploads.accepted)
        note = f"slowest upload answered in {uploads.longest_s:.1f} s (client timeout 30 s)"
        _conclude(
            "API cut off from Redis for 30 s",
            recorder,
            uploads,
            recovery,
            audit.handover_bound_s(watch.backlog_s()),
            note,
        )


def test_a_slow_link_between_a_worker_host_and_postgresql(
    tmp_path: Path, recorder: sa.Engine
) -> None:
    with chaos_cluster(tmp_path) as c:
        c.links["host-b"].postgres.set_latency(0.2)
        uploads = upload(c.api, JOBS)
        settle(uploads.accepted, SETTLE_S)
        summary = _conclude(
            "slow link (200 ms each way, host-b to PostgreSQL)",
            recorder,
            uploads,
            0.0,
            audit.RUN_MARGIN_S,
            "nothing to recover",
        )
    assert summary.failed == 0

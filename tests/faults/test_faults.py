"""Faults injected while 200 jobs run; every accepted job must end, once, with a reason if failed.

Real processes, real signals, real restarts (of the suite's PostgreSQL: the private one, or the
machine's when TEST_POSTGRES_URL points there). Recovery settings are shortened (grace 3 s, sweep
every 0.5 s) so the suite stays within minutes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import servers
from tests.faults.harness import (
    JOBS,
    assert_nothing_lost,
    cluster,
    run_with_fault,
    settle,
)
from tools.servers.redis import Redis

pytestmark = pytest.mark.system

GAVE_UP = re.compile(r"^step 2 \(model\.detect_car@v1\): .+ \(gave up after 4 attempts\)$")


def test_worker_killed_mid_run_loses_no_job(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:

        def kill_workers() -> None:
            # First one pool process (the task it ran is rejected and delivered again) ...
            main = c.system.procs["worker"].pid
            children = subprocess.run(
                ["pgrep", "-P", str(main)], capture_output=True, text=True, check=False
            ).stdout.split()
            assert children, "the worker has pool processes"
            os.kill(int(children[0]), signal.SIGKILL)
            time.sleep(1.0)
            # ... then the whole worker, with what it had taken from the queue.
            c.system.stop("worker", sig=signal.SIGKILL)
            time.sleep(0.5)
            c.restart_worker()

        load = run_with_fault(c.api, kill_workers)
        verdict = settle(load.accepted)

    assert_nothing_lost(load, verdict)
    assert verdict.statuses["succeeded"] == JOBS, verdict.failures


def test_redis_restarted_empty_loses_no_job(tmp_path: Path) -> None:
    # A Redis of this test's own that keeps nothing on disk: a restart empties it.
    server = Redis(tmp_path / "redis", persist=False)
    server.start()
    try:
        with cluster(tmp_path / "cluster", BROKER_URL=server.url()) as c:
            load = run_with_fault(c.api, server.restart, after_s=2.0)
            verdict = settle(load.accepted)
    finally:
        server.stop()

    assert_nothing_lost(load, verdict)
    assert verdict.statuses["succeeded"] == JOBS, verdict.failures


def test_postgresql_restart_loses_no_job(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        load = run_with_fault(c.api, servers().restart_postgres)
        verdict = settle(load.accepted)
        api_log = c.system.log("api")

    assert_nothing_lost(load, verdict)
    assert verdict.statuses["succeeded"] == JOBS, verdict.failures
    assert "Traceback" not in api_log or "database unavailable" in api_log
    assert set(load.refused) <= {503, 0}, load.refused


@pytest.mark.parametrize("kinds", ["error,malformed,slow"])
def test_model_failing_thirty_percent_ends_every_job_with_a_reason(
    tmp_path: Path, kinds: str
) -> None:
    faults = {
        "MLMOCK_FAULT_RATE": "0.3",
        "MLMOCK_FAULTS": kinds,
        "MLMOCK_SLOW_MS": "3000",
        "MODEL_TIMEOUT_S": "0.5",
    }
    with cluster(tmp_path, **faults) as c:
        load = run_with_fault(c.api, lambda: None, after_s=0)
        verdict = settle(load.accepted)

    assert_nothing_lost(load, verdict)
    # Four attempts at 30% each: about 1 job in 120 fails for good.
    assert verdict.statuses["succeeded"] >= JOBS * 0.95
    for reason in verdict.failures.values():
        assert GAVE_UP.match(reason), reason

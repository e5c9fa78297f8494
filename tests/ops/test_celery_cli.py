"""The `celery` commands of docs/operations.md, against the suite's running worker on Redis."""

from __future__ import annotations

import json
import os
import socket

from common.queue import step_task_name
from tests.system import BIN, System
from worker.resources import registry


def inspect(system: System, command: str) -> dict[str, object]:
    """`celery -A worker inspect <command>` of the suite's worker alone (other test runs may
    share the Redis), as JSON: {node name: reply}."""
    node = f"worker-{os.getpid()}@{socket.gethostname()}"
    done = system.run(
        str(BIN / "celery"),
        "-A",
        "worker",
        "inspect",
        command,
        "--json",
        "--timeout",
        "10",
        "--destination",
        node,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    replies: dict[str, object] = json.loads(done.stdout)
    assert list(replies) == [node], replies
    return replies


def test_inspect_ping_reaches_the_worker(system: System) -> None:
    (reply,) = inspect(system, "ping").values()

    assert reply == {"ok": "pong"}


def test_inspect_registered_lists_a_task_per_step_type(system: System) -> None:
    (tasks,) = inspect(system, "registered").values()

    expected = {step_task_name(step.manifest.type_id) for step in registry().steps}
    assert isinstance(tasks, list)
    assert {"pipeline.run_job", *expected} <= set(tasks)
    assert len(expected) >= 10


def test_inspect_stats_shows_the_pool(system: System) -> None:
    (stats,) = inspect(system, "stats").values()

    assert isinstance(stats, dict)
    assert stats["pool"]["max-concurrency"] == 2
    assert "total" in stats

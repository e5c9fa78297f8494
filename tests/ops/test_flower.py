"""Flower behind basic auth shows each step as a task of its own, with the job id as argument."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.ops.helpers import WORKER, Cluster, cluster, node_name, run_jobs, start_flower
from tests.servers import Servers
from tests.system import FLOWER_TASK_TABLE, wait_until

pytestmark = pytest.mark.system

AUTH = ("ops", "flower-test-password")


@pytest.fixture(scope="module")
def watched(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, str]]:
    """A cluster whose worker is started without --task-events (as the Procfile and compose
    start it), and Flower watching it, in use: it has asked the worker for task events. On the
    servers (a module fixture runs before the tests' own `servers`)."""
    with cluster(tmp_path_factory.mktemp("ops-flower")) as running:
        running.system.env["FLOWER_BASIC_AUTH"] = ":".join(AUTH)
        url = start_flower(running.system)
        node = node_name(WORKER)
        # Opening the Workers page is a use of Flower: it asks for task events at once, and
        # every 5 s while its pages are used; from then on, tasks show.
        wait_until(
            lambda: node in httpx.get(f"{url}/workers", auth=AUTH, timeout=10).text,
            30,
            "Flower seeing the worker",
            interval=0.5,
        )
        wait_until(
            lambda: "enabled by remote" in running.system.log(WORKER),
            30,
            "Flower asking the worker for task events",
            interval=0.5,
        )
        yield running, url


def test_flower_asks_for_its_password(watched: tuple[Cluster, str]) -> None:
    _, url = watched

    anonymous = httpx.get(f"{url}/tasks", timeout=10)
    wrong = httpx.get(f"{url}/tasks", auth=(AUTH[0], "wrong"), timeout=10)
    right = httpx.get(f"{url}/tasks", auth=AUTH, timeout=10)

    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_flower_shows_each_task_with_the_job_id_and_its_steps_as_arguments(
    watched: tuple[Cluster, str],
) -> None:
    running, url = watched
    job_id = str(run_jobs(running.api, 1, 1)[0]["job_id"])

    def tasks() -> list[dict[str, object]]:
        # the search box of the Tasks page, given the job id
        params = {**FLOWER_TASK_TABLE, "search[value]": job_id}
        table = httpx.get(f"{url}/tasks/datatable", params=params, auth=AUTH, timeout=10)
        assert table.status_code == 200
        return list(table.json()["data"])

    deadline = time.monotonic() + 20
    while len(found := tasks()) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)

    # The fit on the CPU queue; the model call and the detection's row, adjacent steps on the
    # I/O queue, in one task named after the first, with the first and last positions.
    by_name = {str(task["name"]): str(task["args"]) for task in found}
    expected = {"image.fit@v1": ["1"], "model.detect_car@v1": ["2", "3"]}
    assert set(by_name) == {f"pipeline.step.{step}" for step in expected}
    for step, positions in expected.items():
        args = by_name[f"pipeline.step.{step}"]
        # the job id and positions, nothing else (no image bytes)
        assert args.strip("()[]").split(", ") == [f"'{job_id}'", *positions]

"""`make run` with nothing configured: a private PostgreSQL and Redis with their data in DATA_DIR,
every process, Ctrl-C stops them all, and the next run finds the same data."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.system import BIN, FLOWER_TASK_TABLE, ROOT, alive, free_port, http_ok, wait_until
from tools.servers.postgres import Postgres

pytestmark = pytest.mark.system  # `make run` starts servers of its own

pytestmark = pytest.mark.system  # runs processes of its own


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    api_url: str
    flower_url: str
    data_dir: Path
    log: Path


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("embedded")
    api, mock, flower = free_port(), free_port(), free_port()
    # No DATABASE_URL, BROKER_URL or other settings: only where to put files, and free ports.
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "TMPDIR", "USER", "LOGNAME", "SHELL")
    }
    env.update(
        DATA_DIR=str(data_dir),
        API_PORT=str(api),
        MLMOCK_PORT=str(mock),
        FLOWER_PORT=str(flower),
        MODEL_URL=f"http://127.0.0.1:{mock}",
        VENV=str(BIN.parent),
        WORKER_CONCURRENCY="2",
    )
    log = data_dir / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(
        proc, env, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{flower}", data_dir, log
    )
    started: set[int] = set()
    try:
        api_up = http_ok(f"{running.api_url}/health")
        wait_until(lambda: proc.poll() is not None or api_up(), 90, "make run's API")
        assert proc.poll() is None, log.read_text(errors="replace")
        wait_until(lambda: " ready." in log.read_text(errors="replace"), 60, "make run's worker")
        started = descendants(proc.pid)
        yield running
    finally:
        # The runner starts each process in a session of its own: killing make's process
        # group would leave them running, so end every process make started, one by one.
        for pid in alive(started | descendants(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_requests_sh_succeeds_against_make_run(make_run: Running) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "requests.sh")],
        env={**make_run.env, "API_URL": make_run.api_url},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count('"message":"success"') == 3
    assert (make_run.data_dir / "postgres" / "PG_VERSION").is_file()
    assert (make_run.data_dir / "redis" / "redis.pid").is_file()


def started_url(make_run: Running, server: str) -> str:
    """The URL the runner printed for the `server` it started ("Redis started, ...: <url>")."""
    for line in make_run.log.read_text(errors="replace").splitlines():
        if f"{server} started, data in " in line:
            return line.rsplit(": ", 1)[1].strip()
    raise AssertionError(f"make run did not say it started {server}")


def celery(make_run: Running, *args: str) -> subprocess.CompletedProcess[str]:
    """The celery CLI, on the broker `make run` started."""
    return subprocess.run(
        [str(BIN / "celery"), "-A", "worker", *args],
        cwd=ROOT,
        env={**make_run.env, "BROKER_URL": started_url(make_run, "Redis")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_celery_inspect_reaches_the_worker_on_the_private_redis(make_run: Running) -> None:
    ping = celery(make_run, "inspect", "ping", "--timeout", "5")
    registered = celery(make_run, "inspect", "registered", "--timeout", "5")

    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout
    assert "pipeline.step.model.detect_car@v1" in registered.stdout


def test_flower_shows_the_worker_and_the_tasks_of_the_steps(make_run: Running) -> None:
    # Given: Flower up and in use (a page opened), and both workers sending task events since
    # Flower asked for them (workers send none until a monitor asks; Flower asks at once on its
    # first request, then every few seconds while it is used)
    wait_until(http_ok(f"{make_run.flower_url}/healthcheck"), 30, "Flower")
    assert httpx.get(f"{make_run.flower_url}/workers", timeout=30).status_code == 200
    wait_until(
        lambda: make_run.log.read_text(errors="replace").count("enabled by remote") >= 2,
        30,
        "Flower asking both workers for task events",
        interval=0.5,
    )

    # When: a job runs while Flower watches
    with (ROOT / "samples" / "car.jpg").open("rb") as image:
        submitted = httpx.post(
            f"{make_run.api_url}/jobs",
            params={"wait": "20"},
            files={"image": image},
            data={"pipeline_id": "1"},
            timeout=30,
        )
    assert submitted.json()["status"] == "succeeded", submitted.text

    # Then: Flower lists the worker and the job's tasks
    workers = httpx.get(f"{make_run.flower_url}/workers", timeout=30)
    assert workers.status_code == 200
    assert "celery@" in workers.text
    # The detection's row is stored by the model call's task (adjacent steps on one queue).
    expected = {"pipeline.step.image.fit@v1", "pipeline.step.model.detect_car@v1"}
    names: set[str] = set()
    for _ in range(40):  # events reach Flower a moment after the task ends
        tasks = httpx.get(
            f"{make_run.flower_url}/tasks/datatable", params=FLOWER_TASK_TABLE, timeout=30
        )
        assert tasks.status_code == 200
        names = {task["name"] for task in tasks.json()["data"]}
        if expected <= names:
            break
        time.sleep(0.5)
    assert expected <= names


def descendants(pid: int) -> set[int]:
    table = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = (int(field) for field in line.split())
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_ctrl_c_stops_every_process(make_run: Running) -> None:
    started = descendants(make_run.proc.pid)
    # runner, API, mock, Flower, worker and its two pool processes at least
    assert len(started) >= 7, started

    os.killpg(make_run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    make_run.proc.wait(timeout=60)
    # make may return before the runner has finished stopping what it started.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not alive(started), 45, "every process stopped", interval=0.2)

    assert alive(started) == set(), make_run.log.read_text(errors="replace")[-3000:]
    log = make_run.log.read_text(errors="replace")
    assert "Warm shutdown" in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{make_run.api_url}/health", timeout=2)
    # The servers too, last: PostgreSQL (which runs in a session of its own) and Redis.
    postmaster = make_run.data_dir / "postgres" / "postmaster.pid"
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not postmaster.exists(), 30, "PostgreSQL stopped", interval=0.2)
    assert not postmaster.exists(), make_run.log.read_text(errors="replace")[-3000:]
    assert "stopping Redis" in log


def test_the_next_run_finds_the_same_data(make_run: Running) -> None:
    # Given: the run above has stopped (the test before this one), its jobs stored
    assert make_run.proc.poll() is not None

    # When: the migrations and the test pipeline run again on the same folder
    done = subprocess.run(
        [str(BIN / "python"), "-m", "tools.run", "--bootstrap-only"],
        cwd=ROOT,
        env=make_run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then: the pipeline is found, not created, and the jobs of the first run are there
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test pipeline 1 already present" in done.stdout + done.stderr
    postgres = Postgres(make_run.data_dir / "postgres")
    postgres.start()
    try:
        engine = sa.create_engine(postgres.url("pipelines"))
        with engine.connect() as conn:
            jobs = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
        engine.dispose()
    finally:
        postgres.stop()
    assert jobs >= 3

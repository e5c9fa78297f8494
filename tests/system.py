"""Real processes for the tests: the API, the model mock and a Celery worker, each a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TERMINAL = ("succeeded", "failed")
# Flower's task table (GET /tasks/datatable): the latest 100 tasks, newest first.
FLOWER_TASK_TABLE = {
    "draw": 1,
    "start": 0,
    "length": 100,
    "order[0][column]": 0,
    "order[0][dir]": "desc",
    "search[value]": "",
    "columns[0][data]": "received",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` whose process still exists."""
    left = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        left.add(pid)
    return left


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass
class System:
    """A set of started processes sharing one environment; stop() ends them all."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def start_mlmock(self, port: int) -> None:
        self.start("mlmock", str(BIN / "uvicorn"), "mlmock.main:app", "--port", str(port))
        wait_until(http_ok(f"http://127.0.0.1:{port}/health"), 30, "model mock")

    def start_api(self, port: int) -> None:
        self.start("api", str(BIN / "uvicorn"), "api.main:app", "--port", str(port))
        wait_until(http_ok(f"http://127.0.0.1:{port}/health"), 30, "API")

    def start_worker(self, name: str = "worker", concurrency: int = 2, *options: str) -> None:
        """A Celery worker; `options` are more of its command line (e.g. -Q, --pool)."""
        self.start(
            name,
            str(BIN / "celery"),
            "-A",
            "worker",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            *options,
        )
        wait_until(lambda: " ready." in self.log(name), 60, "Celery worker", interval=0.2)

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Send `sig` to the process (SIGKILL: to its whole group, children included), wait,
        then kill whatever is left of the group."""
        names = [name] if name else list(self.procs)
        for each in names:
            proc = self.procs[each]
            if proc.poll() is None:
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
        for each in names:
            proc = self.procs.pop(each)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_bootstrap(database_url: str) -> subprocess.CompletedProcess[str]:
    """`python -m common.bootstrap` (migrations, then the test pipeline) on `database_url`."""
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "common.bootstrap"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    env.update(overrides)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def wait_for_job(
    api: httpx.Client, job_id: str, timeout: float = 30, seen: list[dict[str, object]] | None = None
) -> dict[str, object]:
    """Poll GET /jobs/{id} until the job ends; `seen` collects every answer on the way."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        if seen is not None:
            seen.append(body)
        if body["status"] in TERMINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s: {body}")
        time.sleep(0.02)

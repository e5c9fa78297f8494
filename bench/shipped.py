"""The configuration that ships: the Procfile's processes, started as `make run` starts them.

`python -m tools.run Procfile` (the line prefixer) runs the API, the mock, the CPU worker, the
I/O worker and Flower with the settings' defaults (INFO logs, text lines) and the Procfile's
options, on the benchmark's database, queue and free ports. Every process's CPU is charged to
its kind, the prefixer's included.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import procstat
from bench.cluster import Cluster
from bench.procstat import FLOWER, PREFIXER
from tests.system import ROOT, System, free_port, http_ok, wait_until
from tools.run import read_procfile

PROCFILE = ROOT / "Procfile"
RUNNER = "make run"


class Shipped:
    """The Procfile's processes under tools.run, on `cluster`'s database, broker and ports."""

    def __init__(self, cluster: Cluster, procfile: Path = PROCFILE) -> None:
        self.cluster = cluster
        self.procfile = procfile
        self.flower_port = free_port()
        env = dict(cluster.system.env)
        env.pop("LOG_LEVEL", None)  # the default, as `make run` has it
        env.update(
            {
                "API_PORT": str(cluster.api_port),
                "MLMOCK_PORT": str(cluster.mock_port),
                "FLOWER_PORT": str(self.flower_port),
                "WORKER_METRICS_PORT": str(free_port()),
                "WORKER_IO_METRICS_PORT": str(free_port()),
                "WORKER_CONCURRENCY": str(cluster.workers),
            }
        )
        self.system = System(env=env, logs=cluster.logs / "shipped")

    def start(self) -> None:
        """Start tools.run; wait for the API, the mock, Flower and both workers."""
        self.system.start(RUNNER, sys.executable, "-m", "tools.run", str(self.procfile))
        c = self.cluster
        for url in (f"{c.api_url}/health", f"http://127.0.0.1:{c.mock_port}/health"):
            wait_until(self._alive_and(http_ok(url)), 60, url)
        wait_until(
            self._alive_and(http_ok(f"http://127.0.0.1:{self.flower_port}/healthcheck")),
            60,
            "Flower",
        )
        nodes = self.nodes()

        def pinged() -> bool:
            return len(c.control.control.ping(destination=nodes, timeout=0.5)) >= len(nodes)

        wait_until(self._alive_and(pinged), 60, "Celery workers", interval=0.1)
        wait_until(lambda: len(self.pool_pids()) >= c.workers, 30, "CPU worker pool")

    def nodes(self) -> list[str]:
        """The Celery node names of the Procfile's workers (`--hostname`, celery@%h by
        default)."""
        host, found = socket.gethostname(), []
        for entry in read_procfile(self.procfile):
            words = entry.command.split()
            if "celery" not in " ".join(words) or "worker" not in words[words.index("-A") + 2 :]:
                continue
            name = words[words.index("--hostname") + 1] if "--hostname" in words else "celery@%h"
            found.append(name.replace("%h", host))
        return found

    @contextmanager
    def consumers_paused(self) -> Iterator[None]:
        """For the block, the Procfile's workers run on but take no task: each cancels its
        consumers (Celery's cancel_consumer remote control) and adds them back after
        (add_consumer), so that they are as idle as with no job coming, Flower still asking.
        Raises RuntimeError if no worker consumes the run's queue."""
        control = self.cluster.control.control
        active = control.inspect(destination=self.nodes(), timeout=2).active_queues() or {}
        consumed = [(node, q["name"]) for node, queues in active.items() for q in queues]
        if self.cluster.queue not in {queue for _, queue in consumed}:
            raise RuntimeError(f"no worker consumes {self.cluster.queue}: {active}")

        def ask(command: Callable[..., Any], node: str, queue: str) -> None:
            replies = command(queue, destination=[node], reply=True, timeout=5)
            if not any("ok" in reply.get(node, {}) for reply in replies or []):
                raise RuntimeError(f"{node} did not do {command.__name__}({queue}): {replies}")

        for node, queue in consumed:
            ask(control.cancel_consumer, node, queue)
        try:
            yield
        finally:
            for node, queue in consumed:
                ask(control.add_consumer, node, queue)

    def _alive_and(self, check: Callable[[], bool]) -> Callable[[], bool]:
        """`check`, raising instead if tools.run exited (a process of it failed to start)."""

        def alive() -> bool:
            runner = self.system.procs[RUNNER]
            if runner.poll() is not None:
                raise RuntimeError(f"make run exited:\n{self.system.log(RUNNER)[-3000:]}")
            return check()

        return alive

    def processes(self) -> dict[int, str]:
        """The runner's children by what they run: Procfile name -> pid."""
        found = {}
        queue = self.cluster.queue
        for pid in procstat.children(self.system.procs[RUNNER].pid):
            words = procstat.cmdline(pid).split()
            if "api.main:app" in words:
                found[pid] = "api"
            elif "mlmock.main:app" in words:
                found[pid] = "mlmock"
            elif "worker.flower" in words:
                found[pid] = FLOWER
            elif f"{queue}.io" in words:
                found[pid] = "worker-io"
            elif queue in words:
                found[pid] = "worker"
        return found

    def pool_pids(self) -> list[int]:
        """The processes that run the CPU queue's tasks: a prefork worker's children, or a
        worker with `--pool solo` itself."""
        found = []
        for pid, name in self.processes().items():
            if name == "worker":
                solo = "solo" in procstat.cmdline(pid).split()
                found.extend([pid] if solo else procstat.children(pid))
        return found

    def kinds(self) -> dict[int, str]:
        """pid -> process kind, as bench.harness names them, for every process started here."""
        if RUNNER not in self.system.procs:
            return {}
        names = {
            "api": "api",
            "mlmock": "mlmock",
            FLOWER: FLOWER,
            "worker": "worker main",
            "worker-io": "worker io (threads)",
        }
        found = {self.system.procs[RUNNER].pid: PREFIXER}
        found.update({pid: names[name] for pid, name in self.processes().items()})
        # A solo worker is its own pool: its CPU is the pool's.
        found.update(dict.fromkeys(self.pool_pids(), "worker pool"))
        return found

    def stop(self) -> None:
        self.system.stop()

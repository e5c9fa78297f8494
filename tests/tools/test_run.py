"""`make run`'s runner (tools/run.py) on signals: however many arrive and however close together
(a terminal's Ctrl-C pressed twice, `timeout` passing one on to a process group that already got
it), it stops every process and exits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_ENV
from tests.servers import Servers
from tests.system import ROOT, alive, make_env, wait_until

pytestmark = pytest.mark.system  # starts processes


def start_runner(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int], Path]:
    """tools.run on a Procfile of two sleeps, on the tests' servers; its process ids."""
    tmp_path.mkdir(exist_ok=True)
    procfile = tmp_path / "Procfile"
    procfile.write_text("one: sleep 300\ntwo: sleep 300\n")
    log = tmp_path / "run.log"
    env = make_env({**TEST_ENV, "RUN_STOP_TIMEOUT_S": "10"})
    with log.open("wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "tools.run", str(procfile)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: log.read_text().count(" started (pid ") == 2, 60, "both processes")
    pids = [
        int(line.rsplit("(pid ", 1)[1].rstrip(")"))
        for line in log.read_text().splitlines()
        if " started (pid " in line
    ]
    return runner, pids, log


def spaced_signals(proc: subprocess.Popen[bytes], count: int, gap_s: float) -> None:
    """`count` SIGINTs, `gap_s` apart (busy-waited: sleep is far coarser)."""
    for _ in range(count):
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        while time.perf_counter() - sent < gap_s:
            pass


@pytest.mark.parametrize(("signals", "runs"), [(1, 1), (50, 5)])
def test_signals_stop_every_process_however_close_together(
    servers: Servers, tmp_path: Path, signals: int, runs: int
) -> None:
    # 50 signals 20 us apart: some land while the handler of an earlier one runs. A handler
    # that took a lock hung in about half of such runs, so 5 runs would all pass only by luck.
    for run in range(runs):
        runner, pids, log = start_runner(tmp_path / str(run))
        try:
            spaced_signals(runner, signals, 20e-6)
            with contextlib.suppress(subprocess.TimeoutExpired):
                runner.wait(timeout=30)

            assert runner.poll() == 0, log.read_text()[-2000:]
            assert alive(set(pids)) == set()
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
            for pid in alive(set(pids)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

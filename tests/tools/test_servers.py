"""The private PostgreSQL's wrapper never signals a process that is not its own server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.servers.postgres import Postgres


def test_stop_leaves_alone_a_process_named_by_a_stale_pid_file(tmp_path: Path) -> None:
    # Given: a folder whose postmaster.pid names a live process that is not its server (a
    # killed server's file, its PID since given to another process)
    other = subprocess.Popen(["sleep", "30"])
    try:
        folder = tmp_path / "postgres"
        folder.mkdir()
        (folder / "postmaster.pid").write_text(f"{other.pid}\n{folder}\n")

        # When
        Postgres(folder).stop(timeout_s=1)

        # Then: the other process was not signalled
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()

"""requests.sh, the earlier implementation's check, against a started system; run the way a
bare host runs it: a POSIX sh with curl, sed, grep and a few coreutils, no Python, no bash."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.system import ROOT

pytestmark = pytest.mark.system  # runs processes of its own

# What requests.sh may call; nothing else is on its PATH.
TOOLS = ("sh", "curl", "sed", "grep", "cat", "mktemp", "rm", "dirname")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH of one folder holding only TOOLS (links to this machine's)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return str(folder)


def run_requests_sh(api_url: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "API_URL": api_url, "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(Path(path) / "sh"), str(ROOT / "requests.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_requests_sh_gets_success_three_times(api: httpx.Client, bare_path: str) -> None:
    # Given: no python3 nor bash where requests.sh can find them
    for absent in ("python3", "python", "bash"):
        assert shutil.which(absent, path=bare_path) is None

    done = run_requests_sh(str(api.base_url).rstrip("/"), bare_path)

    assert done.returncode == 0, done.stdout + done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 3
    assert all(answer["message"] == "success" for answer in answers)


def test_requests_sh_fails_when_the_api_is_unreachable(bare_path: str) -> None:
    done = run_requests_sh("http://127.0.0.1:9", bare_path)

    assert done.returncode == 1
    assert "3 of 3 requests failed" in done.stderr


def test_requests_sh_fails_on_an_answer_that_is_not_success(bare_path: str) -> None:
    # Given: a server answering 200 with a body that is not the seed's success
    class NotSuccess(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"message": "failure", "detail": "success"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotSuccess)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = run_requests_sh(f"http://127.0.0.1:{server.server_address[1]}", bare_path)
    finally:
        server.shutdown()
        server.server_close()

    assert done.returncode == 1
    assert "response is not" in done.stderr
    assert done.stdout.count('"message": "failure"') == 3

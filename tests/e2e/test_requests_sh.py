"""requests.sh, the earlier implementation's check, against a started system."""

from __future__ import annotations

import json
import os
import subprocess

import httpx

from tests.system import ROOT


def test_requests_sh_gets_success_three_times(api: httpx.Client) -> None:
    env = {**os.environ, "API_URL": str(api.base_url).rstrip("/")}

    done = subprocess.run(
        ["bash", str(ROOT / "requests.sh")], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stdout + done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 3
    assert all(answer["message"] == "success" for answer in answers)


def test_requests_sh_fails_when_the_api_is_unreachable() -> None:
    env = {**os.environ, "API_URL": "http://127.0.0.1:9"}

    done = subprocess.run(
        ["bash", str(ROOT / "requests.sh")], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode != 0

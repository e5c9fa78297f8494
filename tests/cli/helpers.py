"""Running pipectl in process against an API, and reading what it printed."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from cli.client import ApiClient
from cli.main import cli
from tests.conftest import API_PORT

API_URL = f"http://127.0.0.1:{API_PORT}"


def pipectl(*args: str, client: ApiClient | None = None, stdin: str | None = None) -> Result:
    """pipectl ARGS against the test API (or `client`), with a wide terminal for the tables."""
    runner = CliRunner(env={"COLUMNS": "250", "API_KEY": None, "PIPECTL_API_URL": API_URL})
    return runner.invoke(cli, list(args), obj=client, input=stdin, catch_exceptions=False)


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)

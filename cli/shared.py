"""What every command uses: the API client of this invocation, the console, --json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from cli.client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(fn)


def api(ctx: click.Context) -> ApiClient:
    client = ctx.find_object(ApiClient)
    assert client is not None
    return client


def out() -> Console:
    return Console(highlight=False, soft_wrap=False)

"""`pipectl pipelines ...`: list, show, create, update and archive pipelines."""

from __future__ import annotations

import json
from typing import IO, Any

import click

from cli import render
from cli.shared import api, json_option, out


@click.group()
def pipelines() -> None:
    """List, show, create, update and archive pipelines."""


@pipelines.command("list")
@click.option(
    "--archived/--active",
    default=None,
    help="Only the archived pipelines / only those that take jobs (default: all).",
)
@json_option
@click.pass_context
def list_pipelines(ctx: click.Context, archived: bool | None, as_json: bool) -> None:
    """List the pipelines; archived ones say so (they take no new jobs)."""
    found = api(ctx).pipelines(archived)
    if as_json:
        render.print_json(found)
    else:
        out().print(render.pipelines_table(found))


@pipelines.command("show")
@click.argument("pipeline_id", type=click.IntRange(min=1))
@json_option
@click.pass_context
def show_pipeline(ctx: click.Context, pipeline_id: int, as_json: bool) -> None:
    """Show a pipeline and its steps with their parameters."""
    body = api(ctx).pipeline(pipeline_id)
    if as_json:
        render.print_json(body)
    else:
        render.pipeline_view(out(), body)


def read_body(
    file: IO[str], name: str | None, description: str | None, *, need_name: bool
) -> dict[str, Any]:
    """The request body from FILE: `{"name", "description", "config"}`, or a bare config
    (`{"datatype", "steps"}`) with --name; --name and --description override the file."""
    try:
        document = json.load(file)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="FILE") from exc
    if not isinstance(document, dict):
        raise click.BadParameter("must hold a JSON object", param_hint="FILE")
    body = dict(document) if "config" in document else {"config": document}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if need_name and "name" not in body:
        raise click.UsageError('give the pipeline a name: --name, or "name" in FILE')
    return body


@pipelines.command("create")
@click.argument("file", type=click.File("r"))
@click.option("--name", help='Name of the pipeline (else "name" in FILE).')
@click.option("--description", help='Description (else "description" in FILE).')
@json_option
@click.pass_context
def create_pipeline(
    ctx: click.Context, file: IO[str], name: str | None, description: str | None, as_json: bool
) -> None:
    """Create a pipeline from FILE (JSON; - for stdin); its config is checked by the API."""
    created = api(ctx).create_pipeline(read_body(file, name, description, need_name=True))
    if as_json:
        render.print_json(created)
    else:
        render.pipeline_view(out(), created)


@pipelines.command("update")
@click.argument("pipeline_id", type=click.IntRange(min=1))
@click.argument("file", type=click.File("r"))
@click.option("--name", help="New name (else from FILE, else unchanged); 409 if taken.")
@click.option("--description", help="New description (else from FILE, else unchanged).")
@json_option
@click.pass_context
def update_pipeline(
    ctx: click.Context,
    pipeline_id: int,
    file: IO[str],
    name: str | None,
    description: str | None,
    as_json: bool,
) -> None:
    """Store the config in FILE as the pipeline's new version (a new version only if it
    changed); jobs already submitted keep theirs. FILE is read as for create, and may be what
    `pipelines show --json` gave; a name in it, or --name, renames the pipeline."""
    body = read_body(file, name, description, need_name=False)
    updated = api(ctx).update_pipeline(pipeline_id, body)
    if as_json:
        render.print_json(updated)
    else:
        render.pipeline_view(out(), updated)


@pipelines.command("archive")
@click.argument("pipeline_id", type=click.IntRange(min=1))
@json_option
@click.pass_context
def archive_pipeline(ctx: click.Context, pipeline_id: int, as_json: bool) -> None:
    """Archive a pipeline: it takes no new jobs; it, its versions and its jobs stay readable.
    Archiving an archived pipeline changes nothing."""
    archived = api(ctx).archive_pipeline(pipeline_id)
    if as_json:
        render.print_json(archived)
    else:
        render.pipeline_view(out(), archived)

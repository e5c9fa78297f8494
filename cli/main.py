"""pipectl: submit images, follow jobs, manage pipelines, list steps, over the REST API.

Exit status: 0 done; 1 the API refused or could not be reached (its message on stderr);
2 a job waited for ended failed; 3 a job waited for had not ended by --timeout; 64 bad usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from rich.console import Console

from cli import render
from cli.client import ApiClient, CliError
from cli.submit import submit_files

DEFAULT_API_URL = "http://127.0.0.1:8000"
EXIT_ERROR = 1
EXIT_USAGE = 64  # not click's 2: 2 means "a job failed", and scripts must tell them apart
STATUSES = ("queued", "running", "succeeded", "failed")

F = TypeVar("F", bound=Callable[..., Any])


class PipectlGroup(click.Group):
    """Usage errors exit 64 instead of click's 2, which pipectl keeps for failed jobs."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE  # type: ignore[misc]  # click reads it per instance
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE  # type: ignore[misc]  # click reads it per instance
            raise
        except CliError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)


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


@click.group(cls=PipectlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--api-url",
    envvar="PIPECTL_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="Base URL of the API (env PIPECTL_API_URL).",
)
@click.option(
    "--api-key",
    envvar="API_KEY",
    default=None,
    help="API key, sent as X-API-Key (env API_KEY).",
)
@click.pass_context
def cli(ctx: click.Context, api_url: str, api_key: str | None) -> None:
    """Submit images to pipelines and follow their jobs; manage pipelines; list steps.

    Exit status: 0 done, 1 the API refused or could not be reached, 2 a job waited for
    failed, 3 a job waited for was still unfinished at --timeout, 64 bad usage.
    """
    if not isinstance(ctx.obj, ApiClient):  # a test may hand in a client of its own
        ctx.obj = ctx.with_resource(ApiClient(api_url, api_key))


# --- jobs -------------------------------------------------------------------------------------


@cli.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--pipeline",
    "pipeline_id",
    type=click.IntRange(min=1),
    required=True,
    help="Id of the pipeline to run.",
)
@click.option("--wait", is_flag=True, help="Wait for every job to end; exit 2 if one failed.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="With --wait: seconds to wait for the jobs; exit 3 if one is still unfinished.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Uploads in flight at once.",
)
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    files: Sequence[Path],
    pipeline_id: int,
    wait: bool,
    timeout: float,
    concurrency: int,
    as_json: bool,
) -> None:
    """Submit FILES to a pipeline, one job each; print a summary of the jobs."""
    ctx.exit(submit_files(api(ctx), files, pipeline_id, wait, timeout, concurrency, as_json))


@cli.command()
@click.argument("job_id")
@json_option
@click.pass_context
def job(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: its status, result, error and steps."""
    body = api(ctx).job(job_id)
    if as_json:
        render.print_json(body)
    else:
        render.job_view(out(), body)


@cli.command()
@click.option("--pipeline", "pipeline_id", type=click.IntRange(min=1), help="Only this pipeline.")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option(
    "--detected/--no-detected",
    default=None,
    help="Only jobs that found a car / found none (default: both).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N jobs."
)
@json_option
@click.pass_context
def jobs(
    ctx: click.Context,
    pipeline_id: int | None,
    status: str | None,
    detected: bool | None,
    limit: int,
    as_json: bool,
) -> None:
    """List recent jobs, newest first."""
    found = list(api(ctx).jobs(limit, pipeline_id=pipeline_id, status=status, detected=detected))
    if as_json:
        render.print_json(found)
    else:
        out().print(render.jobs_table(found))


# --- pipelines and steps ----------------------------------------------------------------------


@cli.group()
def pipelines() -> None:
    """List, show, create and update pipelines."""


@pipelines.command("list")
@json_option
@click.pass_context
def list_pipelines(ctx: click.Context, as_json: bool) -> None:
    """List the pipelines."""
    found = api(ctx).pipelines()
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
@click.option("--description", help="New description (else from FILE, else unchanged).")
@json_option
@click.pass_context
def update_pipeline(
    ctx: click.Context, pipeline_id: int, file: IO[str], description: str | None, as_json: bool
) -> None:
    """Store the config in FILE as the pipeline's new version; jobs already submitted keep
    theirs. FILE is read as for create; a name in it is ignored (a pipeline keeps its name)."""
    body = read_body(file, None, description, need_name=False)
    body.pop("name", None)
    updated = api(ctx).update_pipeline(pipeline_id, body)
    if as_json:
        render.print_json(updated)
    else:
        render.pipeline_view(out(), updated)


@cli.command()
@json_option
@click.pass_context
def steps(ctx: click.Context, as_json: bool) -> None:
    """List the step types pipelines can use, and the data types they work on."""
    catalogue = api(ctx).catalogue()
    if as_json:
        render.print_json(catalogue)
        return
    console = out()
    console.print(render.steps_table(render.catalogue_steps(catalogue)))
    if isinstance(catalogue, dict) and catalogue.get("datatypes"):
        console.print(render.datatypes_table(catalogue["datatypes"]))


def main() -> None:
    cli(prog_name="pipectl")


if __name__ == "__main__":
    main()

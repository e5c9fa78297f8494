"""pipectl: submit images, follow jobs, manage pipelines, list steps, over the REST API.

Exit status: 0 done; 1 the API refused or could not be reached (its message on stderr);
2 a job waited for ended failed; 3 a job waited for had not ended by --timeout; 64 bad usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cli import render
from cli.client import ApiClient, CliError
from cli.jobs import job, jobs, retry
from cli.pipelines import pipelines
from cli.shared import api, json_option, out
from cli.submit import submit_files

DEFAULT_API_URL = "http://127.0.0.1:8000"
EXIT_ERROR = 1
EXIT_USAGE = 64  # not click's 2: 2 means "a job failed", and scripts must tell them apart


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


# --- pipelines and steps ----------------------------------------------------------------------


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


for command in (job, jobs, retry, pipelines):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="pipectl")


if __name__ == "__main__":
    main()

"""`pipectl job`, `pipectl jobs` (and `jobs image`), `pipectl retry`: reading and rerunning jobs."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from cli import render
from cli.shared import api, json_option, out
from cli.submit import EXIT_JOB_FAILED, EXIT_UNFINISHED

STATUSES = ("queued", "running", "succeeded", "failed")
VARIANTS = ("original", "processed", "annotated")
# File name extensions of the image types the API stores (api/uploads.py accepts these).
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}


@click.command()
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


@click.group(invoke_without_command=True)
@click.option("--pipeline", "pipeline_id", type=click.IntRange(min=1), help="Only this pipeline.")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option(
    "--detected/--no-detected",
    default=None,
    help="Only jobs that found a car / found none (default: both).",
)
@click.option(
    "--step-output",
    "outputs",
    multiple=True,
    metavar="TYPE:FIELD=VALUE",
    help="Only jobs in which a step of TYPE reported VALUE in FIELD of its output, e.g. "
    "notify.webhook@v1:status=failed; repeatable, all must match.",
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
    outputs: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """List recent jobs, newest first; `jobs image` downloads a job's image."""
    if ctx.invoked_subcommand is not None:
        return
    filters = {"pipeline_id": pipeline_id, "status": status, "detected": detected}
    found = list(api(ctx).jobs(limit, **filters, output=list(outputs) or None))
    if as_json:
        render.print_json(found)
    else:
        out().print(render.jobs_table(found))


@jobs.command("image")
@click.argument("job_id")
@click.option(
    "--variant",
    type=click.Choice(VARIANTS),
    default="original",
    show_default=True,
    help="original: the upload; processed: what the steps made of it; annotated: with the box.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write it; - for stdout. Default: JOB_ID-VARIANT.EXT here.",
)
@json_option
@click.pass_context
def job_image(
    ctx: click.Context, job_id: str, variant: str, output: Path | None, as_json: bool
) -> None:
    """Download one of a job's images (GET /jobs/{id}/image); exit 1 if it has none."""
    data, content_type = api(ctx).job_image(job_id, variant)
    if output == Path("-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if output is None:
        output = Path(f"{job_id}-{variant}.{EXTENSIONS.get(content_type, 'bin')}")
    output.write_bytes(data)
    saved = {"job_id": job_id, "variant": variant, "path": str(output), "bytes": len(data)}
    saved["content_type"] = content_type
    if as_json:
        render.print_json(saved)
    else:
        out().print(render.plain(f"saved {output} ({len(data)} bytes, {content_type})"))


@click.command()
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit 2 if it fails again.")
@click.option(
    "--current-version",
    is_flag=True,
    help="Run the pipeline's current version from its first step, not the submitted one.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="With --wait: seconds to wait; exit 3 if the job is still unfinished.",
)
@json_option
@click.pass_context
def retry(
    ctx: click.Context,
    job_id: str,
    wait: bool,
    current_version: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Run a failed job again from the step that failed (POST /jobs/{id}/retry), or with
    --current-version on the pipeline's current version from its first step."""
    client = api(ctx)
    accepted = client.retry(job_id, current_version=current_version)
    if not wait:
        if as_json:
            render.print_json(accepted)
        else:
            out().print(render.plain(f"job {accepted['job_id']} {accepted['status']} again"))
        return
    ended = client.wait([job_id], timeout)[job_id]
    if as_json:
        render.print_json(ended)
    else:
        render.job_view(out(), ended)
    if ended["status"] == "failed":
        ctx.exit(EXIT_JOB_FAILED)
    if ended["status"] != "succeeded":
        Console(stderr=True).print(render.plain(f"job {job_id} still {ended['status']}"))
        ctx.exit(EXIT_UNFINISHED)

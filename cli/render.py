"""Tables for people; the commands print plain JSON instead when asked with --json."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "queued": "cyan"}


def print_json(value: Any) -> None:
    # Plain print, not rich: a script parses it, and no markup or wrapping may slip in.
    print(json.dumps(value, indent=2, ensure_ascii=False))


def plain(value: Any) -> Text:
    """A cell whose text is shown as it is: what the API sends is never read as markup."""
    return Text("" if value is None else str(value))


def status(value: Any) -> Text:
    text = "" if value is None else str(value)
    return Text(text, style=STATUS_STYLE.get(text, ""))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def result_text(job: dict[str, Any]) -> str:
    """A job's outcome in a few words: its detection, or its error."""
    if job.get("status") == "failed":
        return str(job.get("error") or "")
    if job.get("status") != "succeeded":
        return ""
    result = job.get("result")
    if result is None:
        return "no car"
    if isinstance(result, dict) and {"top_left_x", "top_left_y", "width", "height"} <= set(result):
        where = (
            f"({result['top_left_x']},{result['top_left_y']}) {result['width']}x{result['height']}"
        )
        conf = result.get("conf")
        return f"car at {where}" + (f", conf {conf:.2f}" if isinstance(conf, float) else "")
    return compact(result)


def _figure(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(round(value, 3))
    return value if isinstance(value, str) else compact(value)


def output_text(step: dict[str, Any]) -> str:
    """A step's output, one `name=value` a line (a field one level down as `name.field`);
    "-" for a step that succeeded and reports nothing, "" for one that has not succeeded."""
    if step.get("status") != "succeeded":
        return ""
    output = step.get("output")
    if not isinstance(output, dict):
        return "-" if output is None else compact(output)
    lines = []
    for name, value in output.items():
        if isinstance(value, dict):
            lines += [f"{name}.{field}={_figure(inner)}" for field, inner in value.items()]
        else:
            lines.append(f"{name}={_figure(value)}")
    return "\n".join(lines)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        # Ids are what users copy: never cut them short.
        no_wrap = column in ("Job", "Id", "Type")
        table.add_column(column, no_wrap=no_wrap, overflow="fold")
    return table


def jobs_table(jobs: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    table = _table("Job", "Pipeline", "Status", "Result", "Created", title=title)
    for job in jobs:
        table.add_row(
            plain(job.get("job_id")),
            plain(job.get("pipeline_id")),
            status(job.get("status")),
            plain(result_text(job)),
            plain(job.get("created_at")),
        )
    return table


def submitted_table(rows: Iterable[dict[str, Any]]) -> Table:
    table = _table("File", "Job", "Status", "Result")
    for row in rows:
        job = row.get("job") or {}
        outcome = row.get("error") or result_text(job)
        table.add_row(
            plain(row["file"]),
            plain(row.get("job_id") or "-"),
            status(row.get("status")),
            plain(outcome),
        )
    return table


def job_view(console: Console, job: dict[str, Any]) -> None:
    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column(overflow="fold")
    about.add_row("Job", plain(job.get("job_id")))
    version = job.get("pipeline_version")
    pipeline = f"{job.get('pipeline_id')}" + ("" if version is None else f" (version {version})")
    about.add_row("Pipeline", plain(pipeline))
    about.add_row("Status", status(job.get("status")))
    if job.get("status") == "succeeded":
        about.add_row("Result", plain(result_text(job)))
    if job.get("error"):
        about.add_row("Error", plain(job["error"]))
    for name in ("created_at", "started_at", "finished_at"):
        if job.get(name):
            about.add_row(name.removesuffix("_at").capitalize(), plain(job[name]))
    console.print(about)
    steps = _table("#", "Type", "Status", "Attempts", "ms", "Output", "Error")
    for step in job.get("steps", []):
        duration = step.get("duration_ms")
        steps.add_row(
            plain(step.get("position")),
            plain(step.get("type")),
            status(step.get("status")),
            plain(step.get("attempts")),
            plain(None if duration is None else f"{duration:.1f}"),
            plain(output_text(step)),
            plain(step.get("error")),
        )
    console.print(steps)


def _steps_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    """A config's steps as `{"type", "params"?}`, the earlier format too (`{"1": "ImageHandler",
    ...}`, stored by the earlier implementation, still loads)."""
    steps = config.get("steps") or []
    if isinstance(steps, dict):
        ordered = sorted(steps.items(), key=lambda item: (len(str(item[0])), str(item[0])))
        steps = [value for _, value in ordered]
    return [step if isinstance(step, dict) else {"type": step} for step in steps]


def _step_types(config: dict[str, Any]) -> str:
    return " → ".join(str(step.get("type")) for step in _steps_of(config))


def pipelines_table(pipelines: Iterable[dict[str, Any]]) -> Table:
    """One row a pipeline; an archived one (it takes no new jobs) says when, and is dimmed."""
    table = _table("Id", "Name", "Version", "Data type", "Steps", "Created", "Archived")
    for pipeline in pipelines:
        config = pipeline.get("config") or {}
        archived_at = pipeline.get("archived_at")
        table.add_row(
            plain(pipeline.get("id")),
            plain(pipeline.get("name")),
            plain(pipeline.get("version")),
            plain(config.get("datatype")),
            plain(_step_types(config)),
            plain(pipeline.get("created_at")),
            plain(f"archived {archived_at}" if archived_at else ""),
            style="dim" if archived_at else None,
        )
    return table


def pipeline_view(console: Console, pipeline: dict[str, Any]) -> None:
    config = pipeline.get("config") or {}
    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column(overflow="fold")
    about.add_row("Pipeline", plain(f"{pipeline.get('id')}: {pipeline.get('name')}"))
    if pipeline.get("description"):
        about.add_row("Description", plain(pipeline["description"]))
    if pipeline.get("version") is not None:
        about.add_row("Version", plain(pipeline["version"]))
    if pipeline.get("archived_at"):
        about.add_row("Archived", plain(pipeline["archived_at"]))
    about.add_row("Data type", plain(config.get("datatype")))
    about.add_row("Created", plain(pipeline.get("created_at")))
    console.print(about)
    steps = _table("#", "Type", "Params")
    for position, step in enumerate(_steps_of(config), start=1):
        steps.add_row(
            plain(position), plain(step.get("type")), plain(compact(step.get("params", {})))
        )
    console.print(steps)


def _params_text(params: Any) -> str:
    """Parameter names with their defaults, from a JSON schema or a plain mapping."""
    if isinstance(params, dict) and isinstance(params.get("properties"), dict):
        required = set(params.get("required", []))
        parts = []
        for name, schema in params["properties"].items():
            if name in required:
                parts.append(f"{name} (required)")
            else:
                parts.append(f"{name}={compact(schema.get('default'))}")
        return ", ".join(parts)
    if isinstance(params, dict):
        return ", ".join(f"{name}={compact(value)}" for name, value in params.items())
    if isinstance(params, list):
        return ", ".join(str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in params)
    return "" if params is None else str(params)


def catalogue_steps(catalogue: Any) -> list[dict[str, Any]]:
    """The steps of GET /steps' answer (an object with "steps"; a bare list is taken too)."""
    if isinstance(catalogue, dict):
        catalogue = catalogue.get("steps", catalogue.get("items", []))
    return [step for step in catalogue if isinstance(step, dict)]


def steps_table(steps: Iterable[dict[str, Any]]) -> Table:
    table = _table("Type", "Accepts", "Params", "Description")
    for step in steps:
        table.add_row(
            plain(step.get("type") or step.get("type_id")),
            plain(step.get("accepts")),
            plain(_params_text(step.get("params"))),
            plain(step.get("description")),
        )
    return table


def datatypes_table(datatypes: Iterable[dict[str, Any]]) -> Table:
    table = _table("Data type", "Extends", "Fields", "Description")
    for datatype in datatypes:
        fields = [f.get("name") for f in datatype.get("fields", []) if isinstance(f, dict)]
        table.add_row(
            plain(datatype.get("name")),
            plain(datatype.get("base") or "-"),
            plain(", ".join(str(f) for f in fields)),
            plain(datatype.get("description")),
        )
    return table

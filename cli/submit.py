"""`pipectl submit`: upload files as jobs (a few at once), optionally wait for them to end."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.client import ApiClient, CliError

EXIT_OK, EXIT_ERROR, EXIT_JOB_FAILED, EXIT_UNFINISHED = 0, 1, 2, 3


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )


def exit_status(rows: Sequence[dict[str, Any]]) -> int:
    """1 if a file could not be submitted, else 2 if a job failed, else 3 if one is unfinished."""
    if any(row.get("error") for row in rows):
        return EXIT_ERROR
    if any(row.get("status") == "failed" for row in rows):
        return EXIT_JOB_FAILED
    if any(row.get("status") in ("queued", "running") and row.get("job") for row in rows):
        return EXIT_UNFINISHED
    return EXIT_OK


def submit_files(
    client: ApiClient,
    files: Sequence[Path],
    pipeline_id: int,
    wait: bool,
    timeout: float,
    concurrency: int,
    as_json: bool,
) -> int:
    """Submit each file, wait if asked, print the summary; returns the exit status."""
    err = Console(stderr=True)
    rows: list[dict[str, Any]] = [
        {"file": str(path), "job_id": None, "status": None, "job": None, "error": None}
        for path in files
    ]

    def send(row: dict[str, Any]) -> None:
        try:
            accepted = client.submit(Path(row["file"]), pipeline_id)
        except CliError as exc:
            row["error"] = str(exc)
            return
        row["job_id"], row["status"] = accepted["job_id"], accepted["status"]

    show_progress = len(files) > 1 and not as_json and err.is_terminal
    with _progress(err, enabled=show_progress) as progress:
        sent = progress.add_task("submitted", total=len(rows))
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for _ in pool.map(send, rows):
                progress.advance(sent)
        job_ids = [row["job_id"] for row in rows if row["job_id"]]
        if wait and job_ids:
            ended = progress.add_task("finished", total=len(job_ids))
            latest = client.wait(job_ids, timeout, on_finished=lambda _: progress.advance(ended))
            for row in rows:
                if row["job_id"] in latest:
                    row["job"] = latest[row["job_id"]]
                    row["status"] = row["job"]["status"]

    for row in rows:
        if row["error"]:
            err.print(render.plain(f"error: {row['file']}: {row['error']}"), style="red")
    if as_json:
        render.print_json(rows)
    else:
        Console(highlight=False).print(render.submitted_table(rows))
    return exit_status(rows)

"""Scenarios that are more than a load: the largest accepted image, and reading job times."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench import loads, procstat
from bench.cluster import Cluster, wait_jobs_done
from bench.inputs import Input


def job_times(res: loads.LoadResult, rows: list[Any]) -> tuple[list[float], list[float]]:
    """For each succeeded job: seconds from the client's send to finished_at, and from
    created_at to finished_at (the same clock: everything runs on this machine)."""
    by_id = {str(r.id): r for r in rows}
    client, server = [], []
    for sent in res.accepted:
        row = by_id.get(sent.job_id or "")
        if row is not None and row.status == "succeeded":
            client.append(row.finished_at.timestamp() - sent.sent_at)
            server.append((row.finished_at - row.created_at).total_seconds())
    return client, server


def _fit_step_ms(engine: sa.Engine, ids: list[Any]) -> float | None:
    query = sa.text("SELECT duration_ms FROM job_steps WHERE job_id = ANY(:ids) AND position = 1")
    with engine.connect() as conn:
        value = conn.execute(query, {"ids": ids}).scalar()
    return None if value is None else float(value)


def big_image(cluster: Cluster, images: list[Input]) -> dict[str, Any]:
    """Peak RSS of the worker while it runs one job of each image (one at a time), and the
    API's RSS before and after taking the first image once, then three more times at once.

    Peaks are reset (clear_refs) before each image, so a figure is that image's alone.
    """
    assert cluster.engine is not None
    engine = cluster.engine
    api = cluster.pid("api")
    main = cluster.pid("worker")
    pool = cluster.pool_pids()
    out: dict[str, Any] = {
        "peak_reset": all(procstat.reset_peak(pid) for pid in [api, main, *pool]),
        "api_rss_before_kb": procstat.status_kb(api, "VmRSS"),
    }
    for image in images:
        for pid in [api, main, *pool]:
            procstat.reset_peak(pid)
        res = loads.closed_loop(cluster.api_url, [loads.multipart(image)], 1, timeout=120)
        rows = wait_jobs_done(engine, res.job_ids, timeout=180)
        out[image.name] = {
            "bytes": len(image.data),
            "pixels": image.size[0] * image.size[1],
            "post_status": [s.status for s in res.sent],
            "refused": res.refused(),
            "job_status": [r.status for r in rows],
            "error": [r.error for r in rows if r.error],
            "fit_step_ms": _fit_step_ms(engine, [r.id for r in rows]),
            "worker_pool_peak_kb": max(procstat.status_kb(pid, "VmHWM") for pid in pool),
            "worker_main_peak_kb": procstat.status_kb(main, "VmHWM"),
            "api_rss_after_kb": procstat.status_kb(api, "VmRSS"),
            "api_peak_kb": procstat.status_kb(api, "VmHWM"),
        }
    procstat.reset_peak(api)
    first = images[0]
    res = loads.closed_loop(cluster.api_url, [loads.multipart(first)] * 3, 3, timeout=120)
    out["api_after_3_concurrent"] = {
        "image": first.name,
        "post_status": [s.status for s in res.sent],
        "api_rss_after_kb": procstat.status_kb(api, "VmRSS"),
        "api_peak_kb": procstat.status_kb(api, "VmHWM"),
    }
    wait_jobs_done(engine, res.job_ids, timeout=300)
    return out

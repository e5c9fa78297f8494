"""A benchmark run's details (bench.phases' shapes) with chosen headline figures, for the report
tests: only the keys bench.compare and bench.report read."""

from __future__ import annotations

from typing import Any

# The bare loop of every run built here: 100 images/s at 20 ms of CPU an image.
BARE_IMAGES_PER_S = 100.0
BARE_CPU_MS = 20.0


def _round(**figures: Any) -> dict[str, Any]:
    return {"other_cpu_share": 0.0, **figures}


def end_to_end(images_per_s: float, cpu_ms: float, alone_p50_ms: float) -> dict[str, Any]:
    """One configuration's end-to-end figures: `cpu_ms` of system CPU per image (all the
    worker pool's), one job alone at `alone_p50_ms` (p90 10 ms more)."""
    return {
        "jobs": 350,
        "clients": 16,
        "images_per_s": images_per_s,
        "submit_s": 2.0,
        "cpu_ms_per_image": {"worker pool": cpu_ms, "bench client (load generator)": 0.5},
        "alone": {"jobs": 10, "p50_ms": alone_p50_ms, "p90_ms": alone_p50_ms + 10},
        "rounds": [
            _round(
                images_per_s=images_per_s, failed=0, unfinished=0, pg_sessions_opened=0, jobs=350
            )
        ],
    }


def post_jobs(p99_ms: float) -> dict[str, Any]:
    """POST /jobs at 16 clients, one round, with a p99 of `p99_ms`."""
    one = _round(
        requests=480,
        accepted=480,
        refused={},
        rate_per_s=150.0,
        p50_ms=p99_ms / 2,
        p99_ms=p99_ms,
        cpu_ms_per_request={"api": 3.0},
        pg_sessions_opened=0,
    )
    return {"body_kb": 283.0, "16": {"rounds": [one]}}


def half_load(p99_ms: float) -> dict[str, Any]:
    """Latency at half load, one round: p99 `p99_ms`, p95 0.9 of it, p50 half of it (submit to
    succeeded and created_at to finished_at alike)."""
    share = {50: 0.5, 95: 0.9, 99: 1.0}
    figures = {
        f"{kind}_p{p}_ms": p99_ms * part
        for kind in ("submit_to_succeeded", "created_to_finished")
        for p, part in share.items()
    }
    one = _round(jobs=200, sent_late=0, refused={}, succeeded=200, failed=0, **figures)
    return {"offered_per_s": 20.0, "seconds": 20.0, "jobs": 200, **figures, "rounds": [one]}


def details(
    shipped: dict[str, Any], lean: dict[str, Any], full: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run's details: the bare loop, both configurations end to end, and with `full` (keys
    "shipped_post", "lean_post", "shipped_half", "lean_half") the full run's phases."""
    bare = {"images_per_s": BARE_IMAGES_PER_S, "cpu_ms_per_image": BARE_CPU_MS}
    out: dict[str, Any] = {
        "errors": {},
        "disturbed_rounds": {},
        "phase_s": {},
        "max_other_share": 0.15,
        "baseline": {
            "processes": 2,
            "images": 350,
            "baseline": bare,
            "fit_image": bare,
            "fit_image_to_baseline": 1.0,
            "same_output_dimensions": True,
            "rounds": [_round()],
        },
        "throughput": lean,
        "shipped": shipped,
    }
    if full:
        shipped["post_jobs"] = full["shipped_post"]
        shipped["latency_half_load"] = full["shipped_half"]
        out["post_jobs"] = full["lean_post"]
        out["latency_half_load"] = full["lean_half"]
    return out

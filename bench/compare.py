"""The table's first section: the shipped and the lean configuration side by side, each against
the bare loop measured in the same run, with issue 15's targets and whether each is met.

`summary` gives the same figures for bench/results/latest.json ("summary": the bare loop's, then
each configuration's, each figure with its target and whether it is met where it has one).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.procstat import PG_ENDED, SYSTEM_KINDS

Row = tuple[str, str, Any, str]
# The details' key of each configuration's end-to-end rounds, and its label.
CONFIGS = (("shipped", "shipped"), ("throughput", "lean"))
LABELS = [label for _, label in CONFIGS]
# POST /jobs is measured at this many clients in both configurations (issue 15's level).
POST_CLIENTS = "16"


@dataclass(frozen=True)
class Target:
    """Issue 15's bound on one figure of one configuration: `bound` is "<=" or ">=", `unit`
    "x" (a ratio to the bare loop) or "ms"."""

    config: str
    figure: str
    bound: str
    limit: float
    unit: str

    def met(self, value: float | None) -> bool | None:
        """Whether `value` is within the bound; None if it was not measured."""
        if value is None:
            return None
        return value <= self.limit if self.bound == "<=" else value >= self.limit

    def __str__(self) -> str:
        if self.unit == "x":
            return f"{self.bound} {self.limit:.2f}x"
        return f"{self.bound} {self.limit:g} {self.unit}"


TARGETS = (
    Target("shipped", "end_to_end_ratio", ">=", 0.40, "x"),
    Target("lean", "end_to_end_ratio", ">=", 0.55, "x"),
    Target("shipped", "system_cpu_ratio", "<=", 2.0, "x"),
    Target("shipped", "alone_p50_ms", "<=", 50, "ms"),
    Target("shipped", "half_load_p99_ms", "<=", 150, "ms"),
    Target("shipped", "post_16_clients_p99_ms", "<=", 100, "ms"),
    Target("lean", "post_16_clients_p99_ms", "<=", 100, "ms"),
)


def target(config: str, figure: str) -> Target:
    """The target of `figure` in `config`; raises StopIteration if it has none."""
    return next(t for t in TARGETS if t.config == config and t.figure == figure)


# PostgreSQL backends that ended meanwhile are any database's: on a shared machine, mostly
# other work's (this run opens next to no sessions: see "sessions opened per job").
KINDS = SYSTEM_KINDS - {PG_ENDED}


def system_cpu(cpu: dict[str, float]) -> float:
    """CPU ms per image of the system under test: every kind but the load generator, other
    work on the machine and PostgreSQL backends that ended meanwhile."""
    return sum(v for k, v in cpu.items() if k in KINDS)


def _sources(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per configuration that ran end to end: its end-to-end figures ("run"), POST /jobs with
    the workers idle ("post") and latency at half load ("half"), where measured."""
    out = {}
    for key, label in CONFIGS:
        if key not in d:
            continue
        run = d[key]
        own = run if label == "shipped" else d  # the lean figures are top-level phases
        out[label] = {
            "run": run,
            "post": own.get("post_jobs"),
            "half": own.get("latency_half_load"),
        }
    return out


def figures(d: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Each configuration's headline figures (None: not measured in this run) and the bare
    loop's: images/s, ratios to the bare loop, system CPU ms per image, ms latencies."""
    base = d.get("baseline")
    bare = base["baseline"] if base else None
    out: dict[str, dict[str, float | None]] = {}
    if bare:
        out["bare_loop"] = {
            "images_per_s": bare["images_per_s"],
            "cpu_ms_per_image": bare["cpu_ms_per_image"],
        }
    for label, src in _sources(d).items():
        run, post, half = src["run"], src["post"], src["half"]
        cpu = system_cpu(run["cpu_ms_per_image"])
        alone = run.get("alone") or {}
        rounds = (post or {}).get(POST_CLIENTS, {}).get("rounds")
        out[label] = {
            "images_per_s": run["images_per_s"],
            "end_to_end_ratio": run["images_per_s"] / bare["images_per_s"] if bare else None,
            "system_cpu_ms_per_image": cpu,
            "system_cpu_ratio": cpu / bare["cpu_ms_per_image"] if bare else None,
            "alone_p50_ms": alone.get("p50_ms"),
            "alone_p90_ms": alone.get("p90_ms"),
            "half_load_offered_per_s": half["offered_per_s"] if half else None,
            "half_load_p50_ms": half["submit_to_succeeded_p50_ms"] if half else None,
            "half_load_p99_ms": half["submit_to_succeeded_p99_ms"] if half else None,
            "post_16_clients_p99_ms": (
                statistics.median([r["p99_ms"] for r in rounds]) if rounds else None
            ),
        }
    return out


def summary(d: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """`figures` for the JSON: each figure as {"value"}, plus {"target", "met"} where issue 15
    sets one (met: None when not measured)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for config, values in figures(d).items():
        out[config] = {key: {"value": value} for key, value in values.items()}
    for target in TARGETS:
        entry = out.get(target.config, {}).get(target.figure)
        if entry is not None:
            entry.update(target=str(target), met=target.met(entry["value"]))
    return out


def verdict(value: float | None, bound: Target) -> str:
    met = bound.met(value)
    return "not measured" if met is None else "met" if met else "not met"


def _pair(values: dict[str, float | None], fmt: str) -> str:
    return " / ".join(
        "n/a" if values.get(label) is None else fmt.format(values[label]) for label in LABELS
    )


def rows(d: dict[str, Any]) -> list[Row]:
    """Rows of "shipped / lean" figures, from whichever of the two ran; each of issue 15's
    targets on the row of its figure, with whether it is met."""
    ran = {label: d[key] for key, label in CONFIGS if key in d}
    base = d.get("baseline")
    if not ran or not base:
        return []
    bare = base["baseline"]
    found = figures(d)
    first = next(iter(ran.values()))
    sec = (
        f"Shipped / lean configuration, {first['jobs']} jobs from {first['clients']} clients "
        f"(shipped: the Procfile under make run's prefixer, INFO logs, Flower; lean: "
        f"WARNING logs, no Flower)"
    )
    out: list[Row] = []

    def add(figure: str, key: str, fmt: str, note: str = "") -> None:
        values = {label: found[label][key] for label in ran}
        checks = [
            f"{t.config} {t}: {verdict(values.get(t.config), t)}"
            for t in TARGETS
            if t.figure == key
        ]
        notes = [*checks, note] if note else checks
        out.append((sec, figure, _pair(values, fmt), "; ".join(notes)))

    add("images/s", "images_per_s", "{:.1f}", f"bare loop {bare['images_per_s']:.1f}")
    add("end to end / bare loop", "end_to_end_ratio", "{:.2f}")
    add(
        "system CPU ms/image",
        "system_cpu_ms_per_image",
        "{:.1f}",
        f"bare loop {bare['cpu_ms_per_image']:.1f}",
    )
    add("system CPU / bare loop's", "system_cpu_ratio", "{:.2f}")
    add("one job alone, submit to succeeded: p50 ms", "alone_p50_ms", "{:.0f}")
    add("one job alone, submit to succeeded: p90 ms", "alone_p90_ms", "{:.0f}")
    offered = {label: found[label]["half_load_offered_per_s"] for label in ran}
    measured = any(v is not None for v in offered.values())
    note = f"offered {_pair(offered, '{:.1f}')} jobs/s" if measured else "full run only"
    add("at half load, submit to succeeded: p50 ms", "half_load_p50_ms", "{:.0f}", note)
    add("at half load, submit to succeeded: p99 ms", "half_load_p99_ms", "{:.0f}")
    measured = any(found[label]["post_16_clients_p99_ms"] is not None for label in ran)
    figure = f"POST /jobs, {POST_CLIENTS} clients, workers idle: p99 ms"
    add(figure, "post_16_clients_p99_ms", "{:.0f}", "" if measured else "full run only")
    kinds = {k for v in ran.values() for k in v["cpu_ms_per_image"] if k in KINDS}
    by_kind = {
        kind: {label: v["cpu_ms_per_image"].get(kind, 0.0) for label, v in ran.items()}
        for kind in kinds
    }
    for kind, values in sorted(by_kind.items(), key=lambda kv: -max(kv[1].values())):
        if max(values.values()) >= 0.05:
            out.append((sec, f"CPU ms/image: {kind}", _pair(values, "{:.1f}"), ""))
    return out

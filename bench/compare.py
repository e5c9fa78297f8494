"""The table's first section: the shipped and the lean configuration side by side, each against
the bare loop measured in the same run (the targets are issue 15's)."""

from __future__ import annotations

from typing import Any

from bench.procstat import PG_ENDED, SYSTEM_KINDS

Row = tuple[str, str, Any, str]
CONFIGS = (("shipped", "shipped"), ("throughput", "lean"))
TARGETS = {
    "images": {"shipped": ">= 0.40", "lean": ">= 0.55"},
    "cpu": {"shipped": "<= 2.0"},
    "alone": {"shipped": "p50 <= 50"},
}


# PostgreSQL backends that ended meanwhile are any database's: on a shared machine, mostly
# other work's (this run opens next to no sessions: see "sessions opened per job").
KINDS = SYSTEM_KINDS - {PG_ENDED}


def system_cpu(cpu: dict[str, float]) -> float:
    """CPU ms per image of the system under test: every kind but the load generator, other
    work on the machine and PostgreSQL backends that ended meanwhile."""
    return sum(v for k, v in cpu.items() if k in KINDS)


def _pair(values: dict[str, float], fmt: str) -> str:
    return " / ".join(fmt.format(values[label]) if label in values else "n/a" for label in LABELS)


LABELS = [label for _, label in CONFIGS]


def rows(d: dict[str, Any]) -> list[Row]:
    """Rows of "shipped / lean" figures, from whichever of the two ran."""
    ran = {label: d[key] for key, label in CONFIGS if key in d}
    base = d.get("baseline")
    if not ran or not base:
        return []
    bare = base["baseline"]
    first = next(iter(ran.values()))
    sec = (
        f"Shipped / lean configuration, {first['jobs']} jobs from {first['clients']} clients "
        f"(shipped: the Procfile under make run's prefixer, INFO logs, Flower; lean: "
        f"WARNING logs, no Flower)"
    )
    out: list[Row] = []

    def targets(kind: str) -> str:
        return ", ".join(f"{label} {t}" for label, t in TARGETS[kind].items())

    rate = {k: v["images_per_s"] for k, v in ran.items()}
    out.append((sec, "images/s", _pair(rate, "{:.1f}"), f"bare loop {bare['images_per_s']:.1f}"))
    ratio = {k: v / bare["images_per_s"] for k, v in rate.items()}
    out.append((sec, "end to end / bare loop", _pair(ratio, "{:.2f}"), targets("images")))
    cpu = {k: system_cpu(v["cpu_ms_per_image"]) for k, v in ran.items()}
    out.append(
        (
            sec,
            "system CPU ms/image",
            _pair(cpu, "{:.1f}"),
            f"bare loop {bare['cpu_ms_per_image']:.1f}",
        )
    )
    times = {k: v / bare["cpu_ms_per_image"] for k, v in cpu.items()}
    out.append((sec, "system CPU / bare loop's", _pair(times, "{:.2f}"), targets("cpu")))
    alone = {k: v["alone"]["p50_ms"] for k, v in ran.items() if "alone" in v}
    if alone:
        p90 = {k: v["alone"]["p90_ms"] for k, v in ran.items() if "alone" in v}
        out.append(
            (
                sec,
                "one job alone, submit to succeeded: p50 ms",
                _pair(alone, "{:.0f}"),
                targets("alone") + "; p90 " + _pair(p90, "{:.0f}"),
            )
        )
    kinds = {k for v in ran.values() for k in v["cpu_ms_per_image"] if k in KINDS}
    by_kind = {
        kind: {label: v["cpu_ms_per_image"].get(kind, 0.0) for label, v in ran.items()}
        for kind in kinds
    }
    for kind, values in sorted(by_kind.items(), key=lambda kv: -max(kv[1].values())):
        if max(values.values()) >= 0.05:
            out.append((sec, f"CPU ms/image: {kind}", _pair(values, "{:.1f}"), ""))
    return out

"""The report's opening section and the JSON summary: issue 15's targets, met or not, for the
shipped and the lean configuration."""

from __future__ import annotations

from typing import Any

import pytest

from bench import compare
from tests.helpers.bench import details, end_to_end, half_load, post_jobs


def full_run(shipped_half_p99: float, shipped_post_p99: float, lean_post_p99: float) -> Any:
    return {
        "shipped_post": post_jobs(shipped_post_p99),
        "lean_post": post_jobs(lean_post_p99),
        "shipped_half": half_load(shipped_half_p99),
        "lean_half": half_load(400.0),
    }


def verdicts(d: dict[str, Any]) -> dict[tuple[str, str], bool | None]:
    summary = compare.summary(d)
    return {
        (config, figure): entry["met"]
        for config, figures in summary.items()
        for figure, entry in figures.items()
        if "target" in entry
    }


def note_of(rows: list[compare.Row], figure: str) -> str:
    return next(note for _, fig, _, note in rows if fig == figure)


def test_every_target_met_is_said_met_in_the_summary_and_the_table() -> None:
    # Given: a full run within every bound (bare loop 100 images/s at 20 ms an image)
    d = details(
        shipped=end_to_end(images_per_s=45, cpu_ms=38, alone_p50_ms=40),
        lean=end_to_end(images_per_s=60, cpu_ms=30, alone_p50_ms=35),
        full=full_run(shipped_half_p99=120, shipped_post_p99=90, lean_post_p99=80),
    )

    # When
    met = verdicts(d)
    rows = compare.rows(d)

    # Then: all seven targets, each met
    assert met == {
        ("shipped", "end_to_end_ratio"): True,
        ("lean", "end_to_end_ratio"): True,
        ("shipped", "system_cpu_ratio"): True,
        ("shipped", "alone_p50_ms"): True,
        ("shipped", "half_load_p99_ms"): True,
        ("shipped", "post_16_clients_p99_ms"): True,
        ("lean", "post_16_clients_p99_ms"): True,
    }
    assert "not met" not in " ".join(note for *_, note in rows)
    assert note_of(rows, "end to end / bare loop") == "shipped >= 0.40x: met; lean >= 0.55x: met"
    assert note_of(rows, "at half load, submit to succeeded: p99 ms") == "shipped <= 150 ms: met"


def test_every_target_missed_is_said_not_met_with_both_configurations_values() -> None:
    # Given: a full run outside every bound
    d = details(
        shipped=end_to_end(images_per_s=30, cpu_ms=56, alone_p50_ms=63),
        lean=end_to_end(images_per_s=50, cpu_ms=52, alone_p50_ms=56),
        full=full_run(shipped_half_p99=700, shipped_post_p99=250, lean_post_p99=240),
    )

    # When
    met = verdicts(d)
    rows = {fig: (value, note) for _, fig, value, note in compare.rows(d)}

    # Then
    assert set(met.values()) == {False}
    assert rows["end to end / bare loop"] == (
        "0.30 / 0.50",
        "shipped >= 0.40x: not met; lean >= 0.55x: not met",
    )
    assert rows["system CPU / bare loop's"] == ("2.80 / 2.60", "shipped <= 2.00x: not met")
    assert rows["one job alone, submit to succeeded: p50 ms"] == (
        "63 / 56",
        "shipped <= 50 ms: not met",
    )
    assert rows["one job alone, submit to succeeded: p90 ms"] == ("73 / 66", "")
    assert rows["at half load, submit to succeeded: p99 ms"] == (
        "700 / 400",
        "shipped <= 150 ms: not met",
    )
    assert rows["POST /jobs, 16 clients, workers idle: p99 ms"] == (
        "250 / 240",
        "shipped <= 100 ms: not met; lean <= 100 ms: not met",
    )


@pytest.mark.parametrize(
    ("figure", "value", "met"),
    [
        ("end_to_end_ratio", 0.40, True),
        ("end_to_end_ratio", 0.399, False),
        ("alone_p50_ms", 50.0, True),
        ("alone_p50_ms", 50.1, False),
    ],
)
def test_a_figure_on_its_bound_meets_the_target(figure: str, value: float, met: bool) -> None:
    assert compare.target("shipped", figure).met(value) is met


def test_a_quick_run_says_which_targets_it_did_not_measure() -> None:
    # Given: a quick run: end to end and one job alone only
    d = details(
        shipped=end_to_end(images_per_s=45, cpu_ms=38, alone_p50_ms=40),
        lean=end_to_end(images_per_s=50, cpu_ms=30, alone_p50_ms=35),
    )

    # When
    summary = compare.summary(d)
    rows = {fig: (value, note) for _, fig, value, note in compare.rows(d)}

    # Then: measured targets have a verdict, the full run's have none, and say so
    assert summary["shipped"]["alone_p50_ms"] == {"value": 40, "target": "<= 50 ms", "met": True}
    assert summary["lean"]["end_to_end_ratio"]["met"] is False
    assert summary["shipped"]["half_load_p99_ms"] == {
        "value": None,
        "target": "<= 150 ms",
        "met": None,
    }
    assert summary["lean"]["post_16_clients_p99_ms"]["met"] is None
    assert rows["at half load, submit to succeeded: p99 ms"] == (
        "n/a / n/a",
        "shipped <= 150 ms: not measured",
    )
    assert rows["POST /jobs, 16 clients, workers idle: p99 ms"][1] == (
        "shipped <= 100 ms: not measured; lean <= 100 ms: not measured; full run only"
    )


def test_the_summary_keeps_the_bare_loop_and_each_configurations_figures() -> None:
    d = details(
        shipped=end_to_end(images_per_s=45, cpu_ms=38, alone_p50_ms=40),
        lean=end_to_end(images_per_s=50, cpu_ms=30, alone_p50_ms=35),
        full=full_run(shipped_half_p99=120, shipped_post_p99=90, lean_post_p99=80),
    )

    summary = compare.summary(d)

    assert summary["bare_loop"] == {
        "images_per_s": {"value": 100.0},
        "cpu_ms_per_image": {"value": 20.0},
    }
    shipped = {key: entry["value"] for key, entry in summary["shipped"].items()}
    assert shipped == {
        "images_per_s": 45,
        "end_to_end_ratio": pytest.approx(0.45),
        "system_cpu_ms_per_image": 38,  # the load generator's 0.5 ms left out
        "system_cpu_ratio": pytest.approx(1.9),
        "alone_p50_ms": 40,
        "alone_p90_ms": 50,
        "half_load_offered_per_s": 20.0,
        "half_load_p50_ms": 60.0,
        "half_load_p99_ms": 120.0,
        "post_16_clients_p99_ms": 90.0,
    }

"""The benchmark's table and its files: the full run's sections for both configurations, and
bench/results/latest.json's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report
from tests.helpers.bench import details, end_to_end, half_load, post_jobs


def full_run_details() -> dict[str, object]:
    return details(
        shipped=end_to_end(images_per_s=30, cpu_ms=56, alone_p50_ms=63),
        lean=end_to_end(images_per_s=50, cpu_ms=52, alone_p50_ms=56),
        full={
            "shipped_post": post_jobs(250),
            "lean_post": post_jobs(90),
            "shipped_half": half_load(700),
            "lean_half": half_load(400),
        },
    )


def test_the_full_run_has_post_and_half_load_sections_for_both_configurations() -> None:
    # Given
    rows = report.rows(full_run_details())

    # When
    sections = {sec: {} for sec, *_ in rows}
    for sec, figure, value, note in rows:
        sections[sec][figure] = (value, note)

    # Then: each configuration's POST /jobs and half-load sections, the targets where they apply
    post = {s.split(",")[1].strip(): figs for s, figs in sections.items() if s.startswith("POST")}
    assert post["shipped"]["16 clients: p99 ms"] == (250, "target <= 100 ms; median of 1 rounds")
    assert post["lean"]["16 clients: p99 ms"] == (90, "target <= 100 ms; median of 1 rounds")
    half = {
        s.split(",")[1].strip(): figs for s, figs in sections.items() if s.startswith("Submit to")
    }
    assert half["shipped"]["p99 ms"] == (700, "target <= 150 ms")
    assert half["lean"]["p99 ms"] == (400, "")  # issue 15 bounds the shipped one only
    assert half["lean"]["p50 ms"] == (200, "")


def test_latest_json_keeps_the_targets_under_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    d = full_run_details()

    # When
    report.write(report.rows(d), {"quick": False}, d)

    # Then
    written = json.loads((tmp_path / "latest.json").read_text())
    shipped = written["summary"]["shipped"]
    assert shipped["half_load_p99_ms"] == {"value": 700, "target": "<= 150 ms", "met": False}
    assert shipped["post_16_clients_p99_ms"]["met"] is False
    assert written["summary"]["lean"]["post_16_clients_p99_ms"] == {
        "value": 90,
        "target": "<= 100 ms",
        "met": True,
    }
    markdown = (tmp_path / "latest.md").read_text()
    assert "| POST /jobs, 16 clients, workers idle: p99 ms | 250 / 90 |" in markdown


def test_a_quick_run_leaves_the_full_runs_results_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a full run's results
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    d = full_run_details()
    report.write(report.rows(d), {"quick": False}, d)
    full = {path.name: path.read_text() for path in tmp_path.iterdir()}

    # When
    written = report.write(report.rows(d), {"quick": True}, d)

    # Then
    assert [path.name for path in written] == ["quick.json", "quick.md"]
    assert {path.name: path.read_text() for path in tmp_path.iterdir() if path.name in full} == full

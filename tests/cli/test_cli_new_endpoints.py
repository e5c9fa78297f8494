"""pipectl against the real API on the endpoints being added (GET /jobs, PUT /pipelines/{id},
GET /steps). Each test is skipped while the running API does not list its endpoint in
/openapi.json, and runs by itself once the endpoint lands."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.cli.helpers import json_of, pipectl


def require(api: httpx.Client, method: str, path: str) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    if method not in paths.get(path, {}):
        pytest.skip(f"the API has no {method.upper()} {path} yet")


def test_jobs_lists_the_newest_jobs_of_a_pipeline(api: httpx.Client, tmp_path: Path) -> None:
    require(api, "get", "/jobs")
    photo = tmp_path / "p.jpg"
    photo.write_bytes(images.jpeg(320, 240, seed=31))
    rows = json_of(pipectl("submit", str(photo), str(photo), "--pipeline", "1", "--wait", "--json"))

    listed = json_of(
        pipectl("jobs", "--pipeline", "1", "--status", "succeeded", "--limit", "2", "--json")
    )

    assert len(listed) == 2
    assert all(j["pipeline_id"] == 1 and j["status"] == "succeeded" for j in listed)
    assert {j["job_id"] for j in listed} == {row["job_id"] for row in rows}


def test_jobs_detected_filter_splits_the_jobs(api: httpx.Client) -> None:
    require(api, "get", "/jobs")

    with_car = json_of(pipectl("jobs", "--detected", "--limit", "50", "--json"))
    without = json_of(pipectl("jobs", "--no-detected", "--status", "succeeded", "--json"))

    assert all(j["result"] is not None for j in with_car)
    assert all(j["result"] is None for j in without)


def test_pipelines_update_replaces_the_config(api: httpx.Client, tmp_path: Path) -> None:
    require(api, "put", "/pipelines/{pipeline_id}")
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}))
    created = json_of(
        pipectl(
            "pipelines", "create", str(first), "--name", f"upd-{uuid.uuid4().hex[:8]}", "--json"
        )
    )
    second = tmp_path / "second.json"
    second.write_text(
        json.dumps({"datatype": "ImageData", "steps": [{"type": "image.grayscale@v1"}]})
    )

    updated = json_of(pipectl("pipelines", "update", str(created["id"]), str(second), "--json"))

    assert [s["type"] for s in updated["config"]["steps"]] == ["image.grayscale@v1"]
    shown = json_of(pipectl("pipelines", "show", str(created["id"]), "--json"))
    assert [s["type"] for s in shown["config"]["steps"]] == ["image.grayscale@v1"]


def test_steps_lists_every_built_in_step(api: httpx.Client) -> None:
    require(api, "get", "/steps")

    catalogue = json_of(pipectl("steps", "--json"))
    table = pipectl("steps").stdout

    assert catalogue == api.get("/steps").json()
    types = {s["type"] for s in catalogue["steps"]}
    assert {"image.fit@v1", "image.annotate@v1", "notify.webhook@v1", "image.stats@v1"} <= types
    assert "notify.webhook@v1" in table
    assert "ImageStats" in table

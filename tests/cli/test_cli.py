"""pipectl end to end against the real API and worker, on the endpoints the API has today."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.cli.helpers import API_URL, json_of, pipectl
from tests.hostile.corpus import png
from tests.system import BIN

# The CLI talks to the API, and runs as a process of its own.
pytestmark = [pytest.mark.system, pytest.mark.usefixtures("system")]

CAR_STEPS = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    paths = []
    for seed in range(3):
        path = tmp_path / f"photo-{seed}.jpg"
        path.write_bytes(images.jpeg(800, 600, seed=100 + seed))
        paths.append(path)
    return paths


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    # Sound chunks around pixel data that is not a deflate stream: the gateway takes it (it
    # reads headers only), the worker's first step fails it.
    path = tmp_path / "broken.png"
    path.write_bytes(png(64, 48, idat=b"these bytes are not a deflate stream" * 4))
    return path


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- submit -----------------------------------------------------------------------------------


def test_submit_wait_runs_every_file_and_prints_each_job(
    api: httpx.Client, photos: list[Path]
) -> None:
    result = pipectl("submit", *map(str, photos), "--pipeline", "1", "--wait", "--json")

    rows = json_of(result)
    assert [row["file"] for row in rows] == [str(p) for p in photos]
    assert [row["status"] for row in rows] == ["succeeded"] * 3
    for row in rows:
        assert row["error"] is None
        assert row["job"]["job_id"] == row["job_id"]
        assert row["job"] == api.get(f"/jobs/{row['job_id']}").json()


def test_submit_wait_prints_a_summary_table(api: httpx.Client, photos: list[Path]) -> None:
    result = pipectl("submit", str(photos[0]), "--pipeline", "1", "--wait")

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if photos[0].name in line]
    assert "succeeded" in line
    assert ("no car" in line) or ("car at (" in line)
    job_id = line.split("│")[2].strip()
    assert api.get(f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_submit_without_wait_only_queues(photos: list[Path]) -> None:
    rows = json_of(pipectl("submit", str(photos[1]), "--pipeline", "1", "--json"))

    assert rows[0]["status"] == "queued"
    assert rows[0]["job"] is None
    uuid.UUID(rows[0]["job_id"])


def test_a_job_that_fails_makes_submit_wait_exit_2(broken: Path, photos: list[Path]) -> None:
    result = pipectl("submit", str(photos[2]), str(broken), "--pipeline", "1", "--wait", "--json")

    assert result.exit_code == 2, result.output
    good, bad = json.loads(result.stdout)
    assert good["status"] == "succeeded"
    assert bad["status"] == "failed"
    assert bad["job"]["error"].startswith("step 1 (image.fit@v1): cannot decode the image")


def test_a_job_still_running_at_the_timeout_makes_submit_exit_3(photos: list[Path]) -> None:
    result = pipectl("submit", str(photos[0]), "--pipeline", "1", "--wait", "--timeout", "0")

    assert result.exit_code == 3, result.output


def test_submit_to_a_missing_pipeline_prints_the_apis_message_and_exits_1(
    photos: list[Path],
) -> None:
    result = pipectl("submit", str(photos[0]), "--pipeline", "99999")

    assert result.exit_code == 1
    assert "there is no pipeline 99999 (pipeline_not_found, HTTP 404)" in result.stderr


def test_submit_of_a_file_that_is_not_an_image_exits_1(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    result = pipectl("submit", str(text), "--pipeline", "1", "--json")

    assert result.exit_code == 1
    [row] = json.loads(result.stdout)
    assert "unsupported_image_type" in row["error"]
    assert row["job_id"] is None


# --- job --------------------------------------------------------------------------------------


def test_job_json_is_the_apis_answer(api: httpx.Client, photos: list[Path]) -> None:
    [row] = json_of(pipectl("submit", str(photos[0]), "--pipeline", "1", "--wait", "--json"))

    shown = json_of(pipectl("job", row["job_id"], "--json"))

    assert shown == api.get(f"/jobs/{row['job_id']}").json()


def test_job_table_shows_status_and_every_step(photos: list[Path]) -> None:
    [row] = json_of(pipectl("submit", str(photos[1]), "--pipeline", "1", "--wait", "--json"))

    result = pipectl("job", row["job_id"])

    assert result.exit_code == 0, result.output
    assert row["job_id"] in result.stdout
    assert "succeeded" in result.stdout
    for step in CAR_STEPS:
        assert step in result.stdout


def test_unknown_job_exits_1_with_the_apis_message() -> None:
    missing = uuid.uuid4()

    result = pipectl("job", str(missing))

    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: there is no job {missing} (job_not_found, HTTP 404)")
    assert result.stdout == ""


# --- pipelines --------------------------------------------------------------------------------


def test_pipelines_list_includes_the_car_pipeline(api: httpx.Client) -> None:
    listed = json_of(pipectl("pipelines", "list", "--json"))

    assert listed == api.get("/pipelines").json()
    car = next(p for p in listed if p["id"] == 1)
    assert [s["type"] for s in car["config"]["steps"]] == CAR_STEPS
    table = pipectl("pipelines", "list").stdout
    assert " → ".join(CAR_STEPS) in table


def test_pipelines_show_prints_the_steps_with_their_params(api: httpx.Client) -> None:
    shown = json_of(pipectl("pipelines", "show", "1", "--json"))

    assert shown == api.get("/pipelines/1").json()
    table = pipectl("pipelines", "show", "1").stdout
    assert "CarDetection" in table
    assert '"max_width":640' in table


def test_pipelines_show_of_a_missing_pipeline_exits_1() -> None:
    result = pipectl("pipelines", "show", "987654")

    assert result.exit_code == 1
    assert "there is no pipeline 987654 (pipeline_not_found, HTTP 404)" in result.stderr


def test_pipelines_create_from_a_bare_config_with_a_name(tmp_path: Path) -> None:
    config = {
        "datatype": "ImageStats",
        "steps": [{"type": "image.grayscale@v1"}, {"type": "image.stats@v1"}],
    }
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(config))
    name = unique("stats")

    created = json_of(pipectl("pipelines", "create", str(path), "--name", name, "--json"))

    assert created["name"] == name
    assert created["config"] == {
        "datatype": "ImageStats",
        "steps": [
            {"type": "image.grayscale@v1", "params": {"quality": 90}},
            {"type": "image.stats@v1", "params": {}},
        ],
    }
    assert json_of(pipectl("pipelines", "show", str(created["id"]), "--json")) == created


def test_pipelines_create_reads_a_full_body_from_stdin() -> None:
    name = unique("from-stdin")
    body = {
        "name": name,
        "description": "fit and blur",
        "config": {"datatype": "ImageData", "steps": [{"type": "image.blur@v1"}]},
    }

    result = pipectl("pipelines", "create", "-", stdin=json.dumps(body))

    assert result.exit_code == 0, result.output
    assert name in result.stdout
    assert "image.blur@v1" in result.stdout


def test_pipelines_create_with_a_wrong_step_exits_1_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "wrong.json"
    path.write_text(
        json.dumps({"datatype": "ImageStats", "steps": [{"type": "model.detect_car@v1"}]})
    )

    result = pipectl("pipelines", "create", str(path), "--name", unique("wrong"))

    assert result.exit_code == 1
    assert "step 1 ('model.detect_car@v1'): accepts CarDetection" in result.stderr
    assert "(invalid_pipeline_config, HTTP 422)" in result.stderr


def test_pipelines_create_with_a_taken_name_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}))
    name = unique("twice")
    assert pipectl("pipelines", "create", str(path), "--name", name).exit_code == 0

    again = pipectl("pipelines", "create", str(path), "--name", name)

    assert again.exit_code == 1
    assert "pipeline_name_taken" in again.stderr


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "--pipeline", "1"],
        ["submit", "missing.jpg", "--pipeline", "1"],
        ["jobs", "--status", "lost"],
        ["pipelines", "show", "zero"],
        ["no-such-command"],
    ],
)
def test_bad_usage_exits_64_not_2(args: list[str]) -> None:
    assert pipectl(*args).exit_code == 64


def test_pipelines_create_needs_a_name(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}))

    result = pipectl("pipelines", "create", str(path))

    assert result.exit_code == 64
    assert "--name" in result.stderr


# --- the installed command --------------------------------------------------------------------


def test_installed_pipectl_talks_to_the_api_and_reports_a_404(api: httpx.Client) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pipectl"), "--api-url", API_URL, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    shown = run("pipelines", "show", "1", "--json")
    missing = run("pipelines", "show", "424242")

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == 1
    assert missing.returncode == 1
    assert "there is no pipeline 424242" in missing.stderr


# --- step outputs -----------------------------------------------------------------------------

VERDICT_CONFIG = {
    "datatype": "CarDetection",
    "steps": [
        {"type": "image.fit@v1"},
        {"type": "model.detect_car@v1"},
        {"type": "detections.min_confidence@v1", "params": {"threshold": 0.0}},
    ],
}


def test_job_shows_what_each_step_reported(api: httpx.Client, tmp_path: Path) -> None:
    created = api.post("/pipelines", json={"name": unique("cli-outputs"), "config": VERDICT_CONFIG})
    assert created.status_code == 201, created.text
    path = tmp_path / "photo.jpg"
    path.write_bytes(images.jpeg(320, 240, seed=45))
    pipeline = str(created.json()["id"])
    [row] = json_of(pipectl("submit", str(path), "--pipeline", pipeline, "--wait", "--json"))
    steps = row["job"]["steps"]
    detection = steps[1]["output"]["detection"]
    verdict = steps[2]["output"]

    shown = json_of(pipectl("job", row["job_id"], "--json"))
    table = pipectl("job", row["job_id"])

    assert [step["output"] for step in shown["steps"]] == [None, {"detection": detection}, verdict]
    assert table.exit_code == 0, table.output
    assert "Output" in table.stdout
    assert f"verdict={verdict['verdict']}" in table.stdout
    assert "threshold=0.0" in table.stdout
    if detection is None:
        assert "detection=none" in table.stdout
    else:
        assert f"detection.width={detection['width']}" in table.stdout
    listed = json_of(
        pipectl(
            "jobs",
            "--pipeline",
            pipeline,
            "--step-output",
            f"detections.min_confidence@v1:verdict={verdict['verdict']}",
            "--json",
        )
    )
    assert [job["job_id"] for job in listed] == [row["job_id"]]
    other = "kept" if verdict["verdict"] != "kept" else "no_detection"
    none = pipectl(
        "jobs",
        "--pipeline",
        pipeline,
        "--step-output",
        f"detections.min_confidence@v1:verdict={other}",
    )
    assert none.exit_code == 0, none.output
    assert row["job_id"] not in none.stdout

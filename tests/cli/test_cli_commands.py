"""pipectl retry, pipelines archive (and archived pipelines in the list), jobs image: against
the real API, worker and mock."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.cli.helpers import json_of, pipectl
from tests.helpers.product import car_config, create_pipeline
from tests.hostile.corpus import png
from tests.system import wait_for_job

# The CLI talks to the API, and runs as a process of its own.
pytestmark = [pytest.mark.system, pytest.mark.usefixtures("system")]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(images.jpeg(800, 600, seed=321))
    return path


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    # Sound PNG chunks around pixel data that is not a deflate stream: step 1 fails it.
    path = tmp_path / "broken.png"
    path.write_bytes(png(64, 48, idat=b"these bytes are not a deflate stream" * 4))
    return path


def finished(path: Path) -> dict[str, object]:
    result = pipectl("submit", str(path), "--pipeline", "1", "--wait", "--json")
    [row] = json.loads(result.stdout)
    assert row["job"] is not None, result.output
    job: dict[str, object] = row["job"]
    return job


def new_pipeline(tmp_path: Path) -> dict[str, object]:
    config = tmp_path / f"config-{uuid.uuid4().hex[:6]}.json"
    config.write_text(json.dumps({"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}))
    name = f"cli-archive-{uuid.uuid4().hex[:8]}"
    created: dict[str, object] = json_of(
        pipectl("pipelines", "create", str(config), "--name", name, "--json")
    )
    return created


# --- retry ------------------------------------------------------------------------------------


def test_retry_runs_a_failed_job_again(api: httpx.Client, broken: Path) -> None:
    # Given
    failed = finished(broken)
    assert failed["status"] == "failed"

    # When
    queued = json_of(pipectl("retry", str(failed["job_id"]), "--json"))

    # Then
    assert queued == {"job_id": failed["job_id"], "status": "queued"}


def test_retry_wait_shows_the_job_and_exits_2_when_it_fails_again(
    api: httpx.Client, broken: Path
) -> None:
    # Given
    failed = finished(broken)

    # When
    result = pipectl("retry", str(failed["job_id"]), "--wait", "--json")

    # Then: the step ran a second time, and failed for the same reason
    assert result.exit_code == 2, result.output
    job = json.loads(result.stdout)
    assert job["status"] == "failed"
    assert job["steps"][0]["attempts"] == 2
    assert job == api.get(f"/jobs/{failed['job_id']}").json()


def test_retry_current_version_runs_the_fixed_pipeline(api: httpx.Client, photo: Path) -> None:
    # Given: a job failed at its model step, then its pipeline fixed by a PUT
    pipeline_id = create_pipeline(api, car_config(model_path="/missing"), "cli-retry-current")
    submitted = pipectl("submit", str(photo), "--pipeline", str(pipeline_id), "--wait", "--json")
    [row] = json.loads(submitted.stdout)
    assert row["job"]["status"] == "failed", submitted.output
    fixed = api.put(f"/pipelines/{pipeline_id}", json={"config": car_config()})
    assert fixed.status_code == 200, fixed.text

    # When
    result = pipectl("retry", row["job"]["job_id"], "--current-version", "--wait", "--json")

    # Then: the job ran version 2 from its first step and succeeded
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert (job["status"], job["pipeline_version"]) == ("succeeded", 2)
    assert job == wait_for_job(api, row["job"]["job_id"])


def test_retry_of_a_job_that_has_not_failed_exits_1_with_the_apis_reason(photo: Path) -> None:
    done = finished(photo)

    result = pipectl("retry", str(done["job_id"]))

    assert result.exit_code == 1
    assert "(job_not_failed, HTTP 409)" in result.stderr


# --- pipelines archive ------------------------------------------------------------------------


def test_pipelines_archive_archives_and_the_list_marks_it(
    api: httpx.Client, tmp_path: Path
) -> None:
    # Given
    created = new_pipeline(tmp_path)
    pid = str(created["id"])

    # When
    archived = json_of(pipectl("pipelines", "archive", pid, "--json"))

    # Then
    assert archived["archived_at"] is not None
    assert api.get(f"/pipelines/{pid}").json()["archived_at"] == archived["archived_at"]
    table = pipectl("pipelines", "list").stdout
    [row] = [line for line in table.splitlines() if str(created["name"]) in line]
    assert "archived" in row
    [active] = [line for line in table.splitlines() if line.startswith("│ 1 ")]
    assert "archived" not in active


def test_pipelines_list_filters_archived_and_active(tmp_path: Path) -> None:
    # Given
    created = new_pipeline(tmp_path)
    json_of(pipectl("pipelines", "archive", str(created["id"]), "--json"))

    # When
    only_archived = json_of(pipectl("pipelines", "list", "--archived", "--json"))
    only_active = json_of(pipectl("pipelines", "list", "--active", "--json"))

    # Then
    assert created["id"] in {p["id"] for p in only_archived}
    assert all(p["archived_at"] is not None for p in only_archived)
    assert 1 in {p["id"] for p in only_active}
    assert all(p["archived_at"] is None for p in only_active)


def test_pipelines_archive_table_says_when(tmp_path: Path) -> None:
    created = new_pipeline(tmp_path)

    result = pipectl("pipelines", "archive", str(created["id"]))

    assert result.exit_code == 0, result.output
    assert "Archived" in result.stdout


# --- jobs image -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["original", "processed"])
def test_jobs_image_saves_the_variant_under_its_job_id(
    api: httpx.Client, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    # Given
    job_id = str(finished(photo)["job_id"])
    monkeypatch.chdir(tmp_path)

    # When
    saved = json_of(pipectl("jobs", "image", job_id, "--variant", variant, "--json"))

    # Then
    expected = api.get(f"/jobs/{job_id}/image", params={"variant": variant})
    assert saved["path"] == f"{job_id}-{variant}.jpg"
    assert (tmp_path / saved["path"]).read_bytes() == expected.content
    assert saved["bytes"] == len(expected.content)
    assert saved["content_type"] == "image/jpeg"


def test_jobs_image_writes_to_a_file_or_to_stdout(
    api: httpx.Client, photo: Path, tmp_path: Path
) -> None:
    job_id = str(finished(photo)["job_id"])
    expected = api.get(f"/jobs/{job_id}/image", params={"variant": "processed"}).content
    target = tmp_path / "fitted.jpg"

    to_file = pipectl("jobs", "image", job_id, "--variant", "processed", "-o", str(target))
    to_stdout = pipectl("jobs", "image", job_id, "--variant", "processed", "-o", "-")

    assert to_file.exit_code == 0, to_file.output
    assert target.read_bytes() == expected
    assert f"saved {target}" in to_file.stdout
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == expected


def test_jobs_image_of_a_missing_variant_exits_1(photo: Path, tmp_path: Path) -> None:
    job_id = str(finished(photo)["job_id"])

    result = pipectl("jobs", "image", job_id, "--variant", "annotated", "-o", str(tmp_path / "a"))

    assert result.exit_code == 1
    assert "(image_not_found, HTTP 404)" in result.stderr
    assert not (tmp_path / "a").exists()


def test_jobs_still_lists_jobs_without_a_subcommand(photo: Path) -> None:
    done = finished(photo)

    listed = json_of(pipectl("jobs", "--pipeline", "1", "--limit", "1", "--json"))

    assert [job["job_id"] for job in listed] == [done["job_id"]]

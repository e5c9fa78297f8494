"""The results page acts on what it shows: a failed job's page retries it, and archived
pipelines are set apart in the list's filter."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests import images
from tests.helpers.api import submit_ok
from tests.helpers.product import car_config, create_pipeline
from tests.system import wait_for_job
from tests.ui.conftest import Screen
from tests.ui.helpers import job

LIVE_S = 30_000


def test_retry_button_runs_a_failed_job_again_and_follows_it(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given: a job failed at its model step (the model server has no such path)
    failing = create_pipeline(api, car_config(model_path="/no-such-model/"), prefix="retry")
    job_id = submit_ok(api, images.jpeg(640, 480, seed=77), failing)
    assert wait_for_job(api, job_id)["status"] == "failed"
    page = screen.page
    page.goto(f"{ui_url}/jobs/{job_id}")
    summary = page.locator("#summary")
    expect(summary).to_have_attribute("data-status", "failed")
    screen.shot("failed")

    # When
    page.locator("#retry").click()

    # Then: the page follows the job through its second run (the step's second attempt),
    # which fails the same way
    model_row = page.locator("#steps tbody tr").nth(1)
    expect(model_row.locator("td").nth(3)).to_have_text("2", timeout=LIVE_S)
    expect(summary).to_have_attribute("data-status", "failed", timeout=LIVE_S)
    assert job(api, job_id)["steps"][1]["attempts"] == 2
    expect(page.locator("#retry")).to_be_enabled()
    screen.shot("retried")


def test_retry_button_is_only_on_a_failed_jobs_page(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    job_id = submit_ok(api, images.jpeg(320, 240, seed=78), 1)
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    screen.page.goto(f"{ui_url}/jobs/{job_id}")

    expect(screen.page.locator("#summary")).to_have_attribute("data-status", "succeeded")
    expect(screen.page.locator("#retry")).to_have_count(0)


def test_archived_pipelines_are_grouped_and_labelled_in_the_filter(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given
    archived = create_pipeline(api, car_config(), prefix="old")
    assert api.delete(f"/pipelines/{archived}").status_code == 200
    page = screen.page

    # When
    page.goto(ui_url)

    # Then: in the filter, under "Archived" and labelled; not offered for uploads
    group = page.locator("#filters select[name=pipeline_id] optgroup[label=Archived]")
    option = group.locator(f"option[value='{archived}']")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("(archived)")
    top_level = page.locator(f"#filters select[name=pipeline_id] > option[value='{archived}']")
    expect(top_level).to_have_count(0)
    expect(page.locator(f"#upload-form option[value='{archived}']")).to_have_count(0)
    expect(page.locator("#filters select[name=pipeline_id] > option[value='1']")).to_have_count(1)

    # And: choosing it still lists its jobs (none here), the choice kept in the address
    page.select_option("#filters select[name=pipeline_id]", str(archived))
    expect(page).to_have_url(f"{ui_url}?pipeline_id={archived}")
    screen.shot("filter")

"""The job page shows what each step reported: a few figures as a small table, not raw JSON."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, expect

from tests import images
from tests.helpers.api import submit_ok
from tests.helpers.product import create_pipeline
from tests.system import free_port, wait_for_job
from tests.ui.conftest import Screen
from tests.ui.helpers import image_with_a_car


def output_cell(rows: Locator, position: int) -> Locator:
    return rows.nth(position - 1).locator("td.output")


def figure(cell: Locator, name: str) -> Locator:
    return cell.locator(f"dl.output > div[data-field='{name}'] > dd")


def test_job_page_shows_each_steps_output_as_a_small_table(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given: a job whose steps detect a car, judge it, save it and (with no WEBHOOK_SECRET in
    # this system) do not send the webhook, saying why
    url = f"http://localhost:{free_port()}/hooks"
    config = {
        "datatype": "CarDetection",
        "steps": [
            {"type": "image.fit@v1", "params": {"max_width": 640, "max_height": 640}},
            {"type": "model.detect_car@v1"},
            {"type": "detections.min_confidence@v1", "params": {"threshold": 0.0}},
            {"type": "storage.save_car_detection@v1"},
            {"type": "notify.webhook@v1", "params": {"url": url}},
        ],
    }
    pipeline_id = create_pipeline(api, config, prefix="ui-outputs")
    ended = wait_for_job(api, submit_ok(api, image_with_a_car(api), pipeline_id))
    assert ended["status"] == "succeeded", ended
    found = ended["result"]
    assert found is not None

    # When
    page = screen.page
    page.goto(f"{ui_url}/jobs/{ended['job_id']}")

    # Then: a step that reports nothing shows a dash
    rows = page.locator("#steps tbody tr")
    expect(rows).to_have_count(5)
    expect(output_cell(rows, 1)).to_have_text("—")
    expect(output_cell(rows, 4)).to_have_text("—")
    # And: the model's answer, figure by figure
    model = output_cell(rows, 2)
    expect(model.locator("dl.output > div")).to_have_count(6)
    expect(figure(model, "detection.width")).to_have_text(str(found["width"]))
    expect(figure(model, "detection.conf")).to_have_text(str(round(found["conf"], 3)))
    # And: the filter's verdict
    verdict = output_cell(rows, 3)
    expect(figure(verdict, "verdict")).to_have_text("kept")
    expect(figure(verdict, "threshold")).to_have_text("0")
    # And: the webhook's delivery, with why nothing was sent
    webhook = output_cell(rows, 5)
    expect(figure(webhook, "status")).to_have_text("not_sent")
    expect(figure(webhook, "http_status")).to_have_text("none")
    expect(figure(webhook, "attempts")).to_have_text("0")
    expect(figure(webhook, "error")).to_contain_text("not sent: WEBHOOK_SECRET is not set")
    # Never raw JSON where the figures are few
    expect(page.locator("#steps td.output", has_text="{")).to_have_count(0)
    expect(page.locator("#steps td.output details, #steps td.output pre")).to_have_count(0)
    screen.shot("outputs")


def test_job_page_shows_the_stats_figures(screen: Screen, ui_url: str, api: httpx.Client) -> None:
    # Given: a job that measures its image
    config = {
        "datatype": "ImageStats",
        "steps": [
            {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 320}},
            {"type": "image.stats@v1"},
        ],
    }
    pipeline_id = create_pipeline(api, config, prefix="ui-stats")
    ended = wait_for_job(api, submit_ok(api, images.jpeg(960, 720, seed=3), pipeline_id))
    assert ended["status"] == "succeeded", ended
    measured = ended["steps"][1]["output"]

    # When
    page = screen.page
    page.goto(f"{ui_url}/jobs/{ended['job_id']}")

    # Then
    stats = output_cell(page.locator("#steps tbody tr"), 2)
    expect(figure(stats, "width")).to_have_text("320")
    expect(figure(stats, "height")).to_have_text("240")
    expected = str(round(measured["mean_brightness"], 3))
    expect(figure(stats, "mean_brightness")).to_have_text(expected)
    screen.shot("stats")

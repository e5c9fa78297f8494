"""The results page in Chromium against the real system: upload, live status, thumbnails with the
box, the job page, failed jobs, filters."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests import images
from tests.helpers.api import submit_ok
from tests.helpers.product import car_config, create_pipeline, processed_size
from tests.system import wait_for_job
from tests.ui.conftest import Screen
from tests.ui.helpers import (
    box_in_image,
    image_with_a_car,
    job,
    statuses_seen,
    still_same_document,
    watch_statuses,
)

LIVE_S = 30_000


def annotating_config() -> dict[str, object]:
    config = car_config(box=320)
    steps = config["steps"]
    steps.insert(2, {"type": "image.annotate@v1", "params": {"width": 4}})
    return config


def test_uploaded_image_goes_from_queued_to_succeeded_with_the_box_drawn(
    screen: Screen, ui_url: str, api: httpx.Client, tmp_path: Path
) -> None:
    # Given: an image pipeline 1 finds a car in, and the page
    upload = tmp_path / "car.jpg"
    upload.write_bytes(image_with_a_car(api))
    page = screen.page
    page.goto(ui_url)
    expect(page.locator("#upload-form select[name=pipeline_id] option[value='1']")).to_have_count(1)
    watch_statuses(page, "#uploads")

    # When: it is submitted through the form
    page.set_input_files("#upload-form input[type=file]", str(upload))
    page.select_option("#upload-form select[name=pipeline_id]", "1")
    page.click("#upload-form button[type=submit]")

    # Then: its card goes from queued to succeeded without a reload
    card = page.locator("#uploads .card")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "succeeded", timeout=LIVE_S)
    job_id = card.get_attribute("data-job-id")
    assert job_id is not None
    seen = statuses_seen(page, job_id)
    assert seen[0] == "queued", seen
    assert seen[-1] == "succeeded", seen
    assert still_same_document(page)
    expect(card.locator(".status")).to_have_text("succeeded")
    expect(card.locator(".pipeline")).to_contain_text("#1")
    detection = job(api, job_id)["result"]
    assert detection is not None
    expect(card.locator(".confidence")).to_have_text(
        f"car, {detection['conf'] * 100:.1f}% confidence"
    )

    # And: the thumbnail is the processed image (pipeline 1 draws no box itself) with the box
    # drawn where the model put it, scaled from the processed image's pixels
    thumb = card.locator("svg.boxed")
    expect(thumb.locator("rect.box")).to_have_count(1, timeout=LIVE_S)
    assert thumb.get_attribute("data-variant") == "processed"
    width, height = processed_size(api, job_id)
    assert thumb.get_attribute("data-natural-width") == str(width)
    assert thumb.get_attribute("data-natural-height") == str(height)
    box = box_in_image(thumb)
    assert box["shownWidth"] > 0
    assert box["shownHeight"] > 0
    assert box["boxWidth"] > 0
    assert box["boxHeight"] > 0
    tolerance = 1.5 / box["shownWidth"]  # about a shown pixel
    assert box["left"] == pytest.approx(detection["top_left_x"] / width, abs=tolerance)
    assert box["width"] == pytest.approx(detection["width"] / width, abs=tolerance)
    assert box["top"] == pytest.approx(detection["top_left_y"] / height, abs=tolerance)
    assert box["height"] == pytest.approx(detection["height"] / height, abs=tolerance)
    screen.shot("uploaded")

    # And: the list, refreshing itself, shows the job too
    expect(page.locator(f"#jobs .card[data-job-id='{job_id}']")).to_have_attribute(
        "data-status", "succeeded", timeout=LIVE_S
    )

    # When: the card is opened
    card.locator("a.thumb").click()

    # Then: the job page shows the upload, the processed image with the box, and says that this
    # pipeline makes no annotated image
    expect(page).to_have_url(re.compile(rf"/ui/jobs/{job_id}$"))
    shown = page.locator("#images")
    expect(shown.locator("figure[data-variant=processed] rect.box")).to_have_count(1)
    expect(shown.locator("figure[data-variant=annotated]")).to_contain_text(
        "no image.annotate@v1 step"
    )
    original = shown.locator("figure[data-variant=original] img")
    assert original.evaluate("img => img.decode().then(() => img.naturalWidth)") == 800


def test_job_page_shows_three_images_the_detection_and_step_timings(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given: a job of a pipeline that stores an annotated image
    pipeline_id = create_pipeline(api, annotating_config(), prefix="ui-annotate")
    job_id = submit_ok(api, image_with_a_car(api), pipeline_id)
    ended = wait_for_job(api, job_id)
    assert ended["status"] == "succeeded", ended
    assert ended["result"] is not None

    # When
    page = screen.page
    page.goto(f"{ui_url}/jobs/{job_id}")

    # Then: three images side by side, each loaded
    figures = page.locator("#images figure")
    expect(figures).to_have_count(3)
    for variant in ("original", "annotated"):
        img = page.locator(f"#images figure[data-variant={variant}] img")
        expect(img).to_have_count(1)
        assert img.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    processed = page.locator("#images figure[data-variant=processed] svg.boxed")
    expect(processed.locator("rect.box")).to_have_count(1)
    boxes = [f.bounding_box() for f in figures.all()]
    assert all(b is not None for b in boxes)
    tops = {round(b["y"]) for b in boxes if b is not None}
    assert len(tops) == 1, boxes  # side by side: one row

    # And: the detection and every step with its duration
    result = ended["result"]
    expect(page.locator("#detection")).to_contain_text(f"{result['conf'] * 100:.1f}% confidence")
    expect(page.locator("#detection")).to_contain_text(
        f"{result['width']} \N{MULTIPLICATION SIGN} {result['height']} px"
    )
    rows = page.locator("#steps tbody tr")
    expect(rows).to_have_count(4)
    for n, step in enumerate(ended["steps"]):
        row = rows.nth(n)
        expect(row.locator("td").nth(1)).to_have_text(step["type"])
        expect(row.locator(".status")).to_have_text("succeeded")
        expect(row.locator(".duration")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    expect(page.locator("#summary")).to_contain_text(job_id)
    expect(page.locator("#summary .status")).to_have_text("succeeded")
    screen.shot("job-page")

    # And: in the list, its thumbnail is the stored annotated image, with no box added
    page.goto(f"{ui_url}?pipeline_id={pipeline_id}")
    thumb = page.locator(f"#jobs .card[data-job-id='{job_id}'] svg.boxed")
    expect(thumb).to_have_attribute("data-variant", "annotated")
    expect(thumb.locator("rect.box")).to_have_count(0)


def test_failed_job_shows_its_error_and_filters_narrow_the_list(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given: a pipeline whose model step always fails (the model server has no such path),
    # named with markup that must show as text
    failing = create_pipeline(api, car_config(model_path="/no-such-model/"), prefix="<b>ui</b>")
    failed_id = submit_ok(api, image_with_a_car(api), failing)
    assert wait_for_job(api, failed_id)["status"] == "failed"
    succeeded_id = submit_ok(api, image_with_a_car(api), 1)
    assert wait_for_job(api, succeeded_id)["status"] == "succeeded"
    page = screen.page
    page.goto(ui_url)
    jobs = page.locator("#jobs")
    expect(jobs.locator(f".card[data-job-id='{succeeded_id}']")).to_have_count(1)

    # When: the list is narrowed to the failing pipeline
    page.select_option("#filters select[name=pipeline_id]", str(failing))

    # Then: only its jobs show, the failed one with its error, the name as plain text
    failed_card = jobs.locator(f".card[data-job-id='{failed_id}']")
    expect(failed_card).to_have_attribute("data-status", "failed")
    expect(jobs.locator(f".card[data-job-id='{succeeded_id}']")).to_have_count(0)
    expect(jobs.locator(f".card:not([data-pipeline-id='{failing}'])")).to_have_count(0)
    expect(failed_card.locator(".error")).to_contain_text(
        "model server refused the image: HTTP 404"
    )
    expect(failed_card.locator(".pipeline")).to_contain_text("<b>ui</b>")
    expect(failed_card.locator(".pipeline b")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"\?pipeline_id={failing}$"))
    screen.shot("failing-pipeline")

    # When: also narrowed to succeeded jobs, which that pipeline has none of
    page.select_option("#filters select[name=status]", "succeeded")

    # Then
    expect(jobs.locator(".card")).to_have_count(0)
    expect(page.locator("#list-status")).to_have_text("No jobs match these filters yet.")

    # When: any pipeline's failed jobs
    page.select_option("#filters select[name=pipeline_id]", "")
    page.select_option("#filters select[name=status]", "failed")

    # Then: only failed cards, each with its error
    expect(failed_card).to_have_count(1)
    expect(jobs.locator(".card:not([data-status=failed])")).to_have_count(0)
    for card in jobs.locator(".card").all():
        expect(card.locator(".error")).not_to_be_empty()

    # And: the failed job's own page shows the error on the job and on the step that failed
    page.goto(f"{ui_url}/jobs/{failed_id}")
    expect(page.locator("#summary .error")).to_contain_text("HTTP 404")
    failed_row = page.locator("#steps tbody tr[data-status=failed]")
    expect(failed_row).to_have_count(1)
    expect(failed_row.locator(".error")).to_contain_text("HTTP 404")
    expect(page.locator("#detection")).to_have_text("No detection: the job failed.")


def test_job_page_of_a_tiff_upload_says_the_browser_cannot_show_the_original(
    screen: Screen, ui_url: str, api: httpx.Client
) -> None:
    # Given: a TIFF upload (browsers do not show TIFF; the processed image is a JPEG)
    tiff = images.encode(images.photo(320, 240, seed=7), "TIFF")
    job_id = submit_ok(api, tiff, 1)
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    # When
    page = screen.page
    page.goto(f"{ui_url}/jobs/{job_id}")

    # Then: a note for the original, the processed image shown
    figures = page.locator("#images")
    expect(figures.locator("figure[data-variant=original]")).to_contain_text(
        "This browser cannot show the original image."
    )
    expect(figures.locator("figure[data-variant=processed] svg.boxed image")).to_have_count(1)


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("00000000-0000-0000-0000-000000000000", "there is no job"),
        ("not-a-job-id", "job_id"),
    ],
)
def test_job_page_of_an_unknown_job_says_so(
    screen: Screen, ui_url: str, job_id: str, message: str
) -> None:
    # When
    screen.page.goto(f"{ui_url}/jobs/{job_id}")

    # Then
    status = screen.page.locator("#page-status")
    expect(status).to_contain_text("Could not load the job")
    expect(status).to_contain_text(message)

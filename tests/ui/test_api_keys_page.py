"""With API keys, the page and its files stay open (they carry no data) and the page asks for a
key, which its fetches then send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import side_api
from tests.system import System, wait_for_job
from tests.ui.conftest import Screen
from tests.ui.helpers import image_with_a_car

KEY = "ui-test-key-5b1e0c"


@pytest.fixture(scope="module")
def keyed(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A second API on the test database that requires KEY."""
    with side_api(tmp_path_factory.mktemp("keyed-ui-logs"), API_KEYS=KEY) as client:
        client.headers["X-API-Key"] = KEY
        yield client


def test_page_and_its_files_are_open_but_data_needs_the_key(keyed: httpx.Client) -> None:
    # When / Then: no key is needed for the page, its files or a job's page...
    base = str(keyed.base_url)
    for path in ("/ui", "/ui/jobs/00000000-0000-0000-0000-000000000000", "/ui/static/list.js"):
        response = httpx.get(base + path)
        assert response.status_code == 200, (path, response.text)
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert (
        httpx.get(base + "/ui/static/common.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert_error(httpx.get(base + "/ui/static/missing.js"), 404, "not_found")
    # ...but one is for the data, and the docs do not list the page
    assert_error(httpx.get(base + "/jobs"), 401, "missing_api_key")
    assert_error(httpx.get(base + "/uix"), 401, "missing_api_key")
    paths = keyed.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/ui")]


def test_page_asks_for_a_key_and_works_once_given_one(
    screen: Screen, keyed: httpx.Client, api: httpx.Client, tmp_path: Path
) -> None:
    # Given: a finished job, and the page of the API with keys
    data = image_with_a_car(api)
    job_id = submit_ok(keyed, data, 1)
    assert wait_for_job(keyed, job_id)["status"] == "succeeded"
    page = screen.page
    ui_url = str(keyed.base_url.join("/ui"))

    # When: opened without a key
    page.goto(ui_url)

    # Then: it asks for one
    key_form = page.locator("#key-form")
    expect(key_form).to_be_visible()
    expect(page.locator("#key-message")).to_contain_text("needs an API key")
    expect(page.locator("#jobs .card")).to_have_count(0)
    screen.shot("asks-for-key")

    # When: a wrong key is given
    page.fill("#key-input", "not-the-key")
    page.click("#key-form button[type=submit]")

    # Then: it says so
    expect(page.locator("#key-message")).to_have_text(
        "The API key was not accepted. Check it and enter it again."
    )
    expect(key_form).to_be_visible()

    # When: the right key is given
    page.fill("#key-input", KEY)
    page.click("#key-form button[type=submit]")

    # Then: the jobs show, with their images fetched with the key
    expect(key_form).to_be_hidden()
    card = page.locator(f"#jobs .card[data-job-id='{job_id}']")
    expect(card).to_have_attribute("data-status", "succeeded")
    expect(card.locator("svg.boxed rect.box")).to_have_count(1)
    assert card.locator("svg.boxed").get_attribute("data-natural-width") == "640"

    # And: an upload through the form works with it
    upload = tmp_path / "car.jpg"
    upload.write_bytes(data)
    page.set_input_files("#upload-form input[type=file]", str(upload))
    page.select_option("#upload-form select[name=pipeline_id]", "1")
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#uploads .card")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )

    # And: the key is kept for the tab: the job page loads without asking again
    card.locator("a.thumb").click()
    expect(page.locator("#summary .status")).to_have_text("succeeded")
    expect(page.locator("#images figure[data-variant=original] img")).to_have_count(1)
    expect(key_form).to_be_hidden()

    # When: the key is forgotten
    page.click("#forget-key")

    # Then: it asks again
    expect(page.locator("#key-message")).to_contain_text("needs an API key")

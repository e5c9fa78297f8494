"""What the results-page tests share: images the model finds a car in, and reading the page."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Locator, Page

from tests import images
from tests.helpers.api import submit

# With MLMOCK_SEED set, the mock gives the same image the same answer: an image found to hold
# a car once holds one again when the page uploads it.
_found: dict[tuple[int, int], bytes] = {}


def image_with_a_car(api: httpx.Client, width: int = 800, height: int = 600) -> bytes:
    """A JPEG for which pipeline 1 (the seeded car pipeline) answers with a box."""
    if (width, height) in _found:
        return _found[(width, height)]
    for seed in range(40):
        data = images.jpeg(width, height, seed=1000 + seed)
        response = submit(api, data, 1, wait=20)
        assert response.status_code == 200, response.text
        if response.json()["result"] is not None:
            _found[(width, height)] = data
            return data
    raise AssertionError("the model found no car in 40 images")


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    response = api.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def box_in_image(figure: Locator) -> dict[str, float]:
    """Where the drawn box lies in the shown image, as fractions of the image's shown size."""
    found: dict[str, float] = figure.evaluate(
        """svg => {
            const image = svg.querySelector("image").getBoundingClientRect();
            const box = svg.querySelector("rect.box").getBoundingClientRect();
            return {
                left: (box.left - image.left) / image.width,
                top: (box.top - image.top) / image.height,
                width: box.width / image.width,
                height: box.height / image.height,
                shownWidth: image.width,
                shownHeight: image.height,
                boxWidth: box.width,
                boxHeight: box.height,
            };
        }"""
    )
    return found


def watch_statuses(page: Page, selector: str) -> None:
    """Record, in the page, every status the cards under `selector` show, in order."""
    page.evaluate(
        """selector => {
            window.__statuses = {};
            const box = document.querySelector(selector);
            const note = () => {
                for (const card of box.querySelectorAll(".card")) {
                    const seen = (window.__statuses[card.dataset.jobId] ||= []);
                    const status = card.dataset.status;
                    if (seen[seen.length - 1] !== status) seen.push(status);
                }
            };
            const what = {subtree: true, childList: true, attributes: true};
            new MutationObserver(note).observe(box, what);
            window.__sameDocument = true;
        }""",
        selector,
    )


def statuses_seen(page: Page, job_id: str) -> list[str]:
    seen: list[str] = page.evaluate("id => window.__statuses[id] || []", job_id)
    return seen


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__sameDocument === true"))

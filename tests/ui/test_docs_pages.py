"""/docs and /redoc render in Chromium with every request to another host refused: the pages
work on a closed network."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route

from tests.conftest import API_PORT
from tests.system import System
from tests.ui.conftest import Screen

HERE = f"127.0.0.1:{API_PORT}"


def refuse_other_hosts(screen: Screen) -> list[str]:
    """Abort every request that leaves this server; the list fills with their URLs."""
    elsewhere: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == HERE:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    screen.page.route("**/*", route)
    return elsewhere


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        # Swagger UI: an operation of the API, rendered from /openapi.json.
        ("/docs", "#operations-jobs-create_job_jobs_post"),
        # ReDoc: the heading of the same operation.
        ("/redoc", 'h2:has-text("Submit an image to a pipeline")'),
    ],
)
def test_docs_page_renders_with_nothing_from_other_hosts(
    system: System, screen: Screen, path: str, shown: str
) -> None:
    # Given
    elsewhere = refuse_other_hosts(screen)

    # When
    screen.page.goto(f"http://{HERE}{path}")
    screen.page.locator(shown).first.wait_for(state="visible")

    # Then
    screen.shot("rendered")
    assert elsewhere == []
    assert screen.page.title().startswith("Image pipelines")

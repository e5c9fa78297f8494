"""/docs and /redoc reference only this server (they work on a closed network), and / leads
a person to the results page."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

# Where a page can name another resource: attributes, CSS url(), and the pages' JS settings.
_REFERENCES = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)|(?:url|[a-z_]+_url)\s*:\s*["']([^"']+)["']""",
    re.IGNORECASE,
)
_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


def references(html: str) -> list[str]:
    return [next(part for part in found if part) for found in _REFERENCES.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_references_no_other_host_and_its_files_are_served(
    api: httpx.Client, page: str
) -> None:
    # When
    response = api.get(page)

    # Then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # The browser itself refuses anything from elsewhere, should a bundle try.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "http" not in policy
    found = references(response.text)
    assert any(ref.endswith(".js") for ref in found), found
    assert "/openapi.json" in found
    here = urlsplit(str(response.url)).netloc
    for ref in found:
        url = urljoin(str(response.url), ref)
        assert urlsplit(url).netloc == here, f"{page} loads {ref} from elsewhere"
        asset = api.get(url)
        assert asset.status_code == 200, (ref, asset.status_code)
        suffix = "." + ref.rsplit(".", 1)[-1]
        assert _TYPES[suffix] in asset.headers["content-type"], (ref, asset.headers)
        assert len(asset.content) > 1000, ref


def test_swagger_ui_does_not_ask_the_online_validator(api: httpx.Client) -> None:
    html = api.get("/docs").text

    assert '"validatorUrl": null' in html


def test_the_bare_address_redirects_to_the_results_page(api: httpx.Client) -> None:
    # When
    response = api.get("/")

    # Then
    assert response.status_code == 307
    assert response.headers["location"] == "/ui"
    page = api.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert "<title>Jobs · Image pipelines</title>" in page.text
    assert 'href="/docs"' in page.text

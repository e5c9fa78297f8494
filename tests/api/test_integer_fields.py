"""Every number field of every endpoint, form, query or path, takes one spelling (api.params):
anything but plain ASCII digits is 422 invalid_request, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests import images
from tests.helpers.api import assert_error, stored_rows

JPEG = images.jpeg(64, 48)
Send = Callable[[httpx.Client, str], httpx.Response]

ENDPOINTS: dict[str, Send] = {
    "POST /jobs pipeline_id": lambda api, v: api.post(
        "/jobs", files={"image": ("a.jpg", JPEG, "image/jpeg")}, data={"pipeline_id": v}
    ),
    "POST /jobs wait": lambda api, v: api.post(
        f"/jobs?wait={quote(v)}",
        files={"image": ("a.jpg", JPEG, "image/jpeg")},
        data={"pipeline_id": "1"},
    ),
    "POST /jobs/batch pipeline_id": lambda api, v: api.post(
        "/jobs/batch", files={"images": ("a.jpg", JPEG, "image/jpeg")}, data={"pipeline_id": v}
    ),
    "POST /process_image/ query": lambda api, v: api.post(
        f"/process_image/?pipeline_id={quote(v)}",
        files={"image": ("a.jpg", JPEG, "image/jpeg")},
    ),
    "POST /process_image/ form": lambda api, v: api.post(
        "/process_image/", files={"image": ("a.jpg", JPEG, "image/jpeg")}, data={"pipeline_id": v}
    ),
    "GET /jobs pipeline_id": lambda api, v: api.get(f"/jobs?pipeline_id={quote(v)}"),
    "GET /jobs limit": lambda api, v: api.get(f"/jobs?limit={quote(v)}"),
    "GET /pipelines/{id}": lambda api, v: api.get(f"/pipelines/{quote(v)}"),
    "GET /pipelines/{id}/versions": lambda api, v: api.get(f"/pipelines/{quote(v)}/versions"),
    "GET /pipelines/1/versions/{version}": lambda api, v: api.get(
        f"/pipelines/1/versions/{quote(v)}"
    ),
}
SPELLINGS = ["1_0", "\uff11", "0x1", " 1", "01", "+1", "1.0"]
# `wait` is in seconds, a decimal number: 1.0 is a spelling of it, .5 and 1e1 are not.
DECIMAL_SPELLINGS = ["1_0", "\uff11", "0x1", " 1", "01", "+1", ".5", "1e1", "inf"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_number_field_refuses_every_other_spelling(api: httpx.Client, endpoint: str) -> None:
    before = stored_rows()

    for spelling in DECIMAL_SPELLINGS if endpoint.endswith("wait") else SPELLINGS:
        error = assert_error(ENDPOINTS[endpoint](api, spelling), 422, "invalid_request")
        assert "digits 0-9" in error["message"], (spelling, error)

    assert stored_rows() == before


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.startswith("GET")])
def test_plain_digits_are_read_as_the_number(api: httpx.Client, endpoint: str) -> None:
    assert ENDPOINTS[endpoint](api, "1").status_code == 200

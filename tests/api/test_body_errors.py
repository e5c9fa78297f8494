"""A body the API cannot read is 400 bad_request; fields it does not take are listed."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests import images
from tests.conftest import count_rows
from tests.helpers.api import assert_error

CONFIG = {"datatype": "ImageData", "steps": [{"type": "image.fit@v1"}]}


@pytest.mark.parametrize(
    ("content", "content_type", "mentions"),
    [
        (b"not json", "application/json", "not valid JSON"),
        (b'{"name": "x", "config": ', "application/json", "not valid JSON"),
        (b'{"name": "x"}', "text/plain", "sent as text/plain"),
        (b"name=x&config=y", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        (b'{"name": "x"}', None, "sent without a type"),
    ],
    ids=["text", "cut-short", "text-plain", "form", "no-type"],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/pipelines"), ("PUT", "/pipelines/1")])
def test_a_body_that_is_not_json_is_400_bad_request_and_changes_nothing(
    api: httpx.Client,
    method: str,
    path: str,
    content: bytes,
    content_type: str | None,
    mentions: str,
) -> None:
    # Given
    before = count_rows("pipeline_versions")
    headers = {"Content-Type": content_type} if content_type else {}

    # When
    response = api.request(method, path, content=content, headers=headers)

    # Then
    error = assert_error(response, 400, "bad_request")
    assert mentions in error["message"], error
    assert "details" not in error
    assert count_rows("pipeline_versions") == before


def test_json_of_the_wrong_shape_stays_422_invalid_request(api: httpx.Client) -> None:
    response = api.post("/pipelines", json=[{"name": "x"}])

    assert_error(response, 422, "invalid_request")


def test_a_json_pipeline_still_creates(api: httpx.Client) -> None:
    body = {"name": f"body-{uuid.uuid4().hex[:8]}", "description": "", "config": CONFIG}

    response = api.post("/pipelines", json=body)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("files", "data", "fields"),
    [
        (
            [("image", ("a.jpg", images.jpeg(64, 48, seed=2), "image/jpeg"))],
            {"pipeline_id": "1", "colour": "red", "size": "9"},
            [("body.colour", "unexpected field"), ("body.size", "unexpected field")],
        ),
        (
            [("image", ("a.jpg", images.jpeg(64, 48, seed=2), "image/jpeg"))] * 2,
            {"pipeline_id": "1"},
            [("body.image", "sent more than once")],
        ),
    ],
    ids=["extra-fields", "two-images"],
)
def test_unexpected_field_lists_the_fields_in_details(
    api: httpx.Client,
    files: list[tuple[str, tuple[str, bytes, str]]],
    data: dict[str, str],
    fields: list[tuple[str, str]],
) -> None:
    # Given
    before = count_rows("jobs")

    # When
    response = api.post("/jobs", files=files, data=data)

    # Then
    error = assert_error(response, 422, "unexpected_field")
    assert [(d["field"], d["message"]) for d in error["details"]] == fields
    assert count_rows("jobs") == before


def test_unexpected_field_in_a_batch_is_listed_too(api: httpx.Client) -> None:
    photo = ("images", ("a.jpg", images.jpeg(64, 48, seed=3), "image/jpeg"))

    response = api.post("/jobs/batch", files=[photo], data={"pipeline_id": "1", "note": "x"})

    error = assert_error(response, 422, "unexpected_field")
    assert error["details"] == [{"field": "body.note", "message": "unexpected field"}]

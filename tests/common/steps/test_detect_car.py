"""model.detect_car@v1: the model server's answers, and its faults, as the step sees them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from common.pipeline import CarDetection, Detection, StepContext, StepError, TransientStepError
from common.pipeline.steps.detect_car import (
    DetectCar,
    DetectCarParams,
    model_endpoint,
    request_detection,
)
from common.settings import get_settings
from tests import images
from tests.system import free_port

PATH = "/process_image/"
FAKE_URL = "http://model.test/process_image/"
# Distinct images of distinct sizes, the same bytes in every run.
SAMPLE = [images.solid(40 + 13 * n, 30 + 7 * n, (n * 20, 255 - n * 20, 128)) for n in range(12)]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def fake_server(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    """A client whose every request is answered by `handler`, as a faulty server would."""
    return httpx.Client(transport=httpx.MockTransport(handler))


def ask(client: httpx.Client, url: str = FAKE_URL, timeout: float = 5) -> Detection | None:
    return request_detection(client, url, images.solid(64, 48, (0, 0, 0)), "image/png", timeout)


# --- against the real mock --------------------------------------------------------------------


def test_answers_are_none_or_a_box_inside_the_image(mlmock_url: str, http: httpx.Client) -> None:
    answers = [
        (images.size_of(data), request_detection(http, mlmock_url + PATH, data, "image/png", 5))
        for data in SAMPLE
    ]

    for (width, height), answer in answers:
        if answer is not None:
            assert answer.label == 1
            assert 0 <= answer.conf <= 1
            assert answer.top_left_x >= 0
            assert answer.top_left_y >= 0
            assert answer.top_left_x + answer.width <= width
            assert answer.top_left_y + answer.height <= height
    # Half of the answers are null (MLMOCK_NULL_RATE=0.5): a sample this size shows both kinds.
    assert any(answer is None for _, answer in answers)
    assert any(answer is not None for _, answer in answers)


def test_same_image_gets_the_same_answer(mlmock_url: str, http: httpx.Client) -> None:
    for data in SAMPLE[:4]:
        first = request_detection(http, mlmock_url + PATH, data, "image/png", 5)
        second = request_detection(http, mlmock_url + PATH, data, "image/png", 5)

        assert first == second


def test_non_image_is_refused_for_good(mlmock_url: str, http: httpx.Client) -> None:
    with pytest.raises(StepError, match="refused the image: HTTP 422") as caught:
        request_detection(http, mlmock_url + PATH, b"plain text", "text/plain", 5)

    assert not isinstance(caught.value, TransientStepError)


def test_slower_answer_than_the_timeout_is_transient(mlmock_url: str, http: httpx.Client) -> None:
    # The mock takes 150 ms per answer.
    with pytest.raises(TransientStepError, match=r"did not answer within 0\.02 s"):
        request_detection(http, mlmock_url + PATH, SAMPLE[0], "image/png", 0.02)


def test_step_keeps_the_answer_and_notes_that_the_model_answered(
    mlmock_url: str, http: httpx.Client, session: Session
) -> None:
    settings = get_settings()
    assert settings.model_url == mlmock_url
    image = SAMPLE[5]
    expected = request_detection(http, mlmock_url + PATH, image, "image/png", 5)
    data = CarDetection(image=image, content_type="image/png")
    ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=settings)

    result = DetectCar(DetectCarParams()).run(data, ctx)

    assert result.model_answered is True
    assert result.detection == expected
    assert result.image == image


# --- an outside server's faults ---------------------------------------------------------------


def test_request_sends_the_image_as_multipart_field_image() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"null")

    with fake_server(handler) as client:
        answer = ask(client)

    assert answer is None
    assert [(r.method, str(r.url)) for r in seen] == [("POST", FAKE_URL)]
    body = seen[0].read()
    assert b'name="image"' in body
    assert b"Content-Type: image/png" in body


def test_box_answer_becomes_a_detection() -> None:
    box = {"top_left_x": 3, "top_left_y": 4, "width": 10, "height": 20, "conf": 0.75, "label": 1}

    with fake_server(lambda _: httpx.Response(200, json=box)) as client:
        answer = ask(client)

    assert answer == Detection(**box)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_is_transient(status: int) -> None:
    with (
        fake_server(lambda _: httpx.Response(status, text="busy")) as client,
        pytest.raises(TransientStepError, match=f"HTTP {status}"),
    ):
        ask(client)


@pytest.mark.parametrize("status", [400, 413, 415, 422])
def test_client_error_is_final(status: int) -> None:
    with (
        fake_server(lambda _: httpx.Response(status, text="bad image")) as client,
        pytest.raises(StepError, match=f"HTTP {status} bad image") as caught,
    ):
        ask(client)

    assert not isinstance(caught.value, TransientStepError)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="broken-json"),
        pytest.param(b"<html>gateway</html>", id="html"),
        pytest.param(b"", id="empty"),
    ],
)
def test_malformed_json_is_transient(body: bytes) -> None:
    with (
        fake_server(lambda _: httpx.Response(200, content=body)) as client,
        pytest.raises(TransientStepError, match="malformed JSON"),
    ):
        ask(client)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"top_left_x": 1}, id="missing-keys"),
        pytest.param([1, 2, 3, 4], id="list"),
        pytest.param(
            {"top_left_x": 0, "top_left_y": 0, "width": 1, "height": 1, "conf": 2.0, "label": 1},
            id="conf-above-1",
        ),
    ],
)
def test_unexpected_json_object_is_transient(body: object) -> None:
    with (
        fake_server(lambda _: httpx.Response(200, json=body)) as client,
        pytest.raises(TransientStepError, match="unexpected object"),
    ):
        ask(client)


def test_timeout_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with (
        fake_server(handler) as client,
        pytest.raises(TransientStepError, match=r"did not answer within 2\.5 s"),
    ):
        ask(client, timeout=2.5)


def test_refused_connection_is_transient(http: httpx.Client) -> None:
    url = f"http://127.0.0.1:{free_port()}{PATH}"

    with pytest.raises(TransientStepError, match="unreachable"):
        ask(http, url)


# --- the path cannot leave the model server ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "//evil.test/",
        "http://evil.test/",
        "/@evil.test/",
        "/x@evil.test",
        "/../admin",
        "/a/./b",
        "/a/..",
        "/a//b",
        "/%2e%2e/admin",
        "/a?next=http://evil.test",
        "/a#frag",
        "/a\\b",
        "process_image",
        "",
    ],
)
def test_a_path_that_could_leave_the_model_server_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        DetectCarParams(path=path)


@pytest.mark.parametrize(
    ("model_url", "path", "expected"),
    [
        ("http://127.0.0.1:8001", "/process_image/", "http://127.0.0.1:8001/process_image/"),
        ("http://model:8001/", "/v2/detect", "http://model:8001/v2/detect"),
        ("http://model:8001/api/", "/detect", "http://model:8001/api/detect"),
        ("http://model:8001/api?k=1", "/", "http://model:8001/api/"),
    ],
)
def test_the_endpoint_is_the_model_url_with_the_path_appended(
    model_url: str, path: str, expected: str
) -> None:
    assert model_endpoint(model_url, DetectCarParams(path=path).path) == expected


@pytest.mark.parametrize("path", ["//evil.test/", "//user@evil.test:80/x"])
def test_even_an_unchecked_path_keeps_the_model_server_host(path: str) -> None:
    url = httpx.URL(model_endpoint("http://model:8001", path))

    assert (url.host, url.port) == ("model", 8001)

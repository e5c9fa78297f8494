"""notify.webhook@v1 against a real HTTP server in a thread: signed, retried, never fatal, and
never to an address outside the public internet and WEBHOOK_ALLOWED_NETWORKS."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from common import egress
from common.egress import IPAddress
from common.pipeline import (
    CarDetection,
    Detection,
    PipelineConfigError,
    StepContext,
    build_pipeline,
    default_registry,
)
from common.pipeline.steps.notify_webhook import (
    ALLOW_HINT,
    NotifyWebhook,
    WebhookParams,
    deliver,
    result_body,
    sign,
)
from common.settings import Settings, get_settings
from tests.helpers.webhook import Receiver
from tests.system import free_port

SECRET = "test-webhook-secret"
# The receivers listen on loopback, which webhooks may reach only when allowed.
LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    script: Sequence[int | tuple[int, float]] = getattr(request, "param", ())
    with Receiver(list(script)) as running:
        yield running


def detection_data() -> CarDetection:
    box = Detection(top_left_x=84, top_left_y=192, width=343, height=91, conf=0.37, label=1)
    return CarDetection(image=b"", content_type="image/jpeg", detection=box, model_answered=True)


def settings(secret: str = SECRET, allowed: str = LOOPBACK) -> Settings:
    return get_settings().model_copy(
        update={"webhook_secret": SecretStr(secret), "webhook_allowed_networks": allowed}
    )


def notify(
    url: str,
    data: CarDetection,
    secret: str = SECRET,
    allowed: str = LOOPBACK,
    http: httpx.Client | None = None,
    **params: Any,
) -> tuple[uuid.UUID, CarDetection]:
    """Run the step as a worker does, `http` standing for the worker's shared client."""
    job_id = uuid.uuid4()
    step = NotifyWebhook(WebhookParams(url=url, backoff_s=0.01, **params))
    with http or httpx.Client() as shared, Session() as session:
        ctx = StepContext(
            job_id=job_id, session=session, http=shared, settings=settings(secret, allowed)
        )
        result = step.run(data, ctx)
    assert isinstance(result, CarDetection)
    return job_id, result


# --- delivery ---------------------------------------------------------------------------------


def test_result_arrives_as_json_signed_with_the_secret(receiver: Receiver) -> None:
    job_id, result = notify(receiver.url, detection_data())

    [call] = receiver.wait_for(1)
    assert call.path == "/hooks/jobs"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-job-id"] == str(job_id)
    assert call.signed_with(SECRET)
    assert not call.signed_with("another secret")
    assert call.json() == {
        "job_id": str(job_id),
        "datatype": "CarDetection",
        "data": {
            "content_type": "image/jpeg",
            "detection": {
                "top_left_x": 84,
                "top_left_y": 192,
                "width": 343,
                "height": 91,
                "conf": 0.37,
                "label": 1,
            },
            "model_answered": True,
        },
    }
    assert result.webhook_error is None
    assert result.detection == detection_data().detection


def test_signature_covers_the_exact_body_bytes() -> None:
    body = result_body(uuid.UUID(int=1), detection_data())

    assert sign(body, b"k") == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(body + b" ", b"k") != sign(body, b"k")


def test_no_car_is_sent_as_a_null_detection(receiver: Receiver) -> None:
    notify(receiver.url, CarDetection(image=b"", content_type="image/jpeg", model_answered=True))

    [call] = receiver.wait_for(1)
    assert call.json()["data"]["detection"] is None


@pytest.mark.parametrize("receiver", [[500]], indirect=True)
def test_a_500_is_retried_and_the_second_attempt_delivers(receiver: Receiver) -> None:
    _, result = notify(receiver.url, detection_data())

    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["x-signature"] == second.headers["x-signature"]
    assert result.webhook_error is None
    assert len(receiver.received) == 2


@pytest.mark.parametrize("receiver", [[503, 503, 503, 503]], indirect=True)
def test_a_failed_delivery_is_noted_on_the_data_and_the_step_still_succeeds(
    receiver: Receiver,
) -> None:
    _, result = notify(receiver.url, detection_data(), max_attempts=3)

    assert len(receiver.received) == 3
    assert result.webhook_error == f"webhook {receiver.url}: answered HTTP 503 (3 attempts)"
    assert result.detection == detection_data().detection
    # What the worker keeps on the job as its payload carries the failure.
    assert result.fields_without_image()["webhook_error"] == result.webhook_error


@pytest.mark.parametrize(
    ("receiver", "calls"),
    [
        pytest.param([400, 200], 1, id="400-not-retried"),
        pytest.param([404, 200], 1, id="404-not-retried"),
        pytest.param([410, 200], 1, id="410-not-retried"),
        pytest.param([302, 200], 1, id="redirect-not-followed"),
        pytest.param([408, 200], 2, id="408-retried"),
        pytest.param([429, 200], 2, id="429-retried"),
    ],
    indirect=["receiver"],
)
def test_only_408_and_429_among_4xx_are_retried(receiver: Receiver, calls: int) -> None:
    status = receiver.script[0]

    _, result = notify(receiver.url, detection_data())

    assert len(receiver.received) == calls
    if calls == 1:
        assert result.webhook_error == f"webhook {receiver.url}: answered HTTP {status} (1 attempt)"
    else:
        assert result.webhook_error is None


@pytest.mark.parametrize("receiver", [[(200, 1.0), (200, 1.0)]], indirect=True)
def test_an_answer_slower_than_the_timeout_counts_as_a_failure(receiver: Receiver) -> None:
    _, result = notify(receiver.url, detection_data(), timeout_s=0.2, max_attempts=2)

    assert result.webhook_error == f"webhook {receiver.url}: no answer within 0.2 s (2 attempts)"


def test_an_unreachable_receiver_is_retried_then_noted() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"

    _, result = notify(url, detection_data(), max_attempts=2)

    assert result.webhook_error is not None
    assert result.webhook_error.startswith(f"webhook {url}: unreachable: ")
    assert result.webhook_error.endswith("(2 attempts)")


def test_without_a_secret_nothing_is_sent_and_the_reason_is_noted(receiver: Receiver) -> None:
    _, result = notify(receiver.url, detection_data(), secret="")

    time.sleep(0.2)
    assert receiver.received == []
    assert result.webhook_error == (
        f"webhook {receiver.url}: not sent: WEBHOOK_SECRET is not set (nothing goes unsigned)"
    )


# --- where a webhook may go -------------------------------------------------------------------


def test_a_loopback_receiver_gets_nothing_unless_its_network_is_allowed(
    receiver: Receiver,
) -> None:
    _, result = notify(receiver.url, detection_data(), allowed="")

    assert receiver.received == []
    assert result.webhook_error == (
        f"webhook {receiver.url}: not sent: 127.0.0.1 is a loopback address; {ALLOW_HINT} "
        "(1 attempt)"
    )


def test_a_name_that_resolves_to_loopback_is_refused_when_sending(receiver: Receiver) -> None:
    url = f"http://localhost:{receiver.port}/hooks/jobs"

    _, result = notify(url, detection_data(), allowed="", max_attempts=3)

    assert receiver.received == []
    assert result.webhook_error is not None
    assert result.webhook_error.startswith(f"webhook {url}: not sent: localhost resolves to ")
    assert ", a loopback address" in result.webhook_error
    assert result.webhook_error.endswith("(1 attempt)")


def fake_dns(monkeypatch: pytest.MonkeyPatch, name: str, *answer: str) -> list[tuple[str, int]]:
    """Make `name` resolve to `answer`: the resolver is outside the system. Returns the calls."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append((host, port))
        assert host == name
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(egress, "resolve", resolve)
    return calls


def test_the_post_goes_to_the_address_that_was_checked_with_the_host_kept(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_dns(monkeypatch, "hooks.example.test", "127.0.0.1")
    url = f"http://hooks.example.test:{receiver.port}/hooks/jobs"

    _, result = notify(url, detection_data(), allowed="127.0.0.1/32")

    [call] = receiver.wait_for(1)
    assert result.webhook_error is None
    assert call.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert call.signed_with(SECRET)
    assert calls == [("hooks.example.test", receiver.port)]  # resolved once, not again


def test_a_name_with_one_internal_address_among_its_answers_is_refused(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, "hooks.example.test", "127.0.0.1", "10.0.0.7")
    url = f"http://hooks.example.test:{receiver.port}/hooks/jobs"

    _, result = notify(url, detection_data(), allowed="127.0.0.1/32")

    assert receiver.received == []
    assert result.webhook_error == (
        f"webhook {url}: not sent: hooks.example.test resolves to 10.0.0.7, a private "
        f"(RFC 1918) address; {ALLOW_HINT} (1 attempt)"
    )


def test_a_redirect_to_a_refused_address_is_not_followed() -> None:
    with (
        Receiver(host="127.0.0.2") as inside,
        Receiver([307], headers={"Location": inside.url}) as hook,
    ):
        # Even were the worker's shared client one that follows redirects.
        follows = httpx.Client(follow_redirects=True)

        _, result = notify(hook.url, detection_data(), allowed="127.0.0.1/32", http=follows)

        assert len(hook.received) == 1
        assert inside.received == []
        assert result.webhook_error == f"webhook {hook.url}: answered HTTP 307 (1 attempt)"


# --- backoff ----------------------------------------------------------------------------------


def scripted(*replies: httpx.Response) -> httpx.Client:
    answers = list(replies)
    return httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))


def test_delays_double_from_the_backoff() -> None:
    slept: list[float] = []
    http = scripted(*[httpx.Response(500)] * 4)

    delivery = deliver(
        http,
        "http://hook.test/",
        b"{}",
        {},
        timeout_s=1,
        max_attempts=4,
        backoff_s=0.5,
        sleep=slept.append,
    )

    assert slept == [0.5, 1.0, 2.0]
    assert delivery.attempts == 4


def test_retry_after_of_a_429_is_honoured_up_to_a_cap() -> None:
    slept: list[float] = []
    http = scripted(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(204),
    )

    delivery = deliver(
        http,
        "http://hook.test/",
        b"{}",
        {},
        timeout_s=1,
        max_attempts=3,
        backoff_s=0.1,
        sleep=slept.append,
    )

    assert slept == [3.0, 10.0]
    assert delivery.error is None
    assert delivery.attempts == 3


# --- config -----------------------------------------------------------------------------------


def webhook_pipeline(params: dict[str, Any]) -> dict[str, Any]:
    return {"datatype": "CarDetection", "steps": [{"type": "notify.webhook@v1", "params": params}]}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/jobs",
        "http://127.0.0.1:9000/hook?team=cars",
        "http://[::1]:8080/",
    ],
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    config = build_pipeline(webhook_pipeline({"url": url}), default_registry()).canonical_config()

    assert config["steps"][0]["params"] == {
        "url": url,
        "timeout_s": 5.0,
        "max_attempts": 3,
        "backoff_s": 0.5,
    }


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///hook", "must name a host"),
        ("https://user:pw@example.com/", "credentials"),
        ("http://example.com:99999/", "out of range"),
        ("http://example.com/a b", "blanks"),
        ("http://example.com/#frag", "fragment"),
    ],
)
def test_other_urls_are_refused_by_the_config(url: str, reason: str) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(webhook_pipeline({"url": url}), default_registry())

    [issue] = caught.value.issues
    assert (issue.position, issue.step_type) == (1, "notify.webhook@v1")
    assert issue.reason.startswith("parameter url:")
    assert reason in issue.reason


@pytest.mark.parametrize(
    "params",
    [{}, {"url": "https://h.test/", "max_attempts": 0}, {"url": "https://h.test/", "timeout_s": 0}],
)
def test_a_missing_url_and_bad_limits_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(PipelineConfigError, match="parameter"):
        build_pipeline(webhook_pipeline(params), default_registry())


def test_a_plain_imagedata_pipeline_cannot_notify() -> None:
    raw = {
        "datatype": "ImageData",
        "steps": [{"type": "notify.webhook@v1", "params": {"url": "https://h.test/"}}],
    }

    with pytest.raises(PipelineConfigError, match="accepts Notifiable"):
        build_pipeline(raw, default_registry())


def test_any_other_request_error_is_noted_without_retrying() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.DecodingError("garbled")

    delivery = deliver(
        httpx.Client(transport=httpx.MockTransport(handler)),
        "http://hook.test/",
        b"{}",
        {},
        timeout_s=1,
        max_attempts=3,
        backoff_s=0,
    )

    assert delivery.error == "webhook http://hook.test/: request failed: garbled (1 attempt)"
    assert len(calls) == 1

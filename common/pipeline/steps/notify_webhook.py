"""notify.webhook@v1: POST the job's result, signed, to a URL; a failed delivery is only noted.

Delivery is at least once: a step run again after its worker died may post again, so a
receiver should treat the job id as the key. Nothing is ever sent unsigned: without
WEBHOOK_SECRET the delivery is skipped and that is noted on the job. Only public unicast
addresses (and WEBHOOK_ALLOWED_NETWORKS) are posted to, see common.egress: a literal address is
refused when the pipeline is created (with the policy in the validation context, as the API
passes it), a host name when it is resolved at send time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import Field, ValidationInfo, field_validator

from common.egress import EgressPolicy, RefusedDestinationError, guarded_client
from common.messages import client_text
from common.pipeline.datatypes import Notifiable
from common.pipeline.step import Step, StepContext, StepManifest, StepOutput, StepParams

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
# Besides 5xx and transport errors, the only answers worth trying again.
RETRIED_4XX = {408, 429}
MAX_DELAY_S = 10.0
ALLOW_HINT = "webhooks go to public addresses only (WEBHOOK_ALLOWED_NETWORKS can add networks)"


class WebhookParams(StepParams):
    url: str = Field(
        max_length=2000,
        description="Where to POST the result: an http or https URL, without credentials "
        "(pipeline configs are readable by every API client), to a public address (or one in "
        "WEBHOOK_ALLOWED_NETWORKS).",
    )
    timeout_s: float = Field(5.0, gt=0, le=30, description="Timeout of one attempt, seconds.")
    max_attempts: int = Field(3, ge=1, le=5, description="Attempts before giving up.")
    backoff_s: float = Field(
        0.5, ge=0, le=5, description="Delay before the second attempt; it doubles each time."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("must not contain blanks")
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from exc
        if url.scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not url.host:
            raise ValueError("must name a host")
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(f"port {url.port} is out of range")
        if url.userinfo:
            raise ValueError("must not carry credentials")
        if url.fragment:
            raise ValueError("must have no #fragment")
        policy = (info.context or {}).get("egress")
        if isinstance(policy, EgressPolicy):
            refusal = policy.host_refusal(url.host)
            if refusal is not None:
                raise ValueError(f"refused: {refusal}; {ALLOW_HINT}")
        return value


DeliveryStatus = Literal["delivered", "failed", "not_sent"]


@dataclass(frozen=True)
class Delivery:
    attempts: int
    error: str | None  # None: the receiver answered 2xx
    http_status: int | None = None  # the receiver's last answer; None if it never answered
    sent: bool = True  # False: refused before anything left (destination, no secret)

    @property
    def status(self) -> DeliveryStatus:
        if self.error is None:
            return "delivered"
        return "failed" if self.sent else "not_sent"


class WebhookOutput(StepOutput):
    """notify.webhook@v1's output: whether the result reached the receiver, and if not, why."""

    status: DeliveryStatus = Field(
        description="delivered: a 2xx answer; failed: sent, but no 2xx answer in the attempts "
        "allowed; not_sent: nothing left (WEBHOOK_SECRET unset, or the destination refused)."
    )
    http_status: int | None = Field(
        description="The HTTP status of the receiver's last answer; null if it never answered."
    )
    attempts: int = Field(ge=0, description="Attempts made (0: not sent at all).")
    error: str | None = Field(description="Why it was not delivered; null once delivered.")

    @field_validator("error")
    @classmethod
    def _client_text(cls, error: str | None) -> str | None:
        # Clients see it: common.messages' rule applies, as to every step error.
        return None if error is None else client_text(error)

    @classmethod
    def of(cls, delivery: Delivery) -> WebhookOutput:
        return cls(
            status=delivery.status,
            http_status=delivery.http_status,
            attempts=delivery.attempts,
            error=delivery.error,
        )


def sign(body: bytes, secret: bytes) -> str:
    """The X-Signature value: HMAC-SHA256 of the exact body, hex, after `sha256=`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def result_body(job_id: uuid.UUID, data: Notifiable) -> bytes:
    """`{"job_id", "datatype", "data"}`: the data's fields, without the image bytes."""
    fields = data.fields_without_image()
    fields.pop("webhook_error", None)
    payload = {"job_id": str(job_id), "datatype": type(data).__name__, "data": fields}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return 0.0  # absent, or an HTTP date: our own backoff applies


def deliver(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    max_attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST `body` until a 2xx answer, retrying transport errors, 5xx, 408 and 429; a
    destination `http` refuses (RefusedDestinationError) ends it at once. Redirects are not
    followed: `http` should be a client made by common.egress.guarded_client."""
    attempt = 0
    status: int | None = None
    while True:
        attempt += 1
        waited = 0.0
        refused = False
        try:
            # Streamed and closed unread: what a receiver says in its body is not our concern.
            with http.stream(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=timeout_s,
                follow_redirects=False,
            ) as response:
                status = response.status_code
                waited = _retry_after(response)
        except RefusedDestinationError as exc:
            problem, retry, refused = f"not sent: {exc.reason}; {ALLOW_HINT}", False, True
        except httpx.TimeoutException:
            problem, retry = f"no answer within {timeout_s:g} s", True
        except httpx.TransportError as exc:
            problem, retry = f"unreachable: {str(exc) or type(exc).__name__}", True
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # Whatever else goes wrong with the request is noted too: it must not fail the job.
            problem, retry = f"request failed: {str(exc) or type(exc).__name__}", False
        else:
            if 200 <= status < 300:
                return Delivery(attempt, None, status)
            problem = f"answered HTTP {status}"
            retry = status >= 500 or status in RETRIED_4XX
        if not retry or attempt >= max_attempts:
            tries = "attempt" if attempt == 1 else "attempts"
            error = f"webhook {url}: {problem} ({attempt} {tries})"
            # Refused at the first attempt: nothing ever left.
            return Delivery(attempt, error, status, sent=not (refused and attempt == 1))
        sleep(min(MAX_DELAY_S, max(backoff_s * 2 ** (attempt - 1), waited)))


class NotifyWebhook(Step[Notifiable, WebhookParams]):
    manifest = StepManifest(
        type_id="notify.webhook@v1",
        description="POST the job's result as JSON, signed with WEBHOOK_SECRET in X-Signature; "
        "retried with backoff; a failed delivery is kept in webhook_error and does not fail "
        "the job.",
        accepts=Notifiable,
        output=WebhookOutput,
        params=WebhookParams,
        reads_image=False,
        io_bound=True,
    )

    def run(self, data: Notifiable, ctx: StepContext) -> Notifiable:
        return self.execute(data, ctx)[0]

    def execute(self, data: Notifiable, ctx: StepContext) -> tuple[Notifiable, WebhookOutput]:
        p = self.params
        secret = ctx.settings.webhook_secret.get_secret_value()
        if not secret:
            error = f"webhook {p.url}: not sent: WEBHOOK_SECRET is not set (nothing goes unsigned)"
            delivery = Delivery(0, error, sent=False)
        else:
            body = result_body(ctx.job_id, data)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, secret.encode()),
                "X-Job-Id": str(ctx.job_id),
                "User-Agent": "image-pipelines-webhook/1",
            }
            if ctx.egress is not None:
                delivery = self._deliver(ctx.egress, body, headers)
            else:
                with guarded_client(ctx.settings.egress_policy) as http:
                    delivery = self._deliver(http, body, headers)
        if delivery.error is not None:
            log.warning("%s", delivery.error)
        after = data.model_copy(update={"webhook_error": delivery.error})
        return after, WebhookOutput.of(delivery)

    def _deliver(self, http: httpx.Client, body: bytes, headers: dict[str, str]) -> Delivery:
        p = self.params
        return deliver(
            http,
            p.url,
            body,
            headers,
            timeout_s=p.timeout_s,
            max_attempts=p.max_attempts,
            backoff_s=p.backoff_s,
        )

"""common.egress: which addresses a user-chosen destination may have, and the pinned transport.

Pure: no server, no network; the transport's inner transport and resolver are stand-ins.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from common.egress import (
    EgressPolicy,
    IPAddress,
    PinnedTransport,
    RefusedDestinationError,
    literal_address,
    parse_networks,
)
from common.pipeline import PipelineConfigError, build_pipeline, default_registry
from common.settings import Settings

DEFAULT = EgressPolicy()

REFUSED = [
    # loopback, and the forms the resolver (inet_aton) reads as 127.0.0.1
    ("127.0.0.1", "loopback"),
    ("127.53.0.9", "loopback"),
    ("127.1", "loopback"),
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("017700000001", "loopback"),
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    # link-local, the cloud metadata address among them
    ("169.254.169.254", "link-local"),
    ("0xa9fea9fe", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%25eth0", "link-local"),
    # private, shared, unique-local
    ("10.0.0.1", "RFC 1918"),
    ("172.16.5.4", "RFC 1918"),
    ("172.31.255.255", "RFC 1918"),
    ("192.168.1.1", "RFC 1918"),
    ("100.64.0.1", "CGNAT"),
    ("100.100.100.200", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fec0::1", "site-local"),
    # multicast, unspecified, broadcast and other non-public ranges
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "not a public unicast"),
    ("255.255.255.255", "not a public unicast"),
    ("240.0.0.1", "not a public unicast"),
    ("192.0.2.1", "not a public unicast"),
    ("198.18.0.1", "not a public unicast"),
    ("2001:db8::1", "not a public unicast"),
    ("::7f00:1", "not a public unicast"),
    # IPv6 forms that carry an IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, a link-local"),
    ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
    ("::ffff:100.64.0.1", "IPv4-mapped form of 100.64.0.1, a shared"),
    ("::ffff:0.0.0.0", "IPv4-mapped form of 0.0.0.0, the unspecified"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"),
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("host", "rule"), REFUSED)
def test_every_non_public_address_form_is_refused_naming_its_rule(host: str, rule: str) -> None:
    reason = DEFAULT.host_refusal(host)

    assert reason is not None
    assert rule in reason


@pytest.mark.parametrize("host", PUBLIC)
def test_public_unicast_addresses_are_allowed(host: str) -> None:
    assert DEFAULT.host_refusal(host) is None


@pytest.mark.parametrize("host", ["hooks.example.com", "localhost", "cafe.face", "0x7g.1"])
def test_a_name_is_left_to_the_check_at_send_time(host: str) -> None:
    assert literal_address(host) is None
    assert DEFAULT.host_refusal(host) is None


def test_numeric_tricks_read_as_the_resolver_reads_them() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")

    assert {literal_address(h) for h in ("127.1", "2130706433", "0x7f.1", "0x7f.0.0.1")} == {
        loopback
    }


def test_allowed_networks_let_their_addresses_through_and_nothing_else() -> None:
    policy = EgressPolicy(parse_networks(" 127.0.0.0/8 , fd00::/8"))

    assert policy.host_refusal("127.0.0.1") is None
    assert policy.host_refusal("::ffff:127.0.0.1") is None
    assert policy.host_refusal("fd00::5") is None
    assert policy.host_refusal("10.0.0.1") is not None
    assert policy.host_refusal("169.254.169.254") is not None
    assert policy.host_refusal("::1") is not None


def test_the_allowed_networks_setting_must_be_cidrs() -> None:
    assert Settings(webhook_allowed_networks="").egress_policy == EgressPolicy()
    assert Settings(webhook_allowed_networks="10.0.0.0/8").egress_policy.allowed == (
        ipaddress.ip_network("10.0.0.0/8"),
    )
    with pytest.raises(ValidationError, match="not a network in CIDR form"):
        Settings(webhook_allowed_networks="10.0.0.0/8,intranet")


# --- when a pipeline is created or changed ----------------------------------------------------


def webhook_config(url: str) -> dict[str, Any]:
    return {
        "datatype": "CarDetection",
        "steps": [
            {"type": "image.fit@v1"},
            {"type": "notify.webhook@v1", "params": {"url": url}},
        ],
    }


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "IPv4-mapped"),
        ("http://100.64.1.1/", "CGNAT"),
    ],
)
def test_a_literal_refused_address_is_refused_when_the_pipeline_is_made(
    url: str, rule: str
) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(webhook_config(url), default_registry(), context={"egress": DEFAULT})

    [issue] = caught.value.issues
    assert (issue.position, issue.step_type) == (2, "notify.webhook@v1")
    assert issue.reason.startswith("parameter url: Value error, refused: ")
    assert rule in issue.reason
    assert "WEBHOOK_ALLOWED_NETWORKS" in issue.reason


def test_an_allowed_network_or_a_name_passes_when_the_pipeline_is_made() -> None:
    allowed = {"egress": EgressPolicy(parse_networks("127.0.0.0/8"))}

    for url in ("http://127.0.0.1:9000/hook", "https://hooks.example.com/x", "http://localhost/"):
        build_pipeline(webhook_config(url), default_registry(), context=allowed)


# --- the pinned transport ---------------------------------------------------------------------


class Inner(httpx.BaseTransport):
    """Stands in for the network: records what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(204)


def resolver(*answer: str) -> Any:
    def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answer]

    return resolve


def pinned(policy: EgressPolicy, *answer: str) -> tuple[httpx.Client, Inner]:
    inner = Inner()
    transport = PinnedTransport(policy, resolver(*answer), inner=inner)
    return httpx.Client(transport=transport), inner


def test_the_connection_goes_to_the_checked_address_with_host_and_sni_kept() -> None:
    http, inner = pinned(DEFAULT, "93.184.216.34", "2606:2800:220:1::1")

    http.post("https://hooks.example.com:8443/jobs?x=1", content=b"{}")

    [request] = inner.sent
    assert request.url == httpx.URL("https://93.184.216.34:8443/jobs?x=1")
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


@pytest.mark.parametrize(
    "answer",
    [("127.0.0.1",), ("93.184.216.34", "10.0.0.7"), ("::1", "93.184.216.34"), ("fd00::1",)],
)
def test_a_name_with_any_refused_address_is_refused_before_connecting(
    answer: tuple[str, ...],
) -> None:
    http, inner = pinned(DEFAULT, *answer)

    with pytest.raises(RefusedDestinationError, match=r"^hooks\.example\.com resolves to "):
        http.post("http://hooks.example.com/jobs", content=b"{}")

    assert inner.sent == []


def test_a_literal_address_is_checked_without_asking_the_resolver() -> None:
    http, inner = pinned(DEFAULT, "93.184.216.34")

    with pytest.raises(RefusedDestinationError, match=r"^127\.0\.0\.1 is a loopback address"):
        http.post("http://0x7f.1:8080/jobs", content=b"{}")

    assert inner.sent == []

"""Outbound HTTP to a destination a user chose (a webhook): public unicast addresses only.

A pipeline's author picks the webhook URL, and the workers run inside our network, so without a
check anyone who may create pipelines could make them POST to loopback, the database, Redis or
the cloud metadata service (server-side request forgery). The rules follow OWASP's SSRF
prevention cheat sheet: refuse every address that is not public unicast, check *every* address
a name resolves to, connect to the address that was checked (so a DNS answer that changes
between the check and the connection, "DNS rebinding", cannot slip past), follow no redirect,
and use no proxy from the environment. Networks named in WEBHOOK_ALLOWED_NETWORKS are let
through, for deployments that deliver inside a private network.

Why our own module: the libraries we looked at did not fit. `safehttpx` is asynchronous and
GET-only, takes the first *public* answer instead of refusing a name with any internal one,
falls back to a public DNS-over-HTTPS service, and lets 100.64.0.0/10 through on Python 3.11+
(its open issue 16); `advocate` wraps `requests` and has had no release since 2020;
`httpx-secure` is asynchronous only; `drawbridge` and the like are months old, with one author
and no track record. What we need is the `ipaddress` module's `is_global` with named rules on
top, and an httpx transport that pins the checked address using httpx's own `sni_hostname`
request extension, about 150 lines that we can read and test whole.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What the C library's inet_aton (and so getaddrinfo) reads as an IPv4 address besides the
# dotted quad: 2130706433, 0x7f.1, 127.1, 017700000001.
_INET_ATON = re.compile(r"[0-9a-fA-FxX.]+")


class RefusedDestinationError(Exception):
    """The destination's address is not one the policy lets us connect to; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (`10.0.0.0/8, fd00::/8`); raises ValueError naming a bad one."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a network in CIDR form: {exc}") from exc
    return tuple(networks)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names when it is an address, read as the resolver would read it
    (inet_aton semantics for IPv4, an IPv6 zone id dropped); None for a name."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _INET_ATON.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _category(addr: IPAddress) -> str | None:
    """The rule that refuses an address, or None for a public unicast address."""
    if addr.is_unspecified:
        return "the unspecified address"
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address (the cloud metadata service lives there)"
    if addr.is_multicast:
        return "a multicast address"
    if addr in _CGNAT:
        return "a shared (CGNAT, RFC 6598) address"
    if any(addr in net for net in _RFC1918):
        return "a private (RFC 1918) address"
    if addr in _UNIQUE_LOCAL:
        return "a unique-local IPv6 address"
    if isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local:
        return "a site-local IPv6 address"
    if addr.is_reserved or not addr.is_global:
        return "not a public unicast address"
    return None


def _embedded_ipv4(addr: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """An IPv6 form that carries an IPv4 address a packet may end up at."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return "IPv4-mapped", addr.ipv4_mapped
    if addr in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return "6to4", addr.sixtofour
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Public unicast addresses, plus the `allowed` networks (WEBHOOK_ALLOWED_NETWORKS)."""

    allowed: tuple[IPNetwork, ...] = ()

    def _is_allowed(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.allowed)

    def rule(self, addr: IPAddress) -> str | None:
        """The rule refusing `addr` ("a loopback address"), or None if it may be reached."""
        embedded = _embedded_ipv4(addr)
        if self._is_allowed(addr) or (embedded is not None and self._is_allowed(embedded[1])):
            return None
        if embedded is not None:
            form, v4 = embedded
            rule = _category(v4)
            if rule is not None:
                return f"the {form} form of {v4}, {rule}"
            if form == "IPv4-mapped":
                return None  # a socket given it connects to the public IPv4 address
        return _category(addr)

    def refusal(self, addr: IPAddress) -> str | None:
        """Why `addr` is refused ("127.0.0.1 is a loopback address"), or None if allowed."""
        rule = self.rule(addr)
        return None if rule is None else f"{addr} is {rule}"

    def host_refusal(self, host: str) -> str | None:
        """Why a host that is a literal address is refused; None for an allowed one or a name
        (a name is checked when it is resolved, at send time)."""
        addr = literal_address(host)
        return None if addr is None else self.refusal(addr)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`; raises httpx.ConnectError if none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        addr = literal_address(str(sockaddr[0]))
        if addr is not None and addr not in found:
            found.append(addr)
    if not found:
        raise httpx.ConnectError(f"cannot resolve {host}: no address")
    return found


class PinnedTransport(httpx.BaseTransport):
    """Checks every address of a request's host against the policy, then connects to the
    first of them; Host header and TLS server name stay the URL's host. Raises
    RefusedDestinationError. Connections are not kept alive: the pool would key them by address,
    and a TLS connection made for one name must not carry a request for another."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise RefusedDestinationError(f"scheme {url.scheme!r} is not http or https")
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = literal_address(host)
        # The resolver is looked up now, not when the transport was made: tests replace it.
        lookup = self.resolver or resolve
        addresses: Sequence[IPAddress] = [literal] if literal else lookup(host, port)
        for addr in addresses:
            rule = self.policy.rule(addr)
            if rule is not None:
                named = f"{addr} is" if literal else f"{host} resolves to {addr},"
                raise RefusedDestinationError(f"{named} {rule}")
        request.url = url.copy_with(host=str(addresses[0]))
        if url.scheme == "https" and literal is None:
            request.extensions = {**request.extensions, "sni_hostname": host}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def guarded_client(policy: EgressPolicy, resolver: Resolver | None = None) -> httpx.Client:
    """An httpx client for user-chosen destinations: pinned and checked, no redirects, no
    proxy or other settings taken from the environment."""
    return httpx.Client(
        transport=PinnedTransport(policy, resolver), follow_redirects=False, trust_env=False
    )

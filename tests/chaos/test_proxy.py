"""The link proxy itself: it passes, goes silent and heals, refuses, and delays."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.proxy import LinkProxy, ProxyLoop


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def link() -> Iterator[LinkProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loop = ProxyLoop()
    proxy = LinkProxy(loop, "echo", server.server_address[:2])  # type: ignore[arg-type]
    yield proxy
    proxy.close()
    loop.close()
    server.shutdown()
    server.server_close()


def _connect(proxy: LinkProxy, timeout: float = 5) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def test_a_passing_link_relays_both_ways(link: LinkProxy) -> None:
    with _connect(link) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"


def test_a_silent_link_holds_everything_until_it_heals(link: LinkProxy) -> None:
    with _connect(link) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        link.go_silent()
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4)  # no reply, and no reset: the connection stays open
        with _connect(link) as late:  # a new connection is accepted, and silent too
            late.sendall(b"late")
            late.settimeout(0.5)
            with pytest.raises(TimeoutError):
                late.recv(4)
            link.heal()
            late.settimeout(5)
            assert late.recv(4) == b"late"
        sock.settimeout(5)
        assert sock.recv(4) == b"held"


def test_a_link_healed_with_reset_breaks_its_connections(link: LinkProxy) -> None:
    with _connect(link) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        link.go_silent()
        link.heal(reset=True)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)


def test_a_refusing_link_refuses_new_connections_only(link: LinkProxy) -> None:
    with _connect(link) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"  # taken from the listening socket's backlog
        link.refuse()
        with pytest.raises(ConnectionRefusedError):
            _connect(link)
        sock.sendall(b"open")
        assert sock.recv(4) == b"open"
    link.accept()
    with _connect(link) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"


def test_a_slow_link_delays_each_way(link: LinkProxy) -> None:
    link.set_latency(0.2)
    with _connect(link) as sock:
        started = time.monotonic()
        sock.sendall(b"slow")
        assert sock.recv(4) == b"slow"
        # A lower bound only: 200 ms there and 200 ms back
        assert time.monotonic() - started >= 0.4

"""A TCP relay per network link, which a test turns silent, refusing or slow.

Each `LinkProxy` listens on a loopback port and relays every connection to one upstream
address; all relays run on one asyncio loop in a background thread (`ProxyLoop`). Modes:

- pass: bytes go through as they come, after `latency_s` each way;
- silent: nothing goes through either way and no connection is closed, as on a link that
  drops every packet: no RST, no FIN, nothing fails fast. New connections are accepted and
  stay silent too. Bytes sent meanwhile are held, as TCP keeps retransmitting them, and are
  delivered when the link heals (`heal()`), as they would be to a connection that outlived the
  partition; `heal(reset=True)` resets every connection instead, as once TCP gave up on them;
- refuse: the port stops listening, so a new connection is refused; open ones carry on.

Only this process's loopback addresses are used. Latency is per chunk, in order: a chunk read
at t is written at t + latency_s (it delays, it does not throttle).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

CHUNK = 65536


class ProxyLoop:
    """One asyncio event loop in a daemon thread, running every relay of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="chaos-proxy")
        self._thread.daemon = True
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run `coro` on the loop and return its result (raises what it raises)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a peer that gave the connection up (a zero linger time)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkProxy:
    """A relay from 127.0.0.1:`port` to `upstream`; its mode is changed from any thread."""

    def __init__(self, loop: ProxyLoop, name: str, upstream: tuple[str, int]) -> None:
        self.name = name
        self.upstream = upstream
        self.latency_s = 0.0
        self._loop = loop
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()  # set while the link passes traffic
        self._conns: set[_Conn] = set()
        self.port = 0
        loop.call(self._listen())
        loop.loop.call_soon_threadsafe(self._open.set)
        self.connections_seen = 0

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    # Controls, from the test's thread.

    def go_silent(self) -> None:
        """Drop everything both ways from now on, keeping every connection open."""
        self._loop.loop.call_soon_threadsafe(self._open.clear)

    def heal(self, reset: bool = False) -> None:
        """Pass traffic again: deliver what was held, or reset the connections (`reset`)."""
        self._loop.call(self._heal(reset))

    def refuse(self) -> None:
        """Refuse new connections (nothing listens on the port); open ones carry on."""
        self._loop.call(self._stop_listening())

    def accept(self) -> None:
        """Take new connections again after `refuse`."""
        self._loop.call(self._listen())

    def set_latency(self, seconds: float) -> None:
        """Delay each chunk by `seconds`, each way (0 for none)."""
        self.latency_s = seconds

    def close(self) -> None:
        self._loop.call(self._close())

    # The loop's side.

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _heal(self, reset: bool) -> None:
        if reset:
            for conn in list(self._conns):
                conn.abort()
            self._conns.clear()
        self._open.set()

    async def _close(self) -> None:
        await self._stop_listening()
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        self._open.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        conn = _Conn(writer)
        self._conns.add(conn)
        try:
            await self._open.wait()  # a silent link: the upstream connection waits for the heal
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)  # the upstream refused: so does the link
            self._conns.discard(conn)
            return
        conn.upstream = up_writer
        conn.tasks = [
            asyncio.ensure_future(self._pump(reader, up_writer, conn)),
            asyncio.ensure_future(self._pump(up_reader, writer, conn)),
        ]

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        """Relay one direction: read, hold for the latency and while silent, write in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, dst))
        try:
            while True:
                data = await src.read(CHUNK)
                await queue.put((time.monotonic() + self.latency_s, data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.IncompleteReadError):
            conn.abort()
        finally:
            sender.cancel()
            self._conns.discard(conn)

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], dst: asyncio.StreamWriter
    ) -> None:
        while True:
            due, data = await queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._open.wait()
            if not data:  # the other side closed: close this one, after what came before
                with contextlib.suppress(OSError):
                    dst.close()
                return
            dst.write(data)
            await dst.drain()

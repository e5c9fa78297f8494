"""HTTP loads on POST /jobs: closed-loop (N clients, each sends as soon as its last answer came)
and open-loop (arrivals at a fixed rate, whatever the answers do).

The multipart bodies are built once per image and sent over plain keep-alive sockets, so the
client spends little CPU per request on a machine it shares with the system under test.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field

from bench.inputs import Input


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str


def multipart(image: Input, pipeline_id: int = 1) -> Body:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="pipeline_id"\r\n\r\n'
        f"{pipeline_id}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="{image.name}"\r\nContent-Type: {image.content_type}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return Body(head + image.data + tail, f"multipart/form-data; boundary={boundary}")


@dataclass
class Sent:
    """One POST /jobs: when it was sent (wall clock), how long it took, what came back."""

    sent_at: float
    latency_s: float
    status: int
    job_id: str | None


@dataclass
class LoadResult:
    sent: list[Sent] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    late: int = 0  # open loop: arrivals sent more than 50 ms after their time
    first: str = ""  # the first refusal's answer, to say why

    @property
    def accepted(self) -> list[Sent]:
        return [each for each in self.sent if each.status == 202 and each.job_id]

    @property
    def job_ids(self) -> list[str]:
        return [each.job_id for each in self.accepted if each.job_id]

    def refused(self) -> dict[str, int]:
        out = dict(self.errors)
        for each in self.sent:
            if each.status != 202:
                out[str(each.status)] = out.get(str(each.status), 0) + 1
        return out


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prebuilt requests: a client of a few lines
    so that the load generator costs little CPU beside the system it measures."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Body) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {body.content_type}\r\nContent-Length: {len(body.content)}\r\n\r\n"
        ).encode()
        self.writer.writelines((head, body.content))
        await self.writer.drain()
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            content = await self.reader.readexactly(int(headers["content-length"]))
        else:  # no length: the body runs to the end of the connection
            content = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close":
            self.close()
        return status, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _address(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


async def _post(conn: Connection, body: Body, result: LoadResult, timeout: float) -> None:
    sent_at, started = time.time(), time.perf_counter()
    try:
        status, content = await asyncio.wait_for(conn.post("/jobs", body), timeout)
    except (
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        TimeoutError,
        ValueError,
    ) as exc:
        conn.close()
        name = type(exc).__name__
        result.errors[name] = result.errors.get(name, 0) + 1
        return
    latency = time.perf_counter() - started
    job_id = json.loads(content).get("job_id") if status == 202 else None
    if status != 202 and not result.first:
        result.first = f"HTTP {status} {content[:300].decode(errors='replace')}"
    result.sent.append(Sent(sent_at, latency, status, job_id))


async def _closed(base_url: str, bodies: list[Body], clients: int, timeout: float) -> LoadResult:
    result = LoadResult()
    queue = list(reversed(bodies))

    async def one_client() -> None:
        conn = Connection(*_address(base_url))
        try:
            while queue:
                await _post(conn, queue.pop(), result, timeout)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - started
    return result


def closed_loop(base_url: str, bodies: list[Body], clients: int, timeout: float = 60) -> LoadResult:
    """Send every body, `clients` at a time."""
    return asyncio.run(_closed(base_url, bodies, clients, timeout))


async def _open(
    base_url: str, bodies: list[Body], rate: float, max_in_flight: int, timeout: float
) -> LoadResult:
    result = LoadResult()
    idle = [Connection(*_address(base_url)) for _ in range(max_in_flight)]

    async def one(body: Body) -> None:
        conn = idle.pop()  # never empty: at most max_in_flight are taken (see below)
        try:
            await _post(conn, body, result, timeout)
        finally:
            idle.append(conn)

    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    for n, body in enumerate(bodies):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            result.late += 1
        while not idle:  # every connection busy: this arrival waits for one
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(one(body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    result.wall_s = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return result


def open_loop(
    base_url: str, bodies: list[Body], rate: float, max_in_flight: int = 128, timeout: float = 60
) -> LoadResult:
    """Send body n at n / rate seconds, not waiting for answers (up to `max_in_flight`)."""
    return asyncio.run(_open(base_url, bodies, rate, max_in_flight, timeout))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of `values`; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(share * len(ordered))))
    return ordered[rank - 1]

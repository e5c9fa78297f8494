"""The body-size limit at the ASGI level: refused before or while the body streams in."""

from __future__ import annotations

import io
import tempfile
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.errors import ApiError
from api.uploads import BodySizeLimit, file_size, image_bytes


class Recorder:
    """An ASGI app that reads the whole body (as FastAPI's form parsing does), then answers 200."""

    def __init__(self) -> None:
        self.received = 0
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        while True:
            message = await receive()
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    scope = {"type": "http", "method": "POST", "path": "/jobs", "headers": headers}
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def status_of(sent: list[Message]) -> int:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


@pytest.mark.anyio
async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    # Given
    inner = Recorder()
    app = BodySizeLimit(inner, max_body=1000, max_file=900)

    # When
    sent = await call(app, [b"x" * 10], [(b"content-length", b"1001")])

    # Then: 413 in the error shape, and the route never ran
    assert status_of(sent) == 413
    assert b'"code":"image_too_large"' in sent[-1]["body"]
    assert b"900 bytes" in sent[-1]["body"]
    assert not inner.called


@pytest.mark.anyio
async def test_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    # Given: no Content-Length; 10 chunks of 300 bytes against a 1000-byte limit
    inner = Recorder()
    app = BodySizeLimit(inner, max_body=1000, max_file=900)

    # When
    sent = await call(app, [b"x" * 300] * 10, [])

    # Then: only our 413 went out, and no more than the limit (plus a chunk) was read
    assert status_of(sent) == 413
    assert inner.received <= 1000


@pytest.mark.anyio
async def test_body_at_the_limit_goes_through() -> None:
    inner = Recorder()
    app = BodySizeLimit(inner, max_body=1000, max_file=900)

    sent = await call(app, [b"x" * 500, b"x" * 500], [(b"content-length", b"1000")])

    assert status_of(sent) == 200
    assert inner.received == 1000


def test_file_of_exactly_the_limit_is_accepted_and_one_byte_more_is_413() -> None:
    file = io.BytesIO(b"x" * 100)
    file.seek(40)
    assert file_size(file, 100) == 100
    assert file.tell() == 0
    with pytest.raises(ApiError) as caught:
        file_size(io.BytesIO(b"x" * 101), 100)
    assert (caught.value.status_code, caught.value.detail.code) == (413, "image_too_large")


@pytest.mark.parametrize("spooled_to_disk", [False, True])
def test_image_bytes_are_the_whole_file_whether_in_memory_or_on_disk(
    spooled_to_disk: bool,
) -> None:
    content = bytes(range(256)) * 5000
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as file:
        file.write(content)
        if spooled_to_disk:
            file.rollover()
        file.seek(0)
        with image_bytes(file) as data:
            assert len(data) == len(content)
            assert data[:300] == content[:300]
            assert data[-5:] == content[-5:]
            assert data.rfind(b"\xff\x00") == content.rfind(b"\xff\x00")
        assert file.tell() == 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

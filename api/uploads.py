"""Uploads: a body-size limit enforced while the body streams in, and the checks on the image.

FastAPI parses a multipart body before the route runs, so the size limit lives at the ASGI
level: a declared Content-Length over the limit is refused before a byte of the body is read,
and a chunked body is counted as it arrives and cut off once it passes the limit. A batch
(`POST /jobs/batch`) may be as large as its most images at their largest; the route still checks
each file against MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, ErrorDetail, error_response
from common.imagetypes import CorruptImageError, ImageFormatError, ImageHeader, parse_formats
from common.imagetypes import read_header as read_image_header
from common.settings import Settings

# Room for the multipart envelope around the file: boundaries, part headers, the other fields.
ENVELOPE_SLACK = 64 * 1024
# And for each more file of a batch: its boundary and part headers.
PART_SLACK = 1024
BATCH_PATH = "/jobs/batch"


def _mib(size: int) -> str:
    return f"{size / 2**20:.4g} MiB"


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    """Answer 413 as soon as a request body is known to be over `max_body` bytes (a batch's:
    `max_batch_body`)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        max_file: int,
        *,
        max_batch_body: int | None = None,
        max_batch_files: int = 0,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.message = (
            f"the upload is larger than the limit of {max_file} bytes ({_mib(max_file)}); "
            "send a smaller image"
        )
        self.max_batch_body = max_body if max_batch_body is None else max_batch_body
        self.batch_message = (
            f"the batch is larger than {max_batch_files} images of {max_file} bytes "
            f"({_mib(self.max_batch_body)} in all); send fewer or smaller images"
        )

    def _limit(self, scope: Scope) -> tuple[int, ErrorDetail]:
        if scope["path"] == BATCH_PATH:
            return self.max_batch_body, ErrorDetail(
                code="batch_too_large", message=self.batch_message
            )
        return self.max_body, ErrorDetail(code="image_too_large", message=self.message)

    async def _refuse(
        self, detail: ErrorDetail, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await error_response(413, detail, {"Connection": "close"})(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body, refusal = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            await self._refuse(refusal, scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app made of the cut-off body; our 413 goes out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(refusal, scope, receive, send)


def install_upload_limits(app: FastAPI, settings: Settings) -> None:
    parse_formats(settings.accepted_image_formats)  # a typo in the setting fails at start-up
    files = settings.max_batch_images
    app.add_middleware(
        BodySizeLimit,
        max_body=settings.max_upload_bytes + ENVELOPE_SLACK,
        max_file=settings.max_upload_bytes,
        max_batch_body=files * (settings.max_upload_bytes + PART_SLACK) + ENVELOPE_SLACK,
        max_batch_files=files,
    )


def file_size(file: IO[bytes], limit: int) -> int:
    """The file's size in bytes, its position back at the start; 413 if it is over `limit`."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if size > limit:
        raise ApiError(
            413,
            "image_too_large",
            f"the image is larger than the limit of {limit} bytes ({_mib(limit)}); "
            "send a smaller image",
        )
    return size


@contextmanager
def image_bytes(file: IO[bytes]) -> Iterator[bytes]:
    """The bytes of an upload, to read its header from.

    An upload the multipart parser spooled to disk (over 1 MiB) is mapped rather than read: the
    header check touches a few of its pages, so a large upload does not make the process grow.
    """
    fileno = -1
    if getattr(file, "_rolled", True):  # not a SpooledTemporaryFile still in memory
        with suppress(OSError, AttributeError):  # a file object without a descriptor
            fileno = file.fileno()
    empty = file.seek(0, os.SEEK_END) == 0
    file.seek(0)
    if fileno < 0 or empty:  # in memory already (an empty file cannot be mapped)
        yield file.read()
        file.seek(0)
        return
    with mmap.mmap(fileno, 0, access=mmap.ACCESS_READ) as mapped:
        # A read-only map answers the slicing, indexing and rfind that the header parser uses.
        yield cast(bytes, mapped)


def check_image(data: bytes, settings: Settings) -> ImageHeader:
    """The image's format and size from its header, or a 4xx saying what to change."""
    accepted = parse_formats(settings.accepted_image_formats)
    names = ", ".join(sorted(t.removeprefix("image/").upper() for t in accepted))
    if not data:
        raise ApiError(422, "empty_image", "the image file is empty; send the image's bytes")
    try:
        header = read_image_header(data)
    except ImageFormatError as exc:
        raise ApiError(
            415,
            "unsupported_image_type",
            f"the file is not an image in a supported format ({names}); the format is "
            "recognised by the file's bytes, not its name or declared type",
        ) from exc
    except CorruptImageError as exc:
        raise ApiError(
            422, "corrupt_image", f"the image is damaged or incomplete ({exc}); send the whole file"
        ) from exc
    if header.content_type not in accepted:
        raise ApiError(
            415,
            "unsupported_image_type",
            f"{header.format_name} images are not accepted here; send one of {names}",
        )
    side, pixels = settings.max_image_side, settings.max_image_pixels
    if header.width > side or header.height > side or header.pixels > pixels:
        raise ApiError(
            413,
            "image_dimensions_too_large",
            f"the image is {header.width}x{header.height} pixels; the limits are {side} pixels "
            f"a side and {pixels} pixels in all ({pixels / 1e6:g} megapixels); scale it down",
        )
    return header

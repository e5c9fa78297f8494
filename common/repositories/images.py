"""The images of a job: the upload (original) and what steps made of it (processed, ...)."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from sqlalchemy import select

from common.models import JobImage, utcnow
from common.repositories._base import Repository, binary_row

ORIGINAL = "original"
PROCESSED = "processed"


@dataclass(frozen=True)
class StoredImage:
    id: int
    variant: str
    content_type: str
    size: int
    data: bytes = b""  # empty unless asked for


class ImageRepository(Repository):
    def put(self, job_id: uuid.UUID, variant: str, content_type: str, data: bytes) -> None:
        self._upsert(
            JobImage,
            {
                "job_id": job_id,
                "variant": variant,
                "content_type": content_type,
                "size": len(data),
                "data": data,
                "created_at": utcnow(),
            },
            key=("job_id", "variant"),
            update=("content_type", "size", "data", "created_at"),
        )

    def put_file(
        self, job_id: uuid.UUID, variant: str, content_type: str, file: IO[bytes], size: int
    ) -> None:
        """Insert a new image from a file of `size` bytes, read from its current position.

        The bytes stream in through binary COPY, a chunk at a time, so a large image is never
        held in memory whole (nor as the hex text a bytea parameter would become, which
        PostgreSQL parses three times slower than it stores binary).
        """
        dbapi = self.session.connection().connection.driver_connection
        assert dbapi is not None
        columns = "job_images (job_id, variant, content_type, size, data, created_at)"
        with (
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY {columns} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            for chunk in _binary_copy_row(job_id, variant, content_type, file, size):
                copy.write(chunk)

    def get(self, job_id: uuid.UUID, variant: str) -> JobImage | None:
        return self.session.scalar(
            select(JobImage).where(JobImage.job_id == job_id, JobImage.variant == variant)
        )

    # The image the steps work on: the processed one once a step made it, else the original; one
    # row, so the original's bytes are not read once a processed image exists. psycopg 3 runs it
    # with binary results (see `binary_row`).
    _CURRENT_IMAGE = (
        "SELECT id, variant, content_type, size, CASE WHEN %(with_data)s THEN data END AS data "
        "FROM job_images WHERE job_id = %(job_id)s AND variant IN ('original', 'processed') "
        "ORDER BY variant = 'processed' DESC LIMIT 1"
    )

    def current(self, job_id: uuid.UUID, *, with_data: bool = False) -> StoredImage | None:
        """The image the job's steps work on: the processed one once a step produced it; its
        bytes only if `with_data`."""
        params = {"job_id": job_id, "with_data": with_data}
        row = binary_row(self.session, self._CURRENT_IMAGE, params)
        if row is None:
            return None
        return StoredImage(row.id, row.variant, row.content_type, row.size, row.data or b"")


_COPY_CHUNK = 64 * 1024


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _binary_copy_row(
    job_id: uuid.UUID, variant: str, content_type: str, file: IO[bytes], size: int
) -> Iterator[bytes]:
    """A job_images row in COPY's binary format, its image read from `file` a chunk at a time:
    the signature and header, then the row's six fields, each its length and its bytes (uuid:
    16 bytes; text: UTF-8; int4; bytea: as is; timestamptz: microseconds since 2000), then the
    end marker."""

    def field(value: bytes) -> bytes:
        return struct.pack("!i", len(value)) + value

    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    yield (
        struct.pack("!h", 6)
        + field(job_id.bytes)
        + field(variant.encode())
        + field(content_type.encode())
        + field(struct.pack("!i", size))
        + struct.pack("!i", size)
    )
    left = size
    while left > 0:
        chunk = file.read(min(left, _COPY_CHUNK))
        if not chunk:
            raise ValueError(f"the file ended {left} bytes early")
        left -= len(chunk)
        yield chunk
    micros = (utcnow() - _PG_EPOCH) // timedelta(microseconds=1)
    yield field(struct.pack("!q", micros)) + struct.pack("!h", -1)

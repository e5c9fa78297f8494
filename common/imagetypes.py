"""Recognise image formats by their first bytes, without decoding anything."""

from __future__ import annotations

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

# A BMP's 14-byte file header is followed by an info header of one of these sizes; checking it
# keeps text that happens to start with "BM" out.
_BMP_INFO_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}

SUPPORTED = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff")


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type of an image from its first 18 or more bytes, or None if not one we accept."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 18 and head[:2] == b"BM":
        info_size = int.from_bytes(head[14:18], "little")
        return "image/bmp" if info_size in _BMP_INFO_SIZES else None
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None

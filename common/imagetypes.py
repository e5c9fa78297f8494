"""Recognise an image by its bytes and read its size from its header, without decoding it.

The gateway refuses what a worker could not or should not decode before anything is stored. It
does so in pure Python, reading only headers and a few structural markers, so that no image
decoder (and no decoder's memory appetite or CVE) sits in the request path.

Why not a library: Pillow's lazy `Image.open` and `imagesize` both read the size from the
header, and stop there. Neither sees a file cut short or a header that lies, which is what the
checks kept here are for (common.imageformats, one function per format):
- JPEG: the frame header comes before the first scan, and an end-of-image marker follows it
  (`Image.open` stops at the first scan; a cut file fails only in `load()`, in the worker);
- PNG: the IHDR checksum and fields, chunks up to IEND, at least one IDAT (`Image.open`
  stops at the first IDAT; imagesize checks no checksum);
- GIF: the first frame's extent, as Pillow grows the canvas to it (imagesize gives the logical
  screen only), and the trailer;
- WebP: the RIFF length and chunk bounds, and image data under VP8X;
- BMP: the info header's fields, and every uncompressed pixel row present;
- TIFF: width, height and the strips or tiles lying inside the file (`Image.open` reads the
  first directory's tags without checking where its strips point).
The signatures are sniffed here too, since `Image.open` would import Pillow's decoders to do it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from common.imageformats import PARSERS, CorruptImageError, ImageFormatError

FORMATS = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}
SUPPORTED = tuple(FORMATS.values())

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


@dataclass(frozen=True)
class ImageHeader:
    content_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def format_name(self) -> str:
        return self.content_type.removeprefix("image/").upper()


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


@lru_cache
def parse_formats(names: str) -> frozenset[str]:
    """MIME types from comma-separated format names ("jpeg,png"); ValueError if one is unknown."""
    chosen = {name.strip().lower() for name in names.split(",") if name.strip()}
    chosen = {"jpeg" if name == "jpg" else "tiff" if name == "tif" else name for name in chosen}
    unknown = sorted(chosen - FORMATS.keys())
    if unknown or not chosen:
        raise ValueError(f"unknown image formats {unknown}; choose from {', '.join(FORMATS)}")
    return frozenset(FORMATS[name] for name in chosen)


def read_header(data: bytes) -> ImageHeader:
    """The format and size of an image; ImageFormatError or CorruptImageError if it has none."""
    content_type = sniff_image_type(data[:32])
    if content_type is None:
        raise ImageFormatError("not an image in a supported format")
    name = content_type.removeprefix("image/").upper()
    try:
        width, height = PARSERS[content_type](data)
    except (struct.error, IndexError) as exc:
        raise CorruptImageError(f"{name} data is cut short") from exc
    except CorruptImageError as exc:
        raise CorruptImageError(f"{name}: {exc}") from exc
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"{name}: the header gives a size of {width}x{height} pixels")
    return ImageHeader(content_type, width, height)


def limit_decoder_pixels(max_pixels: int) -> None:
    """Make Pillow, in this process, warn above `max_pixels` and refuse twice that many.

    The gateway refuses anything over the limit from the header; this is the worker's second
    fence, for a file whose header a decoder reads differently from ours.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels


__all__ = [
    "FORMATS",
    "SUPPORTED",
    "CorruptImageError",
    "ImageFormatError",
    "ImageHeader",
    "limit_decoder_pixels",
    "parse_formats",
    "read_header",
    "sniff_image_type",
]

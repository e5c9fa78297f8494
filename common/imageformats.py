"""One function per image format: walk its structure and return (width, height) in pixels.

Each raises CorruptImageError for a malformed or cut-short file, or struct.error / IndexError
when the bytes end inside a field (common.imagetypes.read_header turns those into
CorruptImageError). Why these checks are ours and not a library's: see common.imagetypes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable


class ImageFormatError(ValueError):
    """The bytes are not an image in a format we know."""


class CorruptImageError(ValueError):
    """The bytes start like a known format but are malformed or cut short."""


# Walking chunks or blocks costs a Python loop per block; real files have far fewer than this,
# and a hostile one made of empty blocks must not keep a request thread busy for seconds.
_MAX_BLOCKS = 200_000


# --- JPEG: walk the marker segments up to the first scan; the size is in the SOFn segment.

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}


def _jpeg(data: bytes) -> tuple[int, int]:
    pos, size = 2, None
    for _ in range(_MAX_BLOCKS):
        if data[pos] != 0xFF:
            raise CorruptImageError(f"expected a marker at byte {pos}")
        while data[pos] == 0xFF:  # fill bytes may pad any marker
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xD9:
            raise CorruptImageError("the file ends before any image data")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or marker in (0x00, 0xD8):
            raise CorruptImageError(f"malformed marker segment at byte {pos - 2}")
        if marker in _JPEG_SOF and size is None:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = (width, height)
        if marker == 0xDA:
            if size is None:
                raise CorruptImageError("image data comes before the frame header")
            # Entropy-coded data escapes 0xFF, so FF D9 after the first scan is the real end.
            if data.rfind(b"\xff\xd9", pos + length) < 0:
                raise CorruptImageError("no end-of-image marker: the file is cut short")
            return size
        pos += length
    raise CorruptImageError("too many segments")


# --- PNG: IHDR (with its checksum) first, then chunks up to IEND, with at least one IDAT.

_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}


def _png(data: bytes) -> tuple[int, int]:
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        raise CorruptImageError("the first chunk is not an IHDR header")
    (crc,) = struct.unpack_from(">I", data, 29)
    if zlib.crc32(data[12:29]) != crc:
        raise CorruptImageError("the IHDR header fails its checksum")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", data, 16
    )
    if width >= 2**31 or height >= 2**31:
        raise CorruptImageError(f"impossible size {width}x{height}")
    if depth not in _PNG_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        raise CorruptImageError("the IHDR header has invalid fields")
    pos, has_data = 33, False
    for _ in range(_MAX_BLOCKS):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if not kind.isalpha() or length >= 2**31:
            raise CorruptImageError(f"malformed chunk at byte {pos}")
        if end > len(data):
            raise CorruptImageError(f"the {kind.decode()} chunk is cut short")
        has_data = has_data or kind == b"IDAT"
        if kind == b"IEND":
            if not has_data:
                raise CorruptImageError("no image data (IDAT)")
            return width, height
        pos = end
    raise CorruptImageError("too many chunks")


# --- GIF: the logical screen, grown by the first frame's extent (as Pillow does), and a trailer.


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    for _ in range(_MAX_BLOCKS):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise CorruptImageError("too many data blocks")


def _gif(data: bytes) -> tuple[int, int]:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    for _ in range(_MAX_BLOCKS):
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # the first image descriptor
            left, top, frame_w, frame_h, frame_flags = struct.unpack_from("<HHHHB", data, pos + 1)
            if frame_w == 0 or frame_h == 0:
                raise CorruptImageError("the first frame has no pixels")
            pos += 10 + (3 * (2 << (frame_flags & 7)) if frame_flags & 0x80 else 0)
            _skip_sub_blocks(data, pos + 1)  # after the LZW code size
            if not data[-4096:].rstrip(b"\x00").endswith(b";"):
                raise CorruptImageError("no trailer: the file is cut short")
            return max(width, left + frame_w), max(height, top + frame_h)
        elif block == 0x3B:
            raise CorruptImageError("no frame")
        else:
            raise CorruptImageError(f"unknown block 0x{block:02x} at byte {pos}")
    raise CorruptImageError("too many blocks")


# --- WebP: RIFF container; the size is in the VP8 frame header, the VP8L header or VP8X.


def _webp(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if end > len(data):
        raise CorruptImageError("the RIFF container is cut short")
    kind, size = struct.unpack_from("<4sI", data, 12)
    body = 20
    if body + size > end:
        raise CorruptImageError(f"the {kind.decode(errors='replace')} chunk is cut short")
    if kind == b"VP8 ":
        if data[body + 3 : body + 6] != b"\x9d\x01\x2a":
            raise CorruptImageError("bad VP8 frame header")
        width, height = struct.unpack_from("<HH", data, body + 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        if data[body] != 0x2F:
            raise CorruptImageError("bad VP8L signature")
        (bits,) = struct.unpack_from("<I", data, body + 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        width = int.from_bytes(data[body + 4 : body + 7], "little") + 1
        height = int.from_bytes(data[body + 7 : body + 10], "little") + 1
        pos, kinds = 12, set()
        for _ in range(_MAX_BLOCKS):
            if pos + 8 > end:
                break
            kind, size = struct.unpack_from("<4sI", data, pos)
            if pos + 8 + size > end:
                raise CorruptImageError(f"the {kind.decode(errors='replace')} chunk is cut short")
            kinds.add(kind)
            pos += 8 + size + (size & 1)
        if not kinds & {b"VP8 ", b"VP8L", b"ANMF"}:
            raise CorruptImageError("no image data")
        return width, height
    raise CorruptImageError(f"unknown first chunk {kind!r}")


# --- BMP: the info header; uncompressed pixel rows must all be there.

_BMP_DEPTHS = {1, 2, 4, 8, 16, 24, 32}


def _bmp(data: bytes) -> tuple[int, int]:
    (offset,) = struct.unpack_from("<I", data, 10)
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size == 12:
        width, height, planes, depth = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        width, height, planes, depth = struct.unpack_from("<iiHH", data, 18)
        compression = struct.unpack_from("<I", data, 30)[0] if info_size >= 20 else 0
    height = abs(height)  # negative: rows stored top-down
    if planes != 1 or depth not in _BMP_DEPTHS or width < 0:
        raise CorruptImageError("the info header has invalid fields")
    if not 14 + info_size <= offset < len(data):
        raise CorruptImageError("the pixel data is missing or cut short")
    if compression in (0, 3, 6):  # uncompressed (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS)
        row = (width * depth + 31) // 32 * 4
        if offset + row * height > len(data):
            raise CorruptImageError("the pixel rows are cut short")
    return width, height


# --- TIFF: the first IFD; width, height and the strips or tiles, which must lie in the file.

_TIFF_TYPES = {3: "H", 4: "I"}
_TIFF_TAGS = (256, 257, 273, 279, 324, 325)


def _tiff_values(data: bytes, order: str, entry: int) -> tuple[int, ...]:
    kind, count = struct.unpack_from(f"{order}HI", data, entry + 2)
    code = _TIFF_TYPES.get(kind)
    if code is None or count == 0 or count > len(data):
        raise CorruptImageError("a size or strip tag has an invalid type or count")
    fmt = f"{order}{count}{code}"
    at = entry + 8
    if struct.calcsize(fmt) > 4:
        (at,) = struct.unpack_from(f"{order}I", data, entry + 8)
    return struct.unpack_from(fmt, data, at)


def _tiff(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(f"{order}I", data, 4)
    (count,) = struct.unpack_from(f"{order}H", data, ifd)
    if ifd < 8 or count == 0:
        raise CorruptImageError("the first directory is missing")
    if ifd + 2 + 12 * count + 4 > len(data):  # the entries, then the next directory's offset
        raise CorruptImageError("the first directory is cut short")
    tags: dict[int, tuple[int, ...]] = {}
    for index in range(count):
        entry = ifd + 2 + 12 * index
        (tag,) = struct.unpack_from(f"{order}H", data, entry)
        if tag in _TIFF_TAGS:
            tags[tag] = _tiff_values(data, order, entry)
    if 256 not in tags or 257 not in tags:
        raise CorruptImageError("the width or height tag is missing")
    offsets, sizes = tags.get(273) or tags.get(324), tags.get(279) or tags.get(325)
    if not offsets or not sizes or len(offsets) != len(sizes):
        raise CorruptImageError("the strip or tile tags are missing")
    if max(at + size for at, size in zip(offsets, sizes, strict=True)) > len(data):
        raise CorruptImageError("the image data is cut short")
    return tags[256][0], tags[257][0]


PARSERS: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "image/jpeg": _jpeg,
    "image/png": _png,
    "image/gif": _gif,
    "image/webp": _webp,
    "image/bmp": _bmp,
    "image/tiff": _tiff,
}

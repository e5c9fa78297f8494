"""A copy of an image file without the metadata that can stop Pillow from opening it.

Not a step. Pillow reads some metadata while it opens a file and gives up on the whole image
when that metadata is malformed (an ICC_PROFILE or Adobe segment cut short, a truncated pHYs
chunk...), although the pixels are fine. The pixel steps then try once more with this copy.

What is dropped, per container (what carries pixels, or how to turn them, is kept):
- JPEG: every APPn and COM segment except APP1 (EXIF, XMP: Pillow keeps their bytes and reads
  them only when asked, leniently) and a whole APP14 Adobe segment (the colour transform of
  CMYK and YCCK data).
- PNG: every ancillary chunk except tRNS (transparency), eXIf, tEXt, zTXt and iTXt (EXIF and
  XMP; Pillow reads them leniently).
Other formats are returned as None: nothing Pillow reads at open has been seen to fail there.
"""

from __future__ import annotations

import struct

_JPEG_SOI = b"\xff\xd8"
_APP1, _APP14, _COM, _SOS = 0xE1, 0xEE, 0xFE, 0xDA
_ADOBE_LENGTH = 12  # "Adobe", version, two flag words and the transform byte
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = frozenset({b"tRNS", b"eXIf", b"tEXt", b"zTXt", b"iTXt"})

# A real file has far fewer segments; a hostile one must not keep a worker looping.
_MAX_BLOCKS = 100_000


def without_metadata(data: bytes) -> bytes | None:
    """`data` with the metadata listed in this module's docstring removed; None for a format
    this module does not rewrite or for bytes too damaged to walk."""
    try:
        if data.startswith(_JPEG_SOI):
            return _jpeg(data)
        if data.startswith(_PNG_SIGNATURE):
            return _png(data)
    except (struct.error, IndexError):
        return None
    return None


def _jpeg_dropped(marker: int, body: bytes) -> bool:
    if marker == _COM:
        return True
    if not 0xE0 <= marker <= 0xEF or marker == _APP1:
        return False
    return not (marker == _APP14 and body.startswith(b"Adobe") and len(body) >= _ADOBE_LENGTH)


def _jpeg(data: bytes) -> bytes | None:
    kept = [_JPEG_SOI]
    pos = 2
    for _ in range(_MAX_BLOCKS):
        if data[pos] != 0xFF:
            return None
        start = pos
        while data[pos] == 0xFF:  # fill bytes may pad any marker
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            kept.append(data[start:pos])
            continue
        (length,) = struct.unpack_from(">H", data, pos)
        end = pos + length
        if length < 2 or end > len(data):
            return None
        if marker == _SOS:  # the scan and all that follows it is image data: kept whole
            kept.append(data[start:])
            return b"".join(kept)
        if not _jpeg_dropped(marker, data[pos + 2 : end]):
            kept.append(data[start:end])
        pos = end
    return None


def _png(data: bytes) -> bytes | None:
    kept = [data[:8]]
    pos = 8
    for _ in range(_MAX_BLOCKS):
        if pos >= len(data):
            return b"".join(kept)
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        ancillary = kind[:1].islower()
        if not ancillary or kind in _PNG_KEPT:
            kept.append(data[pos:end])
        if kind == b"IEND":
            return b"".join(kept)
        pos = end
    return None

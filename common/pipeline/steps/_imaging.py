"""What the pixel steps share: decode an image whatever its metadata, turn it upright, encode a
JPEG.

Not a step. The rules, the same for every pixel step and every format:
- Orientation is read in one place, orientation_of, from every source Pillow reads it from (the
  EXIF block, the TIFF Orientation tag, the XMP packet), and applied once, with the transposes
  of ImageOps.exif_transpose. It is read after decoding: Pillow (11.2 and later) turns a TIFF
  upright while decoding it and then drops its orientation, so nothing is turned twice.
- Metadata never fails an image whose pixels decode: an unreadable EXIF block is ignored, and
  metadata that stops Pillow from opening the file is dropped and the file tried again
  (see _metadata).
- The JPEG written carries none of the input's metadata.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from PIL import ExifTags, Image, UnidentifiedImageError

from common.pipeline.step import StepError
from common.pipeline.steps._metadata import without_metadata

JPEG = "image/jpeg"
DEFAULT_QUALITY = 90

# What Pillow raises for bytes it cannot make pixels of.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# What reading a malformed EXIF block raises (a cut-short block, a header that is not TIFF...).
METADATA_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error)

# ImageOps.exif_transpose's table: orientation -> the transpose that shows the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Orientations that swap width and height once applied.
TRANSPOSED = frozenset({5, 6, 7, 8})
# Image.getexif's own reading of an XMP packet, for when the EXIF block beside it is unreadable.
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')

T = TypeVar("T")


def orientation_of(img: Image.Image) -> int:
    """The image's orientation, 1 to 8, as Image.getexif gives it (EXIF block, TIFF tag, XMP);
    1 when none is given or the value is not one of those."""
    try:
        value: Any = img.getexif().get(ExifTags.Base.Orientation, 1)
    except METADATA_ERRORS:
        value = _xmp_orientation(img.info)
    return value if type(value) is int and 1 <= value <= 8 else 1


def _xmp_orientation(info: Mapping[Any, Any]) -> int:
    packet = info.get("XML:com.adobe.xmp") or info.get("xmp")
    if isinstance(packet, str):
        packet = packet.encode(errors="replace")
    found = _XMP_ORIENTATION.search(packet) if isinstance(packet, bytes) else None
    return int(found[2]) if found else 1


def turned(img: Image.Image, orientation: int) -> Image.Image:
    """`img` transposed as `orientation` says (the image itself for 1)."""
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def decode_error(exc: BaseException) -> StepError:
    """The StepError every pixel step raises for bytes Pillow cannot make pixels of."""
    if isinstance(exc, UnidentifiedImageError):  # its message holds the file object's repr
        return StepError("cannot decode the image: cannot identify its format (not an image?)")
    return StepError(f"cannot decode the image: {exc}")


def _opened(data: bytes, work: Callable[[Image.Image], T]) -> T:
    with Image.open(io.BytesIO(data)) as opened:
        return work(opened)


def decode(data: bytes, work: Callable[[Image.Image], T]) -> T:
    """`work` applied to the opened (not yet loaded) image; if opening or decoding fails, tried
    once more without the metadata _metadata drops. StepError if the pixels cannot be had."""
    try:
        return _opened(data, work)
    except Image.DecompressionBombError as exc:
        raise decode_error(exc) from exc
    except DECODE_ERRORS as exc:
        first = exc
    bare = without_metadata(data)
    if bare is not None and bare != data:
        try:
            return _opened(bare, work)
        except DECODE_ERRORS:
            pass
    raise decode_error(first) from first


@contextmanager
def decoding() -> Iterator[None]:
    """Turn a Pillow error (while encoding) into the StepError of an undecodable image."""
    try:
        yield
    except DECODE_ERRORS as exc:
        raise decode_error(exc) from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """`img` as 8-bit RGB: wide grey scaled to its real range, transparency over white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Wide grey: scale the real range to 8 bits instead of clipping everything to white.
        # As 32-bit floats first: getextrema() refuses some 16-bit layouts (e.g. I;16B).
        wide = img.convert("F")
        low, high = cast(tuple[float, float], wide.getextrema())
        scale = 255.0 / (high - low) if high > low else 0.0
        img = wide.point(lambda v: (v - low) * scale).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _upright_rgb(opened: Image.Image) -> Image.Image:
    opened.load()  # first: decoding may turn the image already (TIFF), see the module's doc
    rgb = to_rgb(turned(opened, orientation_of(opened)))
    rgb.load()
    return rgb


def load_upright_rgb(data: bytes) -> Image.Image:
    """The image's first frame as RGB pixels, turned upright; StepError if undecodable."""
    return decode(data, _upright_rgb)


def to_jpeg(img: Image.Image, quality: int = DEFAULT_QUALITY) -> bytes:
    """`img` as a JPEG with no metadata (not even a comment the input carried)."""
    out = io.BytesIO()
    with decoding():
        # Pillow would copy the input's comment (GIF, JPEG) unless told one.
        img.save(out, "JPEG", quality=quality, optimize=False, comment=b"")
    return out.getvalue()

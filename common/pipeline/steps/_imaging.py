"""What the pixel steps share: decode an upright image, map decoder errors, encode a JPEG.

Not a step. The RGB conversion is image.fit's, so every step treats odd modes (16-bit grey,
palette with transparency, CMYK) the same way.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps

from common.pipeline.step import StepError
from common.pipeline.steps.image_fit import _to_rgb

JPEG = "image/jpeg"
DEFAULT_QUALITY = 90

# What Pillow raises for bytes it cannot make pixels of.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@contextmanager
def decoding() -> Iterator[None]:
    """Turn a decoder error into the StepError image.fit@v1 raises for the same input."""
    try:
        yield
    except DECODE_ERRORS as exc:
        raise StepError(f"cannot decode the image: {exc}") from exc


def load_upright_rgb(data: bytes) -> Image.Image:
    """The image's first frame as RGB pixels, turned as its EXIF orientation says."""
    with decoding(), Image.open(io.BytesIO(data)) as opened:
        rgb = _to_rgb(ImageOps.exif_transpose(opened))
        rgb.load()
        return rgb


def to_jpeg(img: Image.Image, quality: int = DEFAULT_QUALITY) -> bytes:
    out = io.BytesIO()
    with decoding():
        img.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()

"""Test images made on the spot with Pillow: photo-like noise and gradients, odd modes, EXIF."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def photo(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """An RGB image that compresses like a photo: a gradient, shapes and noise."""
    rng = random.Random(seed)
    gradient = Image.linear_gradient("L").resize((width, height))
    base = Image.merge(
        "RGB",
        (
            gradient,
            gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
            Image.new("L", (width, height), rng.randrange(256)),
        ),
    )
    draw = ImageDraw.Draw(base)
    for _ in range(8):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(10, max(11, width // 3)), rng.randrange(10, max(11, height // 3))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + w, y + h), fill=colour)
    # Seeded noise (Image.effect_noise ignores any seed): the same seed gives the same bytes.
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    return Image.blend(base, noise, 0.15)


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def jpeg(
    width: int = 640, height: int = 480, seed: int = 0, orientation: int | None = None
) -> bytes:
    img = photo(width, height, seed)
    if orientation is None:
        return encode(img, "JPEG", quality=85)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=85, exif=exif.tobytes())


def png(width: int = 320, height: int = 240, seed: int = 0, mode: str = "RGB") -> bytes:
    return encode(photo(width, height, seed).convert(mode), "PNG")


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def solid(width: int, height: int, colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    """A one-colour image; unlike photo(), the same arguments always give the same bytes."""
    return encode(Image.new("RGB", (width, height), colour), fmt)

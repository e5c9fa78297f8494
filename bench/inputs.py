"""The benchmark's images, drawn with Pillow from fixed seeds: the same bytes on every run.

Photo-like means gradients, shapes and a little softened noise, so that a 1920x1080 JPEG at
quality 90 weighs about 300 KB, as a phone photo scaled for the web does.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

# The largest accepted image: under MAX_IMAGE_PIXELS (50 MP) and MAX_UPLOAD_BYTES (20 MiB).
BIG_SIZE = (8660, 5773)
BIG_JPEG_MAX_BYTES = int(19.5 * 2**20)

# The kinds of image in the job mix.
HD, VGA, PNG = "jpeg-1920x1080", "jpeg-640x480", "png-1024x768"


@dataclass(frozen=True)
class Input:
    name: str
    data: bytes
    content_type: str
    size: tuple[int, int]


def photo(
    width: int, height: int, seed: int, noise: float = 0.08, blur: float = 0.7
) -> Image.Image:
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
    for _ in range(30):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(10, width // 3), rng.randrange(10, height // 3)
        draw.ellipse((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
    if not noise:
        return base
    grain = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    if blur:
        grain = grain.filter(ImageFilter.GaussianBlur(blur))
    return Image.blend(base, grain, noise)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _jpeg(name: str, width: int, height: int, seed: int) -> Input:
    data = encode(photo(width, height, seed), "JPEG", quality=90)
    return Input(name, data, "image/jpeg", (width, height))


def _png(name: str, width: int, height: int, seed: int) -> Input:
    data = encode(photo(width, height, seed), "PNG", compress_level=6)
    return Input(name, data, "image/png", (width, height))


def mix_pool() -> dict[str, list[Input]]:
    """The images of the job mix, by kind."""
    return {
        HD: [_jpeg(f"hd-{s}.jpg", 1920, 1080, s) for s in range(12)],
        VGA: [_jpeg(f"vga-{s}.jpg", 640, 480, 100 + s) for s in range(6)],
        PNG: [_png(f"png-{s}.png", 1024, 768, 200 + s) for s in range(3)],
    }


# Of every 10 jobs: 7 HD JPEGs, 2 VGA JPEGs, 1 PNG, interleaved so any slice has the same mix.
MIX_PATTERN: tuple[str, ...] = (HD, HD, HD, VGA, HD, HD, PNG, HD, HD, VGA)


def job_mix(pool: dict[str, list[Input]], count: int) -> list[Input]:
    seen = dict.fromkeys(pool, 0)
    out = []
    for n in range(count):
        kind = MIX_PATTERN[n % len(MIX_PATTERN)]
        out.append(pool[kind][seen[kind] % len(pool[kind])])
        seen[kind] += 1
    return out


def mix_shares() -> dict[str, float]:
    return {kind: MIX_PATTERN.count(kind) / len(MIX_PATTERN) for kind in dict.fromkeys(MIX_PATTERN)}


def big_jpeg() -> Input:
    """About 19 MB: heavy noise, the highest quality that stays under BIG_JPEG_MAX_BYTES."""
    img = photo(*BIG_SIZE, seed=7, noise=0.12, blur=0)
    for quality in range(93, 60, -2):
        data = encode(img, "JPEG", quality=quality)
        if len(data) <= BIG_JPEG_MAX_BYTES:
            return Input(f"big-q{quality}.jpg", data, "image/jpeg", BIG_SIZE)
    raise RuntimeError("cannot make a 50 MP JPEG under the upload limit")


def big_png() -> Input:
    """50 MP without noise (noise would take it past the upload limit); decodes to 150 MB."""
    data = encode(photo(*BIG_SIZE, seed=8, noise=0), "PNG", compress_level=1)
    return Input("big.png", data, "image/png", BIG_SIZE)

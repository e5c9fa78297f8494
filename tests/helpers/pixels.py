"""Images drawn for the pixel steps (grayscale, crop, blur, resize) and checks on what they give
back. Sizes in pixels, colours as RGB tuples of 0-255."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image
from sqlalchemy.orm import Session

from common.pipeline import CarDetection, StepContext
from common.settings import get_settings

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def opened(data: bytes, mode: str | None = None) -> Image.Image:
    """`data` decoded (fully loaded); fails the test unless it is a JPEG (in `mode`, if given)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "JPEG"
    if mode is not None:
        assert img.mode == mode
    return img


def near(pixel: object, colour: tuple[int, ...], tolerance: int = 12) -> bool:
    """Whether `pixel` (a tuple, or one int for a one-channel image) is within `tolerance` of
    `colour` in every channel."""
    pixel = pixel if isinstance(pixel, tuple) else (pixel,)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def quadrants(width: int = 200, height: int = 100) -> Image.Image:
    """Top left red, top right green, bottom left blue, bottom right white."""
    img = Image.new("RGB", (width, height), WHITE)
    half_w, half_h = width // 2, height // 2
    img.paste(RED, (0, 0, half_w, half_h))
    img.paste(GREEN, (half_w, 0, width, half_h))
    img.paste(BLUE, (0, half_h, half_w, height))
    return img


def run(step: object, data: CarDetection) -> CarDetection:
    """`step.run(data)` with a real HTTP client, database session and settings; fails the test
    unless it gives back a CarDetection."""
    with httpx.Client() as http, Session() as session:
        ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=get_settings())
        result = step.run(data, ctx)  # type: ignore[attr-defined]
    assert isinstance(result, CarDetection)
    return result

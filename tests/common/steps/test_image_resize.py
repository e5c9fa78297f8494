"""image.resize on real images made with Pillow."""

from __future__ import annotations

import pytest
from PIL import Image, ImageStat

from common.pipeline.steps.image_fit import Resample
from common.pipeline.steps.image_resize import resize_image
from tests import images
from tests.helpers.pixels import RED, WHITE, near, opened, quadrants


@pytest.mark.parametrize(
    ("size", "target"),
    [((1920, 1080), (640, 640)), ((100, 50), (300, 400)), ((640, 640), (640, 640))],
)
def test_resize_gives_exactly_the_size_asked_for(
    size: tuple[int, int], target: tuple[int, int]
) -> None:
    result = opened(resize_image(images.jpeg(*size), *target))

    assert result.size == target


def test_resize_stretches_without_keeping_the_aspect() -> None:
    data = images.encode(quadrants(200, 100), "PNG")

    result = opened(resize_image(data, 100, 100))

    assert near(result.getpixel((25, 25)), RED)
    assert near(result.getpixel((75, 75)), WHITE)


def test_resize_filter_is_applied() -> None:
    # A one-pixel checkerboard enlarged: nearest keeps hard black and white, bilinear greys.
    board = Image.new("L", (4, 4))
    board.putdata([255 * ((x + y) % 2) for y in range(4) for x in range(4)])
    data = images.encode(board, "PNG")

    nearest = opened(resize_image(data, 64, 64, Resample.NEAREST, quality=95))
    bilinear = opened(resize_image(data, 64, 64, Resample.BILINEAR, quality=95))

    assert ImageStat.Stat(nearest.convert("L")).stddev[0] > 100
    assert ImageStat.Stat(bilinear.convert("L")).stddev[0] < 100

"""image.grayscale on real images made with Pillow."""

from __future__ import annotations

from PIL import Image

from common.pipeline.steps.image_grayscale import grayscale_image
from tests import images
from tests.helpers.pixels import near, opened, quadrants


def test_grayscale_gives_a_one_channel_jpeg_with_the_luma_of_each_colour() -> None:
    data = images.encode(quadrants(), "PNG")

    result = opened(grayscale_image(data))

    assert result.mode == "L"
    assert result.size == (200, 100)
    # ITU-R 601-2 luma: red 76, green 150, blue 29, white 255.
    assert near(result.getpixel((25, 25)), (76,), tolerance=6)
    assert near(result.getpixel((175, 25)), (150,), tolerance=6)
    assert near(result.getpixel((25, 75)), (29,), tolerance=6)
    assert near(result.getpixel((175, 75)), (255,), tolerance=6)


def test_grayscale_keeps_a_transparent_png_white_and_turns_an_exif_rotated_jpeg_upright() -> None:
    rotated = images.jpeg(300, 200, orientation=6)
    transparent = images.encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "PNG")

    assert opened(grayscale_image(rotated)).size == (200, 300)
    assert near(opened(grayscale_image(transparent)).getpixel((10, 10)), (255,), tolerance=3)

"""image.blur on real images made with Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from common.pipeline import CarDetection
from common.pipeline.steps.image_blur import BlurImage, BlurParams, blur_image
from tests import images
from tests.helpers.pixels import BLACK, WHITE, near, opened, run


def test_blur_softens_an_edge_in_proportion_to_the_radius() -> None:
    # Black left half, white right half: the edge is at x = 100.
    img = Image.new("RGB", (200, 60), BLACK)
    img.paste(WHITE, (100, 0, 200, 60))
    data = images.encode(img, "PNG")

    slight, strong = opened(blur_image(data, radius=1)), opened(blur_image(data, radius=8))

    # Beside the edge, a strong blur mixes the two sides; far from it, nothing changes.
    assert near(slight.getpixel((90, 30)), BLACK, tolerance=8)
    assert 30 < strong.getpixel((95, 30))[0] < 128 < strong.getpixel((105, 30))[0] < 225
    assert near(strong.getpixel((10, 30)), BLACK, tolerance=8)
    assert near(strong.getpixel((190, 30)), WHITE, tolerance=8)


def test_blur_keeps_size_and_mean_and_lowers_the_noise() -> None:
    data = images.png(320, 240, seed=3)
    before = ImageStat.Stat(Image.open(io.BytesIO(data)).convert("L"))

    result = opened(blur_image(data, radius=3))

    after = ImageStat.Stat(result.convert("L"))
    assert result.size == (320, 240)
    assert abs(after.mean[0] - before.mean[0]) < 3
    assert after.stddev[0] < before.stddev[0]


def test_blur_radius_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        BlurParams(radius=0)


def test_blur_step_gives_a_jpeg() -> None:
    data = CarDetection(image=images.png(64, 48), content_type="image/png")

    result = run(BlurImage(BlurParams(radius=1.5)), data)

    assert result.content_type == "image/jpeg"
    assert opened(result.image).size == (64, 48)

"""image.fit@v1: any supported image comes out as an upright RGB JPEG within the box."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import ExifTags, Image
from sqlalchemy.orm import Session

from common.pipeline import CarDetection, Detection, StepContext, StepError
from common.pipeline.steps.image_fit import FitImage, FitParams, fit_image
from common.settings import get_settings
from tests import images
from tests.helpers.pixels import BLUE, RED, WHITE, near, opened


def decoded(data: bytes) -> Image.Image:
    """The result opened with Pillow; every result must be an RGB JPEG."""
    return opened(data, "RGB")


def halves(
    width: int, height: int, left: tuple[int, ...], right: tuple[int, ...], mode: str
) -> Image.Image:
    """An image whose left half is one colour and right half another."""
    img = Image.new(mode, (width, height), left)
    img.paste(right, (width // 2, 0, width, height))
    return img


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return images.encode(img, "JPEG", quality=90, exif=exif.tobytes())


# --- size -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param((1920, 1080), (640, 360), id="landscape"),
        pytest.param((1080, 1920), (360, 640), id="portrait"),
        pytest.param((2000, 2000), (640, 640), id="square"),
        pytest.param((300, 200), (300, 200), id="small-not-upscaled"),
    ],
)
def test_jpeg_is_fitted_within_640_keeping_its_aspect(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    data = images.jpeg(*size)

    result = decoded(fit_image(data))

    assert result.size == expected


def test_custom_box_fits_the_tighter_side() -> None:
    data = images.jpeg(1920, 1080)

    result = decoded(fit_image(data, max_width=200, max_height=100))

    assert result.size == (178, 100)


def test_lower_quality_gives_a_smaller_file() -> None:
    data = images.jpeg(1920, 1080)

    low, high = fit_image(data, quality=10), fit_image(data, quality=95)

    assert len(low) < len(high) / 3
    assert decoded(low).size == decoded(high).size == (640, 360)


# --- orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [(1, (640, 360)), (3, (640, 360)), (5, (360, 640)), (6, (360, 640)), (8, (360, 640))],
)
def test_exif_orientation_is_applied_to_the_size(
    orientation: int, expected: tuple[int, int]
) -> None:
    data = images.jpeg(1920, 1080, orientation=orientation)

    result = decoded(fit_image(data))

    assert result.size == expected


def test_orientation_6_turns_the_picture_clockwise_and_drops_the_tag() -> None:
    # Stored left half red, right half blue; shown upright, red is on top.
    data = with_orientation(halves(400, 200, RED, BLUE, "RGB"), 6)

    result = decoded(fit_image(data))

    assert result.size == (200, 400)
    assert near(result.getpixel((100, 100)), RED)
    assert near(result.getpixel((100, 300)), BLUE)
    # The pixels are upright now; a tag left behind would make viewers turn them again.
    assert result.getexif().get(ExifTags.Base.Orientation, 1) == 1


def test_rotated_image_is_fitted_to_the_box_as_shown() -> None:
    data = images.jpeg(1920, 1080, orientation=6)

    result = decoded(fit_image(data, max_width=640, max_height=320))

    assert result.size == (180, 320)


# --- colour modes -----------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb_with_its_colours() -> None:
    data = images.encode(Image.new("CMYK", (200, 100), (0, 255, 255, 0)), "JPEG")

    result = decoded(fit_image(data))

    assert near(result.getpixel((100, 50)), RED)


def test_transparent_pixels_of_rgba_png_become_white() -> None:
    data = images.encode(halves(200, 100, (0, 0, 0, 0), (*RED, 255), "RGBA"), "PNG")

    result = decoded(fit_image(data))

    assert near(result.getpixel((25, 50)), WHITE)
    assert near(result.getpixel((175, 50)), RED)


def test_transparent_colour_of_palette_png_becomes_white() -> None:
    palette = halves(200, 100, (0,), (1,), "P")
    palette.putpalette([0, 0, 0, *BLUE])
    data = images.encode(palette, "PNG", transparency=0)

    result = decoded(fit_image(data))

    assert near(result.getpixel((25, 50)), WHITE)
    assert near(result.getpixel((175, 50)), BLUE)


def test_grayscale_png_becomes_grey_rgb() -> None:
    data = images.encode(halves(200, 100, (40,), (200,), "L"), "PNG")

    result = decoded(fit_image(data))

    assert near(result.getpixel((25, 50)), (40, 40, 40))
    assert near(result.getpixel((175, 50)), (200, 200, 200))


def test_16_bit_grayscale_png_is_scaled_not_clipped_to_white() -> None:
    # Values 20000..30200 from top to bottom: all white if simply clipped to 8 bits.
    ramp = Image.linear_gradient("L").resize((1280, 960)).convert("I")
    grey16 = ramp.point(lambda v: 20000 + v * 40).convert("I;16")
    data = images.encode(grey16, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    result = decoded(fit_image(data))

    assert result.size == (640, 480)
    top, bottom = result.getpixel((320, 5)), result.getpixel((320, 475))
    assert near(top, (0, 0, 0), tolerance=20)
    assert near(bottom, WHITE, tolerance=20)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (100, 80), colour) for colour in (RED, BLUE, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    result = decoded(fit_image(out.getvalue()))

    assert result.size == (100, 80)
    assert near(result.getpixel((50, 40)), RED)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "TIFF"])
def test_other_formats_come_out_as_fitted_jpeg(fmt: str) -> None:
    data = images.encode(images.photo(640, 320), fmt)

    result = decoded(fit_image(data, max_width=320, max_height=320))

    assert result.size == (320, 160)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        pytest.param(b"", "cannot identify", id="empty"),
        pytest.param(b"this is not an image at all", "cannot identify", id="text"),
        pytest.param(images.jpeg(800, 600)[:2000], "truncated", id="truncated-jpeg"),
        pytest.param(images.png(800, 600)[:500], "truncated", id="truncated-png"),
    ],
)
def test_undecodable_data_fails_the_step_with_a_clear_message(data: bytes, detail: str) -> None:
    with pytest.raises(StepError, match=f"cannot decode the image: .*{detail}"):
        fit_image(data)


# --- the step ---------------------------------------------------------------------------------


def test_step_replaces_the_image_and_keeps_the_rest_of_the_data() -> None:
    detection = Detection(top_left_x=1, top_left_y=2, width=3, height=4, conf=0.5, label=1)
    data = CarDetection(image=images.png(640, 480), content_type="image/png", detection=detection)
    step = FitImage(FitParams(max_width=320, max_height=320))
    with httpx.Client() as http, Session() as session:
        ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=get_settings())

        result = step.run(data, ctx)

    assert isinstance(result, CarDetection)
    assert result.content_type == "image/jpeg"
    assert result.detection == detection
    assert decoded(result.image).size == (320, 240)

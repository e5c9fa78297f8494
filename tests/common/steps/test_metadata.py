"""Every pixel step turns an image upright exactly once, from every source of orientation, and
never fails an image for its metadata alone."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import pytest
from PIL import ExifTags, Image, TiffImagePlugin

from common.pipeline import StepError
from common.pipeline.steps.image_annotate import annotate_image
from common.pipeline.steps.image_blur import blur_image
from common.pipeline.steps.image_crop import crop_image
from common.pipeline.steps.image_fit import fit_image
from common.pipeline.steps.image_grayscale import grayscale_image
from common.pipeline.steps.image_resize import resize_image
from common.pipeline.steps.image_stats import measure
from tests import images
from tests.helpers.photos import (
    BLUE,
    RED,
    XMP_6,
    exif_6,
    red_left,
    tiff_with,
    with_jpeg_segment,
    with_png_chunk,
    xmp_png,
)

# --- orientation -------------------------------------------------------------------------------

# A 1200x800 picture, red on its left half, stored lying on its side: shown upright (turned a
# quarter clockwise, orientation 6) it is 800x1200, red on its top half.
SIDEWAYS: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg-exif": lambda img: images.encode(img, "JPEG", quality=90, exif=exif_6()),
    "jpeg-xmp": lambda img: images.encode(img, "JPEG", quality=90, xmp=XMP_6),
    "png-exif": lambda img: images.encode(img, "PNG", exif=exif_6()),
    "png-xmp": xmp_png,
    "webp-exif": lambda img: images.encode(img, "WEBP", quality=90, exif=exif_6()),
    "tiff-tag": lambda img: tiff_with(img, {ExifTags.Base.Orientation: (6, 3)}),
    "tiff-xmp": lambda img: tiff_with(img, {TiffImagePlugin.XMP: (XMP_6, 1)}),
}


def top_and_bottom(data: bytes) -> tuple[object, object]:
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        return rgb.getpixel((rgb.width // 2, 5)), rgb.getpixel((rgb.width // 2, rgb.height - 6))


def near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= 40 for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize("source", SIDEWAYS)
def test_fit_turns_each_source_of_orientation_upright_once_and_inside_the_box(source: str) -> None:
    data = SIDEWAYS[source](red_left())

    result = fit_image(data, max_width=640, max_height=320)

    assert images.size_of(result) == (213, 320)
    top, bottom = top_and_bottom(result)
    assert near(top, RED)
    assert near(bottom, BLUE)


def test_fit_turns_a_tiff_upright_that_needs_no_shrinking() -> None:
    data = SIDEWAYS["tiff-tag"](red_left(300, 200))

    assert images.size_of(fit_image(data, max_width=640, max_height=640)) == (200, 300)


PIXEL_STEPS: dict[str, Callable[[bytes], bytes]] = {
    "fit": lambda d: fit_image(d, max_width=2000, max_height=2000),
    "grayscale": grayscale_image,
    "blur": lambda d: blur_image(d, radius=1),
    "crop": lambda d: crop_image(d, 0, 0, 2000, 2000, clamp=True),
    "annotate": lambda d: annotate_image(d, None),
}


@pytest.mark.parametrize("step", PIXEL_STEPS)
@pytest.mark.parametrize("source", ["tiff-tag", "tiff-xmp", "png-exif", "webp-exif"])
def test_every_pixel_step_shows_the_picture_upright(source: str, step: str) -> None:
    result = PIXEL_STEPS[step](SIDEWAYS[source](red_left()))

    assert images.size_of(result) == (800, 1200)
    top, bottom = top_and_bottom(result)
    if step != "grayscale":
        assert near(top, RED)
        assert near(bottom, BLUE)


@pytest.mark.parametrize("source", ["tiff-tag", "tiff-xmp"])
def test_stats_and_resize_measure_a_sideways_tiff_as_shown(source: str) -> None:
    data = SIDEWAYS[source](red_left())

    assert (measure(data).width, measure(data).height) == (800, 1200)
    top, _ = top_and_bottom(resize_image(data, 100, 150))
    assert near(top, RED)


# --- metadata that cannot be read -------------------------------------------------------------


Size = tuple[int, int]


def jpeg_with(marker: int, body: bytes) -> Callable[[Size], bytes]:
    return lambda size: with_jpeg_segment(images.jpeg(*size), marker, body)


def png_with(kind: bytes, body: bytes) -> Callable[[Size], bytes]:
    return lambda size: with_png_chunk(images.encode(images.photo(*size), "PNG"), kind, body)


# Each a good picture of the given size whose metadata Pillow cannot read.
UNREADABLE: dict[str, Callable[[Size], bytes]] = {
    "jpeg-exif-not-tiff": jpeg_with(0xE1, b"Exif\x00\x00https://example.com/photo"),
    "jpeg-icc-header-only": jpeg_with(0xE2, b"ICC_PROFILE\x00\x01\x01"),
    "jpeg-icc-header-cut": jpeg_with(0xE2, b"ICC_PROFILE\x00"),
    "jpeg-icc-no-count": jpeg_with(0xE2, b"ICC_PROFILE\x00\x01"),
    "jpeg-photoshop-cut": jpeg_with(0xED, b"Photoshop 3.0\x008BIM\x03\xed"),
    "jpeg-adobe-cut": jpeg_with(0xEE, b"Adobe"),
    "jpeg-jfif-cut": jpeg_with(0xE0, b"JFIF\x00"),
    "png-exif-not-tiff": png_with(b"eXIf", b"https://example.com/"),
    "png-raw-exif-not-hex": png_with(b"tEXt", b"Raw profile type exif\x00\nexif\n 4\nzzzz\n"),
    "png-iccp-empty": png_with(b"iCCP", b""),
    "png-iccp-unknown-method": png_with(b"iCCP", b"icc\x00\x05" + zlib.compress(b"x")),
    "png-phys-cut": png_with(b"pHYs", b"\x00"),
    "png-gama-cut": png_with(b"gAMA", b"\x00"),
    "png-srgb-cut": png_with(b"sRGB", b""),
    "png-chrm-cut": png_with(b"cHRM", b"\x00"),
    "webp-exif-not-tiff": lambda size: images.encode(
        images.photo(*size), "WEBP", exif=b"Exif\x00\x00not a TIFF header"
    ),
    "gif-comment-over-64k": lambda size: images.encode(
        images.photo(*size).convert("P"), "GIF", comment=b"c" * 70_000
    ),
}


@pytest.mark.parametrize("case", UNREADABLE)
def test_fit_ignores_unreadable_metadata_of_an_image_it_shrinks(case: str) -> None:
    data = UNREADABLE[case]((1280, 720))  # shrunk to fit 640x640

    result = fit_image(data, max_width=640, max_height=640)

    assert images.size_of(result) == (640, 360)


@pytest.mark.parametrize("step", PIXEL_STEPS)
@pytest.mark.parametrize("case", UNREADABLE)
def test_every_pixel_step_ignores_unreadable_metadata(case: str, step: str) -> None:
    result = PIXEL_STEPS[step](UNREADABLE[case]((300, 200)))

    assert images.size_of(result) == (300, 200)


def test_a_cmyk_jpeg_keeps_its_colours_when_its_icc_profile_is_dropped() -> None:
    cmyk = images.encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)
    data = with_jpeg_segment(cmyk, 0xE2, b"ICC_PROFILE\x00")

    top, _ = top_and_bottom(fit_image(data))

    assert near(top, RED)


def test_the_result_carries_none_of_the_input_metadata() -> None:
    data = images.encode(images.photo(300, 200), "JPEG", comment=b"secret", exif=exif_6())

    with Image.open(io.BytesIO(fit_image(data))) as result:
        assert "comment" not in result.info
        assert "exif" not in result.info


def test_undecodable_bytes_fail_with_a_message_free_of_python_reprs() -> None:
    with pytest.raises(StepError) as raised:
        fit_image(b"not an image at all")

    assert "cannot identify" in str(raised.value)
    assert "<" not in str(raised.value)
    assert "0x" not in str(raised.value)

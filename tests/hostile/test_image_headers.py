"""Reading an image's format and size from its header, without decoding it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from api.errors import ApiError
from api.uploads import check_image
from common.imagetypes import (
    CorruptImageError,
    ImageFormatError,
    limit_decoder_pixels,
    parse_formats,
    read_header,
)
from common.settings import Settings
from tests.hostile import corpus

ODD = corpus.odd_valid_images()
SETTINGS = Settings()


@pytest.mark.parametrize("name", sorted(ODD))
def test_header_size_matches_what_pillow_decodes(name: str) -> None:
    # Given
    data, content_type = ODD[name]

    # When
    header = read_header(data)

    # Then
    with Image.open(io.BytesIO(data)) as img:
        assert (header.width, header.height) == img.size
    assert header.content_type == content_type


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("jpeg", corpus.JPEG),
        ("png", corpus.PNG),
        ("gif", corpus.GIF),
        ("webp", corpus.WEBP),
        ("bmp", corpus.BMP),
        ("tiff", corpus.TIFF),
    ],
)
def test_every_truncation_of_a_file_is_refused_as_corrupt(name: str, data: bytes) -> None:
    # Given: each format cut at the end of its signature, in its header, in the middle, one short
    signature = 4 if name != "png" else 8
    cuts = sorted({signature + 1, 20, 33, len(data) // 2, len(data) - 1})

    # When / Then
    for keep in cuts:
        with pytest.raises((CorruptImageError, ImageFormatError)):
            read_header(data[:keep])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (corpus.png(64, 48, ihdr_crc=0), "checksum"),
        (corpus.png(0, 48), "0x48"),
        (corpus.png(64, 48, iend=False), "cut short"),
        (corpus.png(64, 48, idat=None, with_idat=False), "no image data"),
        (corpus.jpeg_with_size(64, 0), "64x0"),
        (corpus.JPEG[:-2], "end-of-image"),
        (corpus.GIF[:-1], "trailer"),
        (corpus.gif_with_size(0, 0), "no pixels"),
        (corpus.bmp_with_size(64, 4800), "cut short"),
        (corpus.webp_vp8x(64, 48)[:-10], "cut short"),
    ],
    ids=[
        "png-ihdr-crc",
        "png-zero-width",
        "png-no-iend",
        "png-no-idat",
        "jpeg-zero-height",
        "jpeg-no-eoi",
        "gif-no-trailer",
        "gif-zero-frame",
        "bmp-rows-missing",
        "webp-vp8x-cut",
    ],
)
def test_structural_damage_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptImageError) as caught:
        read_header(data)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (corpus.png(40000, 1), (40000, 1)),
        (corpus.png(3561, 14041), (3561, 14041)),
        (corpus.jpeg_with_size(65535, 65535), (65535, 65535)),
        (corpus.gif_with_size(65535, 65535), (65535, 65535)),
        (corpus.webp_vp8x(16384, 16384), (16384, 16384)),
    ],
    ids=["png-40000x1", "png-50mp+1", "jpeg-65535^2", "gif-65535^2", "webp-16384^2"],
)
def test_huge_dimensions_are_read_from_the_header_without_decoding(
    data: bytes, size: tuple[int, int]
) -> None:
    header = read_header(data)
    assert (header.width, header.height) == size
    with pytest.raises(ApiError) as caught:
        check_image(data, SETTINGS)
    assert (caught.value.status_code, caught.value.detail.code) == (
        413,
        "image_dimensions_too_large",
    )


def test_an_image_of_exactly_the_pixel_limit_is_accepted() -> None:
    # Given: 10000 x 5000 = 50 000 000 pixels, the default limit
    data = corpus.png(10000, 5000)

    # When
    header = check_image(data, SETTINGS)

    # Then
    assert header.pixels == SETTINGS.max_image_pixels


def test_one_pixel_over_the_limit_is_refused() -> None:
    # Given: 3561 x 14041 = 50 000 001 pixels
    with pytest.raises(ApiError) as caught:
        check_image(corpus.png(3561, 14041), SETTINGS)

    # Then: the message says what to change
    assert caught.value.status_code == 413
    assert "3561x14041" in caught.value.detail.message
    assert "scale it down" in caught.value.detail.message


def test_a_format_left_out_of_the_setting_is_415() -> None:
    settings = Settings(accepted_image_formats="jpeg,png")

    with pytest.raises(ApiError) as caught:
        check_image(corpus.GIF, settings)

    assert (caught.value.status_code, caught.value.detail.code) == (415, "unsupported_image_type")
    assert "GIF images are not accepted" in caught.value.detail.message
    assert check_image(corpus.PNG, settings).content_type == "image/png"


def test_format_setting_rejects_unknown_names() -> None:
    assert parse_formats(" JPG, tif ") == {"image/jpeg", "image/tiff"}
    with pytest.raises(ValueError, match="svg"):
        parse_formats("jpeg,svg")
    with pytest.raises(ValueError):
        parse_formats(" , ")


def test_decoder_pixel_limit_makes_pillow_refuse_bombs() -> None:
    # Given: a worker limited to 1000 pixels (Pillow refuses above twice that)
    saved = Image.MAX_IMAGE_PIXELS
    try:
        limit_decoder_pixels(1000)

        # When / Then
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(corpus.png(100, 21)))
    finally:
        Image.MAX_IMAGE_PIXELS = saved

"""Hostile, broken and odd files, made on the spot: hand-built headers, and Pillow for the rest."""

from __future__ import annotations

import struct
import zlib

from PIL import Image

from tests import images

MiB = 2**20
PHOTO = images.photo(64, 48, seed=5)
JPEG = images.encode(PHOTO, "JPEG", quality=85)
PNG = images.encode(PHOTO, "PNG")
GIF = images.encode(PHOTO, "GIF")
WEBP = images.encode(PHOTO, "WEBP")
BMP = images.encode(PHOTO, "BMP")
TIFF = images.encode(PHOTO, "TIFF")

TEXT = b"this is plain text, not a photo\n" * 4
HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>\n"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
    b'<rect width="64" height="48" fill="red"/></svg>'
)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"


# --- PNG, chunk by chunk


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def png(
    width: int,
    height: int,
    *,
    ihdr_crc: int | None = None,
    idat: bytes | None = None,
    with_idat: bool = True,
    iend: bool = True,
) -> bytes:
    """A greyscale 8-bit PNG; its pixel data is a token row unless `idat` is given."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (1 + min(width, 64))) if idat is None else idat
    body = png_chunk(b"IHDR", header, ihdr_crc)
    body += png_chunk(b"IDAT", pixels) if with_idat else b""
    return b"\x89PNG\r\n\x1a\n" + body + (png_chunk(b"IEND", b"") if iend else b"")


# --- other formats, by patching real files


def patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def jpeg_sof_offset(data: bytes) -> int:
    """Where the frame header's fields (after its marker and length) start."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            return at + 4
    raise ValueError("no SOF0/SOF2 marker")


def jpeg_with_size(width: int, height: int) -> bytes:
    return patched(JPEG, jpeg_sof_offset(JPEG) + 1, ">HH", height, width)


def gif_with_size(width: int, height: int) -> bytes:
    """The logical screen and the first frame both claim `width` x `height`."""
    data = patched(GIF, 6, "<HH", width, height)
    return patched(data, gif_frame_offset(data) + 5, "<HH", width, height)


def gif_frame_offset(data: bytes) -> int:
    """Where the first image descriptor starts, past the colour table and any extensions."""
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    while data[pos] == 0x21:
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    assert data[pos] == 0x2C
    return pos


def webp_vp8x(width: int, height: int) -> bytes:
    """A VP8X WebP declaring a `width` x `height` canvas around a small lossy frame."""
    frame = WEBP[12:]  # the VP8 chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def bmp_with_size(width: int, height: int) -> bytes:
    return patched(BMP, 18, "<ii", width, height)


def cut(data: bytes, keep: float | int) -> bytes:
    return data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep]


# --- odd but valid images


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _frames(img: Image.Image) -> list[Image.Image]:
    return [img.rotate(angle) for angle in (90, 180)]


def odd_valid_images() -> dict[str, tuple[bytes, str]]:
    """Images in unusual modes and variants that must be accepted and processed."""
    p = images.photo(96, 64, seed=9)
    rgba = p.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(p.size))
    return {
        "jpeg-cmyk": (images.encode(p.convert("CMYK"), "JPEG"), "image/jpeg"),
        "jpeg-grayscale": (images.encode(p.convert("L"), "JPEG"), "image/jpeg"),
        "jpeg-progressive": (images.encode(p, "JPEG", progressive=True), "image/jpeg"),
        "jpeg-exif-rotated": (images.encode(p, "JPEG", exif=_exif(6)), "image/jpeg"),
        "png-16-bit": (images.encode(p.convert("I;16"), "PNG"), "image/png"),
        "png-palette-transparency": (
            images.encode(p.convert("P"), "PNG", transparency=0),
            "image/png",
        ),
        "png-rgba": (images.encode(rgba, "PNG"), "image/png"),
        "png-grayscale-alpha": (images.encode(rgba.convert("LA"), "PNG"), "image/png"),
        "png-1-bit": (images.encode(p.convert("1"), "PNG"), "image/png"),
        "png-exif-rotated": (images.encode(p, "PNG", exif=_exif(8)), "image/png"),
        "apng-animated": (
            images.encode(p, "PNG", save_all=True, append_images=_frames(p)),
            "image/png",
        ),
        "gif-animated": (
            images.encode(p, "GIF", save_all=True, append_images=_frames(p), duration=40, loop=0),
            "image/gif",
        ),
        "gif-transparent": (images.encode(p.convert("P"), "GIF", transparency=0), "image/gif"),
        "webp-lossy": (images.encode(p, "WEBP"), "image/webp"),
        "webp-lossless-alpha": (images.encode(rgba, "WEBP", lossless=True), "image/webp"),
        "webp-animated": (
            images.encode(p, "WEBP", save_all=True, append_images=_frames(p)),
            "image/webp",
        ),
        "bmp-24-bit": (images.encode(p, "BMP"), "image/bmp"),
        "bmp-1-bit": (images.encode(p.convert("1"), "BMP"), "image/bmp"),
        "bmp-top-down": (patched(BMP, 22, "<i", -48), "image/bmp"),
        "tiff-lzw": (images.encode(p, "TIFF", compression="tiff_lzw"), "image/tiff"),
        "tiff-16-bit": (images.encode(p.convert("I;16"), "TIFF"), "image/tiff"),
        "tiff-cmyk": (images.encode(p.convert("CMYK"), "TIFF"), "image/tiff"),
        "tiff-big-endian": (images.encode(p, "TIFF", tiffinfo={}, big_endian=True), "image/tiff"),
    }

"""Images as cameras and editors write them: orientation in EXIF, XMP or a TIFF tag, extra JPEG
segments and PNG chunks. Built with Pillow; sizes in pixels."""

from __future__ import annotations

import struct
import zlib

from PIL import ExifTags, Image, PngImagePlugin, TiffImagePlugin

from tests import images

RED = (255, 0, 0)
BLUE = (0, 0, 255)
XMP_6 = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


def exif_6() -> bytes:
    """EXIF bytes saying orientation 6: shown upright, the picture turns a quarter clockwise."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    return exif.tobytes()


def tiff_with(img: Image.Image, tags: dict[int, tuple[object, int]]) -> bytes:
    """A TIFF of `img` with the given tags (tag -> (value, TIFF type))."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, (value, kind) in tags.items():
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    return images.encode(img, "TIFF", tiffinfo=ifd)


def with_jpeg_segment(data: bytes, marker: int, body: bytes) -> bytes:
    """The JPEG with one more marker segment right after its start-of-image marker."""
    return data[:2] + struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body + data[2:]


def with_png_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """The PNG with one more chunk right after its IHDR."""
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data[:33] + chunk + data[33:]


def xmp_png(img: Image.Image) -> bytes:
    """A PNG of `img` whose XMP (an iTXt chunk) says orientation 6."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_6.decode())
    return images.encode(img, "PNG", pnginfo=info)


def red_left(width: int = 1200, height: int = 800) -> Image.Image:
    """A width x height picture, red on its left half and blue on its right."""
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, width // 2, height))
    return img

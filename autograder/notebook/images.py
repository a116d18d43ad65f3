"""Decoding a student's image, and only as the format it claims to be.

Every image the grader decodes from a submission (a notebook's figure, one embedded in a submitted
PDF) goes through `open_image`: Pillow is asked to read it only as the formats its MIME type names
(`image/png` is a PNG and nothing else), its size is read from its header and checked against the
rubric's [intake] max_image_pixels before a pixel is decoded, and then it is decoded whole, so that a
truncated or corrupt file is found here, once, instead of deep in a consumer. Whatever goes wrong is an
`ImageRefused` whose message is written for the student.

Pillow can read EPS only by running Ghostscript, an interpreter of a programming language; nothing a
student hands in may reach it. Besides the format whitelist, importing this module removes the EPS
reader from Pillow's registry in the grader's process, so that libraries that open images without a
whitelist (reportlab, pypdf for some filters) cannot reach it either.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

#: The formats Pillow may read an image as, by the MIME type a notebook gives it.
FORMATS = {"image/png": ("PNG",), "image/jpeg": ("JPEG",)}
#: Pillow's readers that run an external program on the bytes (EPS runs Ghostscript).
_EXTERNAL = ("EPS",)


class ImageRefused(ValueError):
    """The image is not read: the message says why, for the student (without naming the cell)."""


def forbid_external_interpreters() -> None:
    """Drop Pillow's readers that hand bytes to another program (EPS: Ghostscript) from its registry."""
    Image.init()
    for name in _EXTERNAL:
        Image.OPEN.pop(name, None)
        if name in Image.ID:
            Image.ID.remove(name)


forbid_external_interpreters()


def _kind(formats: tuple[str, ...]) -> str:
    return " or ".join(formats)


def open_image(data: bytes, formats: tuple[str, ...], max_pixels: int) -> Image.Image:
    """The image `data`, read only as one of `formats` (Pillow's names: "PNG", "JPEG") and fully decoded;
    ImageRefused when it is another format, has more than `max_pixels` pixels (checked before decoding),
    or is truncated or corrupt."""
    if not formats or any(name in _EXTERNAL for name in formats):
        raise ValueError(f"formats {formats!r}: a non-empty whitelist without {_EXTERNAL} is required")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:
        raise ImageRefused(f"it has more than the {max_pixels / 1e6:g} MP the grader reads") from None
    except Exception:  # noqa: BLE001 - the student's bytes: Pillow fails on garbage in many ways
        raise ImageRefused(f"it is not a {_kind(formats)} image (its bytes are another format, or none)") from None
    width, height = picture.size
    if width * height > max_pixels:
        picture.close()
        raise ImageRefused(f"it is {width} x {height} pixels, over the {max_pixels / 1e6:g} MP the grader reads")
    if width == 0 or height == 0:
        picture.close()
        raise ImageRefused("it has no pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture.load()
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file: zlib, struct, OSError, ...
        picture.close()
        raise ImageRefused(f"it is a damaged {_kind(formats)} file that cannot be decoded "
                           f"({type(exc).__name__}: {str(exc)[:120]})") from None
    return picture


def as_png(data: bytes, formats: tuple[str, ...], max_pixels: int) -> bytes:
    """`data` checked by `open_image`: itself when it is a PNG, else the decoded image saved as one
    (every consumer downstream reads PNG bytes only)."""
    picture = open_image(data, formats, max_pixels)
    try:
        if picture.format == "PNG":
            return data
        if picture.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):  # CMYK or YCbCr JPEGs: PNG has no such mode
            picture = picture.convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception as exc:  # noqa: BLE001 - a mode or value Pillow cannot write: the student's image
        raise ImageRefused(f"it could not be converted to PNG ({type(exc).__name__}: {str(exc)[:120]})") from None
    finally:
        picture.close()

"""PDFs of flat grey images of any size, written without ever holding their pixels: what the image caps
(pixel cap, count cap) are tested with. The images are real Flate-compressed image XObjects, one a page."""

from __future__ import annotations

import zlib
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject


def flat_grey_rows(width: int, height: int) -> bytes:
    """Flate data of a flat grey image's rows, as a PDF image stream holds them, compressed piecewise."""
    packer = zlib.compressobj(9)
    rows_at_once = max(1, (1 << 22) // width)
    return b"".join(packer.compress(b"\x80" * width * min(rows_at_once, height - start))
                    for start in range(0, height, rows_at_once)) + packer.flush()


def grey_images_pdf(path: Path, sizes: list[tuple[int, int]], before: Path | None = None) -> Path:
    """A PDF (after the pages of `before`, if given) with one flat grey image of each of these sizes a page,
    drawn over the whole 200 x 200 pt page."""
    writer = PdfWriter(clone_from=str(before)) if before else PdfWriter()
    packed: dict[tuple[int, int], bytes] = {}
    for width, height in sizes:
        if (width, height) not in packed:
            packed[(width, height)] = flat_grey_rows(width, height)
        page = writer.add_blank_page(200, 200)
        image = StreamObject()
        image.set_data(packed[(width, height)])
        image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                      NameObject("/Width"): NumberObject(width), NameObject("/Height"): NumberObject(height),
                      NameObject("/ColorSpace"): NameObject("/DeviceGray"),
                      NameObject("/BitsPerComponent"): NumberObject(8),
                      NameObject("/Filter"): NameObject("/FlateDecode")})
        content = DecodedStreamObject()
        content.set_data(b"q 200 0 0 200 0 0 cm /Im0 Do Q")
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): DictionaryObject(
            {NameObject("/Im0"): writer._add_object(image)})})
        page[NameObject("/Contents")] = writer._add_object(content)
        page[NameObject("/MediaBox")] = ArrayObject([NumberObject(0), NumberObject(0), NumberObject(200),
                                                     NumberObject(200)])
    writer.write(str(path))
    return path

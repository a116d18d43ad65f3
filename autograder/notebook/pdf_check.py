"""Does a submitted PDF show the notebook's own plots? Staff want a foreign PDF flagged.

Images are pulled out of the PDF with pypdf and compared with the notebook's by a perceptual
hash of their decoded pixels (a DCT hash of the grey-scale image, robust to rescaling and
re-encoding). Each section is matched, mismatched (the PDF has images, none of them this
notebook's) or not found (the PDF has no images at all). What pypdf says about a damaged file
("Ignoring wrong pointing object ...") it logs; grading keeps that in the submission's
grading.log (autograder/reports/grading_log.py), away from the terminal. An embedded image whose
declared /Width x /Height exceeds the rubric's [intake] max_image_pixels is left out before
anything decodes it (pypdf's or Pillow's decoding of a huge one would take gigabytes), and said.
pypdf decodes embedded images with Pillow: importing images.py has removed Pillow's EPS reader (which
runs Ghostscript), so no stream a student embeds reaches an interpreter.
Reading and comparing stop at a `Deadline` ([deadlines] pdf_seconds): the check then says the PDF was
not compared, and why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from scipy.fft import dctn

from autograder.deadlines import Deadline, StageTimeout, unbounded
from autograder.notebook.images import ImageRefused, open_image
from autograder.notebook.reading import size_text
from autograder.rubric import load_rubric

# Measured on training curves drawn with the notebook's layout: the same figure re-rendered at
# another resolution and re-encoded as JPEG stays within 0.07 of its hash; curves of different
# training runs are at least 0.24 apart (a 64x64 block of a 256x256 image; a coarser hash let
# different runs' curves come as close as 0.08, because plots are mostly background).
_SIZE, _KEEP = 256, 64
#: Hashes at most this fraction of bits apart show the same picture.
MATCH_DISTANCE = 0.15


def perceptual_hash(picture: Image.Image) -> np.ndarray:
    """4095 bits: the signs of the low-frequency DCT coefficients against their median."""
    grey = ImageOps.grayscale(picture.convert("RGB")).resize((_SIZE, _SIZE), Image.LANCZOS)
    coefficients = dctn(np.asarray(grey, dtype=np.float64), norm="ortho")[:_KEEP, :_KEEP].ravel()[1:]
    return coefficients > np.median(coefficients)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of bits that differ."""
    return float(np.mean(a != b))


def _declared_size(page, image_id) -> tuple[int, int] | None:
    """The /Width and /Height an image XObject declares (the id is a name, or the names of the forms
    that hold it), read from its dictionary without decoding its stream; None for an inline image."""
    names = list(image_id) if isinstance(image_id, (list, tuple)) else [image_id]
    if isinstance(names[-1], str) and names[-1].startswith("~"):
        return None  # inline, in the content stream: pypdf already parsed it to list it
    holder = page
    for name in names:
        holder = holder["/Resources"].get_object()["/XObject"].get_object()[name].get_object()
    return int(holder.get("/Width", 0)), int(holder.get("/Height", 0))


def pdf_images(path: Path, max_pixels: int | None = None, left_out: list[str] | None = None,
               deadline: Deadline | None = None) -> list[Image.Image]:
    """Every image embedded in the PDF, decoded, but those declaring more than `max_pixels` (default: the
    rubric's [intake] max_image_pixels), which are never decoded and are named in `left_out`.
    StageTimeout past `deadline`."""
    max_pixels = max_pixels or load_rubric().intake.max_image_pixels
    deadline = deadline or unbounded()
    images = []
    for number, page in enumerate(PdfReader(str(path)).pages, start=1):
        deadline.check()
        for image_id in page.images.keys():
            deadline.check()
            try:
                size = _declared_size(page, image_id)
            except (KeyError, TypeError, ValueError, AttributeError):
                size = None
            if size is not None and size[0] * size[1] > max_pixels:
                if left_out is not None:
                    left_out.append(f"an image on page {number} is {size_text(*size)}, over the "
                                    f"{max_pixels / 1e6:g} MP the grader reads; it was not compared")
                continue
            try:
                with warnings.catch_warnings():  # a size within the cap: Pillow's bomb warning cannot apply
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    picture = page.images[image_id].image
                    if picture.width * picture.height > max_pixels:  # an inline image, or a dictionary that lied
                        continue
                    images.append(picture.copy())
            except (OSError, ValueError, AttributeError, KeyError, Image.DecompressionBombError):
                continue
    return images


def _notebook_images(pngs: list[bytes], max_pixels: int | None) -> list[Image.Image]:
    """The notebook's images of a section, decoded as PNGs only (images.py); one that is not is skipped."""
    pictures = []
    for png in pngs:
        try:
            pictures.append(open_image(png, ("PNG",), max_pixels or load_rubric().intake.max_image_pixels))
        except ImageRefused:  # reading.py already left it out, with the note the student reads
            continue
    return pictures


@dataclass
class Consistency:
    """Per section: "matched", "mismatched", "not found", or "not in the notebook"."""

    pdf: str
    sections: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    left_out: list[str] = field(default_factory=list)  # the PDF's images too large to compare

    @property
    def consistent(self) -> bool:
        return not self.problem and all(v in ("matched", "not in the notebook") for v in self.sections.values())


def compare(pdf: Path, sections: dict[str, list[bytes]], max_pixels: int | None = None,
            deadline: Deadline | None = None) -> Consistency:
    """Compare the PDF's images with the notebook's images of each section (already within the pixel cap:
    autograder/notebook/reading.py); the PDF's over `max_pixels` are left out, and said. Past `deadline`
    the PDF is not compared, and `problem` says so."""
    result = Consistency(pdf.name)
    deadline = deadline or unbounded()
    try:
        return _compare(pdf, sections, max_pixels, deadline, result)
    except StageTimeout as late:
        result.sections.clear()
        result.problem = f"{pdf.name} was not compared with the notebook: {late.reason}"
        return result


def _compare(pdf: Path, sections: dict[str, list[bytes]], max_pixels: int | None, deadline: Deadline,
             result: Consistency) -> Consistency:
    """`compare` within its deadline (StageTimeout past it)."""
    try:
        hashes = []
        for image in pdf_images(pdf, max_pixels, result.left_out, deadline):
            deadline.check()
            hashes.append(perceptual_hash(image))
    except StageTimeout:
        raise
    except (PdfReadError, OSError, ValueError) as exc:
        result.problem = f"{pdf.name} could not be read as a PDF ({exc})"
        return result
    except Exception as exc:  # noqa: BLE001 - pypdf on a damaged file can fail in any way; it is the student's file
        result.problem = f"{pdf.name} could not be read as a PDF ({type(exc).__name__}: {str(exc)[:200]})"
        return result
    for section, pngs in sections.items():
        if not pngs:
            result.sections[section] = "not in the notebook"
        elif not hashes:
            result.sections[section] = "not found"
        else:
            deadline.check()
            ours = [perceptual_hash(picture) for picture in _notebook_images(pngs, max_pixels)]
            if not ours:
                result.sections[section] = "not in the notebook"
                continue
            best = min(distance(a, b) for a in ours for b in hashes)
            result.sections[section] = "matched" if best <= MATCH_DISTANCE else "mismatched"
    return result

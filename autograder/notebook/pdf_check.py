"""Does a submitted PDF show the notebook's own plots? Staff want a foreign PDF flagged.

Images are pulled out of the PDF with pypdf and compared with the notebook's by a perceptual
hash of their decoded pixels (a DCT hash of the grey-scale image, robust to rescaling and
re-encoding). Each section is matched, mismatched (the PDF has images, none of them this
notebook's) or not found (the PDF has no images at all). What pypdf says about a damaged file
("Ignoring wrong pointing object ...") it logs; grading keeps that in the submission's
grading.log (autograder/reports/grading_log.py), away from the terminal.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from scipy.fft import dctn

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


def pdf_images(path: Path) -> list[Image.Image]:
    """Every image embedded in the PDF, decoded."""
    images = []
    for page in PdfReader(str(path)).pages:
        for embedded in page.images:
            try:
                images.append(embedded.image.copy())
            except (OSError, ValueError, AttributeError):
                continue
    return images


@dataclass
class Consistency:
    """Per section: "matched", "mismatched", "not found", or "not in the notebook"."""

    pdf: str
    sections: dict[str, str] = field(default_factory=dict)
    problem: str = ""

    @property
    def consistent(self) -> bool:
        return not self.problem and all(v in ("matched", "not in the notebook") for v in self.sections.values())


def compare(pdf: Path, sections: dict[str, list[bytes]]) -> Consistency:
    """Compare the PDF's images with the notebook's images of each section."""
    result = Consistency(pdf.name)
    try:
        hashes = [perceptual_hash(image) for image in pdf_images(pdf)]
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
            ours = [perceptual_hash(Image.open(io.BytesIO(png))) for png in pngs]
            best = min(distance(a, b) for a in ours for b in hashes)
            result.sections[section] = "matched" if best <= MATCH_DISTANCE else "mismatched"
    return result

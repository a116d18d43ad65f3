"""Does a submitted PDF show the notebook's own figures? Staff want a foreign PDF flagged, and only that.

Images are pulled out of the PDF with pypdf (an image drawn with a soft mask comes back RGBA, its mask
applied as alpha) and compared with each section's notebook figures as figures (figure_match.py):
transparency composited onto white as a viewer shows it, uniform margins trimmed, and one found inside
the other when the PDF holds a screenshot, a crop or a rescale of the figure. Each section ends as one of

- "same figure": a PDF image shows it (the evidence says which, on which page, how it was found);
- "different figure": the PDF has images and the closest one is another figure (another training run's
  curves): the one accusation, flagged "PDF mismatch", with both pictures written for staff;
- "could not tell": the closest image is between the rubric's bands, or a picture is too small or blank to
  judge: a note for staff, never an accusation;
- "not found": the PDF has no images at all (figures drawn as vector graphics cannot be compared);
- "not in the notebook": the notebook has no figure there to look for.

What pypdf says about a damaged file ("Ignoring wrong pointing object ...") it logs; grading keeps that in
the submission's grading.log (autograder/reports/grading_log.py), away from the terminal. An embedded image
whose declared /Width x /Height exceeds the rubric's [intake] max_image_pixels is left out before anything
decodes it (pypdf's or Pillow's decoding of a huge one would take gigabytes), and said; past [pdf_check]
max_pdf_images images the rest are left out, and said. pypdf decodes embedded images with Pillow: importing
images.py has removed Pillow's EPS reader (which runs Ghostscript), so no stream a student embeds reaches an
interpreter. Reading and comparing stop at a `Deadline` ([deadlines] pdf_seconds): the check then says the
PDF was not compared, and why.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from autograder.deadlines import Deadline, StageTimeout, unbounded
from autograder.notebook.figure_match import (
    DIFFERENT,
    SAME,
    UNSURE,
    Figure,
    Match,
    compare_figures,
    flatten,
    judgeable,
    likeness,
    prepare,
    verdict,
)
from autograder.notebook.images import ImageRefused, open_image
from autograder.notebook.reading import size_text
from autograder.rubric import PdfCheck, load_rubric

NOT_FOUND, ABSENT = "not found", "not in the notebook"
#: The outcomes of a section, best first.
OUTCOMES = (SAME, ABSENT, UNSURE, NOT_FOUND, DIFFERENT)
#: OUT/<id>/ subfolder of the thumbnails of a different figure, or of one the check could not tell.
EVIDENCE_DIR = "pdf_evidence"


@dataclass
class PdfPicture:
    """One image of the PDF: where it is (page, and its number in the PDF's order), decoded."""

    page: int
    number: int
    picture: Image.Image


def pdf_pictures(path: Path, max_pixels: int | None = None, left_out: list[str] | None = None,
                 deadline: Deadline | None = None, max_images: int | None = None) -> list[PdfPicture]:
    """Every image embedded in the PDF, decoded, with its page, but those declaring more than `max_pixels`
    (default: the rubric's [intake] max_image_pixels), which are never decoded, and those past `max_images`
    (default [pdf_check] max_pdf_images); both are named in `left_out`. StageTimeout past `deadline`."""
    rubric = load_rubric()
    max_pixels = max_pixels or rubric.intake.max_image_pixels
    max_images = max_images or rubric.pdf_check.max_pdf_images
    deadline = deadline or unbounded()
    pictures: list[PdfPicture] = []
    skipped = 0
    for number, page in enumerate(PdfReader(str(path)).pages, start=1):
        deadline.check()
        for image_id in page.images.keys():
            deadline.check()
            if len(pictures) >= max_images:
                skipped += 1
                continue
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
                    pictures.append(PdfPicture(number, len(pictures) + 1, picture.copy()))
            except (OSError, ValueError, AttributeError, KeyError, Image.DecompressionBombError):
                continue
    if skipped and left_out is not None:
        left_out.append(f"{skipped} more image{'s' if skipped > 1 else ''} after the first {max_images} "
                        f"{'were' if skipped > 1 else 'was'} not compared")
    return pictures


def pdf_images(path: Path, max_pixels: int | None = None, left_out: list[str] | None = None,
               deadline: Deadline | None = None) -> list[Image.Image]:
    """The decoded images of `pdf_pictures`, without where they are."""
    return [found.picture for found in pdf_pictures(path, max_pixels, left_out, deadline)]


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
class Evidence:
    """Why a section ended as it did: which PDF image (its number in the PDF's order, its page), the score
    (`distance`: the share of strokes without a counterpart; `correlation`), how it was found, a note in
    words, and the thumbnails written for staff (file names in OUT/<id>/pdf_evidence/). `pictures` (the
    notebook's, the PDF's) are kept in memory until `write_evidence` writes them."""

    outcome: str
    note: str = ""
    page: int | None = None
    image: int | None = None
    distance: float | None = None
    correlation: float | None = None
    how: str = ""
    offset: tuple[int, int] | None = None
    scale: float | None = None
    files: dict[str, str] = field(default_factory=dict)
    pictures: tuple[Image.Image, Image.Image] | None = field(default=None, repr=False, compare=False)

    def data(self) -> dict:
        """For results.json."""
        return {"outcome": self.outcome, "note": self.note, "page": self.page, "image": self.image,
                "distance": None if self.distance is None else round(self.distance, 4),
                "correlation": None if self.correlation is None else round(self.correlation, 4),
                "how": self.how, "offset": list(self.offset) if self.offset else None, "scale": self.scale,
                "files": dict(self.files)}


@dataclass
class Consistency:
    """Per section: "same figure", "different figure", "could not tell", "not found" or "not in the
    notebook" (`sections`), each with its `evidence`."""

    pdf: str
    sections: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    left_out: list[str] = field(default_factory=list)  # the PDF's images too large or too many to compare
    evidence: dict[str, Evidence] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        """Nothing for the student to fix: every section the same figure, absent from the notebook, or a
        judgement left to staff."""
        return not self.problem and all(v in (SAME, ABSENT, UNSURE) for v in self.sections.values())

    @property
    def mismatched(self) -> bool:
        """The PDF shows another figure than the notebook's: the "PDF mismatch" flag."""
        return any(v == DIFFERENT for v in self.sections.values())


def compare(pdf: Path, sections: dict[str, list[bytes]], max_pixels: int | None = None,
            deadline: Deadline | None = None, limits: PdfCheck | None = None) -> Consistency:
    """Compare the PDF's images with the notebook's images of each section (already within the pixel cap:
    autograder/notebook/reading.py); the PDF's over `max_pixels` are left out, and said. Past `deadline`
    the PDF is not compared, and `problem` says so."""
    result = Consistency(pdf.name)
    deadline = deadline or unbounded()
    try:
        return _compare(pdf, sections, max_pixels, deadline, limits or load_rubric().pdf_check, result)
    except StageTimeout as late:
        result.sections.clear()
        result.evidence.clear()
        result.problem = f"{pdf.name} was not compared with the notebook: {late.reason}"
        return result


def _compare(pdf: Path, sections: dict[str, list[bytes]], max_pixels: int | None, deadline: Deadline,
             limits: PdfCheck, result: Consistency) -> Consistency:
    """`compare` within its deadline (StageTimeout past it)."""
    try:
        found = pdf_pictures(pdf, max_pixels, result.left_out, deadline, limits.max_pdf_images)
    except StageTimeout:
        raise
    except (PdfReadError, OSError, ValueError) as exc:
        result.problem = f"{pdf.name} could not be read as a PDF ({exc})"
        return result
    except Exception as exc:  # noqa: BLE001 - pypdf on a damaged file can fail in any way; it is the student's file
        result.problem = f"{pdf.name} could not be read as a PDF ({type(exc).__name__}: {str(exc)[:200]})"
        return result
    theirs: list[tuple[PdfPicture, Figure | None]] = []
    for picture in found:
        deadline.check()
        theirs.append((picture, _prepared(picture.picture, limits)))
    for section, pngs in sections.items():
        ours = [(picture, _prepared(picture, limits)) for picture in _notebook_images(pngs, max_pixels)]
        if not ours:
            evidence = Evidence(ABSENT, "the notebook has no figure here")
        elif not theirs:
            evidence = Evidence(NOT_FOUND, "the PDF holds no image at all (figures drawn as vector graphics "
                                           "cannot be compared): staff look at it")
        else:
            evidence = _judge(ours, theirs, limits, deadline)
        result.sections[section] = evidence.outcome
        result.evidence[section] = evidence
    return result


def _prepared(picture: Image.Image, limits: PdfCheck) -> Figure | None:
    """The picture ready to compare, or None when it cannot be decoded into pixels (a mode Pillow cannot
    convert) or is of one colour."""
    try:
        return prepare(picture, limits)
    except (OSError, ValueError):
        return None


def _judge(ours: list[tuple[Image.Image, Figure | None]], theirs: list[tuple[PdfPicture, Figure | None]],
           limits: PdfCheck, deadline: Deadline) -> Evidence:
    """The best pairing of a section's notebook figures with the PDF's images, as evidence. The PDF's
    images are tried most alike first (their whole correlation), and the search stops at the first that
    shows the same figure."""
    usable_ours = [(picture, figure) for picture, figure in ours if judgeable(figure, limits)]
    usable_theirs = [(found, figure) for found, figure in theirs if judgeable(figure, limits)]
    if not usable_ours:
        return Evidence(UNSURE, "the notebook's figure here is too small or blank to compare: staff look at it",
                        pictures=(ours[0][0], theirs[0][0].picture))
    if not usable_theirs:
        return Evidence(UNSURE, "the PDF's images are too small or blank to compare: staff look at it",
                        pictures=(ours[0][0], theirs[0][0].picture))
    best: tuple[int, Match, bool, Image.Image, PdfPicture] | None = None
    for picture, figure in usable_ours:
        order = sorted(usable_theirs, key=lambda pair: -likeness(figure, pair[1]))
        for found, other in order:
            deadline.check()
            match = compare_figures(figure, other, limits, deadline)
            flipped = _inverted(figure, other)
            rank = OUTCOMES_RANKED.index(_outcome(match, flipped, limits))
            if best is None or (rank, match.distance) < (best[0], best[1].distance):
                best = (rank, match, flipped, picture, found)
            if rank == 0:
                break
        if best is not None and best[0] == 0:
            break
    _, match, flipped, picture, found = best
    outcome = _outcome(match, flipped, limits)
    where = f"image {found.number} of the PDF (page {found.page})"
    score = f"{match.distance:.3f} of the strokes without a counterpart, correlation {match.correlation:.2f}"
    if flipped and outcome == UNSURE:
        note = (f"the closest is {where}, on a dark background where the notebook's figure is on a light one (or "
                f"the reverse: a transparent figure drawn without its transparency shows black): {match.how}; "
                f"{score}; strokes of the background's colour cannot be compared: staff look at it")
    else:
        note = {SAME: f"shown by {where}: {match.how}; {score}",
                DIFFERENT: f"the closest is {where}, another figure: {match.how}; {score} (at least "
                           f"{limits.different_distance:g}, or a correlation under {limits.unlike_correlation:g}, "
                           f"is another figure)",
                UNSURE: f"the closest is {where}: {match.how}; {score}, between the same figure (at most "
                        f"{limits.same_distance:g}) and another (at least {limits.different_distance:g}): "
                        f"staff look at it"}[outcome]
    return Evidence(outcome, note, found.page, found.number, match.distance, match.correlation, match.how,
                    match.offset, match.scale, pictures=(picture, found.picture))


OUTCOMES_RANKED = (SAME, UNSURE, DIFFERENT)


def _inverted(ours: Figure, theirs: Figure) -> bool:
    """One picture on a dark background and the other on a light one: the dark strokes of a light figure
    vanish on black (a transparent PNG drawn without its soft mask), so missing strokes prove nothing."""
    first, second = float(np.median(ours.grey)), float(np.median(theirs.grey))
    return min(first, second) < 96 and max(first, second) > 160  # clearly dark against clearly light (not noise)


def _outcome(match: Match, inverted: bool, limits: PdfCheck) -> str:
    """The verdict, but never "different" between pictures of opposite backgrounds: "could not tell"."""
    judged = verdict(match, limits)
    return UNSURE if inverted and judged == DIFFERENT else judged


def write_evidence(checks: list[Consistency], out_dir: Path, limits: PdfCheck | None = None) -> list[str]:
    """Thumbnails of both pictures of every section that is a different figure or could not be told, into
    OUT/pdf_evidence/, at most [pdf_check] max_evidence_images, each at most evidence_size pixels a side;
    each section's evidence names its files. Returns the files written (relative to OUT)."""
    limits = limits or load_rubric().pdf_check
    written: list[str] = []
    folder = out_dir / EVIDENCE_DIR
    for stale in (folder.glob("pdf*.png") if folder.is_dir() else ()):  # an earlier grading's, into the same folder
        stale.unlink()
    for number, check in enumerate(checks, start=1):
        for section, evidence in check.evidence.items():
            if evidence.outcome not in (DIFFERENT, UNSURE) or evidence.pictures is None:
                continue
            if len(written) + 2 > limits.max_evidence_images:
                evidence.note += " (its pictures were not written: too many already)"
                continue
            stem = f"pdf{number}-" + (re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")[:40] or "section")
            folder.mkdir(parents=True, exist_ok=True)
            for side, picture in zip(("notebook", "pdf"), evidence.pictures):
                thumbnail = flatten(picture)
                thumbnail.thumbnail((limits.evidence_size, limits.evidence_size), Image.LANCZOS)
                name = f"{stem}-{side}.png"
                thumbnail.save(folder / name, format="PNG")
                evidence.files[side] = name
                written.append(f"{EVIDENCE_DIR}/{name}")
    return written


__all__ = ["ABSENT", "DIFFERENT", "EVIDENCE_DIR", "NOT_FOUND", "OUTCOMES", "SAME", "UNSURE", "Consistency",
           "Evidence", "compare", "pdf_images", "pdf_pictures", "write_evidence"]

"""Does a submitted PDF show the notebook's own figures? Staff want a foreign PDF flagged, and only that.

Images are pulled out of the PDF with pypdf (an image drawn with a soft mask comes back RGBA, its mask
applied as alpha) and compared with each section's notebook figures as figures (figure_match.py):
transparency composited onto white as a viewer shows it, uniform margins trimmed, and one found inside
the other when the PDF holds a screenshot, a crop or a rescale of the figure. Each section ends as one of

- "same figure": a PDF image shows it (the evidence says which, on which page, how it was found);
- "different figure": the PDF has images and the closest one is another figure (another training run's
  curves): the one accusation, flagged "PDF mismatch", with both pictures written for staff;
- "could not tell": the closest image is between the rubric's bands, or a picture is too small or blank to
  judge, or an image of the PDF that may be the figure was not compared (too large, not decodable, past the
  image cap, blank): a note for staff, never an accusation;
- "not found": the PDF has no images at all (figures drawn as vector graphics cannot be compared);

Images are numbered in reading order (page by page, top to bottom, then left to right, where the content
stream draws them), the number the evidence names.
- "not in the notebook": the notebook has no figure there to look for.

What pypdf says about a damaged file ("Ignoring wrong pointing object ...") it logs; grading keeps that in
the submission's grading.log (autograder/reports/grading_log.py), away from the terminal. An embedded image
whose declared /Width x /Height exceeds the rubric's [intake] max_image_pixels is left out before anything
decodes it (pypdf's or Pillow's decoding of a huge one would take gigabytes), and said; reading stops at the
image after the first [pdf_check] max_pdf_images, and says so. pypdf decodes embedded images with Pillow: importing
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
from pypdf.generic import ContentStream

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
    """One image of the PDF: where it is (page, and its number in the PDF's reading order), decoded."""

    page: int
    number: int
    picture: Image.Image


@dataclass
class PdfReading:
    """What `read_pictures` found: the images decoded, and those it did not read (each named, with why:
    too large, not decodable), and where it stopped at the image cap (`capped`, said in words)."""

    pictures: list[PdfPicture] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    capped: str = ""

    @property
    def notes(self) -> list[str]:
        """The images not compared, in words, for the student and staff."""
        return [f"{note}; it was not compared" for note in self.unread] + ([self.capped] if self.capped else [])


def read_pictures(path: Path, max_pixels: int | None = None, deadline: Deadline | None = None,
                  max_images: int | None = None) -> PdfReading:
    """Every image embedded in the PDF, numbered in reading order (page by page; on a page top to bottom,
    then left to right, where the page's content stream places it: `_reading_order`), decoded; but those
    declaring more than `max_pixels` (default: the rubric's [intake] max_image_pixels), never decoded, and
    those Pillow cannot decode, both named in `unread`. Reading stops at the image after the first
    `max_images` (default [pdf_check] max_pdf_images): nothing after it is listed or decoded. StageTimeout
    past `deadline`."""
    rubric = load_rubric()
    max_pixels = max_pixels or rubric.intake.max_image_pixels
    max_images = max_images or rubric.pdf_check.max_pdf_images
    deadline = deadline or unbounded()
    found = PdfReading()
    number = 0
    for page_number, page in enumerate(PdfReader(str(path)).pages, start=1):
        deadline.check()
        for image_id in _reading_order(page, list(page.images.keys()), deadline):
            deadline.check()
            number += 1
            where = f"image {number} of the PDF (page {page_number})"
            if number > max_images:
                found.capped = (f"the PDF holds more images than the {max_images} the check reads: image {number} "
                                f"(page {page_number}) and any after it were not compared")
                return found
            try:
                size = _declared_size(page, image_id)
            except (KeyError, TypeError, ValueError, AttributeError):
                size = None
            if size is not None and size[0] * size[1] > max_pixels:
                found.unread.append(_too_large(where, size, max_pixels))
                continue
            try:
                with warnings.catch_warnings():  # a size within the cap: Pillow's bomb warning cannot apply
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    picture = page.images[image_id].image
                    if picture.width * picture.height > max_pixels:  # an inline image, or a dictionary that lied
                        found.unread.append(_too_large(where, picture.size, max_pixels))
                        continue
                    found.pictures.append(PdfPicture(page_number, number, picture.copy()))
            except Image.DecompressionBombError:
                found.unread.append(f"{where} is over the {max_pixels / 1e6:g} MP the grader reads: too large to read")
            except (OSError, ValueError, AttributeError, KeyError) as exc:
                found.unread.append(f"{where} could not be decoded ({type(exc).__name__})")
    return found


def _too_large(where: str, size: tuple[int, int], max_pixels: int) -> str:
    return f"{where} is {size_text(*size)}, over the {max_pixels / 1e6:g} MP the grader reads: too large to read"


def pdf_pictures(path: Path, max_pixels: int | None = None, left_out: list[str] | None = None,
                 deadline: Deadline | None = None, max_images: int | None = None) -> list[PdfPicture]:
    """The decoded images of `read_pictures`; those it did not read are said in `left_out`."""
    found = read_pictures(path, max_pixels, deadline, max_images)
    if left_out is not None:
        left_out.extend(found.notes)
    return found.pictures


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


# ------------------------------------------------------------------------------------------- reading order

Matrix = tuple[float, float, float, float, float, float]
Box = tuple[float, float, float, float]  # left, bottom, right, top on the page, in points
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_MAX_FORM_DEPTH = 8


def _key(image_id) -> str | tuple[str, ...]:
    """pypdf's id of an image (a name, or the list of the forms' names and its own) as a dictionary key."""
    return tuple(str(name) for name in image_id) if isinstance(image_id, (list, tuple)) else str(image_id)


def _reading_order(page, ids: list, deadline: Deadline) -> list:
    """The page's image ids in reading order: top to bottom, images side by side (overlapping vertically
    by at least half the lower one's height) left to right. Placements come from the page's content stream
    (`_placements`); an image it does not draw, or a page whose stream cannot be followed, keeps pypdf's
    order (after the placed ones)."""
    if len(ids) < 2:
        return ids
    try:
        placed = _placements(page, deadline)
    except StageTimeout:
        raise
    except Exception:  # noqa: BLE001 - a damaged content stream: the page keeps pypdf's order
        return ids
    known = sorted((placed[_key(i)] for i in ids if _key(i) in placed), key=lambda item: -item[1][3])
    rows: list[list[tuple[str | tuple[str, ...], Box]]] = []
    for item in known:
        row = rows[-1] if rows else None
        if row is not None:
            _, (_, bottom, _, top) = row[0]
            _, (_, lower, _, upper) = item
            overlap = min(top, upper) - max(bottom, lower)
            if overlap >= 0.5 * min(top - bottom, upper - lower):
                row.append(item)
                continue
        rows.append([item])
    by_key = {_key(i): i for i in ids}
    ordered = [by_key[key] for row in rows for key, _ in sorted(row, key=lambda item: item[1][0])]
    return ordered + [i for i in ids if _key(i) not in placed]


def _placements(page, deadline: Deadline) -> dict[str | tuple[str, ...], tuple[str | tuple[str, ...], Box]]:
    """Where the page's content stream draws each image (keyed as pypdf names it: an XObject's name, the
    names of the forms that hold it then its own, "~n~" for the page's n-th inline image): the box of the
    unit square under the current transformation, following q/Q, cm and forms (their /Matrix). An image
    drawn twice counts where it is drawn highest."""
    placed: dict[str | tuple[str, ...], tuple[str | tuple[str, ...], Box]] = {}
    inline = 0
    steps = 0

    def put(key, ctm: Matrix) -> None:
        box = _unit_box(ctm)
        if key not in placed or box[3] > placed[key][1][3]:
            placed[key] = (key, box)

    def walk(operations, resources, ctm: Matrix, forms: tuple[str, ...], seen: frozenset) -> None:
        nonlocal inline, steps
        saved: list[Matrix] = []
        for operands, operator in operations:
            steps += 1
            if steps % 2048 == 0:
                deadline.check()
            if operator == b"q":
                saved.append(ctm)
            elif operator == b"Q":
                ctm = saved.pop() if saved else ctm
            elif operator == b"cm" and len(operands) == 6:
                ctm = _times(tuple(float(value) for value in operands), ctm)
            elif operator == b"INLINE IMAGE" and not forms:
                put(f"~{inline}~", ctm)
                inline += 1
            elif operator == b"Do" and operands:
                name = str(operands[0])
                xobjects = resources.get("/XObject") if resources is not None else None
                xobjects = xobjects.get_object() if xobjects is not None else None
                target = xobjects.get(name) if xobjects is not None else None
                if target is None:
                    continue
                reference = getattr(target, "idnum", None)
                target = target.get_object()
                subtype = target.get("/Subtype")
                if subtype == "/Image":
                    put((*forms, name) if forms else name, ctm)
                elif subtype == "/Form" and len(forms) < _MAX_FORM_DEPTH and reference not in seen:
                    matrix = tuple(float(value) for value in target.get("/Matrix", _IDENTITY))
                    inner = target.get("/Resources")
                    walk(ContentStream(target, page.pdf).operations,
                         inner.get_object() if inner is not None else resources,
                         _times(matrix if len(matrix) == 6 else _IDENTITY, ctm), (*forms, name),
                         seen | {reference})

    contents = page.get_contents()
    if contents is not None:
        resources = page.get("/Resources")
        walk(contents.operations, resources.get_object() if resources is not None else None, _IDENTITY, (),
             frozenset())
    return placed


def _times(first: Matrix, second: Matrix) -> Matrix:
    """The transformation `first` then `second` (PDF's row-vector convention: first x second)."""
    a, b, c, d, e, f = first
    p, q, r, s, t, u = second
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s, e * p + f * r + t, e * q + f * s + u)


def _unit_box(ctm: Matrix) -> Box:
    """The box on the page of the unit square an image is drawn into."""
    a, b, c, d, e, f = ctm
    xs = [e, a + e, c + e, a + c + e]
    ys = [f, b + f, d + f, b + d + f]
    return min(xs), min(ys), max(xs), max(ys)


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
        found = read_pictures(pdf, max_pixels, deadline, limits.max_pdf_images)
    except StageTimeout:
        raise
    except (PdfReadError, OSError, ValueError) as exc:
        result.problem = f"{pdf.name} could not be read as a PDF ({exc})"
        return result
    except Exception as exc:  # noqa: BLE001 - pypdf on a damaged file can fail in any way; it is the student's file
        result.problem = f"{pdf.name} could not be read as a PDF ({type(exc).__name__}: {str(exc)[:200]})"
        return result
    result.left_out.extend(found.notes)
    # why no comparison here can accuse: an image of the PDF the check did not read may be the figure
    unread = found.unread[:_NAMED] + ([f"{len(found.unread) - _NAMED} more could not be read"]
                                      if len(found.unread) > _NAMED else [])
    unread += [found.capped] if found.capped else []
    theirs: list[tuple[PdfPicture, Figure | None]] = []
    for picture in found.pictures:
        deadline.check()
        theirs.append((picture, _prepared(picture.picture, limits)))
    for section, pngs in sections.items():
        ours = [(picture, _prepared(picture, limits)) for picture in _notebook_images(pngs, max_pixels)]
        if not ours:
            evidence = Evidence(ABSENT, "the notebook has no figure here")
        elif not theirs and unread:
            evidence = Evidence(UNSURE, f"the PDF's images could not be read ({'; '.join(unread)}): not compared, "
                                        f"staff look at it")
        elif not theirs:
            evidence = Evidence(NOT_FOUND, "the PDF holds no image at all (figures drawn as vector graphics "
                                           "cannot be compared): staff look at it")
        else:
            evidence = _judge(ours, theirs, limits, deadline, unread)
        result.sections[section] = evidence.outcome
        result.evidence[section] = evidence
    return result


#: At most this many of the PDF's unread images are named in a section's note (all are in `left_out`).
_NAMED = 3


def _prepared(picture: Image.Image, limits: PdfCheck) -> Figure | None:
    """The picture ready to compare, or None when it cannot be decoded into pixels (a mode Pillow cannot
    convert) or is of one colour."""
    try:
        return prepare(picture, limits)
    except (OSError, ValueError):
        return None


def _unjudgeable(found: PdfPicture, figure: Figure | None, limits: PdfCheck) -> str:
    """Why this image of the PDF cannot be judged, in words ("" when it can)."""
    where = f"image {found.number} of the PDF (page {found.page})"
    if figure is None:
        return f"{where} is blank (of one colour)"
    if min(figure.grey.shape) / figure.scale < limits.min_side:
        return f"{where} is too small to compare ({size_text(*found.picture.size)})"
    if figure.ink < limits.min_ink:
        return f"{where} is nearly blank (too few strokes to compare)"
    return ""


def _judge(ours: list[tuple[Image.Image, Figure | None]], theirs: list[tuple[PdfPicture, Figure | None]],
           limits: PdfCheck, deadline: Deadline, unread: list[str] = ()) -> Evidence:
    """The best pairing of a section's notebook figures with the PDF's images, as evidence. The PDF's
    images are tried most alike first (their whole correlation), and the search stops at the first that
    shows the same figure. Never "different figure" while an image of the PDF that may be the figure was
    not compared: one not read (`unread`: too large, not decodable, past the cap) or one blank or too little
    to judge that is large enough to be where the figure is (at least min_side pixels a side)."""
    usable_ours = [(picture, figure) for picture, figure in ours if judgeable(figure, limits)]
    usable_theirs = [(found, figure) for found, figure in theirs if judgeable(figure, limits)]
    unjudged = [_unjudgeable(found, figure, limits) for found, figure in theirs if not judgeable(figure, limits)]
    blank = [_unjudgeable(found, figure, limits) for found, figure in theirs if not judgeable(figure, limits)
             and min(found.picture.size) >= limits.min_side]
    if not usable_ours:
        return Evidence(UNSURE, "the notebook's figure here is too small or blank to compare: staff look at it",
                        pictures=(ours[0][0], theirs[0][0].picture))
    if not usable_theirs:
        said = unjudged[:_NAMED] + (["..."] if len(unjudged) > _NAMED else []) + list(unread)
        return Evidence(UNSURE, f"the PDF's images are too small or blank to compare ({'; '.join(said)}): "
                                f"staff look at it", pictures=(ours[0][0], theirs[0][0].picture))
    reservations = list(unread) + blank[:_NAMED] + ([f"{len(blank) - _NAMED} more are blank"]
                                                    if len(blank) > _NAMED else [])
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
    how, offset, scale = match.how, match.offset, match.scale
    if outcome == DIFFERENT:  # no alignment shows the figure: nothing relates the two pictures
        how, offset, scale = _NO_ALIGNMENT, None, None
    if outcome == DIFFERENT and reservations:
        outcome = UNSURE
        note = (f"the closest of the images compared is {where}, another figure ({how}; {score}); but "
                f"{'; '.join(reservations)}: that may be where the figure is, so it was not compared: staff "
                f"look at it")
    elif flipped and outcome == UNSURE:
        note = (f"the closest is {where}, on a dark background where the notebook's figure is on a light one (or "
                f"the reverse: a transparent figure drawn without its transparency shows black): {how}; "
                f"{score}; strokes of the background's colour cannot be compared: staff look at it")
    else:
        note = {SAME: f"shown by {where}: {how}; {score}",
                DIFFERENT: f"the closest is {where}, another figure: {how}; {score} (at least "
                           f"{limits.different_distance:g}, or a correlation under {limits.unlike_correlation:g}, "
                           f"is another figure)",
                UNSURE: f"the closest is {where}, at its best alignment {how}; {score}, between the same figure "
                        f"(at most {limits.same_distance:g}) and another (at least {limits.different_distance:g}): "
                        f"staff look at it"}[outcome]
    return Evidence(outcome, note, found.page, found.number, match.distance, match.correlation, how,
                    offset, scale, pictures=(picture, found.picture))


#: The `how` of a different figure: it claims no relation (crop, screenshot, rescale) between the pictures.
_NO_ALIGNMENT = "compared whole and each looked for inside the other, at every scale: no alignment shows the figure"
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
           "Evidence", "PdfReading", "compare", "pdf_images", "pdf_pictures", "read_pictures",
           "write_evidence"]

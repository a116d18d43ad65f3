"""The PDF check compares figures as figures: real matplotlib training curves (laid out like the notebook's:
loss above, accuracy below, seeded random curves), real PDFs drawn with reportlab, read back by the real
check. A transparent figure, a screenshot with a margin or a window around it, a crop and a rescale are the
same figure; another run's curves are a different figure (flagged, both pictures on the grading sheet); a
figure with a note written over it is one the check could not tell (a note for staff, no flag)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import time
from html.parser import HTMLParser

import matplotlib
import nbformat
import numpy as np
import pytest
import tomllib
from conftest import run_grade
from grey_pdfs import grey_images_pdf
from notebooks import _image, official_notebook
from PIL import Image, ImageDraw
from pypdf import PdfReader
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from submissions import grade, make_submission

from autograder.batch import _flags
from autograder.notebook.figure_match import flatten
from autograder.notebook.pdf import SECTIONS
from autograder.notebook.pdf_check import (
    ABSENT,
    DIFFERENT,
    EVIDENCE_DIR,
    NOT_FOUND,
    SAME,
    UNSURE,
    compare,
    pdf_pictures,
    write_evidence,
)
from autograder.reports.flags import asks_staff
from autograder.reports.manual_sheet import build_manual_sheet
from autograder.rubric import RUBRIC_PATH, RubricError, load_rubric, parse_rubric

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend

CURVES = SECTIONS[0]


def training_curves(seed: int, dpi: int = 60, transparent: bool = False, note: str | None = None) -> bytes:
    """The notebook's training-curves figure (its cell's layout, 15 x 12 inches) of one seeded run, as PNG."""
    rng = np.random.default_rng(seed)
    loss = (2.3 * np.exp(-np.arange(1000) / (200 + 50 * rng.random())) + 0.3
            + 0.005 * rng.standard_normal(1000).cumsum() + 0.1 * rng.random(1000))
    train = 0.9 - 0.6 * np.exp(-np.arange(10) / (2 + rng.random())) + 0.02 * rng.standard_normal(10)
    validation = train - 0.03 + 0.02 * rng.standard_normal(10)
    figure = plt.figure(dpi=dpi)
    plt.subplot(2, 1, 1)
    plt.title("Training loss")
    plt.plot(loss[::20], "-o")
    plt.xlabel("Iteration")
    if note:
        plt.text(25, 2.0, note, fontsize=30)
    plt.subplot(2, 1, 2)
    plt.title("Accuracy")
    plt.plot(train, "-o", label="Training")
    plt.plot(validation, "-o", label="Validation")
    plt.xlabel("Epoch")
    plt.legend(loc="lower right")
    figure.set_size_inches(15, 12)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", transparent=transparent)
    plt.close(figure)
    return buffer.getvalue()


def as_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def opened(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


def pdf_of(path, *pictures: bytes, width: float = 480.0):
    """A PDF made with reportlab, one picture a page, each drawn with its alpha (mask='auto'), as a student's
    own PDF would show them."""
    page = canvas.Canvas(str(path))
    for png in pictures:
        picture = opened(png)
        height = width * picture.height / picture.width
        page.drawString(60, 780, "Problem 2: my solution")
        page.drawImage(ImageReader(io.BytesIO(png)), 60, 760 - height, width=width, height=height, mask="auto")
        page.showPage()
    page.save()
    return path


def screenshot(png: bytes, chrome: bool) -> bytes:
    """The figure as a screenshot: inside a uniform grey margin, or inside a window (title bar with its three
    buttons and a title, a status bar)."""
    figure = flatten(opened(png))
    if not chrome:
        shot = Image.new("RGB", (figure.width + 80, figure.height + 60), (205, 205, 205))
        shot.paste(figure, (40, 30))
        return as_png(shot)
    shot = Image.new("RGB", (figure.width + 60, figure.height + 110), (236, 236, 236))
    draw = ImageDraw.Draw(shot)
    draw.rectangle([0, 0, shot.width, 40], fill=(60, 60, 70))
    for index, colour in enumerate([(255, 95, 87), (255, 189, 46), (39, 201, 63)]):
        draw.ellipse([12 + 24 * index, 12, 28 + 24 * index, 28], fill=colour)
    draw.text((120, 14), "Problem_2 - Jupyter Notebook", fill=(240, 240, 240))
    draw.rectangle([0, shot.height - 30, shot.width, shot.height], fill=(200, 205, 215))
    shot.paste(figure, (30, 55))
    return as_png(shot)


def page_screenshot(png: bytes, share: float = 0.35) -> bytes:
    """The figure in a screenshot of the whole notebook page: lines of code above and below it, the figure
    `share` of the screenshot's width."""
    figure = flatten(opened(png))
    width = round(figure.width / share)
    shot = Image.new("RGB", (width, round(width * 0.7)), (255, 255, 255))
    draw = ImageDraw.Draw(shot)
    for number, y in enumerate(range(20, shot.height, 22)):
        draw.text((20, y), "scores = model.forward(X_batch)  # " + "step " * (3 + number * 7 % 25), fill=(30, 30, 30))
    shot.paste(figure, (round(width * 0.1), shot.height - figure.height - 40))
    return as_png(shot)


def content_box(picture: Image.Image) -> tuple[int, int, int, int]:
    """The figure's drawn part: the box of pixels that are not white."""
    grey = np.asarray(flatten(picture).convert("L"))
    rows, columns = np.flatnonzero((grey < 250).any(axis=1)), np.flatnonzero((grey < 250).any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def cropped(png: bytes, area: float = 0.8) -> bytes:
    """A crop keeping `area` of the drawn part of the figure (its white margins aside), off-centre."""
    picture = flatten(opened(png))
    left, top, right, bottom = content_box(picture)
    side = area ** 0.5
    width, height = round((right - left) * side), round((bottom - top) * side)
    x, y = left + round((right - left - width) * 0.3), top + round((bottom - top - height) * 0.6)
    return as_png(picture.crop((x, y, x + width, y + height)))


def rescaled(png: bytes, factor: float) -> bytes:
    picture = flatten(opened(png))
    return as_png(picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.LANCZOS))


def black_under_transparency(png: bytes) -> bytes:
    """The figure saved transparent by a tool that leaves black under its transparent pixels."""
    pixels = np.asarray(opened(png).convert("RGBA")).copy()
    pixels[pixels[..., 3] == 0, :3] = 0
    return as_png(Image.fromarray(pixels, "RGBA"))


OURS = training_curves(1)


def check_of(tmp_path, pdf_png: bytes, ours: bytes = OURS):
    return compare(pdf_of(tmp_path / "theirs.pdf", pdf_png), {CURVES: [ours]})


# ----------------------------------------------------------------------------------------------- the same figure

def test_a_transparent_figure_drawn_with_its_alpha_is_the_same_figure(tmp_path):
    transparent = black_under_transparency(training_curves(1, transparent=True))
    pdf = pdf_of(tmp_path / "theirs.pdf", transparent)
    [found] = pdf_pictures(pdf)
    # what pypdf returns for an image reportlab drew with its soft mask: RGBA, the mask as alpha ...
    assert found.picture.mode == "RGBA" and np.asarray(found.picture)[..., 3].min() == 0
    # ... whose colour channels alone (the old comparison's convert("RGB")) are mostly black: the false accusation
    assert np.asarray(found.picture.convert("L")).mean() < 60
    assert np.asarray(flatten(found.picture).convert("L")).mean() > 200  # on white, as a viewer shows it
    check = compare(pdf, {CURVES: [OURS]})
    assert check.sections == {CURVES: SAME} and check.consistent and not check.mismatched, check.evidence
    evidence = check.evidence[CURVES]
    assert evidence.page == 1 and evidence.image == 1 and evidence.distance <= 0.03


def test_a_transparent_figure_drawn_without_its_transparency_is_never_called_different(tmp_path):
    """reportlab without mask='auto' drops the alpha: the page really shows the figure on black, its black
    axes and text gone. Missing strokes prove nothing there: staff look at it."""
    page = canvas.Canvas(str(tmp_path / "theirs.pdf"))
    page.drawImage(ImageReader(io.BytesIO(black_under_transparency(training_curves(1, transparent=True)))),
                   60, 300, width=480, height=384, mask=None)
    page.save()
    check = compare(tmp_path / "theirs.pdf", {CURVES: [OURS]})
    assert check.sections == {CURVES: UNSURE} and not check.mismatched
    assert "on a dark background where the notebook's figure is on a light one" in check.evidence[CURVES].note


def test_flatten_composites_every_kind_of_transparency_onto_white():
    grey_alpha = Image.new("LA", (4, 4), (0, 0))
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    for picture in (grey_alpha, palette, Image.new("RGBA", (4, 4), (0, 0, 0, 0))):
        assert np.asarray(flatten(picture)).min() == 255, picture.mode
    assert np.asarray(flatten(Image.new("RGBA", (4, 4), (0, 0, 0, 255)))).max() == 0  # opaque black stays black


@pytest.mark.parametrize("theirs,how", [
    (screenshot(OURS, chrome=False), "whole, uniform margins trimmed"),
    (screenshot(OURS, chrome=True), "the figure found inside the PDF's image at"),
    (page_screenshot(OURS), "the figure found inside the PDF's image at"),
    (cropped(OURS, 0.8), "the PDF's image is a crop of the figure"),
    (rescaled(OURS, 0.5), "whole"),
    (rescaled(OURS, 2.0), "whole"),
    (rescaled(cropped(OURS, 0.8), 0.5), "the PDF's image is a crop of the figure"),
    (training_curves(1, dpi=100), "whole"),
], ids=["screenshot-margin", "screenshot-window", "screenshot-page", "crop-80%", "rescale-0.5x", "rescale-2x",
        "crop-then-0.5x", "rendered-at-100-dpi"])
def test_a_screenshot_crop_or_rescale_is_the_same_figure(tmp_path, theirs, how):
    check = check_of(tmp_path, theirs)
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: SAME}, evidence
    assert evidence.how.startswith(how) and evidence.distance <= 0.03 and evidence.correlation >= 0.5
    assert f"shown by image 1 of the PDF (page 1): {evidence.how}" in evidence.note
    assert not write_evidence([check], tmp_path / "out")  # nothing for staff to look at


def test_the_found_crop_says_where_and_at_what_scale(tmp_path):
    check = check_of(tmp_path, rescaled(cropped(OURS, 0.8), 0.5))
    evidence = check.evidence[CURVES]
    picture = opened(OURS)
    left, top, right, bottom = content_box(picture)
    side = 0.8 ** 0.5
    expected = (left + round((right - left - round((right - left) * side)) * 0.3),
                top + round((bottom - top - round((bottom - top) * side)) * 0.6))
    assert abs(evidence.offset[0] - expected[0]) <= 4 and abs(evidence.offset[1] - expected[1]) <= 4, evidence
    assert evidence.scale == pytest.approx(0.5, abs=0.02)


# ------------------------------------------------------------------------------------------ a different figure

def test_another_runs_curves_are_a_different_figure_with_both_pictures_written(tmp_path):
    check = check_of(tmp_path, training_curves(2))
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: DIFFERENT} and check.mismatched and not check.consistent
    assert evidence.distance >= 0.08 and "the closest is image 1 of the PDF (page 1), another figure" in evidence.note
    written = write_evidence([check], tmp_path / "out")
    assert written == [f"{EVIDENCE_DIR}/pdf1-1-training-loss-and-accuracy-curves-notebook.png",
                       f"{EVIDENCE_DIR}/pdf1-1-training-loss-and-accuracy-curves-pdf.png"]
    for name in written:
        thumbnail = Image.open(tmp_path / "out" / name)
        assert max(thumbnail.size) <= 480 and thumbnail.mode == "RGB"
    assert evidence.data()["files"] == {"notebook": "pdf1-1-training-loss-and-accuracy-curves-notebook.png",
                                        "pdf": "pdf1-1-training-loss-and-accuracy-curves-pdf.png"}


@pytest.mark.parametrize("theirs", [screenshot(training_curves(3), chrome=True), cropped(training_curves(4)),
                                    rescaled(training_curves(5), 0.5), page_screenshot(training_curves(6))],
                         ids=["window", "crop", "rescale", "page"])
def test_another_run_stays_different_as_a_screenshot_crop_or_rescale(tmp_path, theirs):
    assert check_of(tmp_path, theirs).sections == {CURVES: DIFFERENT}


def test_the_right_figure_among_ten_images_is_found_and_named(tmp_path):
    others = [training_curves(seed) for seed in range(20, 29)]
    pdf = pdf_of(tmp_path / "theirs.pdf", *others[:6], screenshot(OURS, chrome=True), *others[6:])
    started = time.perf_counter()
    check = compare(pdf, {CURVES: [OURS]})
    seconds = time.perf_counter() - started
    assert check.sections == {CURVES: SAME} and check.evidence[CURVES].image == 7 and check.evidence[CURVES].page == 7
    assert seconds < 30, seconds  # measured 1 to 3 s on 2 shared cores; the stage's deadline is 60 s


# ----------------------------------------------------------------------------------------------- could not tell

def test_a_figure_with_a_note_written_over_it_is_one_the_check_could_not_tell(tmp_path):
    check = check_of(tmp_path, training_curves(1, note="best run"))
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: UNSURE} and check.consistent and not check.mismatched, evidence
    assert 0.03 < evidence.distance < 0.08 and "staff look at it" in evidence.note
    assert len(write_evidence([check], tmp_path / "out")) == 2  # shown to staff, side by side


def test_a_blank_or_tiny_picture_is_not_judged(tmp_path):
    blank = as_png(Image.new("RGB", (300, 200), (255, 255, 255)))
    tiny = rescaled(OURS, 0.02)
    for theirs in (blank, tiny):
        check = check_of(tmp_path, theirs)
        assert check.sections == {CURVES: UNSURE} and "too small or blank" in check.evidence[CURVES].note
    assert check_of(tmp_path, OURS, ours=blank).sections == {CURVES: UNSURE}


def test_a_pdf_without_images_and_a_notebook_without_figures(tmp_path):
    page = canvas.Canvas(str(tmp_path / "text.pdf"))
    page.drawString(100, 700, "only words")
    page.save()
    assert compare(tmp_path / "text.pdf", {CURVES: [OURS]}).sections == {CURVES: NOT_FOUND}
    assert check_of(tmp_path, OURS, ours=b"").sections == {CURVES: ABSENT}


def test_evidence_pictures_are_bounded_in_number_and_an_earlier_gradings_go(tmp_path):
    sections = {f"section {n}": [training_curves(n + 1)] for n in range(6)}
    check = compare(pdf_of(tmp_path / "theirs.pdf", training_curves(40)), sections)
    assert set(check.sections.values()) == {DIFFERENT}
    assert len(write_evidence([check], tmp_path / "out")) == 8  # [pdf_check] max_evidence_images
    assert sum("not written" in evidence.note for evidence in check.evidence.values()) == 2
    assert not write_evidence([check_of(tmp_path, OURS)], tmp_path / "out")  # graded again: the same figure
    assert not list((tmp_path / "out" / EVIDENCE_DIR).iterdir())


@pytest.mark.parametrize("key,value,says", [
    ("same_distance", 0.09, "same_distance: must be below different_distance"),
    ("unlike_correlation", 0.6, "unlike_correlation: must be at least 0 and below min_correlation"),
    ("ink_weak", 90, "must be 0 < ink_weak < ink_strong < 255"),
    ("search_size", 900, "must be 16 <= search_size <= compare_size <= analysis_size"),
    ("max_pdf_images", 0, "max_pdf_images: must be positive"),
    ("min_cover", "half", "min_cover: must be a number"),
])
def test_the_thresholds_are_the_rubrics_and_checked(key, value, says):
    data = tomllib.loads(RUBRIC_PATH.read_text())
    assert load_rubric().pdf_check.different_distance == data["pdf_check"]["different_distance"]
    data["pdf_check"][key] = value
    with pytest.raises(RubricError, match=re.escape(f"[pdf_check] {key}") if key != "ink_weak" else "ink_weak"):
        parse_rubric(data)
    with pytest.raises(RubricError, match=re.escape(says)):
        parse_rubric(data)


# ------------------------------------------------------------------------------------------------ end to end

def _submission(tmp_path, pdf_png: bytes):
    """The reference, with a notebook whose curves are run 1's and whose filter image is the test notebook's;
    its PDF shows `pdf_png` for the curves and the same filter image."""
    sub = make_submission(tmp_path / "sub")
    notebook = official_notebook()
    notebook.cells[11].outputs = [_image(base64.b64encode(OURS).decode())]
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    filters = base64.b64decode(notebook.cells[13].outputs[0]["data"]["image/png"])
    pdf_of(sub / "problem_2_solution.pdf", pdf_png, rescaled(filters, 4.0))
    return sub


def test_grade_flags_another_run_and_shows_both_pictures_in_feedback_and_on_the_sheet(tmp_path):
    out = tmp_path / "graded"
    done = run_grade("grade", str(_submission(tmp_path, training_curves(2))), "--out", str(out / "s1"))
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "s1" / "results.json").read_text())
    check = next(t for t in document["tests"] if t["tags"] == ["pdf_consistency"])
    assert check["extra_data"]["sections"] == {SECTIONS[0]: DIFFERENT, SECTIONS[1]: SAME}
    evidence = check["extra_data"]["evidence"][SECTIONS[0]]
    assert evidence["page"] == 1 and evidence["distance"] >= 0.08 and check["status"] == "failed"
    files = [f"{EVIDENCE_DIR}/{evidence['files'][side]}" for side in ("notebook", "pdf")]
    assert all((out / "s1" / name).is_file() for name in files)
    assert "PDF mismatch" in _flags(document) and "PDF not compared" not in _flags(document)
    feedback = (out / "s1" / "feedback.md").read_text()
    assert f"{SECTIONS[0]}: **different figure**: the closest is image 1 of the PDF (page 1), another" in feedback
    assert "Staff are told, and see both side by side" in feedback
    sheet = build_manual_sheet(out).read_text()
    assert all(f"s1/{name}" in sheet for name in files) and "different figure, no points" in sheet
    assert "the PDF&#x27;s closest image" in sheet


def test_grade_leaves_a_figure_it_could_not_tell_to_staff_without_a_flag(tmp_path):
    scores, result, out_dir = grade(_submission(tmp_path, training_curves(1, note="best run")), tmp_path)
    document = json.loads((out_dir / "results.json").read_text())
    check = next(t for t in document["tests"] if t["tags"] == ["pdf_consistency"])
    assert check["extra_data"]["sections"][SECTIONS[0]] == UNSURE and check["status"] == "passed"
    assert "PDF mismatch" not in _flags(document) and "PDF not compared" in _flags(document)  # a look, no accusation
    assert asks_staff("PDF not compared")  # listed in the class report for a look
    assert "could not tell**: the closest is image 1" in (out_dir / "feedback.md").read_text()
    sheet = build_manual_sheet(out_dir.parent).read_text()
    assert f"{out_dir.name}/{EVIDENCE_DIR}/pdf1-1-training-loss-and-accuracy-curves-pdf.png" in sheet
    words, images = card_of(out_dir)
    assert f"{SECTIONS[0]} (could not tell, no points)" in words
    assert "Could not tell: the closest is image 1 of the PDF (page 1), at its best alignment" in words
    assert re.search(r"Closest image of the PDF: image 1 on page 1, 0\.\d{3} of the strokes without a counterpart, "
                     r"correlation -?\d\.\d\d\.", words), words
    assert sum(EVIDENCE_DIR in src for src in images) == 2  # the notebook's figure beside the PDF's


def test_the_pdf_grade_makes_shows_the_notebooks_figures(tmp_path):
    """What `grade.py pdf` makes from a notebook (the demo's examples) is the same figure in every section."""
    notebook = official_notebook()
    notebook.cells[11].outputs = [_image(base64.b64encode(training_curves(7, transparent=True)).decode())]
    nbformat.write(notebook, str(tmp_path / "Problem_2.ipynb"))
    assert run_grade("pdf", str(tmp_path / "Problem_2.ipynb")).returncode == 0
    pdf = tmp_path / "problem_2_solution.pdf"
    assert sum(len(page.images) for page in PdfReader(str(pdf)).pages) == 2
    curves = base64.b64decode(notebook.cells[11].outputs[0]["data"]["image/png"])
    filters = base64.b64decode(notebook.cells[13].outputs[0]["data"]["image/png"])
    check = compare(pdf, {SECTIONS[0]: [curves], SECTIONS[1]: [filters]})
    assert check.sections == {SECTIONS[0]: SAME, SECTIONS[1]: SAME}, check.evidence


# ------------------------------------------------------------------------------------ the review's findings

def flat(colour: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> bytes:
    return as_png(Image.new("RGB", size, colour))


def pdf_laid_out(path, pages: list[list[tuple[bytes, float, float, float]]]):
    """A reportlab PDF whose pages hold pictures at given places, drawn in the order given: (png, x, y of the
    lower left corner, width in points), the height from the picture's aspect."""
    page = canvas.Canvas(str(path))
    for drawn in pages:
        for png, x, y, width in drawn:
            picture = opened(png)
            page.drawImage(ImageReader(io.BytesIO(png)), x, y, width=width,
                           height=width * picture.height / picture.width, mask="auto")
        page.showPage()
    page.save()
    return path


def colour_of(picture: Image.Image) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(flatten(picture))[picture.height // 2, picture.width // 2])


def test_images_are_numbered_in_reading_order_not_in_pypdfs(tmp_path):
    """Page by page, top to bottom, then left to right as drawn on the page, whatever order the PDF lists
    or draws them in; an image drawn inside a form XObject is placed where the form puts it."""
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]
    top_left, top_right, bottom_left, bottom_right, low, high = (flat(colour) for colour in colours)
    pdf = tmp_path / "theirs.pdf"
    page = canvas.Canvas(str(pdf))
    # page 1: a 2 x 2 grid drawn bottom right first; the top right one sits a little lower than the top left
    for png, x, y in ((bottom_right, 320, 100), (top_left, 60, 500), (bottom_left, 60, 100), (top_right, 320, 490)):
        page.drawImage(ImageReader(io.BytesIO(png)), x, y, width=180, height=120)
    page.showPage()
    # page 2: one image drawn low on the page, then a form holding another, placed high
    page.drawImage(ImageReader(io.BytesIO(low)), 60, 100, width=180, height=120)
    page.beginForm("placed")
    page.drawImage(ImageReader(io.BytesIO(high)), 0, 0, width=180, height=120)
    page.endForm()
    page.saveState()
    page.translate(100, 600)
    page.doForm("placed")
    page.restoreState()
    page.showPage()
    page.save()
    reading = [*colours[:4], colours[5], colours[4]]  # the grid row by row, then the form's (high) and the low one
    listed = [colour_of(image.image) for one in PdfReader(str(pdf)).pages for image in one.images]
    assert sorted(listed) == sorted(reading) and listed != reading  # pypdf's own order is not the reading order
    found = pdf_pictures(pdf)
    assert [colour_of(picture.picture) for picture in found] == reading
    assert [(picture.page, picture.number) for picture in found] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6)]


def test_the_evidence_names_the_figure_by_its_place_in_reading_order(tmp_path):
    others = [training_curves(seed) for seed in (31, 32, 33)]
    pictures = {"top left": others[0], "top right": OURS, "bottom left": others[1], "bottom right": others[2]}
    places = {"top left": (40, 430), "top right": (310, 430), "bottom left": (40, 100), "bottom right": (310, 100)}
    drawn = [(pictures[name], *places[name], 250) for name in ("bottom right", "bottom left", "top right", "top left")]
    pdf = pdf_laid_out(tmp_path / "theirs.pdf", [drawn])
    ours = np.asarray(flatten(opened(OURS)))
    listed = [np.array_equal(np.asarray(flatten(image.image)), ours) for image in PdfReader(str(pdf)).pages[0].images]
    assert len(listed) == 4 and listed.index(True) != 1  # pypdf lists it elsewhere than second
    check = compare(pdf, {CURVES: [OURS]})
    assert check.sections == {CURVES: SAME} and check.evidence[CURVES].image == 2, check.evidence[CURVES]
    assert "shown by image 2 of the PDF (page 1)" in check.evidence[CURVES].note


def test_a_figure_past_the_image_cap_is_not_compared_never_called_different(tmp_path):
    limits = dataclasses.replace(load_rubric().pdf_check, max_pdf_images=3)
    pdf = pdf_of(tmp_path / "theirs.pdf", training_curves(41), training_curves(42), training_curves(43), OURS)
    check = compare(pdf, {CURVES: [OURS]}, limits=limits)
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: UNSURE} and not check.mismatched, evidence
    assert "more images than the 3 the check reads" in evidence.note
    assert any("more images than the 3 the check reads" in note and "image 4 (page 4)" in note
               for note in check.left_out), check.left_out
    # within the cap, the same figure is found as ever
    assert compare(pdf, {CURVES: [OURS]}, limits=dataclasses.replace(limits, max_pdf_images=4)).sections == {
        CURVES: SAME}


def test_reading_stops_at_the_image_cap(tmp_path):
    """The images after the cap are not listed or decoded: a PDF of 3 + 40 images costs what one of 3 does."""
    limits = dataclasses.replace(load_rubric().pdf_check, max_pdf_images=3)
    first = [training_curves(41), training_curves(42), training_curves(43)]
    capped = pdf_of(tmp_path / "three.pdf", *first)
    many = grey_images_pdf(tmp_path / "many.pdf", [(5400, 5400)] * 40, before=capped)
    timings = {}
    for name, pdf in (("three", capped), ("many", many)):
        started = time.perf_counter()
        check = compare(pdf, {CURVES: [OURS]}, limits=limits)
        timings[name] = time.perf_counter() - started
        assert check.sections == {CURVES: DIFFERENT if name == "three" else UNSURE}, check.evidence
    assert timings["many"] < timings["three"] + 1.0, timings




def test_an_image_over_the_pixel_cap_is_named_as_too_large_never_as_no_image(tmp_path):
    pdf = grey_images_pdf(tmp_path / "theirs.pdf", [(6000, 6000)])
    check = compare(pdf, {CURVES: [OURS]})
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: UNSURE} and not check.mismatched and not check.problem, evidence
    assert "no image at all" not in evidence.note
    assert "image 1 of the PDF (page 1) is 6000 x 6000 pixels (36 MP)" in evidence.note
    assert "too large to read" in evidence.note


def test_another_figure_beside_an_image_too_large_to_read_is_no_accusation(tmp_path):
    others = pdf_of(tmp_path / "other.pdf", training_curves(2))
    pdf = grey_images_pdf(tmp_path / "theirs.pdf", [(6000, 6000)], before=others)
    check = compare(pdf, {CURVES: [OURS]})
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: UNSURE} and not check.mismatched, evidence
    assert "image 2 of the PDF (page 2) is 6000 x 6000 pixels (36 MP)" in evidence.note


@pytest.mark.parametrize("colour", [(255, 255, 255), (90, 140, 200)], ids=["white", "one-colour"])
def test_a_blank_picture_where_the_figure_should_be_is_never_a_different_figure(tmp_path, colour):
    """The PDF shows a blank picture (a figure saved after plt.show()) where the curves should be, and the
    filter image after it: the curves could not be told, never called another figure."""
    filters = base64.b64decode(official_notebook().cells[13].outputs[0]["data"]["image/png"])
    blank = as_png(Image.new("RGB", (1200, 1000), colour))
    pdf = pdf_of(tmp_path / "theirs.pdf", blank, rescaled(filters, 4.0))
    check = compare(pdf, {CURVES: [OURS], SECTIONS[1]: [filters]})
    evidence = check.evidence[CURVES]
    assert check.sections == {CURVES: UNSURE, SECTIONS[1]: SAME} and not check.mismatched, evidence
    assert "image 1 of the PDF (page 1) is blank" in evidence.note
    # every candidate blank: could not tell, and why
    only = compare(pdf_of(tmp_path / "blank.pdf", blank, blank), {CURVES: [OURS]})
    assert only.sections == {CURVES: UNSURE}
    assert "too small or blank to compare" in only.evidence[CURVES].note
    assert "image 1 of the PDF (page 1) is blank" in only.evidence[CURVES].note


def test_a_different_figure_is_described_without_a_relationship(tmp_path):
    for theirs in (training_curves(2), cropped(training_curves(4))):
        check = check_of(tmp_path, theirs)
        evidence = check.evidence[CURVES]
        assert check.sections == {CURVES: DIFFERENT}, evidence
        assert "crop" not in evidence.how and "found inside" not in evidence.how and "(" not in evidence.how
        assert evidence.offset is None and evidence.scale is None
        assert "crop of the figure" not in evidence.note


def test_a_crop_is_stated_as_the_box_it_was_cut_from(tmp_path):
    """The crop's own uniform margins (white above the title) are part of the box the evidence states."""
    picture = flatten(opened(OURS))
    left, top, right, bottom = content_box(picture)
    box = (left + 120, max(0, top - 20), right - 200, bottom - 150)  # from above the title: a white strip on top
    assert box[1] < top  # the crop has a uniform margin that trimming removes
    crop = picture.crop(box)
    for factor in (1.0, 0.5):
        theirs = as_png(crop.resize((round(crop.width * factor), round(crop.height * factor)), Image.LANCZOS))
        evidence = check_of(tmp_path, theirs).evidence[CURVES]
        assert evidence.outcome == SAME and evidence.how.startswith("the PDF's image is a crop of the figure"), evidence
        stated = [int(v) for v in re.findall(r"\d+", evidence.how.split("from", 1)[1])[:4]]
        assert all(abs(a - b) <= 4 for a, b in zip(stated, box)), (stated, box)
        assert evidence.offset is not None and abs(evidence.offset[0] - box[0]) <= 4
        assert abs(evidence.offset[1] - box[1]) <= 4, evidence
        assert evidence.scale == pytest.approx(factor, abs=0.02)


def test_a_figure_found_inside_a_screenshot_is_placed_where_it_was_pasted(tmp_path):
    evidence = check_of(tmp_path, screenshot(OURS, chrome=True)).evidence[CURVES]
    assert evidence.outcome == SAME and evidence.how.startswith("the figure found inside the PDF's image at")
    assert abs(evidence.offset[0] - 30) <= 4 and abs(evidence.offset[1] - 55) <= 4, evidence
    assert evidence.scale == pytest.approx(1.0, abs=0.02)


# ------------------------------------------------------------------- the grading sheet shows every flag's evidence

class Visible(HTMLParser):
    """The text a browser shows of one student's card on the grading sheet, and the images it loads."""

    def __init__(self, student: str):
        super().__init__(convert_charrefs=True)
        self.student, self.depth, self.text, self.images = student, 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("data-student") == self.student:
            self.depth = 1
        elif tag == "section" and self.depth:
            self.depth += 1
        if self.depth and tag == "img":
            self.images.append(attrs.get("src") or "")

    def handle_endtag(self, tag):
        if tag == "section" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def card_of(out_dir) -> tuple[str, list[str]]:
    """The card of the student graded into `out_dir`, built by the real sheet from the real results: its words
    (white space folded) and its images."""
    reader = Visible(out_dir.name)
    reader.feed(build_manual_sheet(out_dir.parent).read_text(encoding="utf-8"))
    return " ".join(" ".join(reader.text).split()), reader.images


def text_only_pdf(path):
    """A student's PDF made with reportlab that holds words only: its figures were never put in."""
    page = canvas.Canvas(str(path))
    page.drawString(72, 760, "Problem 2: my solution")
    page.drawString(72, 740, "1. Training curves: see the notebook")
    page.drawString(72, 720, "2. Filters: see the notebook")
    page.showPage()
    page.save()
    return path


def unreadable_pdf(path):
    """A file named like the PDF whose bytes are not one: cut off after its header."""
    data = text_only_pdf(path).read_bytes()
    path.write_bytes(data[:9] + b"\x00" * 64)
    return path


def graded_with(tmp_path, write_pdf) -> tuple[dict, object]:
    """The reference graded for real, its notebook with both figures, and `write_pdf` making the PDF it hands in;
    its results and folder."""
    sub = make_submission(tmp_path / "sub")
    nbformat.write(official_notebook(), str(sub / "Problem_2.ipynb"))
    write_pdf(sub / "problem_2_solution.pdf")
    _, _, out_dir = grade(sub, tmp_path)
    return json.loads((out_dir / "results.json").read_text(encoding="utf-8")), out_dir


def test_a_text_only_pdf_is_flagged_and_its_card_says_the_pdf_holds_no_image(tmp_path):
    document, out_dir = graded_with(tmp_path, text_only_pdf)
    assert "PDF not compared" in _flags(document) and "PDF mismatch" not in _flags(document)
    words, images = card_of(out_dir)
    for section in SECTIONS[:2]:
        assert f"problem_2_solution.pdf: {section} (not found, no points)" in words, words
        assert ("Not found: the PDF holds no image at all (figures drawn as vector graphics cannot be compared): "
                "staff look at it.") in words
    assert words.count("No pictures of this section were written.") == 2
    assert "Closest image" not in words  # it compared none
    assert not [src for src in images if EVIDENCE_DIR in src]


def test_an_unreadable_pdf_is_flagged_and_its_card_says_it_was_not_compared_and_why(tmp_path):
    document, out_dir = graded_with(tmp_path, unreadable_pdf)
    check = next(t for t in document["tests"] if t["tags"] == ["pdf_consistency"])
    assert check["extra_data"]["problem"].startswith("problem_2_solution.pdf could not be read as a PDF")
    assert "PDF not compared" in _flags(document)
    words, _ = card_of(out_dir)
    assert "problem_2_solution.pdf: not compared (no points)" in words, words
    assert ("The check did not compare this PDF with the notebook: problem_2_solution.pdf could not be read as a "
            "PDF (") in words
    assert "Open the PDF and look at it." in words


def test_a_pdf_the_check_could_not_tell_shows_why_the_images_it_left_out_and_no_empty_pictures(tmp_path):
    """Its only image over the pixel cap: could not tell, with nothing decoded to show; the card says so in words."""
    document, out_dir = graded_with(tmp_path, lambda path: grey_images_pdf(path, [(6000, 6000)]))
    check = next(t for t in document["tests"] if t["tags"] == ["pdf_consistency"])
    assert set(check["extra_data"]["sections"].values()) == {UNSURE}
    assert "PDF not compared" in _flags(document)
    words, images = card_of(out_dir)
    assert f"problem_2_solution.pdf: {SECTIONS[0]} (could not tell, no points)" in words, words
    assert ("Could not tell: the PDF's images could not be read (image 1 of the PDF (page 1) is 6000 x 6000 pixels "
            "(36 MP)") in words
    assert "Not compared: image 1 of the PDF (page 1) is 6000 x 6000 pixels (36 MP)" in words  # left out, said once
    assert words.count("Not compared:") == 1
    assert "picture not written" not in words and not [src for src in images if EVIDENCE_DIR in src]

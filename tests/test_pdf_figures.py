"""The PDF check compares figures as figures: real matplotlib training curves (laid out like the notebook's:
loss above, accuracy below, seeded random curves), real PDFs drawn with reportlab, read back by the real
check. A transparent figure, a screenshot with a margin or a window around it, a crop and a rescale are the
same figure; another run's curves are a different figure (flagged, both pictures on the grading sheet); a
figure with a note written over it is one the check could not tell (a note for staff, no flag)."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import matplotlib
import nbformat
import numpy as np
import pytest
import tomllib
from conftest import run_grade
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

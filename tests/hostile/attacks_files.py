"""Round-three attacks of mechanism files: see attacks.py for what an attack is.

C (student files parsed in the grader): folder submissions whose files are links out of the folder or
special files. D (a student's slip is never the harness's fault): crossed Markdown emphasis in the
answer, a truncated PNG, EPS bytes under image/png, a cell whose source is a number; each keeps what
the other items earn.

The honest base (`_base`): the reference code and the official notebook layout (a training log whose
best validation accuracy is 0.95, a filter image), graded without --data, earns 25 on the code items,
25 on the training item (reported, not verified) and 5 on the filters (provisional, staff confirm).
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import nbformat
import numpy as np
from attacks import Attack, Context, outputs, points
from gaming import build, notebook
from PIL import Image
from pypdf import PdfReader
from submissions import CODE_ITEMS

WEIGHTS = "svhn_cnn_params.npz"
NOTEBOOK = "Problem_2.ipynb"
VERIFY = ("--data", "{data}", "--no-replay")
CROSSED = "The filters are **edge detectors *(vertical** and horizontal)* and colour blobs."


def _code_points(results: dict) -> float:
    return sum(points(results, item) for item in CODE_ITEMS)


def _base(folder: Path, book=None, weights: dict | None = None) -> Path:
    return build(folder, book=book if book is not None else notebook(), weights=weights)


def _no_item_fault(results: dict) -> None:
    faults = [test["name"] for test in results["tests"]
              if test.get("extra_data", {}).get("reason_code") == "harness_fault"]
    assert not faults, faults


def _keeps_the_honest_points(results: dict, filters: bool = True) -> None:
    """What the slip did not touch keeps the honest base's points (and nothing is a harness fault)."""
    _no_item_fault(results)
    assert _code_points(results) == 25, _code_points(results)
    assert points(results, "training") == 25, outputs(results, "training")
    if filters:
        assert points(results, "filters") == 5, outputs(results, "filters")


def _filter_cell(book) -> int:
    return next(i for i, cell in enumerate(book.cells) if "im_array" in cell.source)


# ----------------------------------------------------------------------------- C: folders with links and pipes
def build_weights_linked_outside(folder: Path, context: Context) -> Path:
    """Another student's folder holds honest weights; this folder's weights file is a link to them."""
    other = folder.parent / "another_student"
    _base(other, weights=context.honest_weights)
    _base(folder)
    (folder / WEIGHTS).symlink_to(other / WEIGHTS)
    return folder


def check_weights_linked_outside(results: dict, out_dir: Path, context: Context) -> None:
    training = outputs(results, "training")
    assert f"{WEIGHTS} was not read" in training and "pointing outside the submission" in training, training
    assert "verified by the grader" not in training, training
    assert f"{WEIGHTS} was not read" in outputs(results, "filters")
    assert _code_points(results) == 25
    _no_item_fault(results)


def build_weights_linked_inside(folder: Path, context: Context) -> Path:
    """Honest and unusual: the weights kept in a subfolder, the expected name a link to them."""
    _base(folder)
    (folder / "runs").mkdir()
    np.savez(folder / "runs" / WEIGHTS, **context.honest_weights)
    (folder / WEIGHTS).symlink_to(Path("runs") / WEIGHTS)
    return folder


def check_weights_linked_inside(results: dict, out_dir: Path, context: Context) -> None:
    training = outputs(results, "training")
    assert "verified by the grader" in training and "was not read" not in training, training
    assert points(results, "training") > 0 and _code_points(results) == 25


def build_notebook_linked_to_dev_zero(folder: Path, context: Context) -> Path:
    _base(folder)
    (folder / NOTEBOOK).unlink()
    (folder / NOTEBOOK).symlink_to("/dev/zero")
    return folder


def build_notebook_fifo(folder: Path, context: Context) -> Path:
    """A named pipe called Problem_2.ipynb: opening it for reading would block for ever."""
    _base(folder)
    (folder / NOTEBOOK).unlink()
    os.mkfifo(folder / NOTEBOOK)
    return folder


def _check_notebook_refused(what: str):
    def check(results: dict, out_dir: Path, context: Context) -> None:
        for item in ("training", "filters", "inline_answer"):
            said = outputs(results, item)
            assert f"{NOTEBOOK} was not read" in said and what in said, (item, said)
            assert points(results, item) == 0, (item, said)
        assert _code_points(results) == 25
        _no_item_fault(results)
    return check


# ----------------------------------------------------------------------------- D: slips
def build_crossed_emphasis(folder: Path, context: Context) -> Path:
    book = notebook()
    answer = next(i for i, cell in enumerate(book.cells) if "Inline Question" in cell.source) + 1
    book.cells[answer].source = CROSSED
    return _base(folder, book)


def check_crossed_emphasis(results: dict, out_dir: Path, context: Context) -> None:
    pdf = out_dir / "problem_2_solution.pdf"
    assert pdf.is_file(), "no PDF was made"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages)
    for words in ("edge detectors", "(vertical", "and horizontal)", "colour blobs"):
        assert words in text, (words, text[-400:])
    assert "edge detectors" in outputs(results, "inline_answer")
    _keeps_the_honest_points(results)


def _with_filter_image(data: bytes):
    """The base notebook with these bytes as the filter cell's image/png."""
    book = notebook()
    index = _filter_cell(book)
    book.cells[index].outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(data).decode(), "text/plain": "<Figure>"})]
    return book, index


def _png(size=(96, 96)) -> bytes:
    rng = np.random.default_rng(4)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_truncated_png(folder: Path, context: Context) -> Path:
    whole = _png()
    book, _ = _with_filter_image(whole[:len(whole) // 2])
    return _base(folder, book)


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\n"
       b"/Helvetica findfont 12 scalefont setfont 10 50 moveto (pwned) show showpage\n%%EOF\n")


def build_eps_under_png(folder: Path, context: Context) -> Path:
    book, _ = _with_filter_image(EPS)
    return _base(folder, book)


def _check_filter_image_left_out(why: str):
    def check(results: dict, out_dir: Path, context: Context) -> None:
        filters = outputs(results, "filters")
        assert points(results, "filters") == 0 and why in filters and "was left out" in filters, filters
        assert (out_dir / "problem_2_solution.pdf").is_file(), "no PDF was made"
        _keeps_the_honest_points(results, filters=False)
    return check


def build_source_a_number(folder: Path, context: Context) -> Path:
    """A code cell (the imports, which no item reads) whose source is a number."""
    _base(folder)
    book = json.loads((folder / NOTEBOOK).read_text())
    book["cells"][1]["source"] = 5
    (folder / NOTEBOOK).write_text(json.dumps(book))
    return folder


def check_source_a_number(results: dict, out_dir: Path, context: Context) -> None:
    said = results.get("output", "")
    assert "does not follow the notebook format" in said and "cell 1 (code): `source` is a number" in said, said
    assert (out_dir / "problem_2_solution.pdf").is_file(), "no PDF was made"
    _keeps_the_honest_points(results)


ATTACKS: list[Attack] = [
    Attack("folder-weights-linked-to-another-students", "C", build_weights_linked_outside,
           check_weights_linked_outside, VERIFY,
           notes="the weights file is a link to another folder's honest weights: refused, never verified"),
    Attack("folder-weights-linked-inside-honest", "honest", build_weights_linked_inside,
           check_weights_linked_inside, VERIFY,
           notes="a link to the weights inside the submission is followed and they are verified"),
    Attack("folder-notebook-linked-to-dev-zero", "C", build_notebook_linked_to_dev_zero,
           _check_notebook_refused("pointing outside the submission"),
           notes="Problem_2.ipynb -> /dev/zero: never read"),
    Attack("folder-notebook-fifo", "C", build_notebook_fifo, _check_notebook_refused("named pipe"),
           notes="a FIFO named Problem_2.ipynb: never opened"),
    Attack("answer-crossed-emphasis", "D", build_crossed_emphasis, check_crossed_emphasis,
           notes="crossed Markdown emphasis: the PDF is made with the answer's words"),
    Attack("filter-image-truncated-png", "D", build_truncated_png, _check_filter_image_left_out("damaged PNG"),
           notes="half a PNG as the filter image: left out with a note, the rest keeps its points"),
    Attack("filter-image-eps-under-png", "D", build_eps_under_png, _check_filter_image_left_out("not a PNG image"),
           notes="EPS bytes under image/png: read as a PNG only, so never by Ghostscript"),
    Attack("cell-source-a-number", "D", build_source_a_number, check_source_a_number,
           notes="a cell whose source is a number: named, the rest read"),
]

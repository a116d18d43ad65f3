"""Where the notebook's filter figure and answer are (issue 22): the filter figure is found by what it shows
anywhere in the filter section (a student reads the weights in one cell and draws them in the next), and the
answer is the student's own text near the question (above it too), never code, a docstring, the handout's text
or another section's work; where text stands in more than one place, every place is shown to staff.

Notebooks are the official layout (tests/notebooks.py) with real matplotlib figures of real first-layer weights
(tests/filter_renderings.py); the grading sheet is built from what a real grade wrote."""

from __future__ import annotations

import base64
import csv
import json
import re

import filter_renderings as draw
import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from notebooks import official_2023_notebook, official_notebook
from submissions import grade, make_submission

from autograder.edition import get_edition
from autograder.model import ReasonCode
from autograder.notebook.items import score_filters, score_inline_answer
from autograder.notebook.reading import extract, read_notebook
from autograder.reports.manual_sheet import NOTEBOOK_IMAGE, build_manual_sheet
from autograder.rubric import load_rubric

RUBRIC = load_rubric()
CIFAR = get_edition("2023")
QUESTION = "#### Inline Question: Comment below on what kinds of filters you see. [5pts]"
ANSWER = ("Most of the filters are oriented edge detectors, light against dark at several angles; a few are colour "
          "blobs, green against magenta, which respond to the hue of the house-number plates. ")


def figure_cell(source: str, png: bytes | None):
    """A code cell that drew `png` (None: it drew nothing)."""
    outputs = [] if png is None else [new_output("display_data", data={
        "image/png": base64.b64encode(png).decode(), "text/plain": "<Figure size 640x480 with 1 Axes>"})]
    return new_code_cell(source, outputs=outputs)


def one_cell_later(png: bytes | None, reads: str = "conv1_w", answer: str = "They look like edges."):
    """The official layout, the weights read in the filter cell (no figure there) and drawn in the next."""
    notebook = official_notebook(answer=answer, filter_png=None,
                                 filter_source=f'w = model.net.get_params("{reads}")\nim_array = arrange(w)')
    at = next(i for i, cell in enumerate(notebook.cells) if "im_array" in cell.source)
    notebook.cells.insert(at + 1, figure_cell("plt.figure(figsize=(6, 6))\nplt.imshow(im_array)\nplt.show()", png))
    return notebook, at + 1


def read(notebook, tmp_path, edition=None, handout=frozenset()):
    path = tmp_path / "Problem_2.ipynb"
    nbformat.write(notebook, str(path))
    return extract(read_notebook(path), path, handout, edition=edition)


# ----------------------------------------------------------------------------- the filter figure

def test_a_filter_figure_one_cell_after_the_weights_is_found_and_matched(tmp_path):
    filters = draw.weights("trained_1")
    png = draw.handout(filters, 4, 4)
    notebook, drawn = one_cell_later(png)
    found = read(notebook, tmp_path)
    assert found.filter_images == [png] and found.filter_image_cells == [drawn]
    assert found.filter_cell == drawn - 1  # the cell that reads the weights is still the filter cell
    score = score_filters(RUBRIC, found, "conv1_w", filters)
    assert (score.score, score.code) == (5, ReasonCode.PASSED)
    assert score.extra["image_cell"] == drawn and score.extra["notebook_image"] == NOTEBOOK_IMAGE
    # without weights to compare with, the figure is drawn from what the cell before it read: provisional
    provisional = score_filters(RUBRIC, found, "conv1_w", None)
    assert (provisional.score, provisional.code) == (5, ReasonCode.FILTERS_PROVISIONAL)
    assert provisional.extra["image_cell"] == drawn


def test_a_figure_of_other_weights_one_cell_later_does_not_match(tmp_path):
    filters = draw.weights("trained_1")
    notebook, drawn = one_cell_later(draw.handout(draw.weights("trained_2"), 4, 4))
    score = score_filters(RUBRIC, read(notebook, tmp_path), "conv1_w", filters)
    assert (score.score, score.code) == (0, ReasonCode.FILTERS_NOT_MATCHED)
    assert score.extra["image_cell"] == drawn and score.extra["notebook_image"] == NOTEBOOK_IMAGE  # shown to staff


def test_without_weights_a_figure_after_a_cell_reading_another_layer_earns_nothing(tmp_path):
    """What the old rule "the filter cell reads conv1_w" protected, kept one cell later: without weights to
    vouch for it, a figure drawn from another layer's weights is not taken for the first layer's."""
    notebook, drawn = one_cell_later(draw.handout(draw.weights("trained_1"), 4, 4), reads="conv2_w")
    score = score_filters(RUBRIC, read(notebook, tmp_path), "conv1_w", None)
    assert score.score == 0 and "does not read 'conv1_w'" in score.note
    assert score.extra["image_cell"] == drawn  # the figure is still shown to staff
    # and a figure whose own cell reads another layer, after a cell that read the first, is not it either
    notebook, drawn = one_cell_later(None)
    notebook.cells.insert(drawn + 1, figure_cell('v = model.net.get_params("conv2_w")\nplt.imshow(v[:, :, 0, 0])',
                                                 draw.handout(draw.weights("trained_2"), 4, 4)))
    assert score_filters(RUBRIC, read(notebook, tmp_path), "conv1_w", None).score == 0


def test_the_matching_figure_of_several_is_the_one_graded(tmp_path):
    """A section with a scratch figure before the real one: every figure is judged, the match decides, and
    the evidence lists each."""
    filters = draw.weights("trained_1")
    notebook, drawn = one_cell_later(draw.handout(filters, 4, 4))
    notebook.cells.insert(drawn, figure_cell("plt.imshow(w[:, :, 0, 0])", draw.curves()))
    found = read(notebook, tmp_path)
    assert found.filter_image_cells == [drawn, drawn + 1]
    score = score_filters(RUBRIC, found, "conv1_w", filters)
    assert score.score == 5 and score.extra["image_cell"] == drawn + 1 and score.extra["image_index"] == 1
    assert [one["cell"] for one in score.extra["judged"]] == [drawn, drawn + 1]
    assert "(the figure of cell" in score.note


def test_the_section_ends_at_the_question_and_the_extra_credit(tmp_path):
    """A figure of the filters drawn under the Extra-Credit heading (the 2023 prompt suggests comparing filters)
    is the extra credit's, not the filter section's."""
    filters = draw.weights("trained_1")
    notebook = official_2023_notebook(answer=ANSWER, filter_png=None)
    notebook.cells.insert(len(notebook.cells) - 2, figure_cell("plt.imshow(grid)", draw.handout(filters, 4, 4)))
    found = read(notebook, tmp_path, edition=CIFAR)
    assert found.filter_images == [] and len(found.extra_credit_images) == 1


def test_a_section_with_no_figure_says_no_image(tmp_path):
    notebook, _ = one_cell_later(None)
    found = read(notebook, tmp_path)
    assert found.filter_images == [] and found.filter_source
    score = score_filters(RUBRIC, found, "conv1_w", draw.weights("trained_1"))
    assert score.score == 0 and "it has no image output" in score.note and score.extra["notebook_image"] is None


def _with_weights(folder, notebook, filters: np.ndarray):
    nbformat.write(notebook, str(folder / "Problem_2.ipynb"))
    np.savez(folder / RUBRIC.assignment.weights_file, conv1_w=filters.astype(np.float32))
    return folder


def gradebook(out, ids):
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "total", "status", "flags"])
        writer.writerows([student, "0", "graded", ""] for student in ids)


def card(page: str, student: str) -> str:
    return next(chunk for chunk in re.split(r"<section class='card", page) if f"data-student='{student}'" in chunk)


def test_a_real_grade_shows_the_figure_one_cell_later_and_says_no_image_only_when_there_is_none(tmp_path):
    filters = draw.weights("trained_1")
    png = draw.subplots(filters, 4, 4)
    later, drawn = one_cell_later(png)
    out = tmp_path / "class"
    _with_weights(make_submission(tmp_path / "6001"), later, filters)
    scores, _, folder = grade(tmp_path / "6001", tmp_path, )
    assert scores["filters"].score == 5, scores["filters"].note
    assert (folder / NOTEBOOK_IMAGE).read_bytes() == png
    # the class: this one, and one whose filter section has no figure at all
    out.mkdir()
    folder.rename(out / "6001")
    nothing, _ = one_cell_later(None)
    _with_weights(make_submission(tmp_path / "6002"), nothing, filters)
    scores, _, folder = grade(tmp_path / "6002", tmp_path)
    assert scores["filters"].score == 0 and "no image output" in scores["filters"].note
    folder.rename(out / "6002")
    gradebook(out, ["6001", "6002"])
    page = build_manual_sheet(out).read_text(encoding="utf-8")
    one, two = card(page, "6001"), card(page, "6002")
    assert f"src='6001/{NOTEBOOK_IMAGE}'" in one and f"(cell {drawn})" in one and "no filter image" not in one
    assert "no filter image found" in two and "<img src='6002/filters_notebook.png'" not in two


# ----------------------------------------------------------------------------- the answer

def with_cells(notebook, before_question=(), after_question=()):
    """The notebook with Markdown or code cells inserted right before and right after the question heading."""
    at = next(i for i, cell in enumerate(notebook.cells) if "Inline Question" in cell.source)
    notebook.cells[at + 1:at + 1] = list(after_question)
    notebook.cells[at:at] = list(before_question)
    return notebook


def test_an_answer_in_the_cell_above_the_question_is_found(tmp_path):
    long = (ANSWER * 6)[:934].strip()
    notebook = with_cells(official_notebook(answer=""), before_question=[new_markdown_cell(long)])
    found = read(notebook, tmp_path)
    assert found.answer == long and len(found.answer_candidates) == 1
    assert found.answer_candidates[0].where == "above the question heading"
    score = score_inline_answer(RUBRIC, found)
    assert score.code == ReasonCode.PENDING_STAFF and "above the question heading" in score.note
    assert score.extra["answer_from"].endswith("above the question heading")


def test_an_answer_above_and_below_is_shown_as_two_candidates(tmp_path):
    below = "Edges at several angles, and colour blobs."
    notebook = with_cells(official_notebook(answer=below), before_question=[new_markdown_cell(ANSWER)])
    found = read(notebook, tmp_path)
    assert [one.where for one in found.answer_candidates] == ["above the question heading",
                                                               "under the question heading"]
    assert [one.text for one in found.answer_candidates] == [ANSWER.strip(), below]
    score = score_inline_answer(RUBRIC, found)
    assert score.extra["answer_from"] == "several: staff choose" and "answer in several places" in score.extra["flags"]
    assert [one["text"] for one in score.extra["answer_candidates"]] == [ANSWER.strip(), below]
    assert "2 places near the question" in score.note


def test_another_sections_work_after_the_question_is_not_taken(tmp_path):
    docstring = new_code_cell('def confusion(model, X, y):\n    """Rows: true class, columns: predicted class,\n'
                              '    normalised per row."""\n    ...')
    analysis = new_markdown_cell("## Extra Credit\n\nThe confusion matrix shows 1 and 7 mixed up most often.")
    for after in ([docstring], [analysis], [new_markdown_cell("They look like edges."), docstring, analysis]):
        notebook = official_notebook(answer="")
        at = next(i for i, cell in enumerate(notebook.cells) if "Inline Question" in cell.source)
        notebook.cells[at + 1:at + 2] = after
        found = read(notebook, tmp_path)
        assert "confusion" not in found.answer.lower() and "Rows" not in found.answer
        assert found.answer in ("", "They look like edges.") and len(found.answer_candidates) <= 1


def test_a_deeper_extra_work_heading_after_the_answer_ends_it_and_a_sub_heading_of_the_answer_does_not(tmp_path):
    """"##### Extra: ..." under a "####" question is the student's extra work, not more answer; "##### Why" is."""
    work = "The confusion matrix shows 3 and 8 confused most often."
    for heading in ("##### Extra: confusion matrix analysis", "##### Bonus", "##### Optional analysis"):
        notebook = official_notebook(answer=ANSWER)
        at = next(i for i, cell in enumerate(notebook.cells) if "Inline Question" in cell.source)
        notebook.cells.insert(at + 2, new_markdown_cell(f"{heading}\n{work}"))
        found = read(notebook, tmp_path)
        assert found.answer == ANSWER.strip() and "confusion" not in found.answer, heading
    notebook = official_notebook(answer=ANSWER)
    at = next(i for i, cell in enumerate(notebook.cells) if "Inline Question" in cell.source)
    notebook.cells.insert(at + 2, new_markdown_cell("##### Why colour blobs\nThe plates' hue differs."))
    assert "The plates' hue differs." in read(notebook, tmp_path).answer


def test_an_extra_work_heading_inside_the_answers_own_cell_ends_the_answer_there(tmp_path):
    """The same "##### Extra: ..." written into the answer's cell, the question's cell or the 2023 answer cell."""
    extra = "\n\n##### Extra: confusion matrix analysis\n\nThe confusion matrix shows 3 and 8 confused most often."
    in_answer_cell = official_notebook(answer=ANSWER + extra)
    question_cell = official_notebook(answer="")
    at = next(i for i, cell in enumerate(question_cell.cells) if "Inline Question" in cell.source)
    question_cell.cells[at].source += "\n\n" + ANSWER + extra
    for notebook, edition in ((in_answer_cell, None), (question_cell, None),
                              (official_2023_notebook(answer=ANSWER + extra), CIFAR)):
        found = read(notebook, tmp_path, edition=edition)
        assert found.answer == ANSWER.strip() and "confusion" not in found.answer.lower()


def test_the_2023_answer_in_its_answer_cell_is_found(tmp_path):
    found = read(official_2023_notebook(answer=ANSWER), tmp_path, edition=CIFAR)
    assert found.answer == ANSWER.strip()
    assert [one.where for one in found.answer_candidates] == ["in the answer cell after the Extra-Credit prompt"]


def test_a_long_answer_is_still_cut_and_said(tmp_path):
    limits = type(RUBRIC.intake)(**{**dict(RUBRIC.intake), "max_answer_chars": 100})
    path = tmp_path / "Problem_2.ipynb"
    nbformat.write(with_cells(official_notebook(answer=""), before_question=[new_markdown_cell(ANSWER * 3)]), str(path))
    found = extract(read_notebook(path), path, frozenset(), limits)
    assert len(found.answer) <= 100 and found.answer_cut
    assert "answer cut" in score_inline_answer(RUBRIC, found).extra["flags"]


def test_the_sheet_shows_every_candidate_for_staff_to_choose(tmp_path):
    below = "Edges at several angles, and colour *blobs*."
    notebook = with_cells(official_notebook(answer=below), before_question=[new_markdown_cell(ANSWER)])
    submission = make_submission(tmp_path / "7001")
    nbformat.write(notebook, str(submission / "Problem_2.ipynb"))
    out = tmp_path / "class"
    out.mkdir()
    _, _, folder = grade(submission, tmp_path)
    document = json.loads((folder / "results.json").read_text())
    extra = next(t for t in document["tests"] if t["tags"] == ["inline_answer"])["extra_data"]
    assert [one["where"] for one in extra["answer_candidates"]] == ["above the question heading",
                                                                     "under the question heading"]
    folder.rename(out / "7001")
    gradebook(out, ["7001"])
    page = card(build_manual_sheet(out).read_text(encoding="utf-8"), "7001")
    assert "the grader did not choose" in page and "Candidate 1:" in page and "Candidate 2:" in page
    assert "above the question heading" in page and "<em>blobs</em>" in page and "in 2 places" in page


def test_several_candidates_are_a_gradebook_flag_and_one_is_not(tmp_path):
    from autograder.batch import _flags
    both = with_cells(official_notebook(answer="Edges."), before_question=[new_markdown_cell(ANSWER)])
    one = official_notebook(answer="Edges.")
    flags = [_flags({"tests": [{"tags": ["inline_answer"], "extra_data": score_inline_answer(
        RUBRIC, read(notebook, tmp_path)).extra}]}) for notebook in (both, one)]
    assert "answer in several places" in flags[0] and "answer in several places" not in flags[1]

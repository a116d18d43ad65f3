"""Stage budgets ([deadlines]) and the filter reader's bounds ([filters] max_*): a stage that reads a
student's file stops past its budget and its item says so; a first layer out of bounds is not compared."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomllib
from notebooks import broken_pdf, official_notebook

from autograder.deadlines import Deadline, StageTimeout
from autograder.model import ReasonCode
from autograder.notebook.filter_match import decode, find_tiles, match_filters, render_filters
from autograder.notebook.items import score_filters
from autograder.notebook.pdf_check import compare
from autograder.notebook.reading import extract
from autograder.rubric import RUBRIC_PATH, RubricError, load_rubric, parse_rubric

RUBRIC = load_rubric()


def _spent(what: str) -> Deadline:
    """A deadline already past (a budget of a nanosecond, then a moment's wait)."""
    deadline = Deadline(1e-9, what)
    time.sleep(0.01)
    return deadline


def _findings_showing(filters: np.ndarray):
    """The official notebook's findings, its filter cell showing the grader's own drawing of `filters`."""
    book = official_notebook(filter_source='w = model.net.get_params("conv1_w")\nplt.imshow(w[:, :, :, 0])')
    image = render_filters(filters, 320)
    book.cells[13].outputs[0]["data"]["image/png"] = base64.b64encode(image).decode()
    return extract(book, Path("Problem_2.ipynb"))


@pytest.fixture(scope="module")
def filters() -> np.ndarray:
    return np.random.default_rng(4).standard_normal((3, 3, 3, 16))


def test_a_drawing_of_the_filters_passes_within_its_budget(filters):
    score = score_filters(RUBRIC, _findings_showing(filters), "conv1_w", filters,
                          Deadline(RUBRIC.deadlines.filters_seconds, "reading your filter image"))
    assert score.score == score.item.points and score.code == ReasonCode.PASSED, score.note


def test_filter_matching_past_its_budget_is_not_graded_with_the_reason(filters):
    findings = _findings_showing(filters)
    with pytest.raises(StageTimeout):
        match_filters(findings.filter_images[0], filters, RUBRIC.filters, _spent("reading your filter image"))
    score = score_filters(RUBRIC, findings, "conv1_w", filters, deadline=_spent("reading your filter image"))
    assert score.score == 0 and score.code == ReasonCode.TIMED_OUT
    assert "not graded: reading your filter image took over" in score.note
    assert "filters timed out" in score.extra["flags"]


@pytest.mark.parametrize("shape, said", [
    ((1, 1, 1, 300), "the first layer has 300 filters; the grader compares at most 256"),
    ((13, 13, 3, 8), "the first layer's kernels are 13 x 13; the grader compares at most 11 x 11"),
    ((3, 3, 7, 8), "the first layer has 7 input channels; the grader compares at most 3"),
])
def test_a_first_layer_out_of_bounds_is_scored_as_without_weights(filters, shape, said):
    outside = np.random.default_rng(1).standard_normal(shape)
    with pytest.raises(ValueError, match="the grader compares at most"):
        match_filters(render_filters(filters, 320), outside, RUBRIC.filters)
    score = score_filters(RUBRIC, _findings_showing(filters), "conv1_w", outside)
    without = score_filters(RUBRIC, _findings_showing(filters), "conv1_w", None)
    assert (score.score, score.code) == (without.score, without.code) == (5.0, ReasonCode.FILTERS_PROVISIONAL)
    assert said in score.note and score.extra["rendered_image"] is None


def test_layouts_tried_per_cell_are_bounded(filters):
    """A one-layout bound still reads the handout's square grid of 16 (4 x 4 is the first near-square
    layout of a square cell), while the work per cell no longer grows with the filter count."""
    pixels = decode(render_filters(filters, 320))
    bounded = replace(RUBRIC.filters, max_layouts=1)
    assert len(find_tiles(pixels, 3, 16, bounded)) <= len(find_tiles(pixels, 3, 16, RUBRIC.filters))
    assert match_filters(render_filters(filters, 320), filters, bounded).passed(bounded)


def test_reading_a_notebook_past_its_budget_raises():
    with pytest.raises(StageTimeout, match="not graded: reading your notebook took over"):
        extract(official_notebook(), Path("Problem_2.ipynb"), frozenset(), RUBRIC.intake,
                _spent("reading your notebook"))


def test_a_pdf_past_its_budget_is_not_compared_and_says_so(tmp_path):
    pdf = tmp_path / "problem_2_solution.pdf"
    broken_pdf(pdf)
    curves = base64.b64decode(official_notebook().cells[11].outputs[0]["data"]["image/png"])
    checked = compare(pdf, {"curves": [curves]}, None, _spent("reading your PDF"))
    assert not checked.consistent
    assert "was not compared with the notebook: not graded: reading your PDF took over" in checked.problem


def _raw_rubric() -> dict:
    return tomllib.loads(RUBRIC_PATH.read_text())


@pytest.mark.parametrize("key, value, message", [
    ("filters_seconds", 0, "must be positive"),
    ("submission_seconds", 60, "at least [training] evaluate_timeout + replay_seconds"),
    ("execute_submission_seconds", 600, "at least [execution] cpu_seconds"),
])
def test_deadlines_are_validated(key, value, message):
    data = _raw_rubric()
    data["deadlines"][key] = value
    with pytest.raises(RubricError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        parse_rubric(data)

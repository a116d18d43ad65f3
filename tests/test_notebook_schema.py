"""A notebook that breaks the notebook format is read as far as it safely can, never a harness fault:
each schema-invalid variant (tests/invalid_notebooks.py) names the cell and what is wrong, and grades
to a complete result in which what the slip did not touch keeps its points."""

from __future__ import annotations

import pytest
from invalid_notebooks import FILTERS, TRAINING, VARIANTS, invalid_notebook
from notebooks import official_notebook
from submissions import CODE_ITEMS, grade, make_submission

from autograder.model import ReasonCode
from autograder.notebook.reading import NotebookError, extract, read_notebook
from autograder.rubric import load_rubric

NAMES = [name for name, _, _ in VARIANTS]


def test_there_are_at_least_26_variants():
    assert len(VARIANTS) >= 26 and len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("name,cell,spoil", VARIANTS, ids=NAMES)
def test_each_variant_is_read_with_the_cell_named(tmp_path, name, cell, spoil):
    path = tmp_path / "Problem_2.ipynb"
    path.write_text(invalid_notebook(spoil))
    problems: list[str] = []
    found = extract(read_notebook(path, problems), path)
    assert problems, f"{name}: no problem reported"
    if cell is not None:
        assert problems[0].startswith(f"cell {cell} ("), problems
    else:
        assert problems[0].startswith(("the notebook", "at nbformat")), problems
    if cell not in (TRAINING, None):  # the training log was not touched: it is still read
        assert found.reported_best == pytest.approx(0.891)


def test_a_valid_notebook_has_no_problems(tmp_path):
    path = tmp_path / "Problem_2.ipynb"
    import nbformat
    nbformat.write(official_notebook(), str(path))
    problems: list[str] = []
    read_notebook(path, problems)
    assert problems == []


def test_json_that_is_no_notebook_gives_the_reason(tmp_path):
    path = tmp_path / "Problem_2.ipynb"
    path.write_text("[1, 2, 3]")
    with pytest.raises(NotebookError, match="not a notebook"):
        read_notebook(path)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("honest")
    sub = make_submission(tmp / "sub")
    import nbformat
    nbformat.write(official_notebook(), str(sub / "Problem_2.ipynb"))
    scores, _, _ = grade(sub, tmp)
    return {item: score.score for item, score in scores.items()}


@pytest.mark.parametrize("name,cell,spoil", VARIANTS, ids=NAMES)
def test_each_variant_grades_completely_with_a_reason(tmp_path, honest, name, cell, spoil):
    sub = make_submission(tmp_path / "sub")
    (sub / "Problem_2.ipynb").write_text(invalid_notebook(spoil))
    scores, result, _ = grade(sub, tmp_path)  # a harness fault would raise HarnessError (exit 3)
    assert [item.id for item in load_rubric().items] == list(scores)
    assert not [item for item, score in scores.items() if score.code == ReasonCode.HARNESS_FAULT]
    assert "harness_fault" not in result.metadata
    said = [note for note in result.notes if "does not follow the notebook format" in note]
    assert said and (cell is None or f"cell {cell} (" in said[0]), result.notes
    for item in CODE_ITEMS:
        assert scores[item].score == honest[item], item
    if cell not in (TRAINING, None):
        assert scores["training"].score == honest["training"], scores["training"].note
    if cell not in (FILTERS, None):
        assert scores["filters"].score == honest["filters"], scores["filters"].note
    for item, score in scores.items():  # a zero from a notebook item says the format was broken
        if item not in CODE_ITEMS and score.score == 0 and cell in (TRAINING, FILTERS):
            assert "notebook format" in score.note, (item, score.note)

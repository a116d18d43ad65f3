"""Finding cells and reading outputs in notebooks of every shape students hand in."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder.notebook import NotebookError, choose_notebook, extract, read_notebook
from autograder.notebook_items import answer_text
from conftest import REFERENCE, TEMPLATE
from notebooks import official_notebook


def findings_of(notebook, tmp_path, name="Problem_2.ipynb"):
    path = tmp_path / name
    nbformat.write(notebook, str(path))
    return extract(read_notebook(path), path)


def test_official_layout_without_tags(tmp_path):
    found = findings_of(official_notebook(), tmp_path)
    assert found.has_outputs
    assert [e[3] for e in found.epochs] == [0.7, 0.86, 0.891, 0.885]
    assert found.reported_best == 0.891 and found.reported_last == 0.885
    assert len(found.curve_images) == 1 and len(found.filter_images) == 1
    assert 'get_params("conv1_w")' in found.filter_source
    assert found.answer == "They look like edges."


def test_inserted_and_deleted_cells_and_a_students_own_printout(tmp_path):
    found = findings_of(official_notebook(accuracies=(0.8, 0.85), extra_cells=True), tmp_path)
    assert [e[3] for e in found.epochs] == [0.8, 0.85]
    assert found.reported_extra == [0.9]
    assert found.reported_best == 0.85  # another cell's printout is never the claim
    assert len(found.curve_images) == 1 and found.answer == "They look like edges."


def test_accuracy_printed_as_percent(tmp_path):
    found = findings_of(official_notebook(accuracies=(0.7, 0.8912), percent=True), tmp_path)
    assert found.reported_best == pytest.approx(0.8912)


def test_no_outputs_and_error_outputs(tmp_path):
    empty = findings_of(official_notebook(accuracies=(), curve_png=None, filter_png=None), tmp_path)
    assert not empty.epochs and empty.reported_best is None and not empty.curve_images
    failed = findings_of(official_notebook(error_in_checks=True), tmp_path)
    assert failed.errors == ["cell 6: AssertionError: Your implementation might be wrong!"]


def test_answer_written_in_the_question_cell_or_a_code_string(tmp_path):
    notebook = official_notebook(answer="")
    notebook.cells[14].source += "\nMostly colour blobs and edges."
    assert findings_of(notebook, tmp_path).answer == "Mostly colour blobs and edges."
    notebook = official_notebook(answer="")
    notebook.cells[15] = nbformat.v4.new_code_cell('answer = """Oriented edge detectors."""')
    assert findings_of(notebook, tmp_path).answer == "Oriented edge detectors."


def test_our_template_and_reference_by_tags(tmp_path):
    template = extract(read_notebook(TEMPLATE / "Problem_2.ipynb"), TEMPLATE / "Problem_2.ipynb")
    assert template.training_cell is not None and "YOUR_FIRST_CONV_LAYER_NAME_w" in template.filter_source
    assert answer_text(template) == ""  # the placeholder is not an answer
    assert template.parameters["EPOCHS"] == 10
    reference = extract(read_notebook(REFERENCE / "Problem_2.ipynb"), REFERENCE / "Problem_2.ipynb")
    assert "oriented edge" in answer_text(reference).lower()
    assert "BEGIN SOLUTION" not in answer_text(reference)


def test_nbformat_v3_is_upgraded(tmp_path):
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[
        nbformat.v3.new_code_cell(input="results = train_net(data_dict, model, loss_f, opt, 1, 1)",
                                  outputs=[nbformat.v3.new_output("stream", output_text=
                                           "(Epoch 1 / 1) Training Accuracy: 0.5, Validation Accuracy: 0.66\n")])])])
    path = tmp_path / "Problem_2.ipynb"
    path.write_text(nbformat.v3.writes_json(v3))
    found = extract(read_notebook(path), path)
    assert found.reported_best == 0.66


def test_a_notebook_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "Problem_2.ipynb"
    path.write_text("{ this is not json")
    with pytest.raises(NotebookError, match="Problem_2.ipynb: not a readable notebook"):
        read_notebook(path)


def test_several_notebooks_choose_the_official_name(tmp_path):
    for name in ("Problem_2 copy.ipynb", "Problem_1.ipynb", "Problem_2.ipynb", "scratch.ipynb"):
        (tmp_path / name).write_text(json.dumps(nbformat.v4.new_notebook()))
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "Problem_2-checkpoint.ipynb").write_text("{}")
    chosen, others = choose_notebook(tmp_path)
    assert chosen.name == "Problem_2.ipynb"
    assert others[0] == "Problem_2 copy.ipynb" and "Problem_2-checkpoint.ipynb" not in " ".join(others)
    (tmp_path / "Problem_2.ipynb").unlink()
    assert choose_notebook(tmp_path)[0].name == "Problem_2 copy.ipynb"

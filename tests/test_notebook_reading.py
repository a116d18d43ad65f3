"""Finding cells and reading outputs in notebooks of every shape students hand in."""

from __future__ import annotations

import json
import math
import random

import nbformat
import pytest
from conftest import REFERENCE, TEMPLATE
from notebooks import EXTRA_CREDIT, SUBMISSION, official_2023_notebook, official_handout, official_notebook

from autograder.baseline import default_baseline, load_baseline
from autograder.edition import get_edition
from autograder.notebook.items import TrainingEvidence, answer_text, score_inline_answer, score_training
from autograder.notebook.reading import NotebookError, choose_notebook, extract, read_notebook
from autograder.rubric import load_rubric


def findings_of(notebook, tmp_path, name="Problem_2.ipynb", handout=frozenset(), edition=None):
    path = tmp_path / name
    nbformat.write(notebook, str(path))
    return extract(read_notebook(path), path, handout, edition=edition)


CIFAR = get_edition("2023")


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """The baseline of a class that received the official (2023-shaped) handout."""
    return load_baseline(official_handout(tmp_path_factory.mktemp("official") / "handout", TEMPLATE))


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


def test_answer_written_in_the_question_cell_but_never_a_code_string(tmp_path):
    notebook = official_notebook(answer="")
    notebook.cells[14].source += "\nMostly colour blobs and edges."
    assert findings_of(notebook, tmp_path).answer == "Mostly colour blobs and edges."
    # a string in a code cell is code (a docstring of the student's next piece of work), never the answer
    notebook = official_notebook(answer="")
    notebook.cells[15] = nbformat.v4.new_code_cell('answer = """Oriented edge detectors."""')
    assert findings_of(notebook, tmp_path).answer == ""


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


OWN = ("Most filters are oriented edge detectors: light against dark at several angles.\n\n"
       "A few are colour blobs that respond to the plate's hue.")


def test_the_handouts_next_section_is_not_the_answer(tmp_path, official):
    """The 2023 handout puts an Extra-Credit prompt between the question and the answer cell; whatever
    of it lands in the answer region is the handout's, not the student's."""
    empty = findings_of(official_2023_notebook(answer=""), tmp_path, handout=official.text, edition=CIFAR)
    assert empty.answer == ""
    assert "no answer found" in score_inline_answer(load_rubric(), empty).note
    # the answer cell also holds the next section (cells merged, or the prompt pasted below the answer)
    merged = findings_of(official_2023_notebook(answer=OWN + "\n\n" + EXTRA_CREDIT + "\n\n" + SUBMISSION), tmp_path,
                         handout=official.text, edition=CIFAR)
    assert merged.answer == OWN
    # written into the Extra-Credit cell itself, under its prompt: text under an Extra-Credit heading is the
    # extra credit's (issue 22), not the answer
    inside = findings_of(official_2023_notebook(answer="", extra_credit=EXTRA_CREDIT + "\n\n" + OWN), tmp_path,
                         handout=official.text, edition=CIFAR)
    assert inside.answer == "" and inside.extra_credit == OWN
    # the prompt re-wrapped and re-emphasised is still the handout's: whitespace and markup do not count
    rewrapped = EXTRA_CREDIT.replace("#### Extra-Credit", "### **Extra-Credit**").replace("\n- ", "\n*   ")
    rewrapped = rewrapped.replace("For extra credit, analyse", "For  extra credit,\nanalyse")
    assert findings_of(official_2023_notebook(answer=rewrapped), tmp_path, handout=official.text,
                       edition=CIFAR).answer == ""
    # the student's own extra-credit analysis in the answer cell itself: one cell, both stay with the answer
    analysis = "The confusion matrix shows 1 and 7 mixed up most often."
    both = findings_of(official_2023_notebook(answer=OWN + "\n\n" + analysis), tmp_path, handout=official.text,
                       edition=CIFAR)
    assert both.answer == OWN + "\n\n" + analysis


def test_read_as_2022_the_prompt_is_never_taken(tmp_path, official):
    """A 2023 notebook read as 2022 (no extra-credit section in that edition), with a baseline that lacks the
    Extra-Credit cell: its heading is the next section's, so the prompt is never taken (before issue 22 it was
    the "answer"); the cell after it is still the answer cell."""
    ours = findings_of(official_2023_notebook(answer=""), tmp_path, handout=default_baseline().text)
    assert ours.answer == "" and ours.answer_candidates == []
    mine = findings_of(official_2023_notebook(answer=OWN), tmp_path, handout=default_baseline().text)
    assert mine.answer == OWN and [one.where for one in mine.answer_candidates] == [
        "in the answer cell after the Extra-Credit prompt"]


def test_a_heading_written_as_the_answer_is_kept(tmp_path, official):
    heading = "##### A filter that represents edges \u2026 and the rest look like blurry colour patches"
    found = findings_of(official_2023_notebook(answer=heading), tmp_path, handout=official.text, edition=CIFAR)
    assert found.answer == heading
    assert answer_text(found) == heading
    # and under the question heading, in the question's own cell, as in the 2022 layout
    notebook = official_notebook(answer="")
    notebook.cells[14].source += "\n" + heading
    assert findings_of(notebook, tmp_path, handout=official.text).answer == heading
    # and in the 2022 layout's answer cell: a heading deeper than the question's is the answer's own
    assert findings_of(official_notebook(answer=heading), tmp_path).answer == heading


def test_the_templates_placeholder_is_handout_text(tmp_path):
    notebook = read_notebook(TEMPLATE / "Problem_2.ipynb")
    assert extract(notebook, TEMPLATE / "Problem_2.ipynb", default_baseline().text).answer == ""
    notebook.cells[-3].source += "\n\nEdges, mostly."  # the tagged answer cell, placeholder kept above
    assert "inline-answer" in notebook.cells[-3].metadata["tags"]
    assert extract(notebook, TEMPLATE / "Problem_2.ipynb", default_baseline().text).answer == "Edges, mostly."


def _training_output(text):
    notebook = official_notebook()
    notebook.cells[9].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return notebook


def test_a_number_followed_by_a_full_stop(tmp_path):
    log = ("(Epoch 1 / 2) Training Accuracy: 0.8., Validation Accuracy: 0.8.\n"
           "(Epoch 2 / 2) Training Accuracy: 0.9, Validation Accuracy: 0.85.\n")
    found = findings_of(_training_output(log), tmp_path)
    assert [(e[2], e[3]) for e in found.epochs] == [(0.8, 0.8), (0.9, 0.85)]
    notebook = _training_output(log)
    notebook.cells.insert(10, nbformat.v4.new_code_cell("print(acc)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="Validation accuracy is 0.87.\nfinal validation acc: 88.5%.\n")]))
    found = findings_of(notebook, tmp_path)
    # other cells' printouts are read (shown to staff), never the claim: that is the epoch lines only
    assert found.reported_extra == [0.87, 0.885] and found.reported_best == 0.85


def test_accuracies_no_accuracy_can_be_are_ignored(tmp_path):
    log = "".join(f"(Epoch {i} / 5) Training Accuracy: 0.5, Validation Accuracy: {value}\n"
                  for i, value in enumerate(["1e999", "-0.2", "250", "NaN", "0.5"], start=1))
    found = findings_of(_training_output(log), tmp_path)
    assert [e[0] for e in found.epochs] == [5] and found.reported_best == 0.5


_NUMBERS = ["0.85", "0.85.", "85.", ".5", "85.5", "100", "1e999", "-1e999", "1e-999", "-0.3", "nan", "NaN", "inf",
            "9" * 5000, "0." + "0" * 5000 + "1", "1e", "e5", "+-1", "--0.5", "0x1F", "1_000", "\u0661\u0662",
            "\uff18\uff15", "8\u00b2", "0.9" * 50, "12345678901234567890", "4" * 20 + "." + "2" * 20]
_PIECES = ["(Epoch ", "(Epoch 1 / 10) ", " / ", ") ", "Training Accuracy: ", "Validation Accuracy: ",
           "validation accuracy is ", "Validation acc = ", "validation acc:", "(Iteration 1 / 100) loss: ", "%", ".",
           ",", " ", "\t", "\n", "\r", "\x00", "\u202e", "\ufeff", "\U0001f4a5", "\u00e9", "(", ")", "/", ":", "=",
           "EPOCHS = ", "NUM_TRAINING = ", "Decaying learning rate of the optimizer to "]


def _odd_line(rng):
    if rng.random() < 0.4:  # a well-formed line with an odd number in one of its places
        numbers = [rng.choice(_NUMBERS) for _ in range(4)]
        return (f"(Epoch {numbers[0]} / {numbers[1]}) Training Accuracy: {numbers[2]}{rng.choice(['', '%', '.'])}, "
                f"Validation Accuracy: {numbers[3]}{rng.choice(['', '%', '.', '%.'])}")
    return "".join(rng.choice(_PIECES + _NUMBERS + [_character(rng)]) for _ in range(rng.randrange(1, 12)))


def _character(rng):
    """Any character a notebook's JSON can hold (no lone surrogates)."""
    code = rng.randrange(32, 0x2FFFF - 0x800)
    return chr(code + 0x800 if code >= 0xD800 else code)


@pytest.mark.parametrize("seed", range(8))
def test_fuzzed_log_lines_never_raise(tmp_path, seed):
    """Random and odd log lines (huge numbers, NaN, unicode digits and controls) in the training log, in a
    student's own printout and in the parameters cell: read without an exception, every accuracy a fraction."""
    rng = random.Random(seed)
    notebook = _training_output("\n".join(_odd_line(rng) for _ in range(400)))
    notebook.cells.insert(10, nbformat.v4.new_code_cell("print(acc)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="\n".join(_odd_line(rng) for _ in range(200)))]))
    parameters = nbformat.v4.new_code_cell("\n".join(f"{name} = {rng.choice(_NUMBERS)}" for name in
                                                     ("EPOCHS", "NUM_TRAINING", "NUM_VALIDATION", "LEARNING_RATE")))
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells.insert(1, parameters)
    found = findings_of(notebook, tmp_path)
    accuracies = [e[3] for e in found.epochs] + [e[2] for e in found.epochs if e[2] is not None] + found.reported_extra
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert all(math.isfinite(v) for v in found.parameters.values())
    scored = score_training(load_rubric(), TrainingEvidence(reported=found.reported_best,
                                                            reported_last=found.reported_last,
                                                            kinds=["conv", "pool", "flatten", "fc"],
                                                            output_shape=[2, 10]))
    assert 0.0 <= scored.score <= scored.item.points

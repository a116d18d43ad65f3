"""Headless execution of whole notebooks in a real, confined kernel."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE
from submissions import CODE_ITEMS, RESULT_TESTS, make_submission

from autograder.grading import grade_submission
from autograder.model import graded_tests
from autograder.rubric import load_rubric
from autograder.sandbox.confinement import SECRET_PATHS, available_mode
from autograder.staff.synthetic import write_synthetic_svhn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svhn")
    # --quick trains on rows 0-1999 and validates on 2000-2499: on a 2,500-row file, the rubric's split
    # (its last fifth) is the same rows, so the log and the grader's own figure must agree.
    write_synthetic_svhn(folder, train=2500, test=100, seed=7)
    return folder


def test_quick_headless_run_of_the_reference(tmp_path, data):
    result, out_dir = grade_submission(REFERENCE, tmp_path / "out", data_dir=data, execute=True, quick=True)
    items = {item.item.id: item for item in result.items}
    assert all(items[i].score == items[i].item.points for i in CODE_ITEMS)
    training = items["training"]
    assert training.extra["accuracy_source"] == "verified"
    assert "weights from the headless run on the 500 validation images of the rubric's split" in training.note
    # The grader's float32 forward may round a near-tie differently from the run's float64 one.
    tolerance = load_rubric().training["max_disagreements"] / 500
    assert training.extra["verified"] == pytest.approx(training.extra["reported"], abs=tolerance)
    assert training.extra["heldout"] is not None and not training.extra["mismatch"]
    assert training.extra["verified"] > 0.2  # one short epoch already beats chance
    # the reference's filter cell, run headless, shows the headless run's own conv1_w (checked, not provisional)
    assert items["filters"].score == 5 and "the image shows 16 of 16 filters of conv1_w" in items["filters"].note
    assert (out_dir / "filters_notebook.png").is_file() and (out_dir / "filters_from_weights.png").is_file()
    executed = nbformat.read(str(out_dir / "executed_Problem_2.ipynb"), as_version=4)
    tags = [c.metadata.get("tags", []) for c in executed.cells]
    assert ["injected-parameters"] in tags
    assert all(not any(o.get("output_type") == "error" for o in c.get("outputs", [])) for c in executed.cells)
    assert (out_dir / "executed_svhn_cnn_params.npz").is_file()
    assert any("get_datasets.sh" in note or "download cell" in note for note in result.notes)


def test_a_dying_kernel_still_gives_a_complete_result(tmp_path, data):
    sub = make_submission(tmp_path / "sub")
    notebook = nbformat.read(str(sub / "Problem_2.ipynb"), as_version=4)
    spy = ("import os\nfor secret in %r:\n    try:\n        os.listdir(secret); print('SEEN', secret)\n"
           "    except OSError as exc:\n        print('HIDDEN', type(exc).__name__)\nprint('UID', os.getuid())"
           % [str(p) for p in SECRET_PATHS])
    notebook.cells.insert(2, nbformat.v4.new_code_cell(spy))
    notebook.cells.insert(3, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    result, out_dir = grade_submission(sub, tmp_path / "out", data_dir=data, execute=True, quick=True)
    document = json.loads((out_dir / "results.json").read_text())
    assert len(graded_tests(document)) == RESULT_TESTS and document["score"] == 25  # the code items are unaffected
    assert "the kernel died" in document["output"]
    executed = nbformat.read(str(out_dir / "executed_Problem_2.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[2].get("outputs", []))
    assert "SEEN" not in printed and printed.count("HIDDEN") == len(SECRET_PATHS)
    if available_mode() != "none":
        assert "UID 0" not in printed
    training = next(item for item in result.items if item.item.id == "training")
    assert training.score == 0 and "no validation accuracy found" in training.note


def test_quick_needs_a_parameters_cell(tmp_path, data):
    sub = make_submission(tmp_path / "sub")
    notebook = nbformat.read(str(sub / "Problem_2.ipynb"), as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("tags", None)
    # Without its tag the settings cell is plain code: EPOCHS = 6 on a tiny file would fail fast.
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    result, out_dir = grade_submission(sub, tmp_path / "out", data_dir=data, execute=True, quick=True)
    assert any("has no cell tagged 'parameters'" in note for note in result.notes)
    assert (out_dir / "results.json").is_file()


def test_quick_trains_and_reports_on_the_split_the_grader_verifies(tmp_path_factory, tmp_path):
    """On a file whose rubric split (its last fifth: rows 3200-3999) is not the handout's first rows, the
    quick run still reports on the grader's rows: an honest run is neither a mismatch nor a held-out gap."""
    data = tmp_path_factory.mktemp("svhn4000")
    write_synthetic_svhn(data, train=4000, test=300, seed=11)
    result, out_dir = grade_submission(REFERENCE, tmp_path / "out", data_dir=data, execute=True, quick=True)
    training = next(item for item in result.items if item.item.id == "training")
    assert training.extra["accuracy_source"] == "verified"
    assert "on the 800 validation images of the rubric's split" in training.note
    assert not training.extra["mismatch"] and "accuracy mismatch" not in training.extra["flags"]
    assert not training.extra.get("heldout_gap") and "held-out gap" not in training.extra["flags"]
    assert training.extra["flags"] == ["accuracy verified"], training.note
    tolerance = load_rubric().training["max_disagreements"] / 800
    assert training.extra["verified"] == pytest.approx(training.extra["reported"], abs=tolerance)
    assert any("NUM_TRAINING = 3200, NUM_VALIDATION = 800" in note for note in result.notes)
    assert any("training on the first 2000 training rows" in note for note in result.notes)
    executed = nbformat.read(str(out_dir / "executed_Problem_2.ipynb"), as_version=4)
    trim = next(c for c in executed.cells if "injected-quick-rows" in c.metadata.get("tags", []))
    assert not trim.get("outputs")  # it shortened the handout's data dict without complaint


LOADER_2023 = '''import os
import numpy as np
from scipy.io import loadmat


def CIFAR100_data(data_dir, num_training=40000, num_validation=10000):
    """The 2023 handout's loader, as it behaves: channel-major rows, coarse labels, per-channel standardising."""
    train = loadmat(os.path.join(data_dir, "train.mat"))
    images = train["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255
    labels = train["coarse_labels"].flatten()
    val = images[range(num_training, num_training + num_validation)]
    images = images[range(num_training)]
    mean = np.mean(images, axis=(0, 1, 2), keepdims=True)
    std = np.std(images, axis=(0, 1, 2), keepdims=True)
    return {"data_train": (images - mean) / std, "labels_train": labels[range(num_training)],
            "data_val": (val - mean) / std, "labels_val": labels[range(num_training, num_training + num_validation)]}
'''


def test_a_2023_notebook_runs_headless_on_the_graders_split(tmp_path):
    """A notebook calling CIFAR100_data('data/cifar100/') with the handout's defaults (40,000 + 10,000 rows)
    on a 300-row synthetic file: the edition's files are staged in data/cifar100/, and --quick makes the
    run's validation rows the grader's (rows 240-299), its training rows the first quick_training_rows."""
    from autograder.edition import get_edition
    from autograder.notebook.datasets import grading_splits
    from autograder.notebook.execute import execute_notebook
    from autograder.staff.synthetic_cifar import write_synthetic_cifar100

    edition = get_edition("2023")
    data = tmp_path / "data"
    write_synthetic_cifar100(data, edition, train=300, test=40, seed=9)
    sub = tmp_path / "sub"
    (sub / "lib").mkdir(parents=True)
    (sub / "lib" / "__init__.py").write_text("")
    (sub / "lib" / "datasets.py").write_text(LOADER_2023)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from lib.datasets import *\nimport numpy as np"),
        nbformat.v4.new_code_cell("data = CIFAR100_data('data/cifar100/')"),
        nbformat.v4.new_code_cell("print(data['data_train'].shape[0], data['data_val'].shape[0], "
                                  "float(np.abs(data['data_val']).sum()))\n"
                                  "np.savez('cifar100_cnn_params.npz', w=np.ones(3))")])
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    rubric = load_rubric()
    run = execute_notebook(sub, sub / "Problem_2.ipynb", data, tmp_path / "out", rubric.execution,
                           quick=dict(rubric.execution.quick), edition=edition)
    assert run.completed, run.problem
    executed = nbformat.read(str(run.notebook), as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    training_rows, validation_rows, magnitude = printed.split()
    assert (training_rows, validation_rows) == ("240", "60"), printed  # quick keeps at most 2000 training rows
    assert any("CIFAR100_data reads the grader's split (NUM_TRAINING = 240, NUM_VALIDATION = 60)" in n
               for n in run.notes)
    assert run.weights is not None and run.weights.name == "executed_cifar100_cnn_params.npz"
    splits = grading_splits(edition, data, rubric.training)  # the same rows, prepared alike
    assert splits.first_row == 240 and float(magnitude) == pytest.approx(float(np.abs(splits.val_images).sum()),
                                                                         rel=1e-5)

"""Log replay: re-running a notebook's training cell to check that its code prints its log.

The slow tests build an honest notebook the way a student does, by executing the reference
notebook (with a short training run written into its parameters cell) on synthetic data, then
edit it: the log, the code, the training cell. Every replay runs in a real, confined kernel.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from conftest import REFERENCE, run_grade
from notebooks import official_notebook
from submissions import make_submission

from autograder.batch import BatchEntry, write_gradebook
from autograder.cli import build_parser
from autograder.grading import grade_submission
from autograder.notebook.execute import execute_notebook
from autograder.notebook.reading import extract
from autograder.notebook.replay import (
    _KERNEL_SETUP,
    LogWatch,
    LossLine,
    Replay,
    ReplaySettings,
    agree,
    annotate,
    cells_to_replay,
    loss_lines,
    replay_log,
)
from autograder.rubric import RubricError, load_rubric
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.sandbox.worker_code import worker_code
from autograder.score import ItemScore
from autograder.staff.synthetic import write_synthetic_svhn

RUBRIC = load_rubric()
RTOL = ReplaySettings.from_rubric(RUBRIC).rtol
#: A short run of the reference: 1000 images in batches of 8 give 125 iterations per epoch, so two
#: epochs print iterations 1, 101 and 201, the three lines a replay compares.
SHORT_RUN = {"EPOCHS": 2, "BATCH_SIZE": 8, "NUM_TRAINING": 1000, "NUM_VALIDATION": 200}


def _rubric(**training):
    return replace(RUBRIC, training={**RUBRIC.training, **training})


# ----------------------------------------------------------------------------- reading loss lines

def test_loss_lines_in_the_formats_students_print():
    text = ("(Iteration 1 / 7000) loss: 2.302585092994046\n"
            "Decaying learning rate of the optimizer to 0.005\n"
            "(Iteration 101 / 7000) loss: 1.9876\r\n"
            "(Epoch 1 / 10) Training Accuracy: 0.5, Validation Accuracy: 0.4\n"
            "( Iteration 201/7000 ) Average loss: 1.2e-01\n"
            "(Iteration 301 / 7000) loss: nan\n"
            "(Iteration 401 / 7000) loss: np.float64(0.5)\n")
    lines = loss_lines(text)
    assert [(line.iteration, line.of, line.text) for line in lines] == [
        (1, 7000, "2.302585092994046"), (101, 7000, "1.9876"), (201, 7000, "1.2e-01"), (301, 7000, "nan"),
        (401, 7000, "0.5")]
    assert str(lines[1]) == "(Iteration 101 / 7000) loss: 1.9876"
    assert lines[1].last_digit == pytest.approx(1e-4) and lines[2].last_digit == pytest.approx(1e-2)


def test_losses_agree_within_the_rubric_tolerance_and_the_printed_rounding():
    exact = LossLine(101, 7000, "2.302585092994046")
    assert agree(exact, LossLine(101, 7000, repr(2.302585092994046 * (1 + RTOL / 2))), RTOL)
    assert not agree(exact, LossLine(101, 7000, repr(2.302585092994046 * (1 + RTOL * 3))), RTOL)
    # Printed rounded to 4 decimals: one unit of the last digit apart still agrees, two do not.
    assert agree(LossLine(101, 7000, "2.3026"), exact, RTOL)
    assert agree(LossLine(101, 7000, "2.3026"), LossLine(101, 7000, "2.3025"), RTOL)
    assert not agree(LossLine(101, 7000, "2.3026"), LossLine(101, 7000, "2.3024"), RTOL)
    # Counters are exact.
    assert not agree(exact, LossLine(100, 7000, exact.text), RTOL)
    assert not agree(exact, LossLine(101, 7001, exact.text), RTOL)
    assert agree(LossLine(1, 10, "nan"), LossLine(1, 10, "nan"), RTOL)
    assert not agree(LossLine(1, 10, "nan"), LossLine(1, 10, "2.3"), RTOL)


def test_the_watch_reads_lines_arriving_in_pieces_and_stops_at_the_first_difference():
    claimed = loss_lines("(Iteration 1 / 250) loss: 2.5\n(Iteration 101 / 250) loss: 1.25\n"
                         "(Iteration 201 / 250) loss: 0.5\n")
    watch = LogWatch(claimed, RTOL)
    watch.feed("stdout", "(Iteration 1 / 250) lo")
    watch.feed("stderr", "\r 40%|####      | 100/250")  # a progress bar on the other stream
    assert watch.replayed == []  # the line is not complete yet
    watch.feed("stdout", "ss: 2.5\n(Epoch 1 / 2) Training Accuracy: 0.3, Validation Accuracy: 0.3\n")
    assert watch.replayed == claimed[:1] and not watch.settled
    watch.feed("stdout", "(Iteration 101 / 250) loss: 1.28\n(Iteration 201 / 250) loss: 0.5\n")
    assert watch.settled and watch.difference == 1
    compared = watch.compared()
    assert [(c.claimed.text, c.replayed.text, c.agrees) for c in compared] == [("2.5", "2.5", True),
                                                                             ("1.25", "1.28", False)]


def test_the_watch_counts_a_last_line_without_newline_and_owes_the_rest():
    claimed = loss_lines("(Iteration 1 / 9) loss: 2.5\n(Iteration 2 / 9) loss: 2.0\n")
    watch = LogWatch(claimed, RTOL)
    watch.feed("stdout", "(Iteration 1 / 9) loss: 2.5")
    assert watch.replayed == []
    watch.finish()
    assert watch.replayed == claimed[:1] and not watch.settled
    compared = watch.compared()
    assert len(compared) == 2 and compared[1].replayed is None and not compared[1].agrees


# ----------------------------------------------------------------------------- which cells, when not replayed

def test_cells_to_replay_skip_the_download_and_stop_at_training():
    notebook = official_notebook()
    training = extract(notebook, Path("Problem_2.ipynb")).training_cell
    chosen = cells_to_replay(notebook, training)
    assert chosen[-1] == (training, notebook.cells[training].source)
    assert all("get_datasets.sh" not in source for _, source in chosen)
    assert [index for index, _ in chosen] == [i for i, c in enumerate(notebook.cells[:training + 1])
                                              if c.cell_type == "code" and "get_datasets" not in c.source]
    reference = nbformat.read(str(REFERENCE / "Problem_2.ipynb"), as_version=4)
    training = extract(reference, REFERENCE / "Problem_2.ipynb").training_cell
    chosen = cells_to_replay(reference, training)
    assert "training-run" in reference.cells[chosen[-1][0]].metadata["tags"]
    assert not any("download-data" in reference.cells[i].metadata.get("tags", []) for i, _ in chosen)


def test_no_log_and_no_data_are_not_replayed(tmp_path):
    notebook = tmp_path / "Problem_2.ipynb"
    nbformat.write(official_notebook(accuracies=()), str(notebook))  # a training cell without output
    replay = replay_log(tmp_path, notebook, tmp_path, RUBRIC)
    assert (replay.status, replay.reason) == ("not replayed", "no log")
    assert "no `(Iteration i / n) loss: x` line" in replay.detail
    nbformat.write(official_notebook(), str(notebook))
    replay = replay_log(tmp_path, notebook, tmp_path / "empty", RUBRIC)
    assert (replay.status, replay.reason) == ("not replayed", "no data")
    assert "train_32x32.mat" in replay.detail
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (tmp_path / name).write_bytes(b"")
    replay = replay_log(tmp_path, notebook, tmp_path, RUBRIC)  # no lib/ beside the notebook
    assert (replay.status, replay.reason) == ("not replayed", "error")
    assert replay.detail.startswith("the submission could not be copied for the kernel")
    (tmp_path / "other.ipynb").write_text("not json")
    replay = replay_log(tmp_path, tmp_path / "other.ipynb", tmp_path, RUBRIC)
    assert (replay.status, replay.reason) == ("not replayed", "no log") and "other.ipynb" in replay.detail


def test_replay_settings_are_checked():
    assert ReplaySettings.from_rubric(RUBRIC).lines >= 1
    with pytest.raises(RubricError, match="replay_lines"):
        ReplaySettings.from_rubric(_rubric(replay_lines=0))
    broken = replace(RUBRIC, training={k: v for k, v in RUBRIC.training.items() if k != "replay_rtol"})
    with pytest.raises(RubricError, match="missing 'replay_rtol'"):
        ReplaySettings.from_rubric(broken)


def test_annotate_records_and_explains_without_changing_points():
    score = ItemScore(RUBRIC.item("training"), 21.5, (), "graded", "validation accuracy 0.7700 (reported)",
                      {"accuracy_source": "reported"})
    replay = Replay("not reproduced", "line 2 of the log differs", compared=(), seconds=12.34)
    annotated = annotate(score, replay)
    assert annotated.score == 21.5 and annotated.status == "graded"
    assert annotated.note.startswith("validation accuracy 0.7700 (reported); LOG NOT REPRODUCED by this code: line 2")
    assert annotated.extra["accuracy_source"] == "reported"
    assert annotated.extra["replay"] == {"status": "not reproduced", "reason": None,
                                         "detail": "line 2 of the log differs", "lines": [], "notes": []}
    assert annotated.extra["flags"] == ["log not reproduced"]  # what the gradebook shows
    kept = annotate(replace(score, extra={"flags": ["accuracy reported"]}), Replay("reproduced", "3 lines agree"))
    assert kept.extra["flags"] == ["accuracy reported"] and kept.score == 21.5


def test_the_kernel_setup_shims_removed_numpy_names_and_leaves_no_harness_behind(tmp_path):
    code = _KERNEL_SETUP.format(harness=str(worker_code())) + (  # the worker's copy, as the replay uses it
        "import numpy as np, sys\nassert np.float is float and np.int is int\n"
        "import cv2\nprint(type(cv2).__name__)\n"
        "print(any(m == 'autograder' or m.startswith('autograder.') for m in sys.modules), "
        f"{str(worker_code())!r} in sys.path)\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["_Unavailable", "False", "False"]


def test_no_replay_is_an_option_of_grade_and_batch():
    parser = build_parser()
    assert parser.parse_args(["grade", "x", "--no-replay"]).no_replay
    assert not parser.parse_args(["grade", "x"]).no_replay
    assert parser.parse_args(["batch", "x", "--out", "y", "--no-replay"]).no_replay


# ----------------------------------------------------------------------------- real replays

def _training_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if "training-run" in cell.metadata.get("tags", []))


def _edit(folder: Path, change) -> Path:
    path = folder / "Problem_2.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    change(notebook)
    nbformat.write(notebook, str(path))
    return path


def _edit_training_code(old: str, new: str):
    def change(notebook):
        cell = _training_cell(notebook)
        assert old in cell.source, f"the training cell no longer contains {old!r}"
        cell.source = cell.source.replace(old, new, 1)
    return change


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svhn")
    write_synthetic_svhn(folder, train=SHORT_RUN["NUM_TRAINING"] + SHORT_RUN["NUM_VALIDATION"], test=50, seed=7)
    return folder


@pytest.fixture(scope="module")
def honest(tmp_path_factory, data):
    """The reference, its parameters cell set to SHORT_RUN, executed headless by the project itself;
    the executed notebook is the submission's notebook, and no weights are kept (as in the handout)."""
    folder = make_submission(tmp_path_factory.mktemp("honest") / "submission")

    def short(notebook):
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        for name, value in SHORT_RUN.items():
            cell.source, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", cell.source, count=1, flags=re.M)
            assert count == 1, f"the parameters cell no longer sets {name}"

    _edit(folder, short)
    run = execute_notebook(folder, folder / "Problem_2.ipynb", data, tmp_path_factory.mktemp("executed"),
                           RUBRIC.execution, hidden=list(SECRET_PATHS))
    assert run.completed, run.problem
    shutil.copyfile(run.notebook, folder / "Problem_2.ipynb")
    assert not (folder / "svhn_cnn_params.npz").exists()
    return folder


@pytest.fixture
def submission(honest, tmp_path):
    """A fresh copy of the honest submission, to edit."""
    return Path(shutil.copytree(honest, tmp_path / "submission"))


def _log(folder: Path) -> list[LossLine]:
    notebook = nbformat.read(str(folder / "Problem_2.ipynb"), as_version=4)
    return loss_lines("".join(o.get("text", "") for o in _training_cell(notebook).outputs))


def _replay(folder: Path, data: Path, **training) -> Replay:
    return replay_log(folder, folder / "Problem_2.ipynb", data, _rubric(**training), hidden=list(SECRET_PATHS))


@pytest.mark.slow
def test_the_honest_notebook_is_reproduced(submission, data):
    claimed = _log(submission)
    assert [line.iteration for line in claimed[:3]] == [1, 101, 201]
    replay = _replay(submission, data)
    assert replay.status == "reproduced" and replay.reason is None, replay.detail
    assert [(c.claimed, c.agrees) for c in replay.compared] == [(line, True) for line in claimed[:3]]
    assert all(abs(c.replayed.loss - c.claimed.loss) <= RTOL * abs(c.claimed.loss) for c in replay.compared)
    assert "iterations 1, 101, 201" in replay.detail
    print(f"\nreplay of the reference (3 lines, {SHORT_RUN}): {replay.seconds:.1f} s")


@pytest.mark.slow
def test_an_untagged_notebook_is_replayed_by_its_content(submission, data):
    """As the official handout's notebooks are: no tags, so the download cell and the training cell
    are found by what they contain, and the settings cell is plain code that runs as written."""
    def untag(notebook):
        for cell in notebook.cells:
            cell.metadata.pop("tags", None)

    path = _edit(submission, untag)
    notebook = nbformat.read(str(path), as_version=4)
    training = extract(notebook, path).training_cell
    assert "train_net(" in notebook.cells[training].source
    replay = _replay(submission, data)
    assert replay.status == "reproduced", replay.detail
    assert len(replay.compared) == 3


@pytest.mark.slow
def test_an_edited_loss_is_not_reproduced_and_named(submission, data):
    honest_line = _log(submission)[1]
    edited = f"{honest_line.loss * (1 + 1e-4)!r}"

    def edit_second_line(notebook):
        for output in _training_cell(notebook).outputs:
            if output.get("output_type") == "stream" and honest_line.text in output.text:
                output.text = output.text.replace(honest_line.text, edited, 1)
                return
        raise AssertionError("the log's second loss line was not found")

    _edit(submission, edit_second_line)
    replay = _replay(submission, data)
    assert (replay.status, replay.reason) == ("not reproduced", None)
    assert replay.detail.startswith(f"line 2 of the log differs: the notebook shows `(Iteration 101 / 250) loss: "
                                    f"{edited}`, the replay printed `{honest_line}`")
    assert [c.agrees for c in replay.compared] == [True, False]  # stopped at the difference


@pytest.mark.slow
def test_a_log_of_another_seed_is_not_reproduced(submission, data):
    _edit(submission, _edit_training_code("seed = 123", "seed = 124"))
    replay = _replay(submission, data)
    assert replay.status == "not reproduced"
    assert replay.detail.startswith("line 1 of the log differs")
    assert len(replay.compared) == 1 and not replay.compared[0].agrees


@pytest.mark.slow
def test_a_log_of_another_learning_rate_is_not_reproduced(submission, data):
    _edit(submission, _edit_training_code("Adam(model.net, LEARNING_RATE)", "Adam(model.net, 2 * LEARNING_RATE)"))
    replay = _replay(submission, data)
    assert replay.status == "not reproduced"
    # The first loss comes before any update, so it agrees; the learning rate shows from the second on.
    assert [c.agrees for c in replay.compared] == [True, False]
    assert replay.detail.startswith("line 2 of the log differs")


@pytest.mark.slow
def test_a_training_cell_that_raises_is_not_replayed(submission, data):
    _edit(submission, _edit_training_code("model = SmallConvolutionalNetwork()",
                                          "raise RuntimeError('no training today')"))
    replay = _replay(submission, data)
    assert (replay.status, replay.reason) == ("not replayed", "error")
    assert "the training cell raised RuntimeError: no training today" in replay.detail
    assert "no loss line was printed yet" in replay.detail


@pytest.mark.slow
def test_a_training_cell_that_hangs_is_stopped_at_the_budget(submission, data):
    _edit(submission, _edit_training_code("model = SmallConvolutionalNetwork()",
                                          "import time\nwhile True:\n    time.sleep(1)"))
    replay = _replay(submission, data, replay_seconds=30)
    assert (replay.status, replay.reason) == ("not replayed", "time")
    assert replay.detail.startswith("the budget of 30 s ran out in the training cell; no loss line was printed yet")


@pytest.mark.slow
def test_a_dying_kernel_is_not_replayed(submission, data):
    _edit(submission, _edit_training_code("model = SmallConvolutionalNetwork()", "import os\nos._exit(3)"))
    replay = _replay(submission, data)
    assert (replay.status, replay.reason) == ("not replayed", "error")
    assert "the kernel died in cell" in replay.detail


@pytest.mark.slow
def test_the_kernel_cannot_read_the_claimed_log(submission, data):
    """Code that looks for the notebook to print its log finds none: not in its folder, nor where the
    submission lies (the kernel has a root of its own)."""
    spy = ("import glob, os\nfound = glob.glob('**/*.ipynb', recursive=True) + glob.glob(%r)\n"
           "raise RuntimeError(f'{len(found)} notebooks found')\n" % str(submission / "*.ipynb"))
    _edit(submission, _edit_training_code("model = SmallConvolutionalNetwork()", spy))
    replay = _replay(submission, data)
    assert (replay.status, replay.reason) == ("not replayed", "error")
    assert "RuntimeError: 0 notebooks found" in replay.detail


def _training_result(out_dir: Path) -> dict:
    """The training item's test in OUT/results.json."""
    document = json.loads((out_dir / "results.json").read_text())
    return next(test for test in document["tests"] if test["tags"] == ["training"])


@pytest.mark.slow
def test_grading_records_and_flags_a_log_not_reproduced_without_changing_points(submission, data, tmp_path):
    line = _log(submission)[0]

    def edit_first_line(notebook):
        cell = _training_cell(notebook)
        for output in cell.outputs:
            if output.get("output_type") == "stream":
                output.text = output.text.replace(str(line), str(replace(line, text="2.0")), 1)

    _edit(submission, edit_first_line)
    grade_submission(submission, tmp_path / "book" / "s1", data_dir=data)
    done = run_grade("grade", str(submission), "--out", str(tmp_path / "book" / "s2"), "--data", str(data),
                     "--no-replay")  # as staff run it, for a faster batch
    assert done.returncode == 0, done.stderr
    replayed = _training_result(tmp_path / "book" / "s1")
    skipped = _training_result(tmp_path / "book" / "s2")
    assert replayed["extra_data"]["replay"]["status"] == "not reproduced"
    assert replayed["extra_data"]["replay"]["lines"][0] == {"expected": "(Iteration 1 / 250) loss: 2.0",
                                                           "got": str(line), "agrees": False}
    assert "LOG NOT REPRODUCED by this code: line 1 of the log differs" in replayed["output"]
    assert "replay" not in skipped["extra_data"]
    assert replayed["score"] == skipped["score"] and replayed["extra_data"]["accuracy_source"] == "reported"
    write_gradebook(tmp_path / "book", [BatchEntry("s1", submission), BatchEntry("s2", submission)])
    with open(tmp_path / "book" / "gradebook.csv", newline="") as handle:
        flags = {row["student_id"]: row["flags"] for row in csv.DictReader(handle)}
    assert "log not reproduced" in flags["s1"] and "log not reproduced" not in flags["s2"]


@pytest.mark.slow
def test_an_accuracy_edited_by_hand_is_reproduced_but_its_points_ask_staff_even_once_the_row_is_complete(
        submission, data, tmp_path):
    """The replay compares loss lines only: an accuracy line raised by hand in an otherwise honest log is
    reproduced. The points it earns under the `reported` policy must then say plainly that they rest on the
    claim, and the class report must list the student for staff, also after staff graded everything else."""
    def raise_accuracy(notebook):
        cell = _training_cell(notebook)
        edited = 0
        for output in cell.outputs:
            if output.get("output_type") == "stream":
                output.text, count = re.subn(r"Validation Accuracy: [0-9.]+", "Validation Accuracy: 0.950",
                                             output.text)
                edited += count
        assert edited, "the training cell prints no Validation Accuracy line"

    _edit(submission, raise_accuracy)
    classroom = tmp_path / "submissions"
    shutil.copytree(submission, classroom / "2001")
    out = tmp_path / "graded"
    done = run_grade("batch", str(classroom), "--out", str(out), "--data", str(data), "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    training = _training_result(out / "2001")
    assert training["score"] == 25 and training["extra_data"]["accuracy_source"] == "reported"
    assert training["extra_data"]["replay"]["status"] == "reproduced"  # the loss lines are honest
    assert "the log's accuracy lines are not compared" in training["extra_data"]["replay"]["detail"]
    assert ("UNVERIFIED: these 25 of 25 points rest on the accuracy the notebook's log reports, not on one the "
            "grader measured") in training["output"]
    assert "UNVERIFIED: these 25 of 25 points" in (out / "2001" / "feedback.md").read_text(encoding="utf-8")

    scores = tmp_path / "scores.csv"  # staff grade what the sheet asks of them: the row is then complete
    scores.write_text("student_id,item,points,comment\n2001,inline_answer,4,\n2001,filters,5,\n")
    merged = run_grade("merge-manual", str(scores), str(out))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    with open(out / "gradebook.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["status"] == "complete" and float(row["training"]) == 25
    assert "accuracy unverified" in row["flags"].split("; ")
    report = (out / "class_report.md").read_text(encoding="utf-8")
    flagged = report[report.index("## Flagged submissions"):].split("\n## ")[0]
    assert "- [2001](2001/feedback.md): accuracy unverified" in flagged
    assert "<p id='flagged'>None.</p>" not in (out / "class_report.html").read_text(encoding="utf-8")

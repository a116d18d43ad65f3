"""The training log of each edition: its lines read in the edition's format, the training item's credit
and notes in the edition's words, and the log replay of a 2023 (CIFAR-100, "Average loss") notebook.

The 2023 notebooks here have the outputs a real one has: train_net's lines on stdout, sometimes sent in
pieces, and tqdm's carriage-return progress on stderr between and inside them. The slow tests execute a
2023-style notebook (tests/cifar_log.py) on synthetic CIFAR-100 and replay it in a real, confined kernel.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import nbclient
import nbformat
import pytest
import tomllib
from cifar_log import cifar_notebook, cifar_submission, training_source

from autograder.edition import get_edition
from autograder.notebook.architecture import Architecture, rule_violation
from autograder.notebook.items import TrainingEvidence, architecture_violation, credit, score_training
from autograder.notebook.reading import extract, log_texts
from autograder.notebook.replay import (
    LogWatch,
    LossLine,
    ReplaySettings,
    _claimed_log,
    loss_lines,
    reachable,
    replay_log,
    stage_data,
)
from autograder.rubric import RUBRIC_PATH, load_rubric, parse_rubric
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.staff.synthetic_cifar import write_synthetic_cifar100

E22, E23 = get_edition("2022"), get_edition("2023")
R22 = load_rubric()
R23 = R22.with_edition(E23)
SETTINGS = ReplaySettings.from_rubric(R23)


def _rubric_with(edition=E23, **training):
    data = copy.deepcopy(tomllib.loads(RUBRIC_PATH.read_text()))
    data["training"].update(training)
    return parse_rubric(data).with_edition(edition)


def _stream(name: str, text: str):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _bar(done: int, total: int = 40) -> str:
    filled = "█" * (10 * done // total)
    return f"\r{100 * done // total:3d}%|{filled:<10}| {done}/{total} [00:01<00:02, 12.10it/s]"


def tqdm_cell(source: str = "results = train_net(data_dict, model, loss_f, optimizer, 10, 2)") -> nbformat.NotebookNode:
    """A 2023 training cell as nbclient saves it (measured: each stdout print and each tqdm refresh is
    its own output), with one stdout line sent in two pieces around a progress refresh."""
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [
        _stream("stderr", _bar(0)), _stream("stdout", "(Iteration 1 / 80) Avera"), _stream("stderr", _bar(2)),
        _stream("stdout", "ge loss: 2.995732273553991\n"), _stream("stderr", _bar(20)), _stream("stderr", _bar(40)),
        _stream("stderr", "\n"),
        _stream("stdout", "(Epoch 1 / 2) Training Accuracy: 0.3975, Validation Accuracy: 0.41\n"),
        _stream("stderr", _bar(0)), _stream("stdout", "(Iteration 41 / 80) Average loss: 2.4948843880803264\n"),
        _stream("stderr", _bar(33)), _stream("stdout", "(Epoch 2 / 2) Training Accuracy: 0.52, Validation "),
        _stream("stderr", _bar(40) + "\n"), _stream("stdout", "Accuracy: 0.452\n")]
    return cell


def _notebook_with(cell) -> nbformat.NotebookNode:
    notebook = cifar_notebook()
    index = next(i for i, c in enumerate(notebook.cells) if "train_net(" in c.source)
    notebook.cells[index] = cell
    return notebook


# ----------------------------------------------------------------------------- reading the 2023 log

def test_a_2023_log_with_tqdm_progress_interleaved_parses():
    cell = tqdm_cell()
    found = extract(_notebook_with(cell), Path("Problem_2.ipynb"), edition=E23)
    assert found.epochs == [(1, 2, 0.3975, 0.41), (2, 2, 0.52, 0.452)]
    assert found.reported_best == 0.452 and found.reported_last == 0.452
    lines = _claimed_log(cell, E23.training)
    assert [(line.iteration, line.of, line.text) for line in lines] == [
        (1, 80, "2.995732273553991"), (41, 80, "2.4948843880803264")]
    assert str(lines[0]) == "(Iteration 1 / 80) Average loss: 2.995732273553991"
    # Joined in their saved order, the outputs cut the first line and the second epoch line apart.
    joined = "".join(output.text for output in cell.outputs)
    assert len(loss_lines(joined, E23.training)) == 1 and "Validation \r" in joined


def test_a_jupyterlab_saved_log_and_a_progress_bar_on_stdout_parse_too():
    """JupyterLab merges a stream's outputs and keeps the last frame of tqdm's bar; a student who gave
    tqdm `file=sys.stdout` has the bar on the same stream as the lines, with no newline before them."""
    cell = nbformat.v4.new_code_cell("results = train_net(data_dict, model, loss_f, optimizer, 10, 1)")
    cell.outputs = [_stream("stdout", _bar(0) + "(Iteration 1 / 40) Average loss: np.float64(2.99)\n" + _bar(39)
                            + _bar(40) + "\n(Epoch 1 / 1) Training Accuracy: 41.5%, Validation Accuracy: 40.5%\n"),
                    _stream("stderr", "100%|██████████| 40/40 [00:03<00:00, 12.10it/s]\n")]
    found = extract(_notebook_with(cell), Path("Problem_2.ipynb"), edition=E23)
    assert found.epochs == [(1, 1, 0.415, 0.405)]
    assert [(line.iteration, line.text) for line in _claimed_log(cell, E23.training)] == [(1, "2.99")]


def test_each_edition_reads_its_own_iteration_line():
    text = "(Iteration 1 / 9) loss: 2.5\n(Iteration 1 / 9) Average loss: 2.25\n"
    assert [line.text for line in loss_lines(text, E23.training)] == ["2.25"]
    assert [line.text for line in loss_lines(text, E22.training)] == ["2.5", "2.25"]  # as before editions
    assert loss_lines(text) == loss_lines(text, E22.training)  # the default edition's
    assert str(loss_lines(text)[0]) == "(Iteration 1 / 9) loss: 2.5"


def test_log_texts_keep_each_stream_whole():
    stderr, stdout = log_texts(tqdm_cell())  # in the order the streams first printed
    assert stdout.startswith("(Iteration 1 / 80) Average loss: 2.99573") and "\r" not in stdout
    assert stdout.endswith("Validation Accuracy: 0.452\n")
    assert stderr.startswith("\r  0%|") and "Iteration" not in stderr


# ----------------------------------------------------------------------------- credit and notes

UNVERIFIED_2023 = dict(kinds=["conv", "gelu", "pool", "flatten", "fc"], output_shape=[2, 20],
                       unverified="no cifar100_cnn_params.npz was submitted")


@pytest.mark.parametrize("reported", [0.41, 0.45, 0.50])
def test_a_2023_log_above_40_percent_earns_full_credit_under_the_reported_policy(reported):
    scored = score_training(R23, TrainingEvidence(reported=reported, **UNVERIFIED_2023))
    assert scored.score == 25 and scored.status == "graded"
    assert scored.extra["flags"] == ["accuracy unverified"] and scored.extra["accuracy_source"] == "reported"
    assert "the target, trained to 40 % on CIFAR-100, is reached: full credit" in scored.note
    assert (scored.extra["target"], scored.extra["chance"], scored.extra["edition"]) == (0.4, 0.05, E23.name)
    assert not re.search(r"88|SVHN|svhn", scored.note)
    # The same figure, read as a 2022 log, is far from 88 %.
    as_2022 = score_training(R22, TrainingEvidence(reported=reported, **dict(UNVERIFIED_2023, output_shape=[2, 10])))
    assert as_2022.score < 25 and "trained to 88 % on SVHN" in as_2022.note


def test_a_2023_log_under_the_pending_policy_waits_for_staff():
    evidence = TrainingEvidence(reported=0.45, **UNVERIFIED_2023)
    scored = score_training(_rubric_with(unverified_policy="pending"), evidence)
    assert (scored.score, scored.status, scored.extra["flags"]) == (0, "pending", ["accuracy pending"])
    assert scored.note.startswith("pending staff confirmation: validation accuracy 0.4500 (reported")
    assert "trained to 40 % on CIFAR-100" in scored.note


def test_a_2023_log_under_a_cap_earns_at_most_the_cap_and_below_the_target_the_edition_s_formula():
    rubric = _rubric_with(unverified_policy=10)
    capped = score_training(rubric, TrainingEvidence(reported=0.45, **UNVERIFIED_2023))
    assert capped.score == 10 and capped.extra["flags"] == ["accuracy unverified (capped)"]
    assert "at most 10 points without verification" in capped.note
    below = score_training(R23, TrainingEvidence(reported=0.30, **UNVERIFIED_2023))
    assert below.score == pytest.approx(25 * (0.30 - 0.05) / (0.40 - 0.05), abs=0.01)
    assert below.score == pytest.approx(25 * credit(0.30, 0.40, 0.05), abs=0.01)
    assert "below the target, trained to 40 % on CIFAR-100: credit grows linearly from chance (5 %)" in below.note
    chance = score_training(R23, TrainingEvidence(reported=0.04, **UNVERIFIED_2023))
    assert chance.score == 0 and "no credit at or below chance (5 %)" in chance.note


def test_a_verified_2023_accuracy_is_credited_against_40_percent():
    scored = score_training(R23, TrainingEvidence(verified=0.42, validation_size=10000, reported=0.43,
                                                  reported_images=10000, kinds=["conv"], output_shape=[2, 20],
                                                  verified_how="cifar100_cnn_params.npz"))
    assert scored.score == 25 and scored.extra["flags"] == ["accuracy verified"]
    assert "validation accuracy 0.4200 (verified" in scored.note and "trained to 40 % on CIFAR-100" in scored.note


def test_the_output_width_is_the_edition_s_number_of_classes():
    assert architecture_violation(["conv", "fc"], [2, 20], R23) == ""
    assert architecture_violation(["conv", "fc"], [2, 10], R22) == ""
    violation = architecture_violation(["conv"], [2, 10], R23)
    assert "expected (2, 20), one score for each of the task's 20 classes" in violation
    assert "expected (2, 10)" in architecture_violation(["conv"], [2, 20], R22)
    twenty = Architecture([SimpleNamespace(kind="fc", counts_as_conv=False)], True, (2, 20))
    assert rule_violation(twenty, R23.training, E23.dataset.classes) == ""
    assert "expected (2, 10)" in rule_violation(twenty, R22.training)
    scored = score_training(R23, TrainingEvidence(reported=0.45, **dict(UNVERIFIED_2023, output_shape=[2, 10])))
    assert scored.score == 0 and scored.extra["flags"] == ["architecture violation"]


# ----------------------------------------------------------------------------- what a 2023 replay compares

def _log(*iterations: int, of: int = 20000) -> list[LossLine]:
    return [LossLine(i, of, f"{2.99 - i / 1e4:.4f}", "Average loss") for i in iterations]


def test_an_averaged_log_at_the_handout_defaults_is_compared_on_its_first_line_and_says_so():
    kept, said = reachable(_log(1, 4001, 8001), E23.training, SETTINGS)
    assert kept == _log(1)
    assert said.startswith("only 1 loss line could be compared: the log's next line, `(Iteration 4001 / 20000) "
                           f"Average loss: 2.5899` averages the losses of the iterations before it and lies beyond "
                           f"the {SETTINGS.max_iteration} iterations a replay runs")
    assert "not the optimiser, its learning rate or the regularisation" in said


def test_an_averaged_log_with_a_small_show_every_is_compared_line_for_line():
    assert reachable(_log(1, 501, 1001), E23.training, SETTINGS) == (_log(1, 501, 1001), "")
    kept, said = reachable(_log(1, 11, 21), E23.training, replace(SETTINGS, max_iteration=15))
    assert kept == _log(1, 11) and said.startswith("only 2 loss lines could be compared") and "optimiser" not in said
    assert reachable(_log(4001), E23.training, SETTINGS)[0] == []


def test_a_2022_log_is_never_capped():
    lines = [LossLine(i, 20000, "2.3") for i in (1, 4001, 8001)]
    assert reachable(lines, E22.training, SETTINGS) == (lines, "")


def test_the_watch_reads_average_lines_between_tqdm_refreshes():
    claimed = _log(1, 11, of=80)
    watch = LogWatch(claimed, SETTINGS.rtol, E23.training)
    watch.feed("stderr", _bar(0))
    watch.feed("stdout", "(Iteration 1 / 80) Average ")
    watch.feed("stderr", _bar(1))
    watch.feed("stdout", f"loss: {claimed[0].text}\n(Iteration 11 / 80) loss: {claimed[1].text}\n")
    assert watch.replayed == claimed[:1] and not watch.settled  # "loss:" alone is not the 2023 line
    watch.feed("stdout", f"(Iteration 11 / 80) Average loss: {claimed[1].text}\n")
    assert watch.settled and watch.difference is None


def test_the_2023_data_is_staged_in_its_folder_and_a_missing_file_is_named(tmp_path):
    data = tmp_path / "staff"
    data.mkdir()
    for name in E23.dataset.files:
        (data / name).write_bytes(name.encode())
    stage_data(tmp_path / "kernel", data, E23.dataset)
    assert sorted(p.name for p in (tmp_path / "kernel" / "data" / "cifar100").iterdir()) == sorted(E23.dataset.files)
    assert (tmp_path / "kernel" / "data" / "cifar100" / "meta.mat").read_bytes() == b"meta.mat"
    notebook = tmp_path / "Problem_2.ipynb"
    nbformat.write(_notebook_with(tqdm_cell()), str(notebook))
    (data / "meta.mat").unlink()
    replay = replay_log(tmp_path, notebook, data, R23)
    assert (replay.status, replay.reason) == ("not replayed", "no data")
    assert replay.detail == "the staff's data folder lacks meta.mat (CIFAR-100)"


def test_a_2023_notebook_without_an_average_line_is_not_replayed(tmp_path):
    cell = tqdm_cell()
    for output in cell.outputs:
        output.text = output.text.replace("Avera", "").replace("ge loss", "loss").replace("Average loss", "loss")
    notebook = tmp_path / "Problem_2.ipynb"
    nbformat.write(_notebook_with(cell), str(notebook))
    replay = replay_log(tmp_path, notebook, tmp_path, R23)
    assert (replay.status, replay.reason) == ("not replayed", "no log")
    assert "shows no `(Iteration i / n) Average loss: x` line" in replay.detail


# ----------------------------------------------------------------------------- real 2023 replays

ROWS = (400, 100)  # 40 iterations an epoch at the handout's batch of 10


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """The staff's synthetic CIFAR-100: the rows the notebooks ask for, and a few test images."""
    folder = tmp_path_factory.mktemp("cifar100")
    write_synthetic_cifar100(folder, E23, train=sum(ROWS), test=40, seed=11)
    return folder


def _execute(folder: Path, data: Path) -> Path:
    """Run the submission's notebook as a student does (nbclient, data/cifar100 beside it), keep its
    outputs in the notebook, and take the data away again (a submission holds none)."""
    stage_data(folder, data, E23.dataset)
    path = folder / "Problem_2.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    nbformat.write(notebook, str(path))
    shutil.rmtree(folder / "data")
    return path


@pytest.fixture(scope="module")
def honest_2023(tmp_path_factory, cifar):
    """A 2023-style submission with a short run logged every 10 iterations, executed."""
    folder = cifar_submission(tmp_path_factory.mktemp("honest") / "submission",
                              cifar_notebook(ROWS, show_every=10, epochs=2))
    _execute(folder, cifar)
    return folder


def _training_cell(folder: Path):
    notebook = nbformat.read(str(folder / "Problem_2.ipynb"), as_version=4)
    return next(cell for cell in notebook.cells if "train_net(" in cell.source)


def _replay(folder: Path, data: Path, **training):
    rubric = replace(R23, training=replace(R23.training, **training)) if training else R23
    return replay_log(folder, folder / "Problem_2.ipynb", data, rubric, hidden=list(SECRET_PATHS))


@pytest.mark.slow
def test_the_executed_2023_notebook_holds_the_handout_s_log_and_tqdm_on_stderr(honest_2023):
    cell = _training_cell(honest_2023)
    names = {output.name for output in cell.outputs if output.output_type == "stream"}
    assert names == {"stdout", "stderr"}
    assert any("it/s]" in output.text for output in cell.outputs if output.get("name") == "stderr")
    lines = _claimed_log(cell, E23.training)
    assert [line.iteration for line in lines] == [1, 11, 21, 31, 41, 51, 61, 71] and lines[0].of == 80
    found = extract(nbformat.read(str(honest_2023 / "Problem_2.ipynb"), as_version=4),
                    honest_2023 / "Problem_2.ipynb", edition=E23)
    assert [epoch[:2] for epoch in found.epochs] == [(1, 2), (2, 2)] and found.reported_best is not None


@pytest.mark.slow
def test_a_2023_log_is_replayed_on_cifar100_comparing_average_losses(honest_2023, cifar, tmp_path):
    submission = Path(shutil.copytree(honest_2023, tmp_path / "s"))
    claimed = _claimed_log(_training_cell(submission), E23.training)
    replay = _replay(submission, cifar)
    assert replay.status == "reproduced", replay.detail
    assert [(c.claimed, c.agrees) for c in replay.compared] == [(line, True) for line in claimed[:3]]
    assert "iterations 1, 11, 21" in replay.detail and "could be compared" not in replay.detail
    print(f"\n2023 replay, 3 averaged lines: {replay.seconds:.1f} s")


@pytest.mark.slow
def test_past_the_reach_only_the_first_line_is_compared_and_the_feedback_says_the_check_is_weaker(
        honest_2023, cifar, tmp_path):
    submission = Path(shutil.copytree(honest_2023, tmp_path / "s"))
    replay = _replay(submission, cifar, replay_max_iteration=5)
    assert replay.status == "reproduced" and len(replay.compared) == 1, replay.detail
    assert "only 1 loss line could be compared: the log's next line, `(Iteration 11 / 80) Average loss:" \
        in replay.summary()
    assert "not the optimiser, its learning rate or the regularisation" in replay.summary()


@pytest.mark.slow
def test_an_edited_average_is_not_reproduced(honest_2023, cifar, tmp_path):
    submission = Path(shutil.copytree(honest_2023, tmp_path / "s"))
    path = submission / "Problem_2.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    cell = next(cell for cell in notebook.cells if "train_net(" in cell.source)
    second = _claimed_log(cell, E23.training)[1]
    edited = f"{second.loss * 0.999!r}"
    for output in cell.outputs:
        if output.get("name") == "stdout" and second.text in output.text:
            output.text = output.text.replace(second.text, edited, 1)
    nbformat.write(notebook, str(path))
    replay = _replay(submission, cifar)
    assert replay.status == "not reproduced" and [c.agrees for c in replay.compared] == [True, False]
    assert replay.detail.startswith(f"line 2 of the log differs: the notebook shows `(Iteration 11 / 80) Average "
                                    f"loss: {edited}`, the replay printed `{second}`")


@pytest.mark.slow
def test_another_learning_rate_or_regularisation_shows_from_the_second_average(honest_2023, cifar, tmp_path):
    """The student's own hyperparameters are replayed as written: a log of another run differs at line 2
    (the first loss comes before any update), and another seed at line 1."""
    for change, first_differs in ((dict(lr="2e-3"), False), (dict(regularization="l2", reg_lambda=0.5), False),
                                  (dict(seed=124), True)):
        submission = Path(shutil.copytree(honest_2023, tmp_path / f"s{len(change)}{first_differs}{change}"))
        path = submission / "Problem_2.ipynb"
        notebook = nbformat.read(str(path), as_version=4)
        cell = next(cell for cell in notebook.cells if "train_net(" in cell.source)
        cell.source = training_source(**dict(dict(show_every=10, epochs=2), **change))
        nbformat.write(notebook, str(path))
        replay = _replay(submission, cifar)
        assert replay.status == "not reproduced", (change, replay.detail)
        assert [c.agrees for c in replay.compared] == ([False] if first_differs else [True, False]), change

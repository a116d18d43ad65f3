"""The notebook items graded end to end: training (reported and verified), filters, answer."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE, run_grade
from notebooks import official_notebook
from submissions import MODELS, grade, make_submission

from autograder.grading import grade_submission
from autograder.notebook.items import TrainingEvidence, credit, score_training
from autograder.rubric import load_rubric
from autograder.staff.lib_loader import imported_lib
from autograder.staff.synthetic import write_synthetic_svhn

RUBRIC = load_rubric()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small synthetic SVHN; the notebooks below declare the split 600 + 100."""
    folder = tmp_path_factory.mktemp("svhn")
    write_synthetic_svhn(folder, train=700, test=50, seed=3)
    return folder


def with_notebook(folder, notebook, split=(600, 100)):
    notebook.cells.insert(1, nbformat.v4.new_code_cell(f"NUM_TRAINING = {split[0]}\nNUM_VALIDATION = {split[1]}"))
    notebook.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, str(folder / "Problem_2.ipynb"))
    return folder


def save_random_weights(folder, names=None):
    """The reference network's untrained weights, as the notebook's np.savez would write them."""
    with imported_lib(REFERENCE) as lib:
        np.random.seed(5)
        params = lib.cnn_models.SmallConvolutionalNetwork().net.params
    np.savez(folder / "svhn_cnn_params.npz", **{k: v for k, v in params.items() if names is None or k in names})


@pytest.mark.parametrize("accuracy,points", [(0.05, 0), (0.10, 0), (0.49, 12.5), (0.88, 25), (0.97, 25)])
def test_training_credit_at_the_boundaries(accuracy, points):
    assert credit(accuracy, 0.88, 0.10) * 25 == pytest.approx(points)
    scored = score_training(RUBRIC, TrainingEvidence(reported=accuracy, kinds=["conv", "pool", "flatten", "fc"],
                                                     output_shape=[2, 10]))
    assert scored.score == pytest.approx(points) and scored.extra["accuracy_source"] == "reported"


def test_no_log_and_no_weights_is_zero_with_the_reason():
    scored = score_training(RUBRIC, TrainingEvidence(kinds=["conv"], problems=["no svhn_cnn_params.npz saved"]))
    assert scored.score == 0 and "no validation accuracy found (no svhn_cnn_params.npz saved)" in scored.note


def test_reported_accuracy_from_an_untagged_notebook(tmp_path):
    sub = with_notebook(make_submission(tmp_path / "sub"), official_notebook(accuracies=(0.7, 0.891)))
    scores, result, out_dir = grade(sub, tmp_path)
    assert scores["training"].score == 25
    assert scores["training"].extra["accuracy_source"] == "reported"
    assert "not verified: no svhn_cnn_params.npz" in scores["training"].note
    assert scores["filters"].score == 5  # a real image from a cell reading conv1_w, the first conv layer


@pytest.mark.slow
def test_verified_accuracy_wins_and_a_mismatch_is_flagged(tmp_path, data):
    sub = with_notebook(make_submission(tmp_path / "sub"), official_notebook(accuracies=(0.9, 0.95)))
    save_random_weights(sub)
    scores, result, out_dir = grade(sub, tmp_path, data_dir=data)
    training = scores["training"]
    assert training.extra["accuracy_source"] == "verified"
    assert training.extra["verified"] < 0.3 and training.extra["reported"] == 0.95
    assert training.extra["mismatch"] is True and "MISMATCH" in training.note
    assert training.score == pytest.approx(25 * credit(training.extra["verified"], 0.88, 0.10), abs=0.01)
    document = json.loads((out_dir / "results.json").read_text())
    extra = next(t for t in document["tests"] if t["tags"] == ["training"])["extra_data"]
    assert extra["accuracy_source"] == "verified" and extra["mismatch"] is True
    assert "differs from the accuracy of your saved weights" in (out_dir / "feedback.md").read_text()


@pytest.mark.slow
def test_weights_that_do_not_fit_earn_nothing_never_the_log(tmp_path, data):
    sub = with_notebook(make_submission(tmp_path / "sub"), official_notebook(accuracies=(0.8,)))
    save_random_weights(sub, names={"conv1_w", "conv1_b"})
    scores, result, out_dir = grade(sub, tmp_path, data_dir=data)
    assert scores["training"].score == 0 and scores["training"].extra["accuracy_source"] == "none"
    assert "the saved weights do not fit your network: conv2_w is missing" in scores["training"].note
    assert "weights not evaluable" in scores["training"].extra["flags"]


def test_three_conv_layers_break_the_rule(tmp_path):
    changes = [(MODELS, 'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),',
                'ConvLayer2D(16, 3, 16, stride=1, padding=1, name="conv_extra"),\n'
                '            ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),')]
    sub = with_notebook(make_submission(tmp_path / "sub", changes), official_notebook(accuracies=(0.93,)))
    scores, result, out_dir = grade(sub, tmp_path)
    assert scores["training"].score == 0
    assert "has 3 convolution and 1 pooling layers" in scores["training"].note
    assert "net.layers[2] (ConvLayer2D)" in scores["training"].note and "at most 2 and 2" in scores["training"].note


@pytest.mark.parametrize("kwargs,reason", [
    ({"filter_png": "blank"}, "its image is blank"),
    ({"filter_png": None}, "it has no image output"),
    ({"filter_source": 'filters = model.net.get_params("conv2_w")\nplt.imshow(filters[0])'},
     "does not read 'conv1_w'"),
])
def test_filters_need_a_real_image_of_the_first_layer(tmp_path, kwargs, reason):
    sub = with_notebook(make_submission(tmp_path / "sub"), official_notebook(**kwargs))
    scores, result, out_dir = grade(sub, tmp_path)
    assert scores["filters"].score == 0 and reason in scores["filters"].note


def test_inline_answer_is_pending_and_shown_then_merged(tmp_path):
    sub = with_notebook(make_submission(tmp_path / "7777"), official_notebook(answer="Mostly *edges* and blobs."))
    graded = tmp_path / "graded"
    result, out_dir = grade_submission(sub, graded / "7777")
    answer = next(i for i in result.items if i.item.id == "inline_answer")
    assert answer.status == "pending" and answer.score == 0 and answer.extra["answer"] == "Mostly *edges* and blobs."
    assert "> Mostly *edges* and blobs." in (out_dir / "feedback.md").read_text()
    before = json.loads((out_dir / "results.json").read_text())["score"]
    scores_csv = tmp_path / "scores.csv"
    scores_csv.write_text("student_id,item,points,comment\n7777,inline_answer,4.5,Good but brief\n"
                          "9999,inline_answer,5,\n7777,inline_answer,7,too many\n7777,nonsense,1,\n")
    refused = run_grade("merge-manual", str(scores_csv), str(graded))
    assert refused.returncode == 2, refused.stdout + refused.stderr  # all or nothing: one bad row refuses the file
    for expected in ("scores.csv:3: unknown student '9999'", "scores.csv:4: 7 points is outside 0..5",
                     "scores.csv:4: 7777 inline_answer again (first at line 2)",
                     "scores.csv:5: unknown item 'nonsense'"):
        assert expected in refused.stderr
    assert json.loads((out_dir / "results.json").read_text())["score"] == before
    scores_csv.write_text("student_id,item,points,comment\n7777,inline_answer,4.5,Good but brief\n")
    done = run_grade("merge-manual", str(scores_csv), str(graded))
    assert done.returncode == 0, done.stderr
    assert "1 changed, 0 unchanged" in done.stdout and "no gradebook.csv" in done.stdout
    document = json.loads((out_dir / "results.json").read_text())
    test = next(t for t in document["tests"] if t["tags"] == ["inline_answer"])
    assert test["score"] == 4.5
    assert test["output"].startswith("Score set by staff: 4.5 / 5. Staff's comment: Good but brief")
    assert test["extra_data"]["grading"] == "graded" and test["extra_data"]["grader"]["grading"] == "pending"
    assert document["score"] == pytest.approx(before + 4.5)


def test_empty_answer_is_said_plainly(tmp_path):
    sub = with_notebook(make_submission(tmp_path / "sub"), official_notebook(answer="*Your answer here.*"))
    scores, result, out_dir = grade(sub, tmp_path)
    assert "no answer found" in scores["inline_answer"].note


def _rubric_with(**training):
    import copy

    import tomllib

    from autograder.rubric import RUBRIC_PATH, parse_rubric
    data = copy.deepcopy(tomllib.loads(RUBRIC_PATH.read_text()))
    data["training"].update(training)
    return parse_rubric(data)


UNVERIFIED = dict(reported=0.95, kinds=["conv", "pool", "flatten", "fc"], output_shape=[2, 10],
                  unverified="no svhn_cnn_params.npz was submitted")


def test_unverified_policy_reported_credits_the_log_and_flags_it():
    scored = score_training(RUBRIC, TrainingEvidence(**UNVERIFIED))
    assert scored.score == 25 and scored.status == "graded" and scored.extra["flags"] == ["accuracy unverified"]
    assert "not verified: no svhn_cnn_params.npz was submitted" in scored.note


def test_unverified_policy_pending_waits_for_staff():
    scored = score_training(_rubric_with(unverified_policy="pending"), TrainingEvidence(**UNVERIFIED))
    assert scored.score == 0 and scored.status == "pending" and scored.extra["accuracy_source"] == "pending"
    assert scored.note.startswith("pending staff confirmation: validation accuracy 0.9500")
    assert scored.extra["flags"] == ["accuracy pending"]


def test_unverified_policy_cap_limits_the_points():
    rubric = _rubric_with(unverified_policy=10)
    assert score_training(rubric, TrainingEvidence(**UNVERIFIED)).score == 10
    low = dict(UNVERIFIED, reported=0.2)
    assert score_training(rubric, TrainingEvidence(**low)).score == pytest.approx(
        25 * credit(0.2, 0.88, 0.10), abs=0.01)


def test_submitted_weights_that_cannot_be_evaluated_never_earn_the_log():
    for policy in ("reported", "pending", 25):
        evidence = TrainingEvidence(reported=0.95, kinds=["conv"], unevaluable="fc1_w holds NaN or infinite values")
        scored = score_training(_rubric_with(unverified_policy=policy), evidence)
        assert scored.score == 0 and scored.status == "graded" and "fc1_w holds NaN" in scored.note


def test_the_gradebook_takes_the_training_items_own_flags():
    from autograder.batch import _flags
    scored = score_training(RUBRIC, TrainingEvidence(verified=0.5, heldout=0.3, heldout_size=100, reported=0.9,
                                                     disagreements=40, student_forward=0.8, kinds=["conv"]))
    document = {"tests": [{"tags": ["training"], "extra_data": scored.extra}]}
    assert _flags(document) == ["accuracy verified", "held-out gap", "forward disagreement", "accuracy mismatch"]


@pytest.mark.parametrize("policy", ["trust me", 26, -1, True])
def test_a_bad_unverified_policy_is_refused(policy):
    from autograder.rubric import RubricError
    with pytest.raises(RubricError, match=r"\[training\] unverified_policy: must be"):
        _rubric_with(unverified_policy=policy)


def test_points_on_an_unverified_accuracy_say_so_and_ask_staff_and_a_claim_that_earns_nothing_does_not():
    from autograder.reports.flags import asks_staff

    scored = score_training(RUBRIC, TrainingEvidence(**UNVERIFIED))
    assert scored.score == 25 and scored.extra["flags"] == ["accuracy unverified"]
    assert asks_staff("accuracy unverified")
    assert "UNVERIFIED: these 25 of 25 points rest on the accuracy the notebook's log reports" in scored.note
    capped = score_training(_rubric_with(unverified_policy=10), TrainingEvidence(**UNVERIFIED))
    assert capped.score == 10 and capped.extra["flags"] == ["accuracy unverified (capped)"]
    assert asks_staff("accuracy unverified (capped)") and "UNVERIFIED: these 10 of 25 points" in capped.note
    nothing = score_training(RUBRIC, TrainingEvidence(**dict(UNVERIFIED, reported=0.08)))
    assert nothing.score == 0 and nothing.extra["flags"] == ["accuracy unverified (no credit)"]
    assert not asks_staff("accuracy unverified (no credit)") and "UNVERIFIED" not in nothing.note


def test_once_staff_set_the_training_its_note_keeps_what_was_found_and_drops_only_the_waiting_words():
    """The words that hold only while staff are to look are the item's own record, not a match on its wording:
    a note that later stages added to (the replay, a format note) settles too, and a note without the record
    (results written before it) is kept whole."""
    from autograder.model import AWAITING
    from autograder.reports.manual import apply_staff_score, settled_note

    scored = score_training(RUBRIC, TrainingEvidence(**UNVERIFIED))
    note = f"replay: log reproduced; {scored.note}; layers checked"  # as grading adds to it
    document = {"score": 25, "tests": [{"name": "training", "tags": ["training"], "score": 25, "max_score": 25,
                                        "status": "passed", "output": note, "extra_data": dict(scored.extra)}]}
    merged = apply_staff_score(document, "training", 12, "the log's accuracy is not what the weights give")
    output = merged["tests"][0]["output"]
    assert output.startswith("Score set by staff: 12 / 25. Staff's comment: the log's accuracy")
    assert "UNVERIFIED" not in output and "staff are asked" not in output
    assert "validation accuracy 0.9500 (reported" in output and "replay: log reproduced" in output
    assert output.endswith("; layers checked")
    assert settled_note(scored.note, None) == scored.note and AWAITING in scored.extra

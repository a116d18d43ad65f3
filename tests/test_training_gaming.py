"""The 25 training points are earned by the network, not by what the notebook prints.

Each test is an attempt by a student who wants the points without the work (or an honest control),
graded end to end with a small synthetic SVHN, and asserts the points it must get. Expected
accuracies are computed independently here: the handout's own loader (the reference's SVHN_data)
makes the split, the reference network's float64 forward makes the predictions, and the course's
formula 25 * clip((acc - 0.10) / (0.88 - 0.10), 0, 1) is written out below.
"""

from __future__ import annotations

import numpy as np
import pytest
from gaming import (
    BLOCK_CLASS,
    CONTAINER_THIRD_CONV,
    COPIED_CLASS_THIRD_CONV,
    ORACLE_END,
    ORACLE_FORWARD,
    ORACLE_LAYERS,
    ORACLE_NET,
    SCALE_END,
    SCALE_LAYER,
    answers_module,
    build,
    handout_split,
    notebook,
    reference_scores,
    ridge_weights,
    untrained_weights,
)
from submissions import MODELS, grade

from autograder.staff.synthetic import write_synthetic_svhn

TRAIN_ROWS, TEST_ROWS = 1500, 400
VALIDATION_ROWS = 300  # the rubric's rule for a small file: its last fifth


def formula(accuracy: float) -> float:
    """The course's announced credit, written out independently of the grader."""
    return 25 * float(np.clip((accuracy - 0.10) / (0.88 - 0.10), 0, 1))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svhn") / "data"
    write_synthetic_svhn(folder, train=TRAIN_ROWS, test=TEST_ROWS, seed=3)
    return folder


@pytest.fixture(scope="module")
def split(data):
    """The validation split as the handout's loader makes it: never the grader's code."""
    return handout_split(data, VALIDATION_ROWS)


@pytest.fixture(scope="module")
def weights(split):
    return {"untrained": untrained_weights(),
            "honest": ridge_weights(split["data_train"], split["labels_train"]),
            "overfit": ridge_weights(split["data_val"], split["labels_val"], ridge=1e-3)}


@pytest.fixture(scope="module")
def accuracy(split, weights):
    """Each set of weights' accuracy by the reference's own forward on the handout's split."""
    return {name: float(np.mean(np.argmax(reference_scores(params, split["data_val"]), axis=1) == split["labels_val"]))
            for name, params in weights.items()}


@pytest.fixture(scope="module")
def heldout(split, weights):
    """Each set of weights' accuracy on the staff-held images: with a test file smaller than the rubric's
    heldout_rows, the whole test file, preprocessed by the handout's loader (the same training-row mean)."""
    return {name: float(np.mean(np.argmax(reference_scores(params, split["data_test"]), axis=1)
                                == split["labels_test"])) for name, params in weights.items()}


def training(folder, tmp_path, **kwargs):
    scores, _, _ = grade(folder, tmp_path, public_only=True, **kwargs)
    return scores["training"]


def test_the_weights_are_what_the_suite_needs(accuracy):
    """Otherwise the attacks below would prove nothing: the honest run learnt, the untrained did not."""
    assert accuracy["honest"] > 0.6 and accuracy["untrained"] < 0.2 and accuracy["overfit"] > 0.95


def test_honest_control_earns_exactly_the_formula(tmp_path, data, weights, accuracy):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.5, accuracy["honest"])), weights=weights["honest"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.extra["accuracy_source"] == "verified"
    assert item.extra["verified"] == accuracy["honest"]
    assert item.score == pytest.approx(formula(accuracy["honest"]), abs=0.005)
    assert item.extra["flags"] == ["accuracy verified"] and item.extra["disagreements"] == 0
    assert item.extra["heldout"] > accuracy["honest"] - 0.05 and item.extra["heldout_images"] == TEST_ROWS
    assert "on the 300 validation images of the rubric's split" in item.note


def test_edited_log_with_the_runs_real_weights(tmp_path, data, weights, accuracy):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.9, 0.95)), weights=weights["honest"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == pytest.approx(formula(accuracy["honest"]), abs=0.005) and item.score < 25
    assert item.extra["mismatch"] is True and "accuracy mismatch" in item.extra["flags"]
    assert "MISMATCH: the log reports 0.9500" in item.note


def test_untrained_weights_with_a_log_claiming_095(tmp_path, data, weights, accuracy):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.9, 0.95)), weights=weights["untrained"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == pytest.approx(formula(accuracy["untrained"]), abs=0.005) and item.score < 1


def test_no_weights_and_a_later_cell_printing_097(tmp_path):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.5, 0.6), later_print="validation accuracy: 0.97\n"))
    item = training(sub, tmp_path)
    assert item.extra["reported"] == 0.6  # the training cell's epoch lines only
    assert item.score == pytest.approx(formula(0.6), abs=0.005)  # the stated policy: "reported", flagged
    assert item.extra["accuracy_source"] == "reported" and "accuracy unverified" in item.extra["flags"]
    assert "other cells print a validation accuracy (0.9700)" in item.note


def test_no_training_log_only_a_later_printout_earns_nothing(tmp_path):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(), later_print="Validation Accuracy: 0.97\n"))
    item = training(sub, tmp_path)
    assert item.score == 0 and item.extra["reported"] is None
    assert "no validation accuracy found" in item.note


def test_num_validation_zero_in_the_parameters_cell(tmp_path, data, weights, accuracy):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.95,), parameters={"NUM_TRAINING": TRAIN_ROWS,
                                                                                "NUM_VALIDATION": 0}),
                weights=weights["untrained"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.extra["accuracy_source"] == "verified" and "300 validation images" in item.note
    assert item.score == pytest.approx(formula(accuracy["untrained"]), abs=0.005) and item.score < 1


def test_parameters_cell_edited_after_training(tmp_path, data, weights, accuracy):
    """The cell now names a tiny split of its own choosing; the grader's split is the rubric's."""
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.97,), parameters={"NUM_TRAINING": TRAIN_ROWS - 10,
                                                                                "NUM_VALIDATION": 10}),
                weights=weights["honest"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.extra["verified"] == accuracy["honest"] and "300 validation images" in item.note
    assert item.score == pytest.approx(formula(accuracy["honest"]), abs=0.005)


def test_a_log_from_a_different_run(tmp_path, data, weights, accuracy):
    """Weights of one run, the (better) epoch lines of another: the weights decide, the gap is flagged."""
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.71, 0.85, 0.91, 0.93)), weights=weights["honest"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == pytest.approx(formula(accuracy["honest"]), abs=0.005)
    assert item.extra["reported"] == 0.93 and "accuracy mismatch" in item.extra["flags"]


def test_third_conv_from_a_copied_class(tmp_path):
    sub = build(tmp_path / "sub", [COPIED_CLASS_THIRD_CONV], book=notebook(accuracies=(0.95,)))
    item = training(sub, tmp_path)
    assert item.score == 0 and "architecture violation" in item.extra["flags"]
    assert "has 3 convolution and 1 pooling layers" in item.note and "net.layers[3] (Conv)" in item.note


def test_third_conv_inside_a_container_layer(tmp_path):
    sub = build(tmp_path / "sub", [CONTAINER_THIRD_CONV], append={MODELS: BLOCK_CLASS},
                book=notebook(accuracies=(0.95,)))
    item = training(sub, tmp_path)
    assert item.score == 0 and "net.layers[3].parts[0] (ConvLayer2D)" in item.note


def test_weights_of_another_architecture(tmp_path, data, weights):
    other = dict(weights["honest"], conv1_w=weights["honest"]["conv1_w"][..., :8],
                 conv2_w=weights["honest"]["conv2_w"][:, :, :8])
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.95,)), weights=other)
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == 0 and item.extra["accuracy_source"] == "none"
    assert "conv1_w has shape (3, 3, 3, 8); your network's has (3, 3, 3, 16)" in item.note


def test_weights_with_nan(tmp_path, data, weights):
    broken = dict(weights["honest"])
    broken["fc1_w"] = broken["fc1_w"].copy()
    broken["fc1_w"][0, 0] = np.nan
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.95,)), weights=broken)
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == 0 and "fc1_w holds NaN or infinite values" in item.note
    assert "weights not evaluable" in item.extra["flags"]


def test_a_forward_that_looks_up_labels_by_image_hash(tmp_path, data, split, weights, accuracy):
    """The model's own forward answers from a table of the public files; the grader's forward does not."""
    sub = build(tmp_path / "sub", append={MODELS: ORACLE_FORWARD}, book=notebook(accuracies=(0.99,)),
                weights=weights["untrained"],
                extra_files={"lib/cnn/_answers.py": answers_module(split["data_val"], split["labels_val"])})
    item = training(sub, tmp_path, data_dir=data)
    assert item.extra["student_forward"] == 1.0  # the attack works on its own forward
    assert item.score == pytest.approx(formula(accuracy["untrained"]), abs=0.005) and item.score < 1
    assert "forward disagreement" in item.extra["flags"] and item.extra["disagreements"] > 200


def test_a_lookup_layer_the_grader_cannot_rebuild(tmp_path, data, split, weights):
    """Only the student's forward can run, and it does not survive one grey level of noise."""
    sub = build(tmp_path / "sub", [ORACLE_NET, ORACLE_END], append={MODELS: ORACLE_LAYERS},
                book=notebook(accuracies=(0.99,)), weights=weights["untrained"],
                extra_files={"lib/cnn/_answers.py": answers_module(split["data_val"], split["labels_val"])})
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == 0 and "weights not evaluable" in item.extra["flags"]
    assert "one grey level" in item.note and item.extra["noise_agreement"] < 0.5
    assert any("Recall" in note for note in item.extra["not_rebuilt"])


def test_an_honest_layer_the_grader_cannot_rebuild_runs_the_students_forward(tmp_path, data, weights, accuracy,
                                                                             heldout):
    """Its own forward decides, on the staff-held images (the validation rows are public rows): an honest
    network earns what its held-out accuracy gives, and nothing accuses it."""
    sub = build(tmp_path / "sub", [SCALE_END], append={MODELS: SCALE_LAYER},
                book=notebook(accuracies=(0.5, accuracy["honest"])), weights=weights["honest"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.extra["accuracy_source"] == "student_forward" and item.extra["verified"] is None
    assert item.extra["student_forward"] == accuracy["honest"] and item.extra["heldout"] == heldout["honest"]
    assert item.score == pytest.approx(formula(heldout["honest"]), abs=0.005)
    assert item.extra["flags"] == ["accuracy from own forward"] and item.extra["noise_agreement"] > 0.9
    assert "Scale" in item.note and "could not rebuild" in item.note and "400 staff-held test images" in item.note


def test_trained_on_the_validation_rows_is_caught_by_the_held_out_check(tmp_path, data, weights, accuracy):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(accuracy["overfit"],)), weights=weights["overfit"])
    item = training(sub, tmp_path, data_dir=data)
    assert item.score == pytest.approx(formula(accuracy["overfit"]), abs=0.005)
    assert item.extra["heldout"] < item.extra["verified"] - 0.05
    assert "held-out gap" in item.extra["flags"] and "HELD-OUT GAP" in item.note


def test_weights_without_data_follow_the_stated_policy(tmp_path, weights):
    sub = build(tmp_path / "sub", book=notebook(accuracies=(0.7, 0.8)), weights=weights["honest"])
    item = training(sub, tmp_path)
    assert item.score == pytest.approx(formula(0.8), abs=0.005) and item.extra["accuracy_source"] == "reported"
    assert "no --data was given" in item.note and item.extra["unverified_policy"] == "reported"


# --- the flags allow for how many images each figure was measured on ------------------------------------

def _scored(**fields):
    from autograder.notebook.items import TrainingEvidence, score_training
    from autograder.rubric import load_rubric

    evidence = TrainingEvidence(verified_how="the saved weights", kinds=["conv", "fc"], **fields)
    return score_training(load_rubric(), evidence)


def test_a_held_out_gap_is_flagged_when_real_and_not_when_it_is_binomial_noise():
    """Weights fitted on the validation rows (gaming.py's "overfit": 1.0 there, 0.6 on the held-out images) are
    flagged; an honest 0.80 on 300 images against 0.74 on 400 (1.9 standard errors) is not, though it is above
    the 0.05 floor that alone flagged it before."""
    overfit = _scored(verified=1.0, validation_size=300, heldout=0.6, heldout_size=400)
    assert "held-out gap" in overfit.extra["flags"] and "HELD-OUT GAP" in overfit.note
    assert overfit.score == pytest.approx(25)  # a flag for staff, not a deduction
    noise = _scored(verified=0.80, validation_size=300, heldout=0.74, heldout_size=400)
    assert noise.extra["flags"] == ["accuracy verified"] and noise.extra["heldout_gap_allowed"] > 0.06
    big = _scored(verified=0.90, validation_size=3257, heldout=0.84, heldout_size=2000)  # the official sizes
    assert "held-out gap" in big.extra["flags"] and "3 standard errors" in big.note


def test_a_mismatch_allows_for_the_images_each_figure_was_measured_on():
    same = dict(verified=0.80, validation_size=300, reported_images=300, reported_same_rows=True)
    assert not _scored(reported=0.81, **same).extra["mismatch"]  # 3 images' rounding at near-ties: allowed
    assert _scored(reported=0.85, **same).extra["mismatch"]
    other = dict(verified=0.80, validation_size=300, reported_images=500, reported_same_rows=False)
    assert not _scored(reported=0.85, **other).extra["mismatch"]  # other rows: 1.8 standard errors
    flagged = _scored(reported=0.95, **other)
    assert flagged.extra["mismatch"] and "MISMATCH: the log reports 0.9500" in flagged.note
    assert "standard errors of chance over 300 and 500 images" in flagged.note

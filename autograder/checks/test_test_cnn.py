"""Checks of TestCNN: its layers, its initialisation, and its scores, loss and gradients."""

import numpy as np
import pytest

from autograder.checks.expect import as_array, expect_array, expect_scalar
from autograder.fixtures import TEST_CNN_INIT_SEED, TEST_CNN_INIT_STD, TEST_CNN_SHAPES
from autograder.outcomes import CheckFailed, NotImplementedYet, StudentException, WrongStructure

EXPECTED_KINDS = ["conv", "pool", "flatten", "fc"]


def _layers(worker):
    answer = worker.call("test_cnn_layers", {"init_seed": TEST_CNN_INIT_SEED})
    return answer, answer.header.get("layers", [])


@pytest.mark.item("test_cnn", check="structure")
def test_structure(worker):
    _, layers = _layers(worker)
    if not layers:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no layers"))
    kinds = [layer["kind"] if layer["kind"] != "other" else layer["class"] for layer in layers]
    if kinds != EXPECTED_KINDS:
        raise CheckFailed(WrongStructure(
            f"TestCNN must be conv -> maxpool -> flatten -> fc with no activation; yours is {' -> '.join(kinds)}"))
    conv, fc = layers[0]["params"], layers[3]["params"]
    shapes = sorted(conv.values(), key=len, reverse=True) + sorted(fc.values(), key=len, reverse=True)
    wanted = [list(TEST_CNN_SHAPES[role]) for role in ("conv_w", "conv_b", "fc_w", "fc_b")]
    if shapes != wanted:
        raise CheckFailed(WrongStructure(f"TestCNN's parameter shapes are {shapes}; expected {wanted}"))
    return "conv -> maxpool -> flatten -> fc"


@pytest.mark.item("test_cnn", check="initialisation")
def test_initialisation(worker, rubric):
    answer, layers = _layers(worker)
    if not layers:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no layers"))
    limit = TEST_CNN_INIT_STD * rubric.tolerances["init_std_fraction"]
    for role in ("conv", "fc"):
        weights = as_array(answer.value(f"{role}_w"), f"the {role} layer's weights after np.random.seed(1234)")
        biases = as_array(answer.value(f"{role}_b"), f"the {role} layer's biases")
        if not abs(weights.std() - TEST_CNN_INIT_STD) < limit:
            raise CheckFailed(WrongStructure(
                f"the {role} layer's weights have std {weights.std():.4f}; expected {TEST_CNN_INIT_STD} within "
                f"{limit:g} (pass init_scale=0.02, and build the conv layer first)"))
        if not np.all(biases == 0):
            raise CheckFailed(WrongStructure(f"the {role} layer's biases are not all zero"))
    return "weights std 0.02, biases zero"


def _later_error(answer):
    """The exception that stopped the loss or backward, as the outcome of the parts it stopped."""
    error = answer.header["later_error"]
    return CheckFailed(StudentException(str(error.get("type", "Exception")), str(error.get("message", "")),
                                        tuple(str(frame) for frame in error.get("traceback", []))))


@pytest.mark.item("test_cnn")
def test_scores_loss_gradients(case, worker, rubric, part):
    arrays = {role: case.arrays[role] for role in TEST_CNN_SHAPES}
    arrays.update(feats=case.arrays["feats"], labels=case.arrays["labels"])
    answer = worker.call("test_cnn_run", case.args, arrays)
    missing = answer.header.get("missing_roles")
    if missing == ["conv_w", "conv_b", "fc_w", "fc_b"]:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no conv or fc layer"))
    if missing:
        raise CheckFailed(WrongStructure(f"TestCNN has no layer for {', '.join(missing)}"))
    with part("scores"):
        expect_array(answer.value("scores"), case.arrays["scores"], rubric.tolerances["forward"], "the scores")
    with part("loss"):
        if answer.header.get("later_error") and "loss" not in answer.header.get("values", {}):
            raise _later_error(answer)
        expect_scalar(answer.value("loss"), float(case.arrays["loss"]), rubric.tolerances["loss_abs"],
                      "the loss (cross_entropy, Problem 1)")
    with part("gradients"):
        if answer.header.get("later_error"):
            raise _later_error(answer)
        for role in TEST_CNN_SHAPES:
            expect_array(answer.value(f"d_{role}"), case.arrays[f"d_{role}"], rubric.tolerances["gradient"],
                         f"the gradient of {role.replace('_', ' ')}", same_size_ok=True)

"""Checks of TestCNN: its layers, its initialisation, and its scores, loss and gradients.

Student code runs in the worker and can rewrite the worker itself, so what the worker says about
TestCNN (its layers' kinds, which arrays are "the conv layer's weights") is a claim, never its own
proof. The layers and the initialisation are credited only where the claim agrees with what the parent
checks itself:

- the initial weights after `np.random.seed(1234)` are the parent's own draws for the handout's recipe
  (`init_scale * np.random.randn(shape)`, the conv layer's drawn first, then the fc layer's): values no
  description can guess, within [tolerances] init_values. For the layers any positive init_scale (and
  either order of construction) counts; for the initialisation, 0.02 and the conv layer first;
- a separate request (`test_cnn_run`) that runs the model finds a conv and an fc layer to give
  parameters to; for the layers, where the initial weights are not the seeded draws, its scores for
  given parameters must be the expected ones instead (behaviour no description can fake).

A student whose conv layer is wrong keeps both: neither needs the layer's forward or backward to work.
"""

import numpy as np
import pytest

from autograder.checks.expect import as_array, expect_array, expect_scalar
from autograder.fixtures import TEST_CNN_INIT_SEED, TEST_CNN_INIT_STD, TEST_CNN_SHAPES
from autograder.numerics import rel_error
from autograder.outcomes import CheckFailed, HarnessFault, NotImplementedYet, StudentException, WrongStructure

EXPECTED_KINDS = ["conv", "pool", "flatten", "fc"]
ROLES = ("conv_w", "conv_b", "fc_w", "fc_b")


def _layers(worker):
    answer = worker.call("test_cnn_layers", {"init_seed": TEST_CNN_INIT_SEED})
    return answer, answer.header.get("layers", [])


def seeded_draws(conv_first: bool = True) -> dict[str, np.ndarray]:
    """What `np.random.randn` gives TestCNN's conv and fc weights after `np.random.seed(1234)`, drawn in the
    handout's order (the conv layer's first) or the other; computed here, in the parent."""
    sizes = {role: int(np.prod(TEST_CNN_SHAPES[role])) for role in ("conv_w", "fc_w")}
    stream = np.random.RandomState(TEST_CNN_INIT_SEED).randn(sum(sizes.values()))
    order = ("conv_w", "fc_w") if conv_first else ("fc_w", "conv_w")
    draws, start = {}, 0
    for role in order:
        draws[role] = stream[start:start + sizes[role]].reshape(TEST_CNN_SHAPES[role])
        start += sizes[role]
    return draws


def _match(values: np.ndarray, draws: np.ndarray, tolerance: float, scale: float | None = None) -> float | None:
    """The positive scale s with values == s * draws within `tolerance` (rel_error), element by element or,
    for weights reshaped or transposed after drawing, as sorted values; None if there is none. With `scale`
    given, only that one is tried."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    draws = draws.reshape(-1)
    if values.size != draws.size:
        return None
    for mine, theirs in ((values, draws), (np.sort(values), np.sort(draws))):
        s = scale if scale is not None else float(mine @ theirs) / float(theirs @ theirs)
        if s > 0 and np.all(np.isfinite(mine)) and rel_error(mine, s * theirs) <= tolerance:
            return s
    return None


def _initial_weights(answer) -> dict[str, np.ndarray] | None:
    """The conv and fc weights the worker says TestCNN starts with, where both are real arrays."""
    found = {}
    for role in ("conv_w", "fc_w"):
        value = answer.value(role)
        if type(value) is not np.ndarray or value.dtype.kind not in "biuf":
            return None
        found[role] = value
    return found


def _drawn_by_the_recipe(answer, tolerance: float) -> bool:
    """Are the initial weights the seeded draws in shapes and order of construction, at any init_scale?"""
    weights = _initial_weights(answer)
    if weights is None:
        return False
    return any(all(_match(weights[role], draws[role], tolerance) is not None for role in draws)
               for draws in (seeded_draws(True), seeded_draws(False)))


def _run(worker, case):
    """The model run on a case's parameters and inputs (a separate request): the answer, or None where the
    student's code raised or timed out (the layers were found, since the request gives them parameters
    before running anything; no evidence either way)."""
    arrays = {role: case.arrays[role] for role in TEST_CNN_SHAPES}
    arrays.update(feats=case.arrays["feats"], labels=case.arrays["labels"])
    try:
        return worker.call("test_cnn_run", case.args, arrays)
    except CheckFailed as failure:
        if isinstance(failure.outcome, HarnessFault):
            raise
        return None


def _run_finds_the_layers(worker, item_cases, rubric, need_behaviour: bool) -> None:
    """CheckFailed unless the separate run request finds a conv and an fc layer (and, with
    `need_behaviour`, gives the expected scores)."""
    cases = item_cases.get("test_cnn", [])
    if not cases:
        return
    case = cases[0]
    answer = _run(worker, case)
    missing = answer.header.get("missing_roles") if answer is not None else None
    if missing:
        raise CheckFailed(WrongStructure(
            f"running TestCNN finds no layer for {', '.join(missing)}, although its layers were described as "
            "conv -> maxpool -> flatten -> fc"))
    if need_behaviour:
        scores = answer.value("scores") if answer is not None else None
        right = type(scores) is np.ndarray and scores.shape == case.arrays["scores"].shape and \
            scores.dtype.kind in "biuf" and rel_error(scores, case.arrays["scores"]) <= rubric.tolerances["forward"]
        if not right:
            raise CheckFailed(WrongStructure(
                "TestCNN's initial weights after np.random.seed(1234) are not np.random.randn draws in the "
                "shapes of conv (3, 3, 3, 3) and fc (27, 5), and its scores for given parameters are not the "
                "expected ones either: nothing shows the described layers are the ones that run"))


@pytest.mark.item("test_cnn", check="structure")
def test_structure(worker, rubric, item_cases):
    answer, layers = _layers(worker)
    if not layers:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no layers"))
    kinds = [layer["kind"] if layer["kind"] != "other" else layer["class"] for layer in layers]
    if kinds != EXPECTED_KINDS:
        raise CheckFailed(WrongStructure(
            f"TestCNN must be conv -> maxpool -> flatten -> fc with no activation; yours is {' -> '.join(kinds)}"))
    conv, fc = layers[0]["params"], layers[3]["params"]
    shapes = sorted(conv.values(), key=len, reverse=True) + sorted(fc.values(), key=len, reverse=True)
    wanted = [list(TEST_CNN_SHAPES[role]) for role in ROLES]
    if shapes != wanted:
        raise CheckFailed(WrongStructure(f"TestCNN's parameter shapes are {shapes}; expected {wanted}"))
    drawn = _drawn_by_the_recipe(answer, rubric.tolerances["init_values"])
    _run_finds_the_layers(worker, item_cases, rubric, need_behaviour=not drawn)
    return "conv -> maxpool -> flatten -> fc"


@pytest.mark.item("test_cnn", check="initialisation")
def test_initialisation(worker, rubric, item_cases):
    answer, layers = _layers(worker)
    if not layers:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no layers"))
    limit = TEST_CNN_INIT_STD * rubric.tolerances["init_std_fraction"]
    tolerance = rubric.tolerances["init_values"]
    draws = seeded_draws(conv_first=True)
    for role in ("conv", "fc"):
        weights = as_array(answer.value(f"{role}_w"), f"the {role} layer's weights after np.random.seed(1234)")
        biases = as_array(answer.value(f"{role}_b"), f"the {role} layer's biases")
        if not abs(weights.std() - TEST_CNN_INIT_STD) < limit:
            raise CheckFailed(WrongStructure(
                f"the {role} layer's weights have std {weights.std():.4f}; expected {TEST_CNN_INIT_STD} within "
                f"{limit:g} (pass init_scale=0.02, and build the conv layer first)"))
        if _match(weights, draws[f"{role}_w"], tolerance, scale=TEST_CNN_INIT_STD) is None:
            shape = ", ".join(str(n) for n in TEST_CNN_SHAPES[f"{role}_w"])
            raise CheckFailed(WrongStructure(
                f"the {role} layer's weights after np.random.seed(1234) are not {TEST_CNN_INIT_STD} * "
                f"np.random.randn({shape}) {'drawn first' if role == 'conv' else 'drawn after the conv layer'} "
                f"(within relative error {tolerance:g}): build the conv layer first, each with init_scale=0.02"))
        if not np.all(biases == 0):
            raise CheckFailed(WrongStructure(f"the {role} layer's biases are not all zero"))
    _run_finds_the_layers(worker, item_cases, rubric, need_behaviour=False)
    return "weights 0.02 * the seeded draws, conv first; biases zero"


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
    if missing == list(ROLES):
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

"""Checks of TestCNN: its layers, its initialisation, and its scores, loss and gradients.

Student code runs in the worker and can rewrite the worker itself, so what the worker says about
TestCNN (its layers' kinds, which arrays are "the conv layer's weights") is a claim, never its own
proof. The layers and the initialisation are credited only where the claim agrees with what the parent
checks itself:

- the initial weights after `np.random.seed(1234)` are values the seeded generator draws, which the
  parent draws itself (the handout's layers take `init_scale * np.random.randn(shape)` from the global
  generator: the conv layer's 81 values first, then the fc layer's 135): no description can guess them.
  Each weight array must be a positive multiple of a run of the first [code_checks] init_stream_draws
  values, element by element or as sorted values (drawn in another shape and transposed), within
  init_values; so either order of construction and any init_scale count as drawn (the initialisation
  then asks, as the notebook does, for std 0.02 within 10 % and zero biases);
- a separate request (`test_cnn_run`) that runs the model finds a conv and an fc layer to give
  parameters to; for the layers, where the initial weights are not such draws, its scores for given
  parameters must be the expected ones instead (behaviour no description can fake);
- each layer's configuration (the conv layer's kernel size, stride and padding, the pool's size and
  stride) is the interface's: read from the layers' attributes as plain numbers (checked here, never
  taken as objects), set beside the shape each layer returns on a probe batch (another request,
  `test_cnn_probe`). A setting other than the interface's fails the layers and is named, with the probe's
  shapes where they are what that setting gives; where the attributes are no plain numbers, the shapes
  alone decide. Shapes that disagree with attributes that are the interface's are left to the layer's
  own items (a broken forward is not a wrong architecture).

A student whose conv layer is wrong keeps both: neither needs the layer's forward or backward to work.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from autograder.checks.configuration import configuration_problems, plain_number
from autograder.checks.expect import as_array, expect_array, expect_scalar
from autograder.fixtures import TEST_CNN_INIT_SEED, TEST_CNN_INIT_STD, TEST_CNN_PROBE, TEST_CNN_SHAPES, seeded_stream
from autograder.numerics import rel_error
from autograder.outcomes import CheckFailed, HarnessFault, NotImplementedYet, StudentException, WrongStructure

EXPECTED_KINDS = ["conv", "pool", "flatten", "fc"]
ROLES = ("conv_w", "conv_b", "fc_w", "fc_b")


def _layers(worker):
    answer = worker.call("test_cnn_layers", {"init_seed": TEST_CNN_INIT_SEED})
    return answer, answer.header.get("layers", [])


def drawn_scale(values: np.ndarray, stream: np.ndarray, tolerance: float) -> float | None:
    """The positive s with values == s * (a run of `stream`) within `tolerance` (the handout's rel_error),
    element by element or as sorted values; None where the values are no such draws."""
    mine = np.asarray(values, dtype=np.float64).reshape(-1)
    if mine.size == 0 or mine.size > stream.size or not np.all(np.isfinite(mine)):
        return None
    runs = sliding_window_view(stream, mine.size)
    for ours, theirs in ((mine, runs), (np.sort(mine), np.sort(runs, axis=1))):
        scales = (theirs @ ours) / np.einsum("ij,ij->i", theirs, theirs)
        fitted = scales[:, None] * theirs
        errors = np.max(np.abs(ours - fitted) / np.maximum(1e-8, np.abs(ours) + np.abs(fitted)), axis=1)
        found = np.flatnonzero((scales > 0) & (errors <= tolerance))
        if found.size:
            return float(scales[found[0]])
    return None


def _weights_drawn(answer, rubric) -> dict[str, float | None]:
    """For the conv and fc weights the worker names, the scale at which they are seeded draws (None if not)."""
    stream = seeded_stream(rubric.code_checks.init_stream_draws)
    scales = {}
    for role in ("conv_w", "fc_w"):
        value = answer.value(role)
        real = type(value) is np.ndarray and value.dtype.kind in "biuf"
        scales[role] = drawn_scale(value, stream, rubric.code_checks.init_values) if real else None
    return scales


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


def _probe_shapes(worker) -> list[tuple[int, ...] | None]:
    """Each layer's output shape on the probe batch, as far as the forward ran (a separate request: a
    forward that raises or times out shows no shapes, and costs the layers nothing)."""
    try:
        answer = worker.call("test_cnn_probe", {"init_seed": TEST_CNN_INIT_SEED, "probe_shape": list(TEST_CNN_PROBE)})
    except CheckFailed as failure:
        if isinstance(failure.outcome, HarnessFault):
            raise
        return []
    shapes = answer.header.get("probe_shapes")
    found: list[tuple[int, ...] | None] = []
    for shape in shapes[:8] if isinstance(shapes, list) else []:
        plain = isinstance(shape, list) and len(shape) <= 8 and all(plain_number(size) is not None for size in shape)
        found.append(tuple(shape) if plain else None)
    return found


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
    problems = configuration_problems(layers, _probe_shapes(worker))
    if problems:
        raise CheckFailed(WrongStructure(
            "TestCNN's layers must be configured as the interface says, ConvLayer2D(3, 3, 3, stride=1, padding=0) "
            f"and MaxPoolingLayer(2, 2): {'; '.join(problems)}"))
    drawn = all(scale is not None for scale in _weights_drawn(answer, rubric).values())
    _run_finds_the_layers(worker, item_cases, rubric, need_behaviour=not drawn)
    return "conv (kernel 3, stride 1, padding 0) -> maxpool (2, stride 2) -> flatten -> fc"


@pytest.mark.item("test_cnn", check="initialisation")
def test_initialisation(worker, rubric, item_cases):
    answer, layers = _layers(worker)
    if not layers:
        raise CheckFailed(NotImplementedYet("TestCNN().net", "has no layers"))
    limit = TEST_CNN_INIT_STD * rubric.tolerances["init_std_fraction"]
    drawn = _weights_drawn(answer, rubric)
    for role in ("conv", "fc"):
        weights = as_array(answer.value(f"{role}_w"), f"the {role} layer's weights after np.random.seed(1234)")
        biases = as_array(answer.value(f"{role}_b"), f"the {role} layer's biases")
        if not abs(weights.std() - TEST_CNN_INIT_STD) < limit:
            raise CheckFailed(WrongStructure(
                f"the {role} layer's weights have std {weights.std():.4f}; expected {TEST_CNN_INIT_STD} within "
                f"{limit:g} (pass init_scale=0.02, and build the conv layer first)"))
        if drawn[f"{role}_w"] is None:
            raise CheckFailed(WrongStructure(
                f"the {role} layer's weights after np.random.seed(1234) are not values that np.random.randn draws "
                f"after that seed, times init_scale (within relative error {rubric.code_checks.init_values:g}): "
                "the handout's layers draw them from NumPy's global generator when they are built"))
        if not np.all(biases == 0):
            raise CheckFailed(WrongStructure(f"the {role} layer's biases are not all zero"))
    _run_finds_the_layers(worker, item_cases, rubric, need_behaviour=False)
    return "weights std 0.02, drawn after np.random.seed(1234); biases zero"


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
        expect_array(answer.value("scores"), case.arrays["scores"], rubric.tolerances["forward"], "the scores",
                     name="your scores")
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
                         f"the gradient of {role.replace('_', ' ')}", same_size_ok=True,
                         name=f"your gradient of {role.replace('_', ' ')}")

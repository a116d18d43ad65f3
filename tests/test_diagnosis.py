"""Feedback that locates the bug: the attributes of the cases, the patterns named, and the cases
the fixtures hold (each attribute on both sides, no two attributes splitting the cases alike)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES

from autograder.attributes import BY_ITEM, SIDE_TEXT, UNEVEN, Geometry, geometry, separates, sides
from autograder.checks.expect import expect_array
from autograder.checks.plugin import CaseResult
from autograder.diagnosis import diagnose, form_hint, hint, pattern_code, split_code
from autograder.evidence import EVIDENCE_TEXT, Evidence, shape_evidence, value_evidence
from autograder.model import pattern_words
from autograder.outcomes import (
    CheckFailed,
    NotImplementedYet,
    NotRunAfterTimeouts,
    Passed,
    ReturnedNone,
    WrongShape,
    WrongValue,
)
from autograder.rubric import load_rubric

WRONG = WrongValue("backward(dout)", 0.5, 1e-6)


def _result(name: str, g: Geometry, outcome, item: str = "conv_backward", component: str = "dimg") -> CaseResult:
    return CaseResult(item, name, "hidden", 1.0, name, outcome, component=component, sides=sides(item, g))


# (batch, height, width, channels, kernel, stride, padding)
SHAPES = {
    "a": Geometry(2, 7, 9, 3, 3, 1, 0),
    "b": Geometry(2, 8, 8, 1, 2, 2, 1),
    "c": Geometry(3, 6, 6, 1, 3, 3, 0),
    "d": Geometry(1, 9, 7, 2, 1, 1, 2),
}


def test_a_pattern_that_explains_every_failure_is_named_with_its_hint():
    results = [_result(name, g, WRONG if g.padding == 0 else Passed()) for name, g in SHAPES.items()]
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ("conv_backward.dimg.padding_0",)
    assert diagnosis.summary.startswith("fails exactly the 2 cases with padding 0 and passes the other 2: ")
    assert "`x[p:-p]` is empty when p = 0" in diagnosis.summary


def test_a_pattern_contradicted_by_one_case_is_not_named():
    # a and c have padding 0 and fail, but so does d (padding 2): padding does not explain it
    results = [_result(name, g, WRONG if name in "acd" else Passed()) for name, g in SHAPES.items()]
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ()
    assert diagnosis.summary == "fails 3 of 4 cases: `a`, `c`, `d`"
    assert "padding" not in diagnosis.summary


def test_attributes_that_split_these_cases_alike_are_named_together_without_a_hint():
    two = {"a": SHAPES["a"], "b": SHAPES["b"]}  # padding, shape, channels and stride all differ between them
    results = [_result(name, g, WRONG if name == "a" else Passed()) for name, g in two.items()]
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert len(diagnosis.patterns) > 1 and "cannot tell the two apart" in diagnosis.summary
    assert "`x[p:-p]`" not in diagnosis.summary


def test_no_pattern_when_a_case_was_not_judged():
    results = [_result(name, g, WRONG if g.padding == 0 else Passed()) for name, g in SHAPES.items()]
    results[-1] = _result("d", SHAPES["d"], NotRunAfterTimeouts(2))
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == () and diagnosis.summary.startswith("fails 3 of 4 cases")


def test_none_in_some_cases_is_a_fact_not_a_guess():
    none = NotImplementedYet("backward(dout)")
    results = [_result(name, g, none if g.padding == 0 else Passed()) for name, g in SHAPES.items()]
    refined, diagnosis = diagnose("conv_backward", "dimg", results)
    failing = [r.outcome for r in refined if not r.outcome.passed]
    assert failing and all(isinstance(o, ReturnedNone) for o in failing)
    assert all("TODO" not in o.message() and o.label == "returned None" for o in failing)
    # None is a form of its own (counted as such), and it contradicts no attribute: both are named
    assert "TODO" not in diagnosis.summary
    assert diagnosis.patterns == ("conv_backward.dimg.returned_none", "conv_backward.dimg.padding_0")
    assert diagnosis.summary.startswith("fails exactly the 2 cases with padding 0 and passes the other 2, each for "
                                        "the same visible reason: in `a` backward(dout) returned None")


def test_none_in_every_case_may_ask_about_the_todo():
    results = [_result(name, g, NotImplementedYet("backward(dout)")) for name, g in SHAPES.items()]
    refined, diagnosis = diagnose("conv_backward", "dimg", results)
    assert all(isinstance(r.outcome, NotImplementedYet) for r in refined)
    assert diagnosis.summary == "every case: backward(dout) returned None (is the TODO still empty?)"


def test_all_failing_alike_says_so_without_a_pattern():
    results = [_result(name, g, WrongShape("backward(dout)", (1,), (2,))) for name, g in SHAPES.items()]
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis == diagnosis.__class__("fails all 4 cases (wrong shape)")


def test_pattern_codes_round_trip_and_every_side_has_words():
    assert split_code(pattern_code("conv_backward", "dimg", "padding_0")) == ("conv_backward", "dimg", "padding_0")
    assert split_code(pattern_code("pool_forward", "", "channels_many")) == ("pool_forward", "", "channels_many")
    for attributes in BY_ITEM.values():
        for attribute in attributes:
            assert SIDE_TEXT[attribute.yes] and SIDE_TEXT[attribute.no]
    assert hint("pool_backward", "", "overlapping").startswith("a pixel can be the maximum of several windows")
    assert hint("conv_forward", "", "square") == ""


def test_separates_refuses_cases_that_confound_two_attributes():
    # Every padding-0 case is also the only non-square one: the two could not be told apart.
    confounded = [Geometry(2, 7, 9, 3, 3, 1, 0), Geometry(1, 8, 8, 1, 2, 2, 1), Geometry(3, 6, 6, 2, 3, 3, 1)]
    problems = separates("conv_backward", confounded)
    assert any("padding and shape split the cases alike" in p for p in problems)
    assert separates("conv_backward", list(SHAPES.values())) != []  # 4 cases cannot separate 7 attributes
    assert any("fewer than 2" in p for p in separates("conv_backward", list(SHAPES.values()), at_least=2))


def _manifest_geometries(item: str) -> list[Geometry]:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    found = []
    for entry in manifest["cases"]:
        if entry["item"] == item and entry["visibility"] == "hidden":
            shape = entry["args"]["input_size"] if item == "output_size" else entry["arrays"]["x"]["shape"]
            found.append(geometry(item, entry["args"], shape))
    return found


@pytest.mark.parametrize("item", list(BY_ITEM))
def test_the_hidden_cases_separate_every_attribute(item):
    geometries = _manifest_geometries(item)
    assert len(geometries) == load_rubric().fixtures["hidden_cases"][item]
    assert separates(item, geometries, load_rubric().fixtures["cases_per_side"]) == []
    for g in geometries:  # mixing up height and width always shows in the output, and so does the padding
        assert (g.height == g.width) == (g.out_height == g.out_width)
        assert g.padding == 0 or g.out_height != (g.height - g.kernel) // g.stride + 1
        if item.startswith("pool") and g.stride < g.kernel:  # so does computing the size as if stride = pool
            assert g.out_height > (g.height - g.kernel) // g.kernel + 1


# --- Evidence first: what the wrong outputs are, before any case attribute --------------------------------------

# conv backward's cases as the fixtures hold them (public first): (batch, height, width, channels, kernel, stride, pad)
BACKWARD = {
    "public": Geometry(15, 8, 8, 3, 4, 2, 1),
    "hidden_00": Geometry(2, 5, 10, 2, 4, 3, 0),
    "hidden_01": Geometry(1, 10, 8, 3, 4, 1, 0),
    "hidden_02": Geometry(4, 6, 6, 1, 1, 1, 0),
    "hidden_03": Geometry(1, 9, 9, 5, 5, 2, 2),
    "hidden_04": Geometry(1, 7, 10, 1, 2, 2, 0),
    "hidden_05": Geometry(2, 10, 8, 2, 1, 2, 1),
}


def _judged(name: str, g: Geometry, got: np.ndarray, expected: np.ndarray, item: str = "conv_backward",
            component: str = "dimg", like: str = "the input's") -> CaseResult:
    """A case judged by the real check on real arrays: Passed, or the outcome expect_array raised."""
    what = "your dimg" if component == "dimg" else "your output"
    try:
        expect_array(got, expected, 1e-6, "backward(dout)", name=what, like=like)
        outcome = Passed()
    except CheckFailed as failure:
        outcome = failure.outcome
    return CaseResult(item, name, "public" if name == "public" else "hidden", 1.0, name, outcome,
                      component=component, sides=sides(item, g), geometry=g)


def _gradient(g: Geometry, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A padded input gradient and the input gradient cropped from it as the interface says."""
    p = g.padding
    padded = np.random.default_rng(seed).normal(size=(g.batch, g.height + 2 * p, g.width + 2 * p, g.channels))
    return padded, padded[:, p:p + g.height, p:p + g.width]


def test_height_for_width_in_the_crop_is_named_by_its_shapes_not_by_the_stride_it_coincides_with():
    # dx[:, p:H + p, p:H + p]: on these cases it fails exactly the three whose stride does not divide the input
    results = []
    for name, g in BACKWARD.items():
        padded, right = _gradient(g)
        p = g.padding
        results.append(_judged(name, g, padded[:, p:p + g.height, p:p + g.height], right))
    failing = [r for r in results if not r.outcome.passed]
    assert [r.case for r in failing] == ["hidden_00", "hidden_04", "hidden_05"]
    assert all(r.sides[BY_ITEM["conv_backward"].index(UNEVEN)] == "uneven_stride" for r in failing)
    assert all(r.sides[BY_ITEM["conv_backward"].index(UNEVEN)] == "even_stride" for r in results if r.outcome.passed)
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ("conv_backward.dimg.width_from_height",)
    assert "stride" not in diagnosis.summary
    assert "your dimg has width 5 where the input's is 10" in diagnosis.summary
    assert diagnosis.summary.endswith("is the width taken from the height (a size, or a slice bound such as "
                                      "`p:H + p` where `p:W + p` belongs)?")
    assert failing[0].outcome.message().endswith(": your dimg has width 5 where the input's is 10")
    assert failing[2].outcome.evidence == Evidence("width_from_height", "your dimg has width 9 where the input's is 8",
                                                   ("width",))  # cut short by the padded width's end


def test_a_shape_that_stride_arithmetic_gives_keeps_the_stride_hint():
    # the input rebuilt from the output size, (out - 1) * stride + k - 2p: short by the stride's remainder
    results = []
    for name, g in BACKWARD.items():
        padded, right = _gradient(g)
        rebuilt_h = (g.out_height - 1) * g.stride + g.kernel - 2 * g.padding
        rebuilt_w = (g.out_width - 1) * g.stride + g.kernel - 2 * g.padding
        results.append(_judged(name, g, right[:, :rebuilt_h, :rebuilt_w], right))
    assert [r.case for r in results if not r.outcome.passed] == ["hidden_00", "hidden_04", "hidden_05"]
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ("conv_backward.dimg.uneven_stride",)
    assert diagnosis.summary.startswith("fails exactly the 3 cases with a stride that does not divide the input")


def test_an_attribute_contradicted_by_the_returned_shapes_is_said_as_a_coincidence_without_a_hint():
    # the uneven-stride cases fail with shapes of no common form and not what a stride bug gives
    shapes = {"hidden_00": (2, 5, 3, 2), "hidden_04": (1, 2, 10, 1), "hidden_05": (2, 10, 8, 7)}
    results = []
    for name, g in BACKWARD.items():
        _, right = _gradient(g)
        results.append(_judged(name, g, np.ones(shapes[name]) if name in shapes else right, right))
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ()
    assert diagnosis.summary.startswith("fails 3 of 7 cases: `hidden_00`, `hidden_04`, `hidden_05` (exactly those "
                                        "with a stride that does not divide the input, but what they return is not")
    assert hint("conv_backward", "dimg", "uneven_stride") not in diagnosis.summary


@pytest.mark.parametrize("form, wrong", [
    ("zeros", lambda right: np.zeros_like(right)),
    ("scaled", lambda right: 0.5 * right),
    ("misplaced", lambda right: right[::-1]),
    ("shifted", lambda right: np.pad(right, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]),
])
def test_each_form_of_wrong_values_is_named_as_its_own_pattern(form, wrong):
    results = []
    for name, g in SHAPES.items():
        _, right = _gradient(g, seed=3)
        results.append(_judged(name, g, wrong(right) if g.batch > 1 else right, right))
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns[0] == f"conv_backward.dimg.{form}"
    assert form_hint(form) in diagnosis.summary and "each for the same visible reason" in diagnosis.summary
    assert pattern_words(form) == EVIDENCE_TEXT[form]


def test_transposed_values_and_shapes_are_one_form():
    results = []
    for name, g in BACKWARD.items():
        _, right = _gradient(g, seed=5)
        results.append(_judged(name, g, np.ascontiguousarray(right.swapaxes(1, 2)), right))
    _, diagnosis = diagnose("conv_backward", "dimg", results)
    assert diagnosis.patterns == ("conv_backward.dimg.transposed",)
    assert diagnosis.summary.startswith("fails all 7 cases, each for the same visible reason: in `public` your dimg "
                                        "holds the expected values with the height and width swapped")
    shape = next(r.outcome for r in results if r.case == "hidden_00")
    assert shape.evidence.form == "transposed" and "height 10 and width 5 where the input's are 5 and 10" in \
        shape.message()


def test_a_width_computed_from_the_height_is_both_its_form_and_the_non_square_pattern():
    # forward outputs: out_w from the input's height fails exactly the non-square inputs, and that fits
    cases = {"a": Geometry(2, 6, 10, 2, 3, 1, 0), "b": Geometry(1, 8, 8, 1, 3, 1, 1),
             "c": Geometry(3, 9, 5, 1, 1, 2, 0), "d": Geometry(1, 6, 6, 2, 2, 2, 0)}
    results = []
    for name, g in cases.items():
        right = np.ones((g.batch, g.out_height, g.out_width, 4))
        got = np.ones((g.batch, g.out_height, g.out_height, 4))
        results.append(_judged(name, g, got, right, "conv_forward", "", "the expected output's"))
    _, diagnosis = diagnose("conv_forward", "", results)
    assert diagnosis.patterns == ("conv_forward.width_from_height", "conv_forward.non_square")
    assert diagnosis.summary.startswith("fails exactly the 2 cases with a non-square input and passes the other 2, "
                                        "each for the same visible reason: in `a` your output has width 4 where the "
                                        "expected output's is 8")


def test_shape_evidence_reads_the_interface_layout():
    assert shape_evidence((2, 10, 10, 2), (2, 10, 5, 2), "your dimg", "the input's").form == "width_from_height"
    assert shape_evidence((2, 5, 5, 2), (2, 5, 10, 2), "x", "y").text == "x has width 5 where y is 10"
    assert shape_evidence((5, 5, 10, 2), (2, 5, 10, 2), "x", "y").form == "batch_from_height"
    # a slice by the width's length that the padded height's end cut short lies between the two sizes
    assert shape_evidence((2, 7, 10, 2), (2, 5, 10, 2), "x", "y").form == "height_from_width"
    assert shape_evidence((2, 12, 10, 2), (2, 5, 10, 2), "x", "y").form == ""  # beyond both: no form
    assert shape_evidence((2, 10, 5, 2), (2, 5, 10, 2), "x", "y").form == "transposed"
    assert shape_evidence((2, 5, 10), (2, 5, 10, 2), "x", "y").dims == ("ndim",)


def test_a_constant_factor_is_said_as_a_student_would_look_for_it():
    right = np.arange(1.0, 25.0).reshape(1, 2, 3, 4)
    words = {factor: value_evidence(factor * right, right, 1e-6, "your db", nhwc=False).text
             for factor in (1 / 240, 2.0, -1.0, 0.3)}
    assert words == {1 / 240: "every value of your db is the expected one divided by 240",
                     2.0: "every value of your db is the expected one times 2",
                     -1.0: "every value of your db is the expected one with its sign flipped",
                     0.3: "every value of your db is 0.3 times the expected one"}
    assert value_evidence(right + 1, right, 1e-6, "x", nhwc=True) is None  # wrong, of no form we know

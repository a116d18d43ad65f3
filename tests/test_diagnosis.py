"""Feedback that locates the bug: the attributes of the cases, the patterns named, and the cases
the fixtures hold (each attribute on both sides, no two attributes splitting the cases alike)."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from autograder.attributes import BY_ITEM, SIDE_TEXT, Geometry, geometry, separates, sides
from autograder.checks.plugin import CaseResult
from autograder.diagnosis import diagnose, hint, pattern_code, split_code
from autograder.outcomes import NotImplementedYet, NotRunAfterTimeouts, Passed, ReturnedNone, WrongShape, WrongValue
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
    assert "TODO" not in diagnosis.summary and diagnosis.patterns == ("conv_backward.dimg.padding_0",)


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

"""Checks of ConvLayer2D and MaxPoolingLayer against the fixtures."""

import pytest

from autograder.checks.backward_probe import BackwardProbe
from autograder.checks.expect import expect_array, expect_size
from autograder.outcomes import CheckFailed, NotImplementedYet, NumericalBackward


def _analytic(probe: BackwardProbe, component: str, what: str) -> None:
    """After a part's value passed: CheckFailed if the behaviour shows it was differentiated numerically."""
    evidence = probe.evidence(component)
    if evidence:
        raise CheckFailed(NumericalBackward(what, evidence))


@pytest.mark.item("output_size")
def test_output_size(case, worker):
    answer = worker.call("output_size", case.args)
    expect_size(answer.value("size"), case.arrays["expected"], "get_output_size(...)")


@pytest.mark.item("conv_forward")
def test_conv_forward(case, worker, rubric):
    answer = worker.call("conv_forward", case.args, {k: case.arrays[k] for k in ("x", "w", "b")})
    expect_array(answer.value("out"), case.arrays["out"], rubric.tolerances["forward"], "forward(img)",
                 name="your output", like="the expected output's")


@pytest.mark.item("conv_backward")
def test_conv_backward(case, worker, rubric, part):
    answer = worker.call("conv_backward", case.args, {k: case.arrays[k] for k in ("x", "w", "b", "dout")})
    if answer.header.get("forward_returned_none"):
        raise CheckFailed(NotImplementedYet("forward(img)", "returned None and backward then raised"))
    tolerance = rubric.tolerances["gradient"]
    probe = BackwardProbe(case, worker, rubric, answer)
    with part("dimg"):
        expect_array(answer.value("dx"), case.arrays["dx"], tolerance, "backward(dout)",
                     name="your dimg", like="the input's")
        _analytic(probe, "dimg", "backward(dout)")
    with part("dw"):
        expect_array(answer.value("dw"), case.arrays["dw"], tolerance, "grads[w_name]", same_size_ok=True,
                     name="your dW")
        _analytic(probe, "dw", "grads[w_name]")
    with part("db"):
        expect_array(answer.value("db"), case.arrays["db"], tolerance, "grads[b_name]", same_size_ok=True,
                     name="your db")
        _analytic(probe, "db", "grads[b_name]")


@pytest.mark.item("pool_forward")
def test_pool_forward(case, worker, rubric):
    answer = worker.call("pool_forward", case.args, {"x": case.arrays["x"]})
    expect_array(answer.value("out"), case.arrays["out"], rubric.tolerances["forward"], "forward(img)",
                 name="your output", like="the expected output's")


@pytest.mark.item("pool_backward")
def test_pool_backward(case, worker, rubric):
    answer = worker.call("pool_backward", case.args, {k: case.arrays[k] for k in ("x", "dout")})
    if answer.header.get("forward_returned_none"):
        raise CheckFailed(NotImplementedYet("forward(img)", "returned None, and backward gave no array"))
    expect_array(answer.value("dx"), case.arrays["dx"], rubric.tolerances["gradient"],
                 "backward(dout)", name="your dimg", like="the input's")
    _analytic(BackwardProbe(case, worker, rubric, answer), "", "backward(dout)")

"""A numerical backward is not a backward (autograder/checks/backward_probe.py), and no analytic one is
ever taken for one.

The premise, measured on every fixture case: an analytic backward (the reference, the loops and the
per-offset vectorisation of benchmarks/variants.py) returns on the probes exactly what it returns on the
case, while the handout's central differences miss by far more than the gradient tolerance. Then end to
end: analytic backwards graded in a real worker keep full marks (one that runs forward again to rebuild
its cache, a slow loop-based one, another vectorisation), numerical ones get 0 with the reason.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import variants
from conftest import FIXTURES
from loop_submission import LOOP_LAYERS
from submissions import LAYERS, grade, make_submission

from autograder.fixtures import load_cases
from autograder.numerics import rel_error
from autograder.rubric import load_rubric

TOLERANCES, CHECKS = load_rubric().tolerances, load_rubric().code_checks
#: The probes' errors for central differences must clear the tolerance by this factor at least.
MARGIN = 10


@pytest.fixture(scope="module")
def cases():
    return load_cases(FIXTURES)


def _probes(case):
    """The conv case's probes: (which gradient, which array moved, the arrays)."""
    offset = CHECKS.numerical_probe_offset
    for moved, checked in (("x", ("dx", "db")), ("w", ("dw", "db"))):
        arrays = {key: np.array(case.arrays[key], dtype=np.float64) for key in ("x", "w", "b", "dout")}
        arrays[moved] = arrays[moved] + offset
        yield checked, arrays


def _reference_conv(ref, case, arrays):
    args = case.args
    layer = ref.cnn_layers.ConvLayer2D(args["input_channels"], args["kernel_size"], args["number_filters"],
                                       stride=args["stride"], padding=args["padding"], name="t")
    layer.params[layer.w_name], layer.params[layer.b_name] = arrays["w"], arrays["b"]
    return layer


def _analytic_conv(ref, case, arrays, how):
    s, p = case.args["stride"], case.args["padding"]
    if how == "reference":
        layer = _reference_conv(ref, case, arrays)
        layer.forward(arrays["x"])
        dx = layer.backward(arrays["dout"])
        return {"dx": dx, "dw": layer.grads[layer.w_name], "db": layer.grads[layer.b_name]}
    backward = {"loops": variants.conv_backward_loops, "offsets": variants.conv_backward_offsets}[how]
    dx, dw, db = backward(arrays["x"], arrays["w"], arrays["dout"], s, p)
    return {"dx": dx, "dw": dw, "db": db}


def _numerical_conv(ref, case, arrays):
    layer = _reference_conv(ref, case, arrays)
    x, dout = arrays["x"], arrays["dout"]
    numerical = ref.grad_check.eval_numerical_gradient_array
    return {"dx": numerical(lambda v: layer.forward(v), x.copy(), dout),
            "dw": numerical(lambda v: layer.forward(x), layer.params[layer.w_name], dout),
            "db": numerical(lambda v: layer.forward(x), layer.params[layer.b_name], dout)}


def _pool_probe(case):
    x = case.arrays["x"]
    rank = np.argsort(np.argsort(x, axis=None, kind="stable"), kind="stable").reshape(x.shape)
    return CHECKS.numerical_probe_offset + CHECKS.numerical_probe_spacing * rank


@pytest.mark.parametrize("how", ["reference", "loops", "offsets"])
def test_an_analytic_conv_backward_returns_on_the_probes_what_it_returns_on_the_case(ref, cases, how):
    for case in [c for c in cases if c.item == "conv_backward"]:
        for checked, arrays in _probes(case):
            got = _analytic_conv(ref, case, arrays, how)
            for name in checked:
                assert rel_error(np.reshape(got[name], case.arrays[name].shape), case.arrays[name]) \
                    <= TOLERANCES.gradient, (how, case.name, name)


def _pool_backward_isclose(x, dout, size, s):
    """Routes each gradient to the window's elements np.isclose to its maximum (rtol 1e-5 of 1e8 is 1e3 on
    the probe: its gaps of 1e4 still leave one)."""
    dx = np.zeros_like(x, dtype=np.float64)
    n, ho, wo, c = dout.shape
    for r in range(ho):
        for q in range(wo):
            window = x[:, r * s:r * s + size, q * s:q * s + size, :]
            mask = np.isclose(window, window.max(axis=(1, 2), keepdims=True))
            dx[:, r * s:r * s + size, q * s:q * s + size, :] += mask * dout[:, r:r + 1, q:q + 1, :]
    return dx


@pytest.mark.parametrize("how", ["reference", "loops", "isclose"])
def test_an_analytic_pool_backward_returns_on_the_probe_what_it_returns_on_the_case(ref, cases, how):
    for case in [c for c in cases if c.item == "pool_backward"]:
        probe, dout = _pool_probe(case), case.arrays["dout"]
        size, stride = case.args["pool_size"], case.args["stride"]
        if how == "reference":
            layer = ref.cnn_layers.MaxPoolingLayer(size, stride, "p")
            layer.forward(probe)
            dx = layer.backward(dout)
        else:
            backward = variants.pool_backward_loops if how == "loops" else _pool_backward_isclose
            dx = backward(probe, dout, size, stride)
        assert rel_error(dx, case.arrays["dx"]) <= TOLERANCES.gradient, (how, case.name)


@pytest.mark.slow
def test_central_differences_miss_on_every_probe_by_far_more_than_the_tolerance(ref, cases):
    for case in [c for c in cases if c.item == "conv_backward"]:
        for checked, arrays in _probes(case):
            got = _numerical_conv(ref, case, arrays)
            for name in checked:
                error = rel_error(np.reshape(got[name], case.arrays[name].shape), case.arrays[name])
                assert error > MARGIN * TOLERANCES.gradient, (case.name, name, error)
    for case in [c for c in cases if c.item == "pool_backward"]:
        layer = ref.cnn_layers.MaxPoolingLayer(case.args["pool_size"], case.args["stride"], "p")
        dx = ref.grad_check.eval_numerical_gradient_array(layer.forward, _pool_probe(case),
                                                          case.arrays["dout"])
        assert rel_error(dx, case.arrays["dx"]) > MARGIN * TOLERANCES.gradient, case.name


# ----------------------------------------------------------------------------- end to end, in a real worker

#: Runs forward again on its own input first (to rebuild the cache): one call, no perturbed input.
REBUILDS_ITS_CACHE = '''
_reference_conv_backward, _reference_pool_backward = ConvLayer2D.backward, MaxPoolingLayer.backward


def _rebuilding_conv_backward(self, dprev):
    self.forward(self.meta[0])
    return _reference_conv_backward(self, dprev)


def _rebuilding_pool_backward(self, dprev):
    self.forward(self.meta)
    return _reference_pool_backward(self, dprev)


ConvLayer2D.backward = _rebuilding_conv_backward
MaxPoolingLayer.backward = _rebuilding_pool_backward
'''

#: benchmarks/variants.py's per-offset backward as the layer's own.
OFFSETS = "\n".join(inspect.getsource(f) for f in (variants._pad, variants.conv_backward_offsets)) + '''

def _offsets_backward(self, dprev):
    img = self.meta[0]
    dimg, self.grads[self.w_name], self.grads[self.b_name] = conv_backward_offsets(
        img, self.params[self.w_name], dprev, self.stride, self.padding)
    self.meta = None
    return dimg


ConvLayer2D.backward = _offsets_backward
'''

NUMERICAL = '''
from lib.grad_check import eval_numerical_gradient_array as _numerical


def _numerical_conv_backward(self, dprev):
    img = self.meta[0]
    dimg = _numerical(lambda x: self.forward(x), img.copy(), dprev)
    self.grads[self.w_name] = _numerical(lambda w: self.forward(img), self.params[self.w_name], dprev)
    self.grads[self.b_name] = dprev.sum(axis=(0, 1, 2))
    self.meta = None
    return dimg


ConvLayer2D.backward = _numerical_conv_backward
'''


def _codes(out_dir, item_id):
    document = json.loads((out_dir / "results.json").read_text())
    return {test["extra_data"].get("component", ""): test["extra_data"]["reason_code"]
            for test in document["tests"] if test["tags"][0] == item_id}


@pytest.mark.slow
@pytest.mark.parametrize("name, text", [("rebuilds its cache", REBUILDS_ITS_CACHE), ("loops", LOOP_LAYERS),
                                        ("offsets", OFFSETS)])
def test_an_analytic_backward_keeps_full_marks(name, text, tmp_path):
    items, _, out_dir = grade(make_submission(tmp_path / "sub", append={LAYERS: text}), tmp_path)
    for item_id in ("conv_backward", "pool_backward", "test_cnn"):
        assert items[item_id].score == items[item_id].item.points, (name, item_id)
        assert "numerical_backward" not in _codes(out_dir, item_id).values()


@pytest.mark.slow
def test_only_the_numerical_parts_lose_their_points(tmp_path):
    """dimg and dW by central differences, db analytic: dimg and dW get 0 with the reason, db keeps its point."""
    items, _, out_dir = grade(make_submission(tmp_path / "sub", append={LAYERS: NUMERICAL}), tmp_path)
    assert _codes(out_dir, "conv_backward") == {"dimg": "numerical_backward", "dw": "numerical_backward",
                                                "db": "passed"}
    assert items["conv_backward"].score == 1
    document = json.loads((out_dir / "results.json").read_text())
    dimg = next(test for test in document["tests"] if test["extra_data"].get("component") == "dimg")
    # both pieces of evidence: the probe the parent checked, and the worker's count of perturbed forwards
    assert "computed numerically (finite differences of forward)" in dimg["output"]
    assert "moved by relative error" in dimg["output"] and "backward ran forward" in dimg["output"]
    assert items["pool_backward"].score == 5 and items["conv_forward"].score == 5

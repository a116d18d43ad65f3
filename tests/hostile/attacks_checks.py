"""Round-three attacks of mechanism A on the code checks: see attacks.py for what an attack is.

- The worker describes TestCNN (its layers' kinds, which arrays are the conv and fc weights), and
  student code imported there can rewrite that description. A blank TestCNN whose module patches the
  description (the reference's layer list with random std-0.02 weights, or even the handout's seeded
  recipe replayed) must earn nothing for TestCNN's layers and initialisation: the parent credits them
  only where the initial weights are its own seeded draws AND the separate run request finds the layers.
- A `backward` made of the handout's central differences (lib/grad_check.py) passes every gradient
  case within tolerance; it must earn 0 for each component it computes so, with the reason, whether it
  differentiates `self.forward` or a private copy of the forward computation.
- The honest control: the loop-based layers (a slow, analytic backward) keep full marks.
"""

from __future__ import annotations

from pathlib import Path

from attacks import Attack, Context, item, outputs, points
from conftest import TEMPLATE
from loop_submission import LOOP_LAYERS
from submissions import LAYERS, MODELS, make_submission

#: Appended to the template's cnn_models.py: finds the worker's class among the loaded modules (no import
#: of the grader's package: nothing shows at home) and answers the layers request with a forged TestCNN
#: whose weights are `WEIGHTS`; every other request is left alone.
FORGED_DESCRIPTION = '''
import sys as _sys


class _ForgedLayer(object):
    def __init__(self, name, params):
        self.name, self.params, self.grads = name, params, {}


def _forged_weights(seed):
{weights}


def _forge():
    for _module in list(_sys.modules.values()):
        worker = getattr(_module, "Worker", None)
        if not (isinstance(worker, type) and hasattr(worker, "_test_cnn")):
            continue
        original = worker._test_cnn

        def forged(self, seed, _original=original):
            if _sys._getframe(1).f_code.co_name != "op_test_cnn_layers":
                return _original(self, seed)
            conv_w, fc_w = _forged_weights(seed)
            conv = _ForgedLayer("conv", {"conv_w": conv_w, "conv_b": np.zeros(3)})
            fc_layer = _ForgedLayer("fc", {"fc_w": fc_w, "fc_b": np.zeros(5)})
            described = [
                {"class": "ConvLayer2D", "kind": "conv", "name": "conv",
                  "params": {"conv_w": [3, 3, 3, 3], "conv_b": [3]}},
                {"class": "MaxPoolingLayer", "kind": "pool", "name": "pool", "params": {}},
                {"class": "flatten", "kind": "flatten", "name": "flatten", "params": {}},
                {"class": "fc", "kind": "fc", "name": "fc", "params": {"fc_w": [27, 5], "fc_b": [5]}},
            ]
            return None, described, {"conv": (conv, "conv_w", "conv_b"), "fc": (fc_layer, "fc_w", "fc_b")}

        worker._test_cnn = forged


_forge()
'''

#: Random arrays of std exactly 0.02: what the description's old std test wanted.
RANDOM_STD = '''    rng = np.random.RandomState(7)
    conv_w, fc_w = rng.randn(3, 3, 3, 3), rng.randn(27, 5)
    return 0.02 * conv_w / conv_w.std(), 0.02 * fc_w / fc_w.std()'''
#: The handout's recipe replayed: the very values the parent draws.
RECIPE = '''    rng = np.random.RandomState(seed)
    return 0.02 * rng.randn(3, 3, 3, 3), 0.02 * rng.randn(27, 5)'''

#: The reference's backward replaced by the handout's central differences of `self.forward`.
NUMERICAL_BACKWARD = '''
from lib.grad_check import eval_numerical_gradient_array as _numerical


def _numerical_conv_backward(self, dprev):
    img = self.meta[0]
    dimg = _numerical(lambda x: self.forward(x), img.copy(), dprev)
    self.grads[self.w_name] = _numerical(lambda w: self.forward(img), self.params[self.w_name], dprev)
    self.grads[self.b_name] = _numerical(lambda b: self.forward(img), self.params[self.b_name], dprev)
    self.meta = None
    return dimg


def _numerical_pool_backward(self, dprev):
    return _numerical(lambda x: self.forward(x), self.meta.copy(), dprev)


ConvLayer2D.backward = _numerical_conv_backward
MaxPoolingLayer.backward = _numerical_pool_backward
'''

#: The same, on a private copy of the forward computation: the worker sees no call of forward at all.
HIDDEN_NUMERICAL_BACKWARD = '''
from lib.grad_check import eval_numerical_gradient_array as _numerical


def _conv_out(x, w, b, s, p):
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s]
    return np.einsum("nijcuv,uvcf->nijf", win, w) + b


def _pool_out(x, size, s):
    return np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::s, ::s].max(axis=(4, 5))


def _hidden_conv_backward(self, dprev):
    img = self.meta[0]
    w, b = self.params[self.w_name].copy(), self.params[self.b_name].copy()
    s, p = self.stride, self.padding
    dimg = _numerical(lambda x: _conv_out(x, w, b, s, p), img.copy(), dprev)
    self.grads[self.w_name] = _numerical(lambda v: _conv_out(img, v, b, s, p), w.copy(), dprev)
    self.grads[self.b_name] = _numerical(lambda v: _conv_out(img, w, v, s, p), b.copy(), dprev)
    self.meta = None
    return dimg


def _hidden_pool_backward(self, dprev):
    return _numerical(lambda x: _pool_out(x, self.pool_size, self.stride), self.meta.copy(), dprev)


ConvLayer2D.backward = _hidden_conv_backward
MaxPoolingLayer.backward = _hidden_pool_backward
'''


def _forged_template(weights: str):
    def build(folder: Path, context: Context) -> Path:
        forged = FORGED_DESCRIPTION.replace("{weights}", weights)
        return make_submission(folder, append={MODELS: forged}, source=TEMPLATE)
    return build


def _reference_with(text: str):
    def build(folder: Path, context: Context) -> Path:
        return make_submission(folder, append={LAYERS: text})
    return build


def _component(results: dict, item_id: str, component: str) -> dict:
    return next(test for test in item(results, item_id) if test["extra_data"].get("component", "") == component)


def _check_forged(results: dict, out_dir: Path, context: Context) -> None:
    assert points(results, "test_cnn") == 0, outputs(results, "test_cnn")
    for component in ("structure", "initialisation"):
        test = _component(results, "test_cnn", component)
        assert test["score"] == 0 and test["extra_data"]["reason_code"] == "wrong_structure", test


def _check_numerical(results: dict, out_dir: Path, context: Context) -> None:
    for item_id, components in (("conv_backward", ("dimg", "dw", "db")), ("pool_backward", ("",))):
        assert points(results, item_id) == 0, outputs(results, item_id)
        for component in components:
            test = _component(results, item_id, component)
            assert test["extra_data"]["reason_code"] == "numerical_backward", test
            assert "computed numerically (finite differences of forward)" in test["output"]
    # The forwards are the reference's: they keep their points.
    for item_id, full in (("output_size", 2), ("conv_forward", 5), ("pool_forward", 5)):
        assert points(results, item_id) == full, outputs(results, item_id)


def _check_numerical_counted(results: dict, out_dir: Path, context: Context) -> None:
    _check_numerical(results, out_dir, context)
    assert "backward ran forward" in outputs(results, "conv_backward")  # the worker's count, beside the probes


def _check_honest_loops(results: dict, out_dir: Path, context: Context) -> None:
    for item_id, full in (("output_size", 2), ("conv_forward", 5), ("conv_backward", 5), ("pool_forward", 5),
                          ("pool_backward", 5), ("test_cnn", 3)):
        assert points(results, item_id) == full, outputs(results, item_id)


ATTACKS: list[Attack] = [
    Attack("testcnn-description-forged", "A", _forged_template(RANDOM_STD), _check_forged,
           notes="blank TestCNN; the worker's layers request answered with the reference's layers and random "
                 "std-0.02 weights"),
    Attack("testcnn-description-replays-recipe", "A", _forged_template(RECIPE), _check_forged,
           notes="blank TestCNN; the forged description's weights are the handout's seeded draws themselves"),
    Attack("numerical-backward", "A", _reference_with(NUMERICAL_BACKWARD), _check_numerical_counted,
           notes="conv and pool backward as central differences of self.forward (lib/grad_check.py)"),
    Attack("numerical-backward-private-forward", "A", _reference_with(HIDDEN_NUMERICAL_BACKWARD), _check_numerical,
           notes="central differences of a private copy of the forward: no forward call to count"),
    Attack("honest-loop-layers", "honest", _reference_with(LOOP_LAYERS), _check_honest_loops,
           notes="a loop-based, slow, analytic conv and pool: full marks"),
]

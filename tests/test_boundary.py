"""Copy at the boundary (invariant 8): what student code returns is judged as it was when it returned.

Real submissions mutate in place: a softmax that shifts the scores it was given, a ReLU that
overwrites its input, a layer that reuses its output buffer, a backward that reshapes `dout` in
place, a forward that subtracts the mean of its input. Each tolerated variant below is a real
submission folder made from the reference by small source edits, graded through the real path
(a real worker process), and must keep full marks on every code item. Each also has a probe, run
in this process on our own trusted variant, showing that the variant really does what its name
says (so a harmless edit cannot pass for a test of the boundary).
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
from conftest import FIXTURES, REFERENCE
from submissions import CODE_ITEMS, LAYERS, MODELS, grade, make_submission, quick_limits

from autograder.checks.plugin import run_checks
from autograder.fixtures import load_cases
from autograder.rubric import load_rubric
from autograder.sandbox import worker as worker_module
from autograder.sandbox.parent import WorkerFault, WorkerProcess
from autograder.staff.lib_loader import imported_lib

MLP = "lib/mlp/layer_utils.py"
MODULE = "lib/mlp/fully_conn.py"

# ----------------------------------------------------------------------------- the variants' edits

IN_PLACE_SOFTMAX = [  # the field report: a correct TestCNN scored 0.86 / 3
    (MLP, "    shifted = feat - np.max(feat, axis=-1, keepdims=True)\n    exp = np.exp(shifted)\n",
     "    feat -= feat.max(axis=1, keepdims=True)\n    exp = np.exp(feat)\n"),
]

SOFTMAX_RETURNS_ITS_INPUT = [
    (MLP, "    shifted = feat - np.max(feat, axis=-1, keepdims=True)\n    exp = np.exp(shifted)\n"
          "    return exp / np.sum(exp, axis=-1, keepdims=True)\n",
     "    feat -= np.max(feat, axis=-1, keepdims=True)\n    np.exp(feat, out=feat)\n"
     "    feat /= np.sum(feat, axis=-1, keepdims=True)\n    return feat\n"),
    (MLP, "        dlogit = logit.copy()\n", "        dlogit = logit\n"),
    (MLP, "            dlogit = dlogit / n\n", "            dlogit /= n\n"),
]

IN_PLACE_RELU = [
    (MLP, "        if 0 < self.negative_slope <= 1:\n"
          "            output = np.maximum(feat, self.negative_slope * feat)\n"
          "        else:\n"
          "            output = np.where(feat < 0, self.negative_slope * feat, feat)\n",
     "        feat[feat < 0] *= self.negative_slope\n        output = feat\n"),
    (MLP, "        if 0 < self.negative_slope <= 1:\n"
          "            factor = (feat >= 0).astype(np.result_type(dprev, np.float32))\n"
          "            np.maximum(factor, self.negative_slope, out=factor)\n"
          "            dfeat = dprev * factor\n"
          "        else:\n"
          "            dfeat = np.where(feat < 0, self.negative_slope * dprev, dprev)\n",
     "        dprev[feat < 0] *= self.negative_slope\n        dfeat = dprev\n"),
]

FC_REUSES_ITS_OUTPUT = [  # forward keeps its output and later writes into it
    (MLP, "        output = feat.dot(self.params[self.w_name]) + self.params[self.b_name]\n",
     "        shape = (feat.shape[0], self.output_dim)\n"
     "        dtype = np.result_type(feat, self.params[self.w_name])\n"
     "        if getattr(self, 'buffer', None) is None or self.buffer.shape != shape or self.buffer.dtype != dtype:\n"
     "            self.buffer = np.empty(shape, dtype=dtype)\n"
     "        np.dot(feat, self.params[self.w_name], out=self.buffer)\n"
     "        self.buffer += self.params[self.b_name]\n"
     "        output = self.buffer\n"),
    (MLP, "        dfeat = dprev.dot(self.params[self.w_name].T)\n",
     "        self.buffer[...] = dprev  # the output buffer, reused for the upstream gradient\n"
     "        dprev = self.buffer\n"
     "        dfeat = dprev.dot(self.params[self.w_name].T)\n"),
]

BACKWARD_EDITS_DOUT = [
    (LAYERS, "        dout = dprev.reshape(n * out_h * out_w, n_filters)\n",
     "        dprev.shape = (n * out_h * out_w, n_filters)\n        dout = dprev\n"),
    (MLP, "        dfeat = dprev.reshape(feat.shape)\n", "        dprev.shape = feat.shape\n        dfeat = dprev\n"),
    (LAYERS,
     "                dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :] += np.where(winner == u * p + v, dprev, 0)\n",
     "                dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :] += np.where(winner == u * p + v, dprev, 0)\n"
     "        dprev[...] = 0.0  # consumed\n"),
]

VIEWS_OF_META = [  # conv forward returns an array it keeps in meta; backward returns a view of a buffer in meta
    (LAYERS, "        self.meta = (img, cols)\n",
     "        self.meta = (img, cols, output, np.zeros((self.input_channels, n, img.shape[1] + 2 * p, "
     "img.shape[2] + 2 * p)))\n"),
    (LAYERS, "        img, cols = self.meta\n",
     "        img, cols, _, dimg_pad = self.meta\n        dimg_pad[...] = 0.0\n"),
    (LAYERS, "        dimg_pad = np.zeros((n_channels, n, in_h + 2 * p, in_w + 2 * p), dtype=dcols.dtype)\n", ""),
    (LAYERS, "        dimg = np.ascontiguousarray(dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0))\n",
     "        dimg = dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0)\n"),
]

_REFERENCE_MLP = (REFERENCE / MLP).read_text()
_SEQUENTIAL = _REFERENCE_MLP[_REFERENCE_MLP.index("class sequential"):_REFERENCE_MLP.index("class flatten")]
OWN_SEQUENTIAL = [  # the handout's own copy in lib/cnn/layer_utils.py, with the 2023 regularisation
    (LAYERS, "from lib.mlp.layer_utils import sequential\n",
     _SEQUENTIAL.rstrip() + '''

    def apply_l1_regularization(self, lam):
        for layer in self.layers:
            for n in layer.params:
                if n.endswith("_w") and layer.grads.get(n) is not None:
                    layer.grads[n] = layer.grads[n] + lam * np.sign(layer.params[n])

    def apply_l2_regularization(self, lam):
        for layer in self.layers:
            for n in layer.params:
                if n.endswith("_w") and layer.grads.get(n) is not None:
                    layer.grads[n] = layer.grads[n] + lam * layer.params[n]


'''),
    (MODULE, "    def backward(self, dprev):\n        for layer in self.net.layers[::-1]:\n"
             "            dprev = layer.backward(dprev)\n        self.net.gather_grads()\n",
     "    def backward(self, dprev, regularization=\"none\", reg_lambda=0.0):\n"
     "        for layer in self.net.layers[::-1]:\n            dprev = layer.backward(dprev)\n"
     "        self.net.gather_grads()\n        if regularization == \"l1\":\n"
     "            self.net.apply_l1_regularization(reg_lambda)\n        elif regularization == \"l2\":\n"
     "            self.net.apply_l2_regularization(reg_lambda)\n        elif regularization != \"none\":\n"
     "            raise NotImplementedError(regularization)\n"),
]

UNUSED_ARGUMENTS = [
    (LAYERS, "stride=1, padding=0, init_scale=.02, name=\"conv\"):",
     "stride=1, padding=0, init_scale=.02, name=\"conv\", dtype=np.float32, seed=None):"),
    (LAYERS, "    def __init__(self, pool_size, stride, name):",
     "    def __init__(self, pool_size, stride, name=\"maxpool\", dtype=np.float32, seed=None):"),
    (MLP, "    def __init__(self, input_dim, output_dim, init_scale=0.002, name=\"fc\"):",
     "    def __init__(self, input_dim, output_dim, init_scale=0.002, name=\"fc\", dtype=np.float32, seed=None):"),
    (MODELS, "class TestCNN(Module):\n    def __init__(self, dtype=np.float32, seed=None):",
     "class TestCNN(Module):\n    def __init__(self, keep_prob=0, dtype=np.float32, seed=None):"),
    (MODELS, "ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name=\"conv\"),",
     "ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name=\"conv\", dtype=dtype, seed=seed),"),
]

MODULE_BASE = [
    (MODELS, "class TestCNN(Module):\n    def __init__(self, dtype=np.float32, seed=None):\n"
             "        self.net = sequential(",
     "class ConvNet(Module):\n    \"\"\"My base class: the layers it is given become self.net.\"\"\"\n\n"
     "    def __init__(self, *layers):\n        Module.__init__(self)\n        self.net = sequential(*layers)\n"
     "        self.n_layers = len(layers)\n\n"
     "    def forward(self, feat, is_training=True, seed=None):\n"
     "        return super(ConvNet, self).forward(feat, is_training, seed)\n\n\n"
     "class TestCNN(ConvNet):\n    def __init__(self, dtype=np.float32, seed=None):\n        super().__init__("),
    (MODELS, "class SmallConvolutionalNetwork(Module):\n"
             "    def __init__(self, keep_prob=0, dtype=np.float32, seed=None):\n"
             "        self.net = sequential(",
     "class SmallConvolutionalNetwork(ConvNet):\n    def __init__(self, keep_prob=0, dtype=np.float32, seed=None):\n"
     "        self.seed = seed\n        super(SmallConvolutionalNetwork, self).__init__("),
]

OWN_NAMES = [
    (LAYERS, "        self.w_name = name + \"_w\"\n        self.b_name = name + \"_b\"\n",
     "        self.w_name = name + \"_weight\"\n        self.b_name = name + \"_bias\"\n"),
    (MODELS, 'init_scale=0.02, name="conv"),', 'init_scale=0.02, name="conv2d_1"),'),
    (MODELS, 'MaxPoolingLayer(2, 2, name="pool"),', 'MaxPoolingLayer(2, 2, name="max_pool"),'),
    (MODELS, 'flatten(name="flatten"),\n            fc(27, 5, init_scale=0.02, name="fc"),',
     'flatten(name="flat"),\n            fc(27, 5, init_scale=0.02, name="dense_out"),'),
    (MODELS, 'name="conv1"', 'name="c1"'),
    (MODELS, 'name="conv2"', 'name="c2"'),
    (MODELS, 'name="fc2"', 'name="scores"'),
]

INPUT_MEAN_IN_PLACE = [  # a debugging leftover after the output is computed: x -= x.mean()
    (LAYERS, "        self.meta = (img, cols)\n", "        self.meta = (img, cols)\n        img -= img.mean()\n"),
    (LAYERS, "        self.meta = img\n", "        self.meta = img\n        img -= img.mean()\n"),
]


# ----------------------------------------------------------------------------- probes: the hazard is real

def _test_cnn_run(lib, seed: int = 0):
    """TestCNN, its loss and fresh inputs, built in this process from a trusted variant."""
    rng = np.random.RandomState(seed)
    np.random.seed(1234)
    model, loss = lib.cnn_models.TestCNN(), lib.mlp_layers.cross_entropy()
    feats, labels = rng.randn(4, 8, 8, 3), np.array([0, 2, 1, 4])
    return model, loss, feats, labels


def _scores_change_in_the_loss(lib) -> bool:
    model, loss, feats, labels = _test_cnn_run(lib)
    scores = model.forward(feats)
    kept = scores.copy()
    loss.forward(scores, labels)
    return not np.allclose(scores, kept)


def _scores_change_in_backward(lib) -> bool:
    model, loss, feats, labels = _test_cnn_run(lib)
    scores = model.forward(feats)
    kept = scores.copy()
    loss.forward(kept.copy(), labels)
    model.backward(loss.backward())
    return not np.allclose(scores, kept)


def _relu_overwrites_its_input(lib) -> bool:
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    kept = x.copy()
    lib.mlp_layers.leaky_relu().forward(x)
    return not np.array_equal(x, kept)


def _conv(lib, **extra):
    np.random.seed(0)
    layer = lib.cnn_layers.ConvLayer2D(3, 3, 4, stride=2, padding=1, **extra)
    return layer, np.random.randn(2, 7, 6, 3), np.random.randn(2, 4, 3, 4)


def _conv_backward_edits_dout(lib) -> bool:
    layer, x, dout = _conv(lib)
    kept = dout.copy()
    layer.forward(x)
    layer.backward(dout)
    return dout.shape != kept.shape


def _conv_backward_returns_a_view_of_meta(lib) -> bool:
    layer, x, dout = _conv(lib)
    out = layer.forward(x)
    kept_meta = layer.meta
    dx = layer.backward(dout)
    return any(out is part for part in kept_meta) and np.shares_memory(dx, kept_meta[3])


def _cnn_sequential_is_its_own(lib) -> bool:
    return (lib.cnn_layers.sequential is not lib.mlp_layers.sequential
            and lib.cnn_models.sequential is lib.cnn_layers.sequential)


def _layers_take_unused_arguments(lib) -> bool:
    return all("dtype" in inspect.signature(cls).parameters and "seed" in inspect.signature(cls).parameters
               for cls in (lib.cnn_layers.ConvLayer2D, lib.cnn_layers.MaxPoolingLayer, lib.mlp_layers.fc))


def _models_share_a_base_of_their_own(lib) -> bool:
    base = lib.cnn_models.ConvNet
    return issubclass(lib.cnn_models.TestCNN, base) and issubclass(lib.cnn_models.SmallConvolutionalNetwork, base)


def _names_are_their_own(lib) -> bool:
    np.random.seed(1234)
    return set(lib.cnn_models.TestCNN().net.params) == {"conv2d_1_weight", "conv2d_1_bias",
                                                        "dense_out_w", "dense_out_b"}


def _forward_shifts_its_input(lib) -> bool:
    layer, x, _ = _conv(lib)
    kept = x.copy()
    layer.forward(x)
    return not np.array_equal(x, kept)


#: name: (edits, probe that the variant really does what its name says)
VARIANTS = {
    "in-place softmax (the field report)": (IN_PLACE_SOFTMAX, _scores_change_in_the_loss),
    "softmax returns its shifted input, the loss's backward edits the kept logits":
        (SOFTMAX_RETURNS_ITS_INPUT, _scores_change_in_the_loss),
    "in-place leaky ReLU, forward and backward": (IN_PLACE_RELU, _relu_overwrites_its_input),
    "fc keeps its output buffer and reuses it in backward": (FC_REUSES_ITS_OUTPUT, _scores_change_in_backward),
    "backward reshapes and zeroes dout in place": (BACKWARD_EDITS_DOUT, _conv_backward_edits_dout),
    "conv returns arrays it keeps in meta": (VIEWS_OF_META, _conv_backward_returns_a_view_of_meta),
    "a sequential of its own in lib/cnn/layer_utils.py, 2023 regularisation":
        (OWN_SEQUENTIAL, _cnn_sequential_is_its_own),
    "unused dtype=np.float32 / seed=None constructor arguments": (UNUSED_ARGUMENTS, _layers_take_unused_arguments),
    "a Module base class of its own": (MODULE_BASE, _models_share_a_base_of_their_own),
    "layer and parameter names of its own": (OWN_NAMES, _names_are_their_own),
    "forward subtracts its input's mean in place": (INPUT_MEAN_IN_PLACE, _forward_shifts_its_input),
}

#: Variants whose SmallConvolutionalNetwork differs from the reference's in a way the grader meets.
SMALL_CNN_VARIANTS = ["in-place leaky ReLU, forward and backward",
                      "fc keeps its output buffer and reuses it in backward",
                      "a sequential of its own in lib/cnn/layer_utils.py, 2023 regularisation",
                      "a Module base class of its own", "layer and parameter names of its own",
                      "forward subtracts its input's mean in place"]


def _variant(name: str, folder):
    return make_submission(folder, VARIANTS[name][0])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_really_does_what_it_says(name, tmp_path):
    """Checked on our own variant in this process: without it, a harmless edit could pass for a test."""
    with imported_lib(_variant(name, tmp_path / "sub")) as lib:
        assert VARIANTS[name][1](lib), f"{name}: the edit does not do what the variant claims"


def test_the_field_report_in_place_softmax_keeps_full_marks(tmp_path):
    """A correct TestCNN whose softmax shifts the scores in place scored 0.86 / 3: the worker
    sent the scores after the loss had run."""
    scores, result, _ = grade(_variant("in-place softmax (the field report)", tmp_path / "sub"), tmp_path)
    test_cnn = scores["test_cnn"]
    assert test_cnn.score == test_cnn.item.points, test_cnn.reason
    assert all(case.outcome.passed for case in test_cnn.cases)
    assert result.score == 25


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in VARIANTS if name != "in-place softmax (the field report)"])
def test_tolerated_variant_keeps_full_marks(name, tmp_path):
    scores, result, _ = grade(_variant(name, tmp_path / "sub"), tmp_path)
    for item_id in CODE_ITEMS:
        item = scores[item_id]
        failing = [f"{case.case}: {case.outcome.message()}" for case in item.cases if not case.outcome.passed]
        assert item.score == item.item.points, f"{name}: {item_id}: {item.reason} {failing}"


def _small_cnn_expectation(folder, images: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The variant's own initial weights and, from our trusted copy of it here, the classes it predicts."""
    with imported_lib(folder) as lib:
        np.random.seed(7)
        model = lib.cnn_models.SmallConvolutionalNetwork()
        weights = {name: np.array(value, copy=True) for name, value in model.net.params.items()}
        predictions = [np.argmax(model.forward(images[i:i + 5].copy(), False), axis=1)
                       for i in range(0, len(images), 5)]
    return weights, np.concatenate(predictions)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL_CNN_VARIANTS)
def test_small_cnn_variant_predicts_in_the_worker_what_it_predicts_here(name, tmp_path):
    """The saved-weights evaluation hands batches of one image array to the student's network."""
    folder = _variant(name, tmp_path / "sub")
    images = np.random.RandomState(3).randn(17, 32, 32, 3).astype(np.float32)
    weights, expected = _small_cnn_expectation(folder, images)
    sent = {key: value.copy() for key, value in weights.items()}
    with WorkerProcess(folder, quick_limits(call_timeout=60)) as worker:
        answer = worker.call("small_cnn_predict", {"seed": 123, "batch": 5}, dict(sent, images=images))
    assert not answer.header.get("missing") and answer.header.get("unused") == []
    assert np.array_equal(answer.value("predictions"), expected)


def test_an_input_edited_in_place_changes_neither_the_fixtures_nor_the_next_case(tmp_path):
    """conv and pool forward do `img -= img.mean()` on what they were given; every case still passes
    and the fixtures' arrays are exactly what they were."""
    folder = _variant("forward subtracts its input's mean in place", tmp_path / "sub")
    cases = load_cases(FIXTURES)
    before = copy.deepcopy([case.arrays for case in cases])
    with WorkerProcess(folder, quick_limits(call_timeout=30)) as worker:
        results = run_checks(worker, cases, load_rubric())
    failing = [(r.item, r.case, r.outcome.message()) for r in results if not r.outcome.passed]
    assert not failing
    assert len(results) >= len(cases)
    for case, arrays in zip(cases, before):
        assert set(case.arrays) == set(arrays)
        for key, array in arrays.items():
            assert case.arrays[key].dtype == array.dtype and np.array_equal(case.arrays[key], array), (case.name, key)


# ----------------------------------------------------------------------------- the worker's helpers themselves
# Plain functions of ours stand in for student code here: they mutate exactly as the variants do.

def test_a_value_is_captured_as_it_was_returned():
    kept = {}

    def forward(x):
        kept["out"] = x * 2.0
        return kept["out"]

    scores = worker_module.Worker._call(forward, np.arange(4.0))
    kept["out"] -= kept["out"].max()  # later code shifts the returned array in place
    assert np.array_equal(scores.array, [0.0, 2.0, 4.0, 6.0])
    assert not scores.array.flags.writeable  # handing it on without a copy fails loudly
    assert scores.description == {"kind": "array"}


def test_every_array_handed_in_is_a_fresh_copy_and_ours_stay_as_they_were():
    ours = np.linspace(-1.0, 1.0, 6)
    ours.setflags(write=False)  # as the worker holds what it received
    seen = []

    def forward(x, shapes):
        seen.append(x)
        x -= x.mean()
        shapes[0] -= 1
        return x

    ones = np.ones(2)
    captured = worker_module.Worker._call(forward, ours, [ones])
    assert np.array_equal(ours, np.linspace(-1.0, 1.0, 6)) and np.array_equal(ones, [1.0, 1.0])
    again = worker_module.Worker._call(lambda x: x, captured)  # a captured value handed on is copied again
    assert again.array is not captured.array and not np.shares_memory(again.array, captured.array)
    assert seen[0] is not ours


def test_storing_into_a_students_dict_hands_a_copy():
    params = {}
    ours = np.ones(3)
    worker_module.Worker._store(params, "conv_w", ours)
    params["conv_w"] *= 5
    assert np.array_equal(ours, np.ones(3))


def test_non_array_results_are_described_at_once():
    size = [2, 3, 3, 4]
    captured = worker_module.Worker._call(lambda: size)
    size[1] = 99
    assert captured.description["items"] == [2, 3, 3, 4]
    assert worker_module.Worker._call(lambda: None).is_none
    with pytest.raises(TypeError, match="not an array of real numbers"):
        worker_module.Worker._call(lambda: "text").numbers("forward(x)")


def test_a_reply_with_a_value_not_captured_is_our_bug_not_the_students():
    with pytest.raises(worker_module._HarnessBug, match="not captured"):
        worker_module._answer(({}, {"scores": np.zeros(3)}))
    header, arrays = worker_module._answer(({"x": 1}, {"scores": worker_module.Returned(np.zeros(3))}))
    assert header["ok"] and header["values"]["scores"] == {"kind": "array"} and arrays["scores"].shape == (3,)


def test_a_fault_of_ours_in_the_worker_reaches_the_parent_as_ours(tmp_path):
    """Not as the student's exception: the checks grade it as a harness fault."""
    with WorkerProcess(make_submission(tmp_path / "sub"), quick_limits(call_timeout=30)) as worker:
        with pytest.raises(WorkerFault, match="no op 'no_such_op'"):
            worker.call("no_such_op")
        assert worker.call("output_size", {"input_size": [1, 8, 8, 3], "input_channels": 3, "kernel_size": 3,
                                           "number_filters": 2, "stride": 1,
                                           "padding": 0}).value("size")["items"] == [1, 6, 6, 2]

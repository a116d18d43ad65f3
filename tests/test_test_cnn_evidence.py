"""TestCNN's layers and initialisation are judged from what the parent checks itself
(autograder/checks/test_test_cnn.py), never from the worker's description alone.

Honest ways of writing the same initialisation keep their points; a description the worker forges
(student code can rewrite the worker) earns nothing unless the run shows the layers really are there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from submissions import LAYERS, MODELS, grade, make_submission

from autograder.checks.configuration import configuration_problems
from autograder.fixtures import seeded_stream

MLP = "lib/mlp/layer_utils.py"
CONV_DRAW = "self.params[self.w_name] = init_scale * np.random.randn(kernel_size, kernel_size,"
FC_DRAW = "self.params[self.w_name] = init_scale * np.random.randn(input_dim, output_dim)"
TEST_CNN_BODY = ('            ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name="conv"),\n'
                 '            MaxPoolingLayer(2, 2, name="pool"),\n'
                 '            flatten(name="flatten"),\n'
                 '            fc(27, 5, init_scale=0.02, name="fc"),\n')

#: Appended to cnn_models.py: the worker's layers request answered with the true layer list and random
#: std-0.02 weights (what the old std test wanted), every other request left alone.
FORGED = '''
import sys as _sys


def _forge():
    for _module in list(_sys.modules.values()):
        worker = getattr(_module, "Worker", None)
        if not (isinstance(worker, type) and hasattr(worker, "op_test_cnn_layers")):
            continue
        original = worker._read

        def forged(getter, _original=original):
            value = _original(getter)
            if _sys._getframe(1).f_code.co_name == "op_test_cnn_layers" and value.array is not None \\
                    and value.array.ndim > 1:
                fake = np.random.RandomState(7).randn(*value.array.shape)
                return _original(lambda: 0.02 * fake / fake.std())
            return value

        worker._read = staticmethod(forged)


_forge()
'''


def _test_cnn(out_dir) -> dict[str, dict]:
    document = json.loads((out_dir / "results.json").read_text())
    return {test["extra_data"]["component"]: test for test in document["tests"] if test["tags"][0] == "test_cnn"}


def test_the_parents_stream_is_what_the_seeded_notebook_draws():
    np.random.seed(1234)
    conv, fc = 0.02 * np.random.randn(3, 3, 3, 3), 0.02 * np.random.randn(27, 5)
    stream = seeded_stream(216)
    assert np.array_equal(0.02 * stream[:81].reshape(conv.shape), conv)
    assert np.array_equal(0.02 * stream[81:].reshape(fc.shape), fc)
    np.random.seed(1234)
    assert np.array_equal(np.random.normal(0, 0.02, (3, 3, 3, 3)), conv)  # the same stream, bit for bit


@pytest.mark.slow
@pytest.mark.parametrize("name, changes", [
    ("np.random.normal(0, init_scale, shape)", [
        (LAYERS, CONV_DRAW,
         "self.params[self.w_name] = np.random.normal(0, init_scale, size=(kernel_size, kernel_size,"),
        (LAYERS, "input_channels, number_filters)\n", "input_channels, number_filters))\n"),
        (MLP, FC_DRAW, "self.params[self.w_name] = np.random.normal(0, init_scale, (input_dim, output_dim))")]),
    ("float32 weights", [
        (LAYERS, "input_channels, number_filters)\n", "input_channels, number_filters).astype(np.float32)\n"),
        (MLP, FC_DRAW, FC_DRAW + ".astype(np.float32)")]),
    ("drawn transposed", [
        (LAYERS, CONV_DRAW, "self.params[self.w_name] = init_scale * np.random.randn(number_filters, input_channels,"),
        (LAYERS, "input_channels, number_filters)\n", "kernel_size, kernel_size).transpose(2, 3, 1, 0)\n")]),
])
def test_honest_ways_of_drawing_the_weights_keep_the_layers_and_the_initialisation(name, changes, tmp_path):
    _, _, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    tests = _test_cnn(out_dir)
    assert tests["structure"]["score"] == 0.5 and tests["initialisation"]["score"] == 0.5, (name, tests)


@pytest.mark.slow
def test_the_fc_layer_built_first_keeps_the_layers_and_the_initialisation(tmp_path):
    """The notebook's own check (std within 10 %) passes with the fc layer built first: so does ours."""
    changes = [(MODELS, "class TestCNN(Module):\n    def __init__(self, dtype=np.float32, seed=None):\n"
                        "        self.net = sequential(\n",
                "class TestCNN(Module):\n    def __init__(self, dtype=np.float32, seed=None):\n"
                "        last = fc(27, 5, init_scale=0.02, name=\"fc\")\n        self.net = sequential(\n"),
               (MODELS, TEST_CNN_BODY, TEST_CNN_BODY.replace('fc(27, 5, init_scale=0.02, name="fc"),', "last,"))]
    _, _, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    tests = _test_cnn(out_dir)
    assert tests["structure"]["score"] == 0.5 and tests["initialisation"]["score"] == 0.5


@pytest.mark.slow
def test_a_forged_description_of_real_layers_keeps_the_layers_by_behaviour_and_loses_the_initialisation(tmp_path):
    """The worker's description names random arrays as the initial weights: not the seeded draws, so the
    initialisation earns nothing, and the layers are credited only because the run's scores are right."""
    _, _, out_dir = grade(make_submission(tmp_path / "sub", append={MODELS: FORGED}), tmp_path)
    tests = _test_cnn(out_dir)
    assert tests["initialisation"]["score"] == 0
    assert "are not values that np.random.randn draws" in tests["initialisation"]["output"]
    assert tests["structure"]["score"] == 0.5
    assert tests["scores"]["score"] == 0.5


# --- the layers' configuration ----------------------------------------------------------------------------------

def _body(conv: str, pool: str) -> list[tuple[str, str, str]]:
    return [(MODELS, TEST_CNN_BODY, TEST_CNN_BODY
             .replace('ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name="conv")', conv)
             .replace('MaxPoolingLayer(2, 2, name="pool")', pool))]


def test_a_stride_2_convolution_and_a_1x1_pool_fail_the_layers_and_say_which_setting(tmp_path):
    # A real student's TestCNN: 8x8 -> 3x3 by the stride, a pool that does nothing; the shapes still fit fc(27, 5)
    changes = _body('ConvLayer2D(3, 3, 3, stride=2, padding=0, init_scale=0.02, name="conv")',
                    'MaxPoolingLayer(1, 1, name="pool")')
    _, _, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    tests = _test_cnn(out_dir)
    assert tests["structure"]["score"] == 0
    output = tests["structure"]["output"]
    assert "its conv layer has stride 2 (TestCNN's: 1): it turns 8x8x3 into 3x3x3, where TestCNN's turns 8x8x3 " \
           "into 6x6x3" in output
    assert "its pool layer has pool size 1 (TestCNN's: 2) and stride 1 (TestCNN's: 2)" in output
    assert tests["initialisation"]["score"] == 0.5  # drawn as the handout draws them: not this part's fault


@pytest.mark.parametrize("conv, pool", [
    ('ConvLayer2D(3, 3, 3, stride=1, padding=0, init_scale=0.02, name="conv")', 'MaxPoolingLayer(2, 2, name="pool")'),
    ('ConvLayer2D(3, 3, 3, init_scale=0.02)', 'MaxPoolingLayer(2, 2, "pool")'),
    ('ConvLayer2D(input_channels=3, kernel_size=3, number_filters=3, stride=np.int64(1), padding=0, '
     'init_scale=0.02, name="c1")', 'MaxPoolingLayer(pool_size=2, stride=2, name="p1")'),
])
def test_the_interfaces_configuration_written_any_way_keeps_the_layers(conv, pool, tmp_path):
    _, _, out_dir = grade(make_submission(tmp_path / "sub", _body(conv, pool)), tmp_path)
    tests = _test_cnn(out_dir)
    assert all(test["score"] == test["max_score"] for test in tests.values()), tests


CONV = {"kind": "conv", "config": {"kernel_size": 3, "stride": 1, "padding": 0}}
POOL = {"kind": "pool", "config": {"pool_size": 2, "stride": 2}}
RIGHT = [(1, 6, 6, 3), (1, 3, 3, 3), (1, 27), (1, 5)]


def test_the_configuration_is_judged_from_plain_numbers_beside_the_shapes_seen():
    assert configuration_problems([CONV, POOL], RIGHT) == []
    assert configuration_problems([CONV, POOL], []) == []  # a forward that raised shows nothing: the numbers decide
    # attributes that are the interface's, shapes that are not: a broken forward, which its own items judge
    assert configuration_problems([CONV, POOL], [(1, 5, 5, 3), (1, 2, 2, 3)]) == []
    # no plain numbers (an object, a string): the shapes alone decide
    forged = [{"kind": "conv", "config": {"kernel_size": {"type": "Fake"}, "stride": "1", "padding": 0}}, POOL]
    assert configuration_problems(forged, RIGHT) == []
    assert configuration_problems(forged, [(1, 3, 3, 3), (1, 1, 1, 3)]) == [
        "its conv layer's kernel_size, stride, padding are not plain numbers, and it turns 8x8x3 into 3x3x3, "
        "where TestCNN's turns 8x8x3 into 6x6x3"]
    assert "could not be seen" in configuration_problems(forged, [])[0]
    # a wrong setting the shapes do not bear out is still named, without shapes
    padded = [{"kind": "conv", "config": {"kernel_size": 3, "stride": 1, "padding": 1}}, POOL]
    assert configuration_problems(padded, RIGHT) == ["its conv layer has padding 1 (TestCNN's: 0)"]
    assert configuration_problems([CONV, {"kind": "pool", "config": {"pool_size": True, "stride": 2}}], []) != []

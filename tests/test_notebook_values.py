"""The values the notebook prints and asserts, reproduced by the reference solution."""

from __future__ import annotations

import numpy as np

from autograder.numerics import rel_error

# The notebook's expected arrays, rounded to 8 decimals as the notebook shows them.
NOTEBOOK_CONV_OUT = np.array([
    [[-0.03874312, 0.57000324], [-0.03955296, 0.57081309], [-0.04036281, 0.57162293], [-0.04117266, 0.57243278]],
    [[-0.0452219, 0.57648202], [-0.04603175, 0.57729187], [-0.04684159, 0.57810172], [-0.04765144, 0.57891156]],
    [[-0.05170068, 0.5829608], [-0.05251053, 0.58377065], [-0.05332038, 0.5845805], [-0.05413022, 0.58539035]],
    [[-0.05817946, 0.58943959], [-0.05898931, 0.59024943], [-0.05979916, 0.59105928], [-0.06060901, 0.59186913]],
])[None]
NOTEBOOK_POOL_OUT = np.array([[[0.11428571], [0.13015873], [0.14603175]],
                              [[0.24126984], [0.25714286], [0.27301587]],
                              [[0.36825397], [0.38412698], [0.4]]])[None]
NOTEBOOK_SCORES = np.array([[-13.85107294, -11.52845818, -9.20584342, -6.88322866, -4.5606139],
                            [-11.44514171, -10.21200524, -8.97886878, -7.74573231, -6.51259584],
                            [-9.03921048, -8.89555231, -8.75189413, -8.60823596, -8.46457778],
                            [-6.63327925, -7.57909937, -8.52491949, -9.4707396, -10.41655972]])


def test_output_size_is_the_notebooks(ref):
    layer = ref.cnn_layers.ConvLayer2D(3, 4, 16, stride=2, padding=3)
    size = layer.get_output_size((32, 28, 28, 3))
    assert isinstance(size, list)
    assert size == [32, 16, 16, 16]


def test_conv_forward_linspace_case(ref):
    layer = ref.cnn_layers.ConvLayer2D(1, 5, 2, stride=1, padding=0, name="conv_test")
    layer.params[layer.w_name] = np.linspace(-0.2, 0.2, num=50).reshape(5, 5, 1, 2)
    layer.params[layer.b_name] = np.linspace(-0.3, 0.3, num=2)
    out = layer.forward(np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1))
    assert out.shape == (1, 4, 4, 2)
    # The notebook prints 5.110565335399418e-08: the cost of its 8-decimal rounding.
    assert np.isclose(rel_error(out, NOTEBOOK_CONV_OUT), 5.110565335399418e-08, rtol=1e-3)


def test_pool_forward_linspace_case(ref):
    out = ref.cnn_layers.MaxPoolingLayer(pool_size=4, stride=2, name="maxpool_test").forward(
        np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1))
    assert out.shape == (1, 3, 3, 1)
    assert np.isclose(rel_error(out, NOTEBOOK_POOL_OUT), 1.8750000280978013e-08, rtol=1e-3)


def _linspace_test_cnn(ref):
    np.random.seed(1234)
    model = ref.cnn_models.TestCNN()
    model.net.assign("conv_w", np.linspace(-0.7, 0.3, num=81).reshape(3, 3, 3, 3))
    model.net.assign("conv_b", np.linspace(-0.6, 0.2, num=3))
    model.net.assign("fc_w", np.linspace(-0.2, 0.2, num=135).reshape(27, 5))
    model.net.assign("fc_b", np.linspace(-0.9, 0.1, num=5))
    return model


def test_test_cnn_initialisation_passes_the_notebooks_asserts(ref):
    np.random.seed(1234)
    model = ref.cnn_models.TestCNN()
    assert abs(model.net.get_params("conv_w").std() - 0.02) < 0.002
    assert abs(model.net.get_params("fc_w").std() - 0.02) < 0.002
    assert np.all(model.net.get_params("conv_b") == 0) and np.all(model.net.get_params("fc_b") == 0)
    kinds = [type(layer).__name__ for layer in model.net.layers]
    assert kinds == ["ConvLayer2D", "MaxPoolingLayer", "flatten", "fc"]


def test_test_cnn_scores_and_loss(ref):
    model = _linspace_test_cnn(ref)
    scores = model.forward(np.linspace(-5.5, 4.5, num=768).reshape(4, 8, 8, 3))
    assert np.sum(np.abs(scores - NOTEBOOK_SCORES)) < 1e-6
    loss = ref.mlp_layers.cross_entropy().forward(scores, np.array([0, 2, 1, 4]))
    assert abs(loss - 4.56046848799693) < 1e-10

"""The reference trains in the dtype its networks declare (issue 24, "the reference at speed").

The handout's networks take `dtype=np.float32`; the reference honours it in its solution regions: the
models convert their layers' parameters, each layer computes in its parameters' dtype, and the given
activations keep their input's dtype. One real training step of each edition's reference network, in
float32 and in float64, must keep every parameter, activation, gradient and Adam's state in that dtype.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import TEMPLATE

from autograder.edition import get_edition
from autograder.staff import overlays
from autograder.staff.lib_loader import imported_lib

EDITIONS = ["2022", "2023"]
DTYPES = [np.float32, np.float64]


def _reference(edition: str):
    return overlays.edition_folder(overlays.REFERENCE, get_edition(edition))


def _record_dtypes(model) -> dict[str, list]:
    """Wraps every layer's forward and backward on the instance, recording the dtype each returns."""
    seen = {"forward": [], "backward": []}

    for layer in model.net.layers:
        def wrap(method, kind, name=layer.name):
            def recorded(*args, **kwargs):
                value = method(*args, **kwargs)
                seen[kind].append((name, value.dtype))
                return value
            return recorded
        layer.forward = wrap(layer.forward, "forward")
        layer.backward = wrap(layer.backward, "backward")
    return seen


def _one_step(lib, dtype, input_dtype, batch: int = 8):
    """The reference network after one step of train_net's loop (forward, loss, backward, Adam), and what
    its layers returned on the way."""
    np.random.seed(123)
    model = lib.cnn_models.SmallConvolutionalNetwork(dtype=dtype)
    seen = _record_dtypes(model)
    loss_func = lib.mlp_layers.cross_entropy()
    optimizer = lib.optim.Adam(model.net, 1e-3)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 32, 32, 3)).astype(input_dtype)
    labels = rng.integers(0, 10, batch)
    loss = loss_func.forward(model.forward(images), labels)
    model.backward(loss_func.backward())
    optimizer.step()
    return model, optimizer, loss, seen


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
def test_one_training_step_stays_in_the_networks_dtype(edition, dtype, input_dtype):
    with imported_lib(_reference(edition)) as lib:
        model, optimizer, loss, seen = _one_step(lib, dtype, input_dtype)
    wrong = [(kind, name, found) for kind, values in seen.items() for name, found in values if found != dtype]
    assert not wrong, f"returned in another dtype than {dtype.__name__}: {wrong}"
    assert len(seen["forward"]) == len(seen["backward"]) == len(model.net.layers)
    assert np.asarray(loss).dtype == dtype
    for layer in model.net.layers:
        for name, value in layer.params.items():
            assert value.dtype == dtype, (name, value.dtype)
            assert layer.grads[name].dtype == dtype, (name, layer.grads[name].dtype)
            assert model.net.params[name] is value and model.net.grads[name] is layer.grads[name]
    assert optimizer.mt and optimizer.mt.keys() == optimizer.vt.keys() == model.net.params.keys()
    assert all(m.dtype == dtype for m in optimizer.mt.values()) and all(v.dtype == dtype for v in optimizer.vt.values())


@pytest.mark.parametrize("edition", EDITIONS)
def test_the_float32_network_is_the_float64_one_rounded(edition):
    """The same seed draws the same weights (rounded to float32), and the loss and gradients of one step agree
    within float32's precision: float32 changes the rounding, not the network. (Not the parameters after Adam's
    first step: it moves each by about lr * sign(gradient), which rounding flips where a gradient is near 0.)"""
    with imported_lib(_reference(edition)) as lib:
        steps = {dtype: _one_step(lib, dtype, np.float32) for dtype in DTYPES}
        np.random.seed(123)
        drawn = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64).net.params
        np.random.seed(123)
        rounded = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float32).net.params
    assert all(np.array_equal(rounded[name], drawn[name].astype(np.float32)) for name in drawn)
    (single, _, loss32, _), (double, _, loss64, _) = steps[np.float32], steps[np.float64]
    assert abs(float(loss32) - float(loss64)) < 1e-5 * abs(float(loss64))
    for name, grad in double.net.grads.items():
        np.testing.assert_allclose(single.net.grads[name], grad, rtol=1e-3, atol=1e-4 * np.abs(grad).max(),
                                   err_msg=name)


@pytest.mark.parametrize("edition", EDITIONS)
def test_test_cnn_draws_in_float32_and_computes_in_float64_with_the_notebooks_parameters(edition):
    """TestCNN's initial weights are the seeded float64 draws rounded (what the harness's initialisation check
    accepts); with the notebook's float64 parameters assigned, it computes in float64, to the notebook's limits."""
    with imported_lib(_reference(edition)) as lib:
        np.random.seed(1234)
        model = lib.cnn_models.TestCNN()
        assert {value.dtype for value in model.net.params.values()} == {np.dtype(np.float32)}
        stream = np.random.RandomState(1234).randn(81 + 135)
        np.testing.assert_allclose(model.net.get_params("conv_w"), 0.02 * stream[:81].reshape(3, 3, 3, 3), rtol=1e-7)
        np.testing.assert_allclose(model.net.get_params("fc_w"), 0.02 * stream[81:].reshape(27, 5), rtol=1e-7)
        model.net.assign("conv_w", np.linspace(-0.7, 0.3, num=81).reshape(3, 3, 3, 3))
        model.net.assign("conv_b", np.linspace(-0.6, 0.2, num=3))
        model.net.assign("fc_w", np.linspace(-0.2, 0.2, num=135).reshape(27, 5))
        model.net.assign("fc_b", np.linspace(-0.9, 0.1, num=5))
        loss_func = lib.mlp_layers.cross_entropy()
        scores = model.forward(np.linspace(-5.5, 4.5, num=4 * 8 * 8 * 3).reshape(4, 8, 8, 3))
        loss = loss_func.forward(scores, np.array([0, 2, 1, 4]))
        model.backward(loss_func.backward())
    assert scores.dtype == np.float64 and abs(loss - 4.56046848799693) < 1e-10
    assert {grad.dtype for grad in model.net.grads.values()} == {np.dtype(np.float64)}


def test_the_conv_layer_computes_in_its_parameters_dtype(ref):
    """float32 parameters convert a float64 input; float64 parameters (every graded case) compute in float64
    whatever the input, as before."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 3))
    for params, inputs in ((np.float32, np.float64), (np.float64, np.float32), (np.float64, np.float64)):
        layer = ref.cnn_layers.ConvLayer2D(3, 3, 4, stride=2, padding=1)
        layer.params[layer.w_name] = rng.standard_normal((3, 3, 3, 4)).astype(params)
        layer.params[layer.b_name] = rng.standard_normal(4).astype(params)
        out = layer.forward(x.astype(inputs))
        dimg = layer.backward(rng.standard_normal(out.shape))  # a float64 upstream gradient
        assert out.dtype == dimg.dtype == params
        assert layer.grads[layer.w_name].dtype == layer.grads[layer.b_name].dtype == params


@pytest.mark.parametrize("slope", [0.01, 0.2, 1.0, 0.0, -0.1, 1.5])
def test_the_references_leaky_relu_is_the_handouts_bit_for_bit_in_float64(ref, slope):
    """The reference's leaky ReLU (no np.where branch per element; dprev's dtype kept) against the handout's,
    as the template ships it, on values of both signs, zeros of both signs and infinities."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(200), [0.0, -0.0, np.inf, -np.inf, 1e-300, -1e-300]])
    dout = rng.standard_normal(x.shape)
    with imported_lib(TEMPLATE) as handout, np.errstate(invalid="ignore"):
        theirs = handout.mlp_layers.leaky_relu(slope)
        expected = theirs.forward(x.copy()), theirs.backward(dout.copy())
    ours = ref.mlp_layers.leaky_relu(slope)
    with np.errstate(invalid="ignore"):  # slope 0 times an infinity, in both
        found = ours.forward(x.copy()), ours.backward(dout.copy())
    for got, want in zip(found, expected):
        assert got.dtype == want.dtype == np.float64
        assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
    assert "np.maximum" in inspect.getsource(ours.forward) and "np.maximum" not in inspect.getsource(theirs.forward)
    single = ref.mlp_layers.leaky_relu(slope)
    with np.errstate(invalid="ignore"):
        assert single.forward(x.astype(np.float32)).dtype == np.float32
    assert single.backward(dout.astype(np.float32)).dtype == np.float32


def test_the_2023_references_gelu_is_the_handouts_bit_for_bit_in_float64():
    edition = get_edition("2023")
    rng = np.random.default_rng(5)
    x, dout = rng.standard_normal((6, 40)) * 3, rng.standard_normal((6, 40))
    results = {}
    for kind in (overlays.REFERENCE, overlays.TEMPLATE):
        with imported_lib(overlays.edition_folder(kind, edition)) as lib:
            layer = lib.mlp_layers.gelu()
            results[kind] = layer.forward(x.copy()), layer.backward(dout.copy())
            if kind == overlays.REFERENCE:
                single = lib.mlp_layers.gelu()
                assert single.forward(x.astype(np.float32)).dtype == np.float32
                assert single.backward(dout.astype(np.float32)).dtype == np.float32
    for ours, theirs in zip(results[overlays.REFERENCE], results[overlays.TEMPLATE]):
        assert ours.dtype == theirs.dtype == np.float64 and np.array_equal(ours, theirs)

"""The reference layers against independent implementations and central differences.

The loop implementations live in benchmarks/variants.py: the same code is the independent
opinion here and the slow baseline there.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate
from variants import (
    conv_backward_loops,
    conv_backward_offsets,
    conv_forward_einsum,
    conv_forward_loops,
    conv_forward_offsets,
    pool_backward_loops,
    pool_forward_loops,
)

from autograder.numerics import numerical_gradient_array, rel_error


def random_conv_config(rng):
    k = int(rng.integers(1, 6))
    pad = int(rng.integers(0, 3))
    stride = int(rng.integers(1, 4))
    h = int(rng.integers(max(1, k - 2 * pad), 12))
    w = int(rng.integers(max(1, k - 2 * pad), 12))
    return int(rng.integers(1, 4)), h, w, int(rng.integers(1, 5)), k, int(rng.integers(1, 5)), stride, pad


def make_conv(ref, c, k, f, stride, pad, w, b):
    layer = ref.cnn_layers.ConvLayer2D(c, k, f, stride=stride, padding=pad, name="t")
    layer.params[layer.w_name] = w
    layer.params[layer.b_name] = b
    return layer


@pytest.mark.parametrize("seed", range(25))
def test_conv_forward_matches_loops(ref, seed):
    rng = np.random.default_rng(seed)
    n, h, w_, c, k, f, stride, pad = random_conv_config(rng)
    x, w, b = rng.standard_normal((n, h, w_, c)), rng.standard_normal((k, k, c, f)), rng.standard_normal(f)
    out = make_conv(ref, c, k, f, stride, pad, w, b).forward(x)
    assert type(out) is np.ndarray
    expected = conv_forward_loops(x, w, b, stride, pad)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_conv_forward_matches_scipy_correlate(ref, seed):
    """A second, library-based opinion: per filter, the sum over channels of 2-D correlations."""
    rng = np.random.default_rng(100 + seed)
    n, h, w_, c, k, f = 2, 9, 7, 3, 3, 4
    x, w, b = rng.standard_normal((n, h, w_, c)), rng.standard_normal((k, k, c, f)), rng.standard_normal(f)
    out = make_conv(ref, c, k, f, 1, 0, w, b).forward(x)
    for i in range(n):
        for j in range(f):
            expected = sum(correlate(x[i, :, :, ch], w[:, :, ch, j], mode="valid") for ch in range(c)) + b[j]
            np.testing.assert_allclose(out[i, :, :, j], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_conv_backward_matches_central_differences(ref, seed):
    rng = np.random.default_rng(200 + seed)
    n, h, w_, c, k, f, stride, pad = random_conv_config(rng)
    x, w, b = rng.standard_normal((n, h, w_, c)), rng.standard_normal((k, k, c, f)), rng.standard_normal(f)
    layer = make_conv(ref, c, k, f, stride, pad, w, b)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    assert layer.meta is None, "backward must clear meta"
    assert dx.shape == x.shape
    assert rel_error(dx, numerical_gradient_array(lambda v: layer.forward(v), x, dout, 1e-5)) < 1e-6
    assert rel_error(layer.grads[layer.w_name],
                     numerical_gradient_array(lambda _: layer.forward(x), w, dout, 1e-5)) < 1e-6
    assert rel_error(layer.grads[layer.b_name],
                     numerical_gradient_array(lambda _: layer.forward(x), b, dout, 1e-5)) < 1e-6


def test_conv_backward_without_forward_raises(ref):
    layer = ref.cnn_layers.ConvLayer2D(1, 3, 1)
    with pytest.raises(ValueError, match="No forward function called"):
        layer.backward(np.zeros((1, 1, 1, 1)))


def test_conv_forward_reads_params_every_call_and_keeps_input(ref):
    """The grad checks perturb params and inputs in place: no cached copies, no writes to x."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 5, 2))
    x_before = x.copy()
    layer = make_conv(ref, 2, 3, 2, 1, 1, rng.standard_normal((3, 3, 2, 2)), np.zeros(2))
    first = layer.forward(x)
    layer.params[layer.w_name] *= 2.0
    np.testing.assert_allclose(layer.forward(x), 2 * first)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("seed", range(20))
def test_pool_forward_matches_loops(ref, seed):
    rng = np.random.default_rng(300 + seed)
    size, stride = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(size, 11)), int(rng.integers(size, 11)),
                             int(rng.integers(1, 5))))
    out = ref.cnn_layers.MaxPoolingLayer(size, stride, "p").forward(x)
    np.testing.assert_array_equal(out, pool_forward_loops(x, size, stride))


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 1), (4, 2), (2, 3), (3, 2)])
def test_pool_backward_matches_central_differences_with_overlap(ref, size, stride):
    rng = np.random.default_rng(size * 10 + stride)
    shape = (2, 9, 8, 3)
    # Distinct values well apart, so the step never changes which element is the maximum.
    x = (rng.permutation(np.prod(shape)) * 0.01).reshape(shape).astype(np.float64)
    layer = ref.cnn_layers.MaxPoolingLayer(size, stride, "p")
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    assert rel_error(dx, numerical_gradient_array(lambda v: layer.forward(v), x, dout, 1e-5)) < 1e-8
    # Every upstream gradient lands somewhere: the totals agree even where windows overlap.
    assert np.isclose(dx.sum(), dout.sum())


def test_pool_backward_accumulates_a_shared_maximum(ref):
    """A maximum shared by overlapping windows receives the sum of their gradients."""
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 5.0  # the max of all four 2x2 windows with stride 1
    layer = ref.cnn_layers.MaxPoolingLayer(2, 1, "p")
    layer.forward(x)
    dx = layer.backward(np.arange(1.0, 5.0).reshape(1, 2, 2, 1))
    assert dx[0, 1, 1, 0] == 10.0
    assert np.count_nonzero(dx) == 1


@pytest.mark.parametrize("seed", range(6))
def test_benchmark_variants_compute_the_same_thing(ref, seed):
    """Timings of a wrong variant would mean nothing: every variant agrees with the reference."""
    rng = np.random.default_rng(400 + seed)
    n, h, w_, c, k, f, stride, pad = random_conv_config(rng)
    x, w, b = rng.standard_normal((n, h, w_, c)), rng.standard_normal((k, k, c, f)), rng.standard_normal(f)
    layer = make_conv(ref, c, k, f, stride, pad, w, b)
    out = layer.forward(x)
    for variant in (conv_forward_offsets, conv_forward_einsum):
        np.testing.assert_allclose(variant(x, w, b, stride, pad), out, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    for variant in (conv_backward_offsets, conv_backward_loops):
        got_dx, got_dw, got_db = variant(x, w, dout, stride, pad)
        np.testing.assert_allclose(got_dx, dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_dw, layer.grads[layer.w_name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_db, layer.grads[layer.b_name], rtol=1e-10, atol=1e-12)
    pool = ref.cnn_layers.MaxPoolingLayer(2, 1, "p")
    distinct = (rng.permutation(n * h * w_ * c) * 0.01).reshape(n, h, w_, c) if min(h, w_) >= 2 else None
    if distinct is not None:
        pdout = rng.standard_normal(pool.forward(distinct).shape)
        np.testing.assert_allclose(pool_backward_loops(distinct, pdout, 2, 1), pool.backward(pdout), atol=1e-12)

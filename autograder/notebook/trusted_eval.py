"""The grader's own forward pass: the student's saved weights in a network rebuilt by trusted code.

Why a small NumPy forward here rather than the reference's layer classes (autograder/staff/lib_loader.py):
the reference layers are written to teach and to train (`meta` kept for backward, computing in the
dtype of the parameters they hold: float64 in a handout-style network, whose layers ignore `dtype`);
evaluating the validation split and the held-out set with them takes 6-10 s per submission on one
core in float64, over the 3 s budget. This forward does only what evaluation needs, in
float32 (the data's own precision): convolution as one matrix product over a strided window view,
max-pooling as running maxima of strided slices, activations in place (leaky ReLU of any slope, ReLU,
GELU with the tanh approximation, as the parent identified each from its behaviour on the probe); it is
rebuilt directly from the description (any kernel, stride, padding, pool, slope) with no class to
construct. It is checked against the reference layers in tests/test_trusted_eval.py. It is staff-only
(left out of the student handout, like the reference), since a working convolution is part of what
students write.

Nothing here runs student code: the weights are plain arrays read with allow_pickle=False, and the
architecture is the grader's validated reading of the worker's description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from autograder.notebook.architecture import Architecture, Layer, gelu_tanh
from autograder.numerics import scaled_error

DTYPE = np.float32


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of NHWC images with a (K, K, C, F) weight, as the handout defines it."""
    n, height, width, channels = x.shape
    k, filters = weight.shape[0], weight.shape[3]
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out_h, out_w = (height + 2 * padding - k) // stride + 1, (width + 2 * padding - k) // stride + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride][:, :out_h, :out_w]
    # The view's last axes are (C, K, K): order the weight's rows the same way instead of the copy.
    out = windows.reshape(n * out_h * out_w, channels * k * k) @ weight.transpose(2, 0, 1, 3).reshape(-1, filters)
    if bias is not None:
        out += bias.reshape(filters)
    return out.reshape(n, out_h, out_w, filters)


def max_pool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """The maximum of each size x size window, per channel, no padding."""
    out_h, out_w = (x.shape[1] - size) // stride + 1, (x.shape[2] - size) // stride + 1
    span_h, span_w = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
    out = x[:, :span_h:stride, :span_w:stride, :].copy()
    for u in range(size):
        for v in range(size):
            if u or v:
                np.maximum(out, x[:, u:u + span_h:stride, v:v + span_w:stride, :], out=out)
    return out


def leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    """x where x >= 0, slope * x elsewhere; in place when it can be."""
    if 0.0 <= slope <= 1.0:
        return np.maximum(x, x * DTYPE(slope), out=x)
    return np.where(x >= 0, x, x * DTYPE(slope))


def fc_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    out = x @ weight
    if bias is not None:
        out += bias.reshape(-1)
    return out


def apply(layer: Layer, x: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """One rebuildable layer on a batch (dropout and identity pass it on: dropout is off)."""
    g = layer.geometry
    if layer.kind == "conv":
        return conv_forward(x, params[g["weight"]], params.get(g["bias"]) if g["bias"] else None,
                            g["stride"], g["padding"])
    if layer.kind == "pool":
        return max_pool(x, g["size"], g["stride"])
    if layer.kind == "fc":
        return fc_forward(x, params[g["weight"]], params.get(g["bias"]) if g["bias"] else None)
    if layer.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if layer.kind == "activation" and g["function"] == "gelu":
        return gelu_tanh(x)
    if layer.kind == "activation":
        return leaky_relu(x, g["slope"])
    return x


def weight_problems(architecture: Architecture, saved: Mapping[str, np.ndarray]) -> list[str]:
    """What is wrong with the saved weights for this network (missing, misshapen, not finite)."""
    problems = []
    for layer in architecture.layers:
        if not layer.chain:
            continue
        for name, shape in layer.params:
            if name not in saved:
                problems.append(f"{name} is missing")
                continue
            value = saved[name]
            if value.dtype.kind not in "biuf":
                problems.append(f"{name} holds {value.dtype} values, not numbers")
            elif tuple(value.shape) != tuple(shape):
                problems.append(f"{name} has shape {tuple(value.shape)}; your network's has {tuple(shape)}")
            elif not np.all(np.isfinite(value)):
                problems.append(f"{name} holds NaN or infinite values")
    return problems


@dataclass
class TrustedNet:
    """The rebuilt network: validated layers and the saved weights as float32 copies."""

    architecture: Architecture
    params: dict[str, np.ndarray]

    @classmethod
    def build(cls, architecture: Architecture, saved: Mapping[str, np.ndarray]) -> "TrustedNet":
        names = {name for layer in architecture.layers if layer.chain for name, _ in layer.params}
        return cls(architecture, {name: np.array(saved[name], dtype=DTYPE) for name in names})

    def scores(self, images: np.ndarray) -> np.ndarray:
        x = np.array(images, dtype=DTYPE)  # a copy: activations work in place, the caller's images stay
        for layer in self.architecture.layers:
            if layer.chain:
                x = apply(layer, x, self.params)
        return x.reshape(x.shape[0], -1)

    def predict(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """Classes for every image; -1 where an image's scores are not finite (never a lucky argmax)."""
        predictions = []
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, images.shape[0], batch):
                scores = self.scores(images[start:start + batch])
                chosen = np.argmax(scores, axis=1)
                chosen[~np.all(np.isfinite(scores), axis=1)] = -1
                predictions.append(chosen)
        return np.concatenate(predictions).astype(np.int64) if predictions else np.zeros(0, np.int64)


def layer_disagreements(architecture: Architecture, probe: np.ndarray, arrays: Mapping[str, np.ndarray],
                        tolerance: float) -> list[str]:
    """Layers whose output on the probe (with their initial parameters) differs from what the trusted
    layer of the same description computes: e.g. an average pooling described as pooling. For feedback;
    the evaluation uses the trusted layers whatever this says."""
    found = []
    x = np.asarray(probe, dtype=np.float64)
    for index, layer in enumerate(architecture.layers):
        out = arrays.get(f"out.{index}")
        if not layer.chain or out is None:
            continue
        if layer.rebuildable and layer.kind not in ("dropout", "identity"):
            params = {name: np.asarray(arrays.get(f"param.{index}.{name}"), dtype=np.float64)
                      for name, _ in layer.params if f"param.{index}.{name}" in arrays}
            try:
                with np.errstate(all="ignore"):
                    expected = apply(layer, np.array(x, dtype=np.float64), params)
                error = _layer_error(np.asarray(out), expected)
            except (KeyError, ValueError, TypeError):
                error = float("inf")
            if error > tolerance:
                found.append(f"{layer.path} ({layer.cls}) does not compute what a {layer.summary()} computes "
                             f"(relative error {error:.1e} on a probe)")
        x = np.asarray(out, dtype=np.float64)
    return found


def _layer_error(out: np.ndarray, expected: np.ndarray) -> float:
    """How far a layer's output is from its trusted twin's (float64). A float64 output: the handout's
    rel_error, element by element. An output in a lower precision (a network that honours the handout's
    dtype=np.float32): each element against the array's largest magnitude, since float32 rounds a sum to
    about 1e-7 of its terms, which the elementwise measure calls a large error wherever the sum nearly
    cancels (1e-3 on the reference's float32 convolutions; 1e-7 of the scale on this measure)."""
    if out.dtype.kind == "f" and np.finfo(out.dtype).eps > np.finfo(np.float64).eps:
        return scaled_error(out, expected, near_zero=1.0) if out.shape == expected.shape else float("inf")
    return _relative(np.asarray(out, dtype=np.float64), expected)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """The handout's rel_error; infinite where the arrays differ in shape or in non-finite entries."""
    if a.shape != b.shape:
        return float("inf")
    if not a.size or np.array_equal(a, b, equal_nan=True):
        return 0.0
    with np.errstate(all="ignore"):
        error = float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
    return error if np.isfinite(error) else float("inf")

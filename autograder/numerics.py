"""Trusted numerics: the handout's error measure and central-difference gradients.

Written here rather than imported from any assignment folder, so that fixture checks and
grading never depend on code a student could have changed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The handout's measure: max |x - y| / max(1e-8, |x| + |y|), elementwise then the max."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0 and y.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def worst_position(x: np.ndarray, y: np.ndarray) -> tuple[int, ...]:
    """Index of the element with the largest relative error, for a message a student can act on."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    errors = np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(errors)), errors.shape))


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                             upstream: np.ndarray, h: float) -> np.ndarray:
    """Central-difference vector-Jacobian product sum((f(x+h) - f(x-h)) * upstream) / 2h.

    x is perturbed in place and restored, so f must read the same array object.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes reach x
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = np.array(f(x), dtype=np.float64)
        flat[i] = old - h
        minus = np.array(f(x), dtype=np.float64)
        flat[i] = old
        grad_flat[i] = np.sum((plus - minus) * upstream) / (2 * h)
    return grad


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float) -> np.ndarray:
    """Central-difference gradient of a scalar function; x is perturbed in place and restored."""
    return numerical_gradient_array(lambda v: np.array(f(v)), x, np.array(1.0), h)

"""Trusted numerics: the handout's error measure, a measure for comparing floating-point
results that behaves near zero, and central-difference gradients.

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


def scaled_error(x: np.ndarray, y: np.ndarray, near_zero: float) -> float:
    """The handout's relative error, except that each element is measured against at least
    `near_zero` times the array's largest |x| + |y| instead of against itself alone.

    Why: a sum that cancels to nearly zero keeps the rounding error of its terms, so two
    correct computations that add in different orders (another BLAS) can disagree in the
    leading digits of such an element. The handout's measure calls that a large error; this
    one judges it against the array's scale, and every larger element as the handout does.
    Two all-zero arrays have error 0; non-finite values match only where they are identical.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        identical = (x == y) | (np.isnan(x) & np.isnan(y))
        if not identical[~finite].all():
            return float("inf")
        x, y = x[finite], y[finite]
    if x.size == 0:
        return 0.0
    magnitude = np.abs(x) + np.abs(y)
    floor = near_zero * float(magnitude.max())
    if floor == 0.0:  # both arrays are all zeros
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(magnitude, floor)))


def worst_position(x: np.ndarray, y: np.ndarray) -> tuple[int, ...]:
    """Index of the element with the largest relative error, for a message a student can act on."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    errors = np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(errors)), errors.shape))


#: Central-difference stencils by order: pairs (k, c); derivative = sum(c (f(x + k h) - f(x - k h))) / h.
#: Order 2 is the handout's (f(x+h) - f(x-h)) / 2h, truncation error h^2 f'''/6. Order 4 is
#: (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h, truncation error h^4 f'''''/30: a larger
#: step, hence less rounding error from the division by h, for the same truncation error.
#: Each pair is subtracted before it is weighted, so the weights never round f itself.
STENCILS: dict[int, tuple[tuple[float, float], ...]] = {
    2: ((1.0, 1 / 2),),
    4: ((1.0, 8 / 12), (2.0, -1 / 12)),
}


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                             upstream: np.ndarray, h: float, order: int = 2) -> np.ndarray:
    """Central-difference vector-Jacobian product: sum(df/dx_i * upstream) for every i of x.

    `order` 2 is the handout's sum((f(x+h) - f(x-h)) * upstream) / 2h; 4 is the fourth-order
    stencil of STENCILS. x is perturbed in place and restored, so f must read the same array
    object.
    """
    stencil = STENCILS[order]
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes reach x
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        combined = 0.0
        for k, weight in stencil:
            flat[i] = old + k * h
            plus = np.array(f(x), dtype=np.float64)
            flat[i] = old - k * h
            minus = np.array(f(x), dtype=np.float64)
            combined = combined + weight * (plus - minus)
        flat[i] = old
        grad_flat[i] = np.sum(combined * upstream) / h
    return grad


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float, order: int = 2) -> np.ndarray:
    """Central-difference gradient of a scalar function; x is perturbed in place and restored."""
    return numerical_gradient_array(lambda v: np.array(f(v)), x, np.array(1.0), h, order)

"""Validators for what the worker sends back: each returns quietly or raises CheckFailed.

The parent decides everything here: type (exactly numpy.ndarray), dtype (real numbers),
shape, finiteness, then the value against the fixture with the handout's rel_error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.evidence import shape_evidence, value_evidence
from autograder.numerics import rel_error, worst_position
from autograder.outcomes import (
    CheckFailed,
    NotFinite,
    NotImplementedYet,
    WrongNumbers,
    WrongShape,
    WrongType,
    WrongValue,
)


def _describe(value: dict[str, Any]) -> str:
    kind = value.get("kind")
    if kind == "sequence":
        return f"a {value.get('type')} of length {value.get('length')}"
    if kind == "scalar":
        return f"a {value.get('type')} scalar"
    if kind == "missing":
        return "missing"
    note = f" ({value['note']})" if value.get("note") else ""
    return f"a {value.get('type', 'value')}{note}"


def as_array(value: Any, what: str) -> np.ndarray:
    """The value as a real-number ndarray, or CheckFailed saying what it is instead."""
    if isinstance(value, dict):
        if value.get("kind") == "none":
            raise CheckFailed(NotImplementedYet(what))
        raise CheckFailed(WrongType(what, _describe(value), "a numpy.ndarray"))
    if type(value) is not np.ndarray:
        raise CheckFailed(WrongType(what, type(value).__name__, "a numpy.ndarray"))
    if value.dtype.kind not in "biuf":
        raise CheckFailed(WrongType(what, f"an array of dtype {value.dtype}", "an array of real numbers"))
    return value


def expect_array(value: Any, expected: np.ndarray, tolerance: float, what: str, same_size_ok: bool = False,
                 name: str = "", like: str = "") -> None:
    """`value` must be an ndarray of expected's shape (or size, if allowed) within `tolerance`.

    A wrong one carries what it is (autograder/evidence.py): `name` is the array as the interface calls
    it ("your dimg") and `like` whose shape it should have ("the input's"); with a `like`, the array is an
    image batch (NHWC) and its shape is read dimension by dimension."""
    array = as_array(value, what)
    called = name or f"the value of {what}"
    if array.shape != expected.shape:
        if not (same_size_ok and array.size == expected.size):
            seen = shape_evidence(tuple(array.shape), tuple(expected.shape), called, like) if like else None
            raise CheckFailed(WrongShape(what, tuple(array.shape), tuple(expected.shape), seen))
        array = array.reshape(expected.shape)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise CheckFailed(NotFinite(what, bad))
    error = rel_error(array, expected)
    if not error <= tolerance:
        where = worst_position(array, expected)
        seen = value_evidence(array, expected, tolerance, called, nhwc=bool(like))
        raise CheckFailed(WrongValue(what, error, tolerance, where, float(array[where]), float(expected[where]),
                                     seen))


def expect_scalar(value: Any, expected: float, tolerance: float, what: str) -> None:
    """A number (Python, NumPy scalar, or one-element array) within an absolute tolerance."""
    if isinstance(value, dict) and value.get("kind") == "scalar":
        number = float(value["value"])
    else:
        array = as_array(value, what)
        if array.size != 1:
            raise CheckFailed(WrongShape(what, tuple(array.shape), ()))
        number = float(array.reshape(()))
    if not np.isfinite(number):
        raise CheckFailed(NotFinite(what, 1))
    if not abs(number - expected) <= tolerance:
        raise CheckFailed(WrongValue(what, abs(number - expected), tolerance, (), number, expected))


def expect_size(value: Any, expected: np.ndarray, what: str) -> None:
    """An output size: a list, tuple or array of integers (or integral floats), compared by value."""
    if isinstance(value, dict) and value.get("kind") == "sequence":
        items = value.get("items", [])
        if all(item is None for item in items):
            raise CheckFailed(NotImplementedYet(what))
        if any(not isinstance(item, (int, float)) or isinstance(item, bool) for item in items):
            raise CheckFailed(WrongType(what, f"{_describe(value)} holding {items}", "four integers"))
        numbers = np.array(items, dtype=np.float64)
    else:
        numbers = as_array(value, what).astype(np.float64).reshape(-1)
    if numbers.shape != expected.shape:
        raise CheckFailed(WrongShape(what, tuple(numbers.shape), tuple(expected.shape)))
    if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
        raise CheckFailed(WrongType(what, f"non-integral values {numbers.tolist()}", "integers"))
    if not np.array_equal(numbers, expected.astype(np.float64)):
        got = [int(n) for n in numbers]
        raise CheckFailed(WrongNumbers(what, str(got), str([int(n) for n in expected])))

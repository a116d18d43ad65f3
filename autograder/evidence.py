"""What a wrong output is, seen from the returned array beside the expected one.

A case that fails says how far off it is; what a student needs first is what kind of wrong it is,
because the kind points at the bug: a width that has taken the height's value, a result that is all
zeros, the height and width swapped, the right values in the wrong places or times a constant. The
checks (autograder/checks/expect.py) ask this module about every wrong array, in the parent, from
the arrays themselves (never from anything the worker says about them), and keep the answer on the
case's outcome. The diagnosis (autograder/diagnosis.py) names a form shared by a part's failing cases
as its own pattern, and gives a case-attribute hint only where no form contradicts it.

Shapes are read in the interface's layout, NHWC, so that a dimension is named as students know it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autograder.numerics import rel_error

#: The interface's layout: (batch, height, width, channels).
NHWC = ("batch", "height", "width", "channels")

#: The other spatial dimension of each: a bug that mixes them up is the usual one.
PARTNER = {"height": "width", "width": "height"}


@dataclass(frozen=True)
class Evidence:
    """The form of one wrong output: a code (`width_from_height`; "" for a wrong shape of no known form),
    one clause about this case ("your dimg has width 5 where the input's is 10"), and for a wrong shape
    the NHWC dimensions that differ ("ndim" when the number of dimensions does)."""

    form: str
    text: str
    dims: tuple[str, ...] = ()


def _from_forms() -> dict[str, str]:
    words = {}
    for taken in NHWC:
        for source in NHWC:
            if taken != source:
                words[f"{taken}_from_{source}"] = f"the {taken} taken from the {source}"
    return words


#: Words for every form, for reports that read codes (the class report, the table's reason).
EVIDENCE_TEXT: dict[str, str] = {
    **_from_forms(),
    "transposed": "the height and width swapped",
    "zeros": "all zeros",
    "returned_none": "None returned",
    "shifted": "the right values, shifted",
    "misplaced": "the right values in the wrong places",
    "scaled": "the right values times a constant",
}


def _taken_from(dim: int, got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    """The NHWC dimension whose value the wrong dimension `dim` has taken, or "".

    Equal to the other's expected size; or, for the height and width, between its own size and the
    other's, which is what a slice by the other's length gives when the array ends first
    (`dx[:, p:H + p, p:H + p]` on a padded width shorter than H + p)."""
    name = NHWC[dim]
    partner = PARTNER.get(name)
    order = ([NHWC.index(partner)] if partner else []) + [i for i in range(4) if i != dim and NHWC[i] != partner]
    for other in order:
        if got[dim] == expected[other]:
            return NHWC[other]
    if partner:
        other = NHWC.index(partner)
        low, high = sorted((expected[dim], expected[other]))
        if low < got[dim] < high:
            return partner
    return ""


def shape_evidence(got: tuple[int, ...], expected: tuple[int, ...], name: str, like: str) -> Evidence:
    """The form of a wrong NHWC shape: `name` is the array as the student knows it ("your dimg"), `like`
    whose shape it should have ("the input's")."""
    if len(got) != 4 or len(expected) != 4:
        return Evidence("", f"{name} has {len(got)} dimensions where {like} has {len(expected)} (NHWC)", ("ndim",))
    differ = [i for i in range(4) if got[i] != expected[i]]
    dims = tuple(NHWC[i] for i in differ)
    sizes = " and ".join(f"{NHWC[i]} {got[i]}" for i in differ)
    theirs = " and ".join(str(expected[i]) for i in differ)
    text = f"{name} has {sizes} where {like} {'is' if len(differ) == 1 else 'are'} {theirs}"
    if dims == ("height", "width") and (got[1], got[2]) == (expected[2], expected[1]):
        return Evidence("transposed", text, dims)
    if len(differ) == 1:
        source = _taken_from(differ[0], got, expected)
        if source:
            return Evidence(f"{dims[0]}_from_{source}", text, dims)
    return Evidence("", text, dims)


def _shift(got: np.ndarray, expected: np.ndarray, tolerance: float, reach: int) -> tuple[int, int] | None:
    """The (rows, columns) by which the expected values sit moved in `got` (NHWC), over at least half the
    image, or None."""
    height, width = expected.shape[1:3]
    for rows in range(-reach, reach + 1):
        for columns in range(-reach, reach + 1):
            if (rows, columns) == (0, 0) or (height - abs(rows)) * 2 < height or (width - abs(columns)) * 2 < width:
                continue
            ours = got[:, max(rows, 0):height + min(rows, 0), max(columns, 0):width + min(columns, 0)]
            theirs = expected[:, max(-rows, 0):height + min(-rows, 0), max(-columns, 0):width + min(-columns, 0)]
            if np.any(theirs != 0) and rel_error(ours, theirs) <= tolerance:
                return rows, columns
    return None


def _factor_words(factor: float) -> str:
    """A constant factor as a student would look for it: divided by 240 (a mean over 240 values), times 2,
    the sign flipped."""
    if abs(factor + 1) < 1e-6:
        return "the expected one with its sign flipped"
    for value, words in ((1 / factor, "the expected one divided by {}"), (factor, "the expected one times {}")):
        whole = round(value)
        if abs(whole) >= 2 and abs(value - whole) < 1e-4 * abs(value):
            return words.format(whole)
    return f"{factor:.4g} times the expected one"


def _times(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def value_evidence(got: np.ndarray, expected: np.ndarray, tolerance: float, name: str, nhwc: bool) -> Evidence | None:
    """The form of wrong values in an array of the right shape, or None where they have none we know."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or got.size == 0 or not np.any(expected != 0):
        return None
    if not np.any(got != 0):
        return Evidence("zeros", f"{name} is all zeros")
    if nhwc and got.ndim == 4 and got.shape[1] == got.shape[2] and rel_error(got, expected.swapaxes(1, 2)) <= tolerance:
        return Evidence("transposed", f"{name} holds the expected values with the height and width swapped")
    factor = float(np.sum(got * expected) / np.sum(expected * expected))
    if abs(factor - 1) > 1e-3 and factor != 0 and rel_error(got, factor * expected) <= tolerance:
        return Evidence("scaled", f"every value of {name} is {_factor_words(factor)}")
    if nhwc and got.ndim == 4 and min(got.shape[1:3]) > 1:
        moved = _shift(got, expected, tolerance, reach=2)
        if moved is not None:
            rows, columns = moved
            parts = [f"{_times(abs(rows), 'row')} {'down' if rows > 0 else 'up'}" if rows else "",
                     f"{_times(abs(columns), 'column')} {'right' if columns > 0 else 'left'}" if columns else ""]
            return Evidence("shifted", f"{name} holds the expected values moved {' and '.join(p for p in parts if p)}")
    if rel_error(np.sort(got, axis=None), np.sort(expected, axis=None)) <= tolerance:
        return Evidence("misplaced", f"{name} holds exactly the expected values, in other places")
    return None

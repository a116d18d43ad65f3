"""What separates a part's failing cases from its passing ones: feedback that locates the bug.

For each component of a code item, `diagnose` looks at every case it was judged on. When some
fail and others pass and one attribute of the cases (autograder/attributes.py: padding 0, a
non-square input, a batch of more than one image, ...) is on one side for every failing case
and on the other for every passing case, the pattern is named, with a hint where we know the
usual cause ("fails exactly the 5 cases with padding 0 and passes the other 2: ..."). Otherwise
the failing cases are listed plainly: no hint that another case contradicts. Each named pattern
also has a code (`conv_backward.dimg.padding_0`) for results.json, which the class report counts.

The same rule governs guesses about None: "is the TODO still empty?" only when every case of the
part returned None; where others returned arrays the cases say "returned None in this case".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from autograder.attributes import BY_ITEM, SIDE_TEXT
from autograder.outcomes import HarnessFault, NotImplementedYet, NotRunAfterTimeouts, ReturnedNone

if TYPE_CHECKING:
    from autograder.model import CaseResult

#: Usual causes, by (item, component, side); "*" matches any item or component. Only consulted
#: when the side explains every failure of the part.
HINTS: dict[tuple[str, str, str], str] = {
    ("conv_backward", "dimg", "padding_0"):
        "look at how dimg drops the padding (`x[p:-p]` is empty when p = 0; `x[p:p + height]` works for every p)",
    ("*", "*", "padding_0"):
        "look at what your code does when the padding is 0 (a slice such as `x[p:-p]` is empty when p = 0)",
    ("*", "*", "padding_positive"):
        "check the padding: p zeros on each side of the height and the width (not the batch or channels), "
        "counted in the output size as (H + 2p - k) // stride + 1",
    ("*", "*", "non_square"):
        "somewhere the height is used where the width belongs (or the other way round): check the output "
        "size and every loop or slice over the width",
    ("pool_forward", "*", "channels_many"):
        "take the maximum of each channel on its own, over the window's rows and columns only (not across channels)",
    ("pool_backward", "*", "channels_many"):
        "route each channel's gradient to that channel's own maximum (the maximum is per channel)",
    ("*", "*", "channels_many"):
        "check the channel axis: the kernel covers every input channel (w has shape (k, k, C, F)) and "
        "each channel keeps its own values and gradient",
    ("*", "*", "batch_many"):
        "something mixes the images of the batch: a sum, mean or max over axis 0 (only dW and db add up "
        "over the batch), or an index that assumes one image",
    ("*", "*", "batch_one"):
        "look for a squeeze, or an axis that disappears when the batch has one image",
    ("*", "*", "channels_one"):
        "look for a squeeze, or an axis that disappears when there is one channel",
    ("*", "*", "kernel_many"):
        "check how the kernel meets each window: w[u, v, c, f] multiplies the window's pixel at offset (u, v), "
        "for every u, v < k (a cross-correlation: the kernel is not flipped)",
    ("*", "*", "kernel_one"):
        "look for a range or slice that is empty, or an axis that disappears, when the kernel is 1x1",
    ("*", "*", "stride_many"):
        "check the stride: windows start every `stride` pixels (i * stride), and the output size divides by it",
    ("output_size", "*", "uneven_stride"):
        "the stride does not divide (H + 2p - k) here: the size is a floor division, (H + 2p - k) // stride + 1",
    ("pool_forward", "*", "uneven_stride"):
        "the stride does not divide (H - pool) here: the output size is (H - pool) // stride + 1 (floor), and "
        "the last rows or columns belong to no window",
    ("pool_backward", "*", "uneven_stride"):
        "the stride does not divide (H - pool) here: the last rows or columns belong to no window and get "
        "gradient 0",
    ("*", "*", "uneven_stride"):
        "the stride does not divide (H + 2p - k) here: the output size is a floor division, and the last "
        "rows or columns of the padded input belong to no window",
    ("pool_forward", "*", "overlapping"):
        "the output size is (H - pool) // stride + 1, with the stride, not the pool size, and window i "
        "starts at i * stride",
    ("pool_backward", "*", "overlapping"):
        "a pixel can be the maximum of several windows, so add their gradients (`+=`) instead of overwriting",
}


def hint(item: str, component: str, side: str) -> str:
    """The usual cause of a part failing exactly on one side of an attribute, or ""."""
    for key in ((item, component, side), (item, "*", side), ("*", "*", side)):
        if key in HINTS:
            return HINTS[key]
    return ""


def pattern_code(item: str, component: str, side: str) -> str:
    """A pattern's machine-readable code: item, component (when the item has several), side."""
    return ".".join(part for part in (item, component, side) if part)


def split_code(code: str) -> tuple[str, str, str]:
    """(item, component, side) of a pattern code; component "" for an item without components."""
    parts = code.split(".")
    return (parts[0], parts[1] if len(parts) == 3 else "", parts[-1])


@dataclass(frozen=True)
class Diagnosis:
    """A part's cases seen together: one sentence, and the codes of the patterns it names."""

    summary: str = ""
    patterns: tuple[str, ...] = ()


def _plural(count: int, word: str = "case") -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _refine_none(results: list[CaseResult]) -> list[CaseResult]:
    """NotImplementedYet becomes ReturnedNone when another case of the part returned an answer."""
    if all(isinstance(r.outcome, NotImplementedYet) for r in results):
        return results
    return [replace(r, outcome=ReturnedNone(r.outcome.what, r.outcome.how))
            if isinstance(r.outcome, NotImplementedYet) else r for r in results]


def _matches(item: str, failing: list[CaseResult], passing: list[CaseResult]) -> list[str]:
    """The sides that every failing case has and no passing case has."""
    if item not in BY_ITEM or not all(r.sides for r in failing + passing):
        return []
    found = []
    for index in range(len(BY_ITEM[item])):
        side = failing[0].sides[index]
        if all(r.sides[index] == side for r in failing) and all(r.sides[index] != side for r in passing):
            found.append(side)
    return found


def diagnose(item: str, component: str, results: Sequence[CaseResult]) -> tuple[tuple[CaseResult, ...], Diagnosis]:
    """The part's results (None outcomes refined) and what they show together."""
    results = _refine_none(list(results))
    failing = [r for r in results if not r.outcome.passed]
    passing = [r for r in results if r.outcome.passed]
    if not failing or len(results) < 2:
        return tuple(results), Diagnosis()
    if not passing:
        if all(isinstance(r.outcome, NotImplementedYet) for r in failing):
            first = failing[0].outcome
            text = f"every case: {first.what} {first.how} (is the TODO still empty?)"
        else:
            labels = sorted({r.outcome.label for r in failing})
            text = f"fails all {_plural(len(results))}" + (f" ({labels[0]})" if len(labels) == 1 else "")
        return tuple(results), Diagnosis(text)
    names = ", ".join(f"`{r.case}`" for r in failing)
    unjudged = [r for r in results if isinstance(r.outcome, (HarnessFault, NotRunAfterTimeouts))]
    matches = [] if unjudged else _matches(item, failing, passing)
    if len(matches) == 1:
        side = matches[0]
        text = (f"fails exactly the {_plural(len(failing))} with {SIDE_TEXT[side]} and passes the other "
                f"{len(passing)}")
        advice = hint(item, component, side)
        return tuple(results), Diagnosis(f"{text}: {advice}" if advice else text,
                                         (pattern_code(item, component, side),))
    if matches:
        described = " and, alike, ".join(SIDE_TEXT[side] for side in matches)
        text = (f"fails exactly the {_plural(len(failing))} with {described} (these cases cannot tell the two "
                f"apart) and passes the other {len(passing)}")
        return tuple(results), Diagnosis(text, tuple(pattern_code(item, component, side) for side in matches))
    return tuple(results), Diagnosis(f"fails {len(failing)} of {_plural(len(results))}: {names}")

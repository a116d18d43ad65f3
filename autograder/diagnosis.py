"""What a part's failing cases show together: feedback that locates the bug, and never misleads.

For each component of a code item, `diagnose` looks at every case it was judged on, in two steps.

First, what the wrong outputs are (autograder/evidence.py, read by the parent from the arrays): a
dimension that has taken another's value, all zeros, None, the height and width swapped, the right
values shifted, in the wrong places or times a constant. A form that every failing case shows is
named as its own pattern, with the question it raises ("your dimg has width 5 where the input's is
10 ...: is the width taken from the height?").

Second, the cases' attributes (autograder/attributes.py: padding 0, a non-square input, a batch of
more than one image, ...). When one attribute is on one side for every failing case and on the other
for every passing case, it is named ("fails exactly the 5 cases with padding 0 and passes the other
2: ..."), but only where nothing the failing cases returned contradicts it: a wrong shape
contradicts a stride hint unless it is the shape that the stride arithmetic gives. A coincidence of
the hidden cases (a width taken from the height that fails exactly the cases whose stride does not
divide the input) is then said as a coincidence, with no hint.

Each named pattern has a code (`conv_backward.dimg.padding_0`, `conv_backward.dimg.width_from_height`)
for results.json, which the class report counts. The same rule governs guesses about None: "is the
TODO still empty?" only when every case of the part returned None; where others returned arrays the
cases say "returned None in this case".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from autograder.attributes import BY_ITEM, SIDE_TEXT
from autograder.evidence import EVIDENCE_TEXT, Evidence
from autograder.model import CaseResult, Diagnosis, pattern_code, split_code
from autograder.outcomes import (
    HarnessFault,
    NotImplementedYet,
    NotRunAfterTimeouts,
    Outcome,
    ReturnedNone,
    WrongShape,
    WrongValue,
)

__all__ = ["Diagnosis", "diagnose", "form_hint", "hint", "pattern_code", "split_code"]

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


#: The question each form of wrong output raises. `{taken}`/`{source}` are the dimensions of a
#: `<taken>_from_<source>` form.
FORM_HINTS: dict[str, str] = {
    "spatial_from": "is the {taken} taken from the {source} (a size, or a slice bound such as "
                    "`p:{source_short} + p` where `p:{taken_short} + p` belongs)?",
    "other_from": "is the {taken} taken from the {source}? Check which axis each size is read from (NHWC: "
                  "batch, height, width, channels)",
    "transposed": "are the height and width swapped (a transpose or reshape that puts the axes back in another "
                  "order, or i and j exchanged)? The layout is NHWC throughout",
    "zeros": "is the result ever written? Look for values computed into a copy or a slice that is then dropped, or "
             "a loop that never runs in these cases",
    "returned_none": "look for a way through your code that ends without `return` (a branch these cases take)",
    "shifted": "check where each window starts and where its result goes: i * stride in the (padded) input, and "
               "the padding's offset p when it is cropped off",
    "misplaced": "check the order of the axes (NHWC) and the position each value is written to: a reshape or "
                 "transpose in the wrong order keeps the values and moves them",
    "scaled": "look for a division, a mean where a sum belongs, a count or a sign that does not belong",
}

_SHORT = {"height": "H", "width": "W"}


def form_hint(form: str) -> str:
    """The question a form of wrong output raises, or ""."""
    if "_from_" in form:
        taken, source = form.split("_from_")
        key = "spatial_from" if taken in _SHORT and source in _SHORT else "other_from"
        return FORM_HINTS[key].format(taken=taken, source=source, taken_short=_SHORT.get(taken, ""),
                                      source_short=_SHORT.get(source, ""))
    return FORM_HINTS.get(form, "")


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


def evidence_of(outcome: Outcome) -> Evidence | None:
    """What a failing case's output was, where the check saw a form (or None was returned)."""
    if isinstance(outcome, (WrongShape, WrongValue)):
        return outcome.evidence
    if isinstance(outcome, (ReturnedNone, NotImplementedYet)):
        return Evidence("returned_none", f"{outcome.what} {outcome.how}")
    return None


_SPATIAL = {"height", "width"}
#: The sides of an attribute whose bug changes an image's height or width, and can change its shape.
_SPATIAL_SIDES = {"padding_0", "padding_positive", "kernel_many", "kernel_one", "stride_many", "overlapping"}
#: Which forms of wrong values each side's usual bug can give (returned None and all zeros fit any side:
#: they say that nothing was computed in these cases, not how).
_VALUE_FORMS = {
    "transposed": {"square"},
    "scaled": {"batch_many", "channels_many", "kernel_many", "stride_many", "overlapping", "padding_positive"},
    "shifted": _SPATIAL_SIDES | {"non_square", "uneven_stride"},
    "misplaced": _SPATIAL_SIDES | {"non_square", "uneven_stride", "batch_many", "channels_many"},
}


def _stride_shape(outcome: WrongShape, result: CaseResult) -> bool:
    """Whether a wrong shape is what stride arithmetic gives where the stride does not divide: each wrong
    dimension one off (a size rounded the other way), or short by the remainder (an input rebuilt from the
    output size as (out - 1) * stride + k - 2p)."""
    g = result.geometry
    if g is None or len(outcome.got) != 4 or len(outcome.expected) != 4:
        return False
    for index, size in ((1, g.height), (2, g.width)):
        got, wanted = outcome.got[index], outcome.expected[index]
        if got == wanted:
            continue
        remainder = (size + 2 * g.padding - g.kernel) % g.stride
        if remainder == 0 or got not in (wanted - 1, wanted + 1, wanted - remainder):
            return False
    return all(outcome.got[i] == outcome.expected[i] for i in (0, 3))


def _fits(side: str, result: CaseResult) -> bool:
    """Whether what this failing case returned is consistent with a bug tied to `side`."""
    outcome = result.outcome
    seen = evidence_of(outcome)
    if seen is None or seen.form in ("returned_none", "zeros"):
        return True
    if isinstance(outcome, WrongShape):
        dims = set(seen.dims)
        if side == "non_square":
            return "_from_" in seen.form and set(seen.form.split("_from_")) == _SPATIAL or seen.form == "transposed"
        if side == "uneven_stride":
            return _stride_shape(outcome, result)
        if side in _SPATIAL_SIDES:
            return bool(dims) and dims <= _SPATIAL
        if side.startswith("batch_"):
            return bool(dims) and dims <= {"batch", "ndim"}
        if side.startswith("channels_"):
            return bool(dims) and dims <= {"channels", "ndim"}
        return False
    return side in _VALUE_FORMS.get(seen.form, set())


def _common_form(failing: list[CaseResult]) -> tuple[str, list[Evidence]]:
    """The form every failing case shows ("" if they do not share one), and each case's evidence."""
    seen = [evidence_of(r.outcome) for r in failing]
    forms = {each.form if each is not None else "" for each in seen}
    form = forms.pop() if len(forms) == 1 else ""
    return form, [each for each in seen if each is not None]


def _visible(form: str, failing: list[CaseResult], seen: list[Evidence]) -> str:
    """What the failing cases show, in one clause with the question it raises."""
    first = f"in `{failing[0].case}` {seen[0].text}"
    others = len(failing) - 1
    alike = f", and alike in the other {others}" if others > 1 else (", and alike in the other" if others else "")
    question = form_hint(form)
    return f"{first}{alike}" + (f": {question}" if question else "")


def _visible_withheld(form: str, failing: list[CaseResult], seen: list[Evidence]) -> str:
    """`_visible` as students read it before the due date: the first failing case's own words ("your dimg has
    width 5 where the input's is 10") tell a hidden case's shape, so a public case's are shown where one fails
    alike, else the form in words alone ("the width taken from the height"); "" when `_visible` tells nothing
    hidden."""
    if failing[0].visibility != "hidden":
        return ""
    public = [(case, each) for case, each in zip(failing, seen) if case.visibility != "hidden"]
    question = form_hint(form)
    if public:
        case, each = public[0]
        said = f"in `{case.case}` {each.text}, and alike in the others"
    else:
        said = f"{EVIDENCE_TEXT.get(form, 'the same form')} in each"
    return said + (f": {question}" if question else "")


def _withheld(head: str, form: str, failing: list[CaseResult], seen: list[Evidence]) -> str:
    """The diagnosis `head` + what the failing cases show, as students read it before the due date; "" when
    the full sentence tells nothing of a hidden case."""
    clause = _visible_withheld(form, failing, seen)
    return head + clause if clause else ""


def diagnose(item: str, component: str, results: Sequence[CaseResult]) -> tuple[tuple[CaseResult, ...], Diagnosis]:
    """The part's results (None outcomes refined) and what they show together."""
    results = _refine_none(list(results))
    failing = [r for r in results if not r.outcome.passed]
    passing = [r for r in results if r.outcome.passed]
    if not failing or len(results) < 2:
        return tuple(results), Diagnosis()
    form, seen = _common_form(failing)
    form_code = (pattern_code(item, component, form),) if form else ()
    if not passing:
        if all(isinstance(r.outcome, NotImplementedYet) for r in failing):
            first = failing[0].outcome
            return tuple(results), Diagnosis(f"every case: {first.what} {first.how} (is the TODO still empty?)")
        if form:
            head = f"fails all {_plural(len(results))}, each for the same visible reason: "
            return tuple(results), Diagnosis(head + _visible(form, failing, seen), form_code,
                                             _withheld(head, form, failing, seen))
        labels = sorted({r.outcome.label for r in failing})
        text = f"fails all {_plural(len(results))}" + (f" ({labels[0]})" if len(labels) == 1 else "")
        return tuple(results), Diagnosis(text)
    names = ", ".join(f"`{r.case}`" for r in failing)
    unjudged = [r for r in results if isinstance(r.outcome, (HarnessFault, NotRunAfterTimeouts))]
    matches = [] if unjudged else _matches(item, failing, passing)
    fitting = [side for side in matches if all(_fits(side, r) for r in failing)]
    contradicted = [side for side in matches if side not in fitting]
    if form:
        if len(fitting) == 1:
            side = fitting[0]
            head = (f"fails exactly the {_plural(len(failing))} with {SIDE_TEXT[side]} and passes the other "
                    f"{len(passing)}")
            codes = form_code + (pattern_code(item, component, side),)
        else:
            head = f"fails {len(failing)} of {_plural(len(results))} ({names})"
            codes = form_code
        head += ", each for the same visible reason: "
        return tuple(results), Diagnosis(head + _visible(form, failing, seen), codes,
                                         _withheld(head, form, failing, seen))
    if len(fitting) == 1:
        side = fitting[0]
        text = (f"fails exactly the {_plural(len(failing))} with {SIDE_TEXT[side]} and passes the other "
                f"{len(passing)}")
        advice = hint(item, component, side)
        return tuple(results), Diagnosis(f"{text}: {advice}" if advice else text,
                                         (pattern_code(item, component, side),))
    if fitting:
        described = " and, alike, ".join(SIDE_TEXT[side] for side in fitting)
        text = (f"fails exactly the {_plural(len(failing))} with {described} (these cases cannot tell the two "
                f"apart) and passes the other {len(passing)}")
        return tuple(results), Diagnosis(text, tuple(pattern_code(item, component, side) for side in fitting))
    text = f"fails {len(failing)} of {_plural(len(results))}: {names}"
    if contradicted:
        text += (f" (exactly those with {' and, alike, '.join(SIDE_TEXT[side] for side in contradicted)}, but what "
                 "they return is not what a bug tied to that gives: see each case)")
    return tuple(results), Diagnosis(text)

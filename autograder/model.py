"""The model of a grade: what a case, a component, an item and a submission came to, with codes.

These types are the grade's vocabulary, shared by the stages that make it (checks, notebook,
score) and those that read it (reports, gradebook, class report, manual merge). The module
imports neither pytest nor the sandbox, so that reading or rewriting a grade never loads what
runs student code. Every status and reason has a machine-readable code (`ReasonCode`,
`ItemStatus`), written to results.json's extra_data as `reason_code` and `grading`: readers
count codes, never parse the prose meant for students.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

try:
    from enum import StrEnum
except ImportError:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same behaviour, spelled out
    class StrEnum(str, Enum):  # type: ignore[no-redef]
        """Members are their own string values: equal to them, printed and formatted as them."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)
from typing import Any

from autograder.attributes import SIDE_TEXT, Geometry
from autograder.evidence import EVIDENCE_TEXT
from autograder.outcomes import Outcome
from autograder.rubric import RELEASE_TAGS, Component, Item


class ReasonCode(StrEnum):
    """Why a case, a component or an item ended as it did (results.json `reason_code`)."""

    PASSED = "passed"
    # a case's outcome (autograder/outcomes.py `code`)
    NOT_IMPLEMENTED = "not_implemented"
    RETURNED_NONE = "returned_none"
    WRONG_TYPE = "wrong_type"
    WRONG_SHAPE = "wrong_shape"
    NOT_FINITE = "not_finite"
    WRONG_VALUE = "wrong_value"
    WRONG_STRUCTURE = "wrong_structure"
    STUDENT_EXCEPTION = "student_exception"
    NUMERICAL_BACKWARD = "numerical_backward"  # right values from finite differences of forward
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    PROCESS_EXITED = "process_exited"
    HARNESS_FAULT = "harness_fault"
    # an item that could not be graded, or a notebook item's verdict
    UNREADABLE_SUBMISSION = "unreadable_submission"
    NOTEBOOK_UNREADABLE = "notebook_unreadable"
    NOT_RUN = "not_run"
    NO_ACCURACY = "no_accuracy"
    BELOW_THRESHOLD = "below_threshold"
    UNVERIFIED = "unverified"
    RULE_VIOLATION = "rule_violation"
    WEIGHTS_NOT_EVALUABLE = "weights_not_evaluable"
    NO_FILTERS = "no_filters"
    FILTERS_NOT_MATCHED = "filters_not_matched"  # weights to check against, and the image does not show them
    FILTERS_PROVISIONAL = "filters_provisional"  # no weights to check against: staff confirm
    FILTERS_UNCERTAIN = "filters_uncertain"  # some filters recognised, too few to pass: staff look at it
    SAME_FIGURE = "same_figure"  # the filter image is another figure of the notebook again
    PENDING_STAFF = "pending_staff"
    NO_ANSWER = "no_answer"
    NO_EXTRA_CREDIT = "no_extra_credit"  # an edition with extra credit, and no extra-credit work in the notebook
    STAFF_SCORE = "staff_score"  # set by staff with merge-manual (the grader's own code kept beside it)


class ItemStatus(StrEnum):
    """How far an item was graded (results.json `grading`)."""

    GRADED = "graded"
    SELF_CHECK = "self-check"  # public cases only, no points
    PENDING = "pending"  # staff grade it
    NOT_GRADED = "not graded"


class BatchStatus(StrEnum):
    """What a batch did with one submission in this run (the summary's counts); the gradebook's `status`
    is how final the grade is (`RowStatus`), whichever run made it."""

    NOT_GRADED_YET = "not graded yet"  # the batch is running, or was stopped before it
    GRADED = "graded"
    UNCHANGED = "unchanged"
    HARNESS_FAULT = "harness fault"
    TIMED_OUT = "timed out"  # past the batch's deadline: stopped, every item 0 (results.json says so)


def pattern_code(item: str, component: str, side: str) -> str:
    """A pattern's machine-readable code: item, component (when the item has several), and the side of a
    case attribute (`padding_0`) or the form of the wrong outputs (`width_from_height`)."""
    return ".".join(part for part in (item, component, side) if part)


def split_code(code: str) -> tuple[str, str, str]:
    """(item, component, side or form) of a pattern code; component "" for an item without components."""
    parts = code.split(".")
    return (parts[0], parts[1] if len(parts) == 3 else "", parts[-1])


def pattern_words(side: str) -> str:
    """A pattern's last part in words, for reports that read codes: "padding 0", "the width taken from the height"."""
    return SIDE_TEXT.get(side) or EVIDENCE_TEXT.get(side) or side.replace("_", " ")


#: The extra_data key of the words in an item's note that hold only until staff set the item, each with what
#: it says once they have: [[said, settled], ...] (written by autograder/notebook/items.py `awaiting`; read by
#: autograder/reports/manual.py, which settles the note with them when staff set the item).
AWAITING = "awaiting_staff"


@dataclass(frozen=True)
class Diagnosis:
    """A part's cases seen together: one sentence, and the codes of the patterns it names (the form of the
    wrong outputs first, where they have one, then the case attribute that separates them). `withheld`: the
    sentence as students read it before the due date, where `summary` tells a hidden case's shapes or values
    ("" when it tells none)."""

    summary: str = ""
    patterns: tuple[str, ...] = ()
    withheld: str = ""

    @property
    def before_due(self) -> str:
        """The sentence with no hidden case's inputs, shapes or values in it."""
        return self.withheld or self.summary


def is_release_test(test: dict[str, Any]) -> bool:
    """Whether a results.json test is a 0-point release test (the hidden cases in full, the staff's notes),
    which holds no item's points: readers that group tests by item leave it out."""
    tags = test.get("tags") if isinstance(test, dict) else None
    return bool(tags) and tags[0] in RELEASE_TAGS


def graded_tests(document: dict[str, Any]) -> list[dict[str, Any]]:
    """results.json's tests without its release tests: the items' (and the PDF check's), as before there were any."""
    return [test for test in document.get("tests", []) if not is_release_test(test)]


class RowStatus(StrEnum):
    """A gradebook row's `status`: whether staff may copy its grade, so one word never means both "the
    grader ran" and "nothing is left to do"."""

    COMPLETE = "complete"  # every item settled: the grader's, or set by staff for this submission
    PENDING_STAFF = "pending staff"  # an item awaits staff (blank cell; its points so far in `provisional`)
    FAULT = "fault"  # a harness fault, or the grading stopped at the batch's deadline: grade it again
    NOT_GRADED_YET = "not graded yet"  # no results: the batch is running, or was stopped before it


def outcome_code(outcome: Outcome) -> ReasonCode:
    """The code of a case's outcome."""
    return ReasonCode(outcome.code)


@dataclass(frozen=True)
class CaseResult:
    """One graded case of one rubric item's component ("" for an item without components)."""

    item: str
    case: str
    visibility: str  # "public", "hidden", or "check" (a fixed check such as TestCNN's layers)
    weight: float
    description: str
    outcome: Outcome
    seconds: float = 0.0
    component: str = ""
    sides: tuple[str, ...] = ()  # the case's attribute sides (autograder/attributes.py), for diagnosis
    geometry: Geometry | None = None  # its shapes, so the diagnosis can tell what a stride bug predicts

    @property
    def reason_code(self) -> ReasonCode:
        return outcome_code(self.outcome)


def _common_failure(cases: tuple[CaseResult, ...] | list[CaseResult]) -> ReasonCode:
    failures = Counter(case.reason_code for case in cases if not case.outcome.passed)
    return failures.most_common(1)[0][0] if failures else ReasonCode.PASSED


@dataclass(frozen=True)
class ComponentScore:
    """One component's points, its cases and what they show together."""

    component: Component
    score: float
    cases: tuple[CaseResult, ...]
    diagnosis: Diagnosis = Diagnosis()

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.outcome.passed)

    @property
    def reason_code(self) -> ReasonCode:
        """The most common failure among its cases, or passed."""
        return _common_failure(self.cases)


@dataclass(frozen=True)
class ItemScore:
    """One rubric item's points and why."""

    item: Item
    score: float
    cases: tuple[CaseResult, ...]  # every component's cases, in report order
    status: ItemStatus | str  # an ItemStatus (its value, when written as a string)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # figures for results.json's extra_data
    components: tuple[ComponentScore, ...] = ()
    code: ReasonCode | None = None  # why, for items without cases; else from the cases

    @property
    def reason_code(self) -> ReasonCode:
        """The item's code: given (notebook items, items not graded), else its cases' commonest failure."""
        if self.code is not None:
            return self.code
        if self.cases:
            return _common_failure(self.cases)
        return ReasonCode.PASSED if self.score >= self.item.points else ReasonCode.NOT_RUN

    @property
    def reason(self) -> str:
        """One line for tables: passed counts, or what fails where."""
        if self.status not in (ItemStatus.GRADED, ItemStatus.SELF_CHECK) or not self.cases:
            return self.note
        prefix = "self-check, no points: " if self.status == ItemStatus.SELF_CHECK else ""
        if all(case.outcome.passed for case in self.cases):
            count = len({case.case for case in self.cases})
            return f"{prefix}{'its one case' if count == 1 else f'all {count} cases'} passed"
        found: dict[str, list[str]] = {}  # what failed -> the components it describes
        for part in self.components:
            if part.passed == len(part.cases):
                continue
            failures = Counter(case.outcome.label for case in part.cases if not case.outcome.passed)
            label, count = failures.most_common(1)[0]
            what = f"{count} {label}"
            named = [split_code(code)[2] for code in part.diagnosis.patterns]
            forms = [EVIDENCE_TEXT[side] for side in named if side in EVIDENCE_TEXT]
            sides = [SIDE_TEXT[side] for side in named if side in SIDE_TEXT]
            if forms:
                what += f" ({forms[0]})"
            if len(sides) == 1:
                what += f", exactly those with {sides[0]}"
            found.setdefault(f"{part.passed}/{len(part.cases)} passed; {what}", []).append(part.component.id)
        return prefix + "; ".join(f"{', '.join(ids)}: {text}" if any(ids) else text for text, ids in found.items())


@dataclass
class GradeResult:
    """Everything known about one graded submission."""

    student_id: str
    items: list[ItemScore]
    execution_time: float
    public_only: bool = False
    notes: list[str] = field(default_factory=list)
    printed: str = ""
    printed_bytes: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    pdf_checks: list = field(default_factory=list)  # pdf_check.Consistency, one per PDF handed in

    @property
    def score(self) -> float:
        """The points, extra credit left out (it is outside the total: `extra_credit`)."""
        return round(sum(item.score for item in self.items if not item.item.extra_credit) + 0.0, 2)

    @property
    def max_score(self) -> float:
        return round(sum(item.item.points for item in self.items if not item.item.extra_credit) + 0.0, 2)

    @property
    def extra_credit(self) -> float:
        """The extra-credit points (staff's), outside `score`."""
        return round(sum(item.score for item in self.items if item.item.extra_credit) + 0.0, 2)


@dataclass
class NotebookOutcome:
    """What grading the notebook gave: the notebook items' scores, notes for the student, the PDF
    checks, and why the notebook could not be read ("" when it was)."""

    scores: dict[str, ItemScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pdf_checks: list = field(default_factory=list)  # pdf_check.Consistency
    unreadable: str = ""
    findings: Any = None  # notebook.Findings the PDF is made from; None when no notebook was read
    faults: list = field(default_factory=list)  # the harness's own exceptions, each contained to one item

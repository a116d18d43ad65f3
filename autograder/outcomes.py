"""What happened to one graded case, as a small type that writes its own feedback.

Every case ends as exactly one of these. Each carries what a student needs to act (which
output, how wrong and where, the exception and the lines of their own code, the limit that
was hit) and renders it as a sentence; `label` is the short form for tables and gradebooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autograder.evidence import Evidence


@dataclass(frozen=True)
class Outcome:
    """Base type; `passed` decides the points, `message()` the feedback line."""

    passed = False
    label = "failed"
    code = "wrong_structure"  # autograder/model.py ReasonCode

    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Passed(Outcome):
    detail: str = ""
    passed = True
    label = "passed"
    code = "passed"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"passed{': ' + self.detail if self.detail else ''}"


@dataclass(frozen=True)
class NotImplementedYet(Outcome):
    """None (or nothing) in every case seen so far; the diagnosis turns it into ReturnedNone when
    other cases of the same part did return an answer, so the guess below is never contradicted."""

    what: str
    how: str = "returned None"
    label = "not implemented"
    code = "not_implemented"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"not implemented: {self.what} {self.how} (is the TODO still empty?)"


@dataclass(frozen=True)
class ReturnedNone(Outcome):
    """None where other cases of the same part returned an answer: a fact, no guess at the cause
    (the diagnosis of the item says which cases, see autograder/diagnosis.py)."""

    what: str
    how: str = "returned None"
    label = "returned None"
    code = "returned_none"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"{self.what} {self.how} in this case"


@dataclass(frozen=True)
class WrongType(Outcome):
    what: str
    got: str
    expected: str
    label = "wrong type"
    code = "wrong_type"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"{self.what} is {self.got}; expected {self.expected}"


@dataclass(frozen=True)
class WrongShape(Outcome):
    what: str
    got: tuple
    expected: tuple
    evidence: Evidence | None = None  # the shape read in NHWC (autograder/evidence.py), where it is an image's
    label = "wrong shape"
    code = "wrong_shape"  # autograder/model.py ReasonCode

    def message(self) -> str:
        text = f"{self.what} has shape {self.got}; expected {self.expected}"
        return f"{text}: {self.evidence.text}" if self.evidence else text


@dataclass(frozen=True)
class NotFinite(Outcome):
    what: str
    count: int
    label = "NaN or inf"
    code = "not_finite"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"{self.what} holds {self.count} NaN or infinite value(s)"


@dataclass(frozen=True)
class WrongValue(Outcome):
    what: str
    error: float
    tolerance: float
    position: tuple = ()
    got: float | None = None
    expected: float | None = None
    evidence: Evidence | None = None  # what the wrong values are, where they have a known form (evidence.py)
    label = "wrong value"
    code = "wrong_value"  # autograder/model.py ReasonCode

    def message(self) -> str:
        text = f"wrong values in {self.what}: relative error {self.error:.2e} (allowed {self.tolerance:.0e})"
        if self.position:
            text += f", largest at index {self.position}"
            if self.got is not None and self.expected is not None:
                text += f" (got {self.got:.6g}, expected {self.expected:.6g})"
        return f"{text}; {self.evidence.text}" if self.evidence else text


@dataclass(frozen=True)
class WrongNumbers(Outcome):
    what: str
    got: str
    expected: str
    label = "wrong value"
    code = "wrong_value"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"{self.what} is {self.got}; expected {self.expected}"


@dataclass(frozen=True)
class WrongStructure(Outcome):
    detail: str
    label = "wrong structure"
    code = "wrong_structure"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return self.detail


@dataclass(frozen=True)
class NumericalBackward(Outcome):
    """A gradient that is right on the case but was computed by differentiating forward numerically
    (central differences), not analytically: the assignment asks for the analytic backward. Seen in
    behaviour only (autograder/checks/backward_probe.py): `evidence` says what was seen."""

    what: str
    evidence: str
    label = "numerical gradient"
    code = "numerical_backward"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return (f"{self.what} is computed numerically (finite differences of forward), not by an analytic "
                f"backward: {self.evidence}. The assignment asks for the analytic gradient, so this part "
                "earns no points")


@dataclass(frozen=True)
class StudentException(Outcome):
    type: str
    text: str
    traceback: tuple[str, ...] = field(default_factory=tuple)
    label = "exception"
    code = "student_exception"  # autograder/model.py ReasonCode

    def message(self) -> str:
        lines = [f"your code raised {self.type}: {self.text}" if self.text else f"your code raised {self.type}"]
        lines += [f"    at {frame}" for frame in self.traceback]
        return "\n".join(lines)


@dataclass(frozen=True)
class TimedOut(Outcome):
    seconds: float
    label = "timed out"
    code = "timed_out"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"timed out after {self.seconds:g} s (an endless loop, or far too slow?)"


@dataclass(frozen=True)
class NotRunAfterTimeouts(Outcome):
    count: int
    label = "timed out"
    code = "timed_out"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"not run: {self.count} earlier cases of this item timed out"


@dataclass(frozen=True)
class OutOfMemory(Outcome):
    limit_mb: int
    label = "out of memory"
    code = "out_of_memory"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"ran out of memory (limit {self.limit_mb} MB)"


@dataclass(frozen=True)
class ProcessExited(Outcome):
    detail: str
    label = "process exited"
    code = "process_exited"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"exited the process: {self.detail}"


@dataclass(frozen=True)
class ReplyRefused(Outcome):
    """The worker's reply announced more than the rubric's bounds ([worker] max_reply_*): refused from its
    header, unread, and the worker stopped. Only student code (patching the worker, writing to its pipe)
    makes a reply that large."""

    detail: str
    label = "process exited"  # the worker is stopped, as after an exit
    code = "process_exited"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"the worker's reply was refused and the worker stopped: {self.detail}"


@dataclass(frozen=True)
class NotRunAfterExits(Outcome):
    """An item's remaining cases after [worker] exits_per_item of its cases ended the worker."""

    count: int
    last: str  # how the last of them ended, in words
    label = "process exited"
    code = "process_exited"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"not run: {self.count} earlier cases of this item ended the worker (the last: {self.last})"


@dataclass(frozen=True)
class NotRestarted(Outcome):
    """Every call after [worker] exits_per_submission workers ended: no worker is started again."""

    count: int
    last: str  # how the last worker ended, in words
    label = "process exited"
    code = "process_exited"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"not run: the worker ended {self.count} times (the last: {self.last}); not restarted after {self.count}"


@dataclass(frozen=True)
class Unreadable(Outcome):
    """The submission itself could not be opened, so no case ran: the reason is the intake's."""

    detail: str
    label = "unreadable"
    code = "unreadable_submission"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"not run: the submission could not be read ({self.detail})"


@dataclass(frozen=True)
class HarnessFault(Outcome):
    detail: str
    label = "harness fault"
    code = "harness_fault"  # autograder/model.py ReasonCode

    def message(self) -> str:
        return f"the grader itself failed on this case (not your fault; staff are told): {self.detail}"


class CheckFailed(Exception):
    """Raised inside a check to end its case with `outcome`."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.message())
        self.outcome = outcome

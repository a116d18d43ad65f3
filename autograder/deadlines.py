"""Time budgets of the stages that read student files in the grader's own process.

A notebook, a PDF or a filter image is the student's data, read by our code: a crafted one can make
a loop run for hours (every grid layout of a 200000-filter "first layer", every image of a PDF against
every image of a notebook). Each such stage gets a `Deadline` from the rubric's [deadlines] table and
checks it in its loops (cooperatively: nothing is interrupted between two checks); past it the stage
raises `StageTimeout`, and the item that stage grades says so to the student ("not graded: reading
your filter image took over 60 s"). The other items keep their scores: it is no fault of the harness.
"""

from __future__ import annotations

import math
import time


class StageTimeout(Exception):
    """A stage ran past its budget; `reason` is the student-facing sentence."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"not graded: {what} took over {seconds:g} s")
        self.what, self.seconds = what, seconds

    @property
    def reason(self) -> str:
        return str(self)


class Deadline:
    """A point in time after which `check()` raises StageTimeout naming `what` ("reading your
    notebook"). `seconds=None` (or inf) never expires: what callers get when they pass none."""

    def __init__(self, seconds: float | None, what: str):
        self.seconds = math.inf if seconds is None else float(seconds)
        self.what = what
        self.end = time.monotonic() + self.seconds

    def expired(self) -> bool:
        return time.monotonic() > self.end

    def check(self) -> None:
        """Raise StageTimeout when the budget is spent; cheap enough for every loop iteration."""
        if time.monotonic() > self.end:
            raise StageTimeout(self.what, self.seconds)


def unbounded(what: str = "") -> Deadline:
    """A deadline that never expires (a caller that gave none: tests, staff tools)."""
    return Deadline(None, what)

"""The gradebook's flags, each classified: does it ask staff to act, or only say how a grade was reached?

A class of 31 had every student "flagged" because "accuracy verified" and "filters set by staff" counted as
much as a harness fault; a list that names everyone names no one. Every flag the gradebook can show is listed
here once (`FLAG_KINDS`), with whether it asks staff to do something and what: the class report's "Flagged
submissions" lists only students with at least one such flag (or a status that is not complete), each with
those flags alone. A flag missing from this table still counts as asking staff (never hidden), and
tests/test_gradebook.py fails until it is classified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FlagKind:
    """One flag of the gradebook: its words (`<...>` stands for any text: "<item> pending staff"), whether it
    asks staff to act, and why (what they are to do, or why nothing)."""

    template: str
    asks_staff: bool
    why: str
    pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"<[^<>]+>", self.template)
        object.__setattr__(self, "pattern", re.compile(".+".join(map(re.escape, parts))))


#: Every flag the gradebook shows (autograder/batch.py `_flags` and `write_gradebook`, the items'
#: own flags of autograder/notebook/items.py and replay.py, the similarity flags of similarity.py).
#: Order matters where one template also matches another's words: the more specific first.
FLAG_KINDS: tuple[FlagKind, ...] = (
    # the grade is not final, or not the grader's to trust
    FlagKind("grading timed out (<seconds> s)", True, "the batch stopped grading it at its deadline: grade it again"),
    FlagKind("grading timed out: <detail>", True, "the batch stopped grading it, and no results were written"),
    FlagKind("harness fault", True, "the grader itself failed: fix it and grade again"),
    FlagKind("harness fault: <detail>", True, "the grader itself failed before any result: fix it and grade again"),
    FlagKind("<item> set by staff for an earlier submission", True,
             "the student resubmitted since staff graded the item: grade it again"),
    FlagKind("<item> pending staff", True, "staff grade the item (the grading sheet)"),
    FlagKind("accuracy pending", True, "the rubric's unverified policy leaves the training to staff"),
    FlagKind("filters provisional", True, "no weights to check the image against: staff confirm the points"),
    FlagKind("filters need staff review", True, "the grader recognised some filters, too few to pass: staff look"),
    FlagKind("filters timed out", True, "reading the filter image ran out of time: staff look at it"),
    FlagKind("image too large", True, "a filter image was too large to read: staff look at it in the notebook"),
    FlagKind("image unreadable", True, "a filter image could not be decoded: staff look at it in the notebook"),
    FlagKind("extra credit cut", True, "the extra-credit work was cut for its length: staff read it in the notebook"),
    FlagKind("answer cut", True, "the answer was cut for its length: staff read the full one in the notebook"),
    FlagKind("timed out", True, "a case or a stage ran out of time (slow code, or a busy machine): staff check"),
    FlagKind("unreadable submission", True, "nothing could be opened: staff check the file the student handed in"),
    FlagKind("unreadable notebook", True, "the notebook could not be read (not JSON, not a notebook, too large): "
             "its items scored 0 unread; staff look at the file and set them with merge-manual"),
    FlagKind("no data for this edition", True, "--data held no files of its edition: grade again with them"),
    FlagKind("edition contradiction", True, "the given edition contradicts the files: staff check the handout"),
    # evidence against the student's claims or work: staff look before it stands
    FlagKind("PDF mismatch", True, "the PDF shows other figures than the notebook: staff compare them"),
    FlagKind("PDF not compared", True, "the check could not tell, or found no image or no readable PDF: staff look"),
    FlagKind("answer in several places", True, "the student wrote near the question in more than one place: "
             "staff choose (the grading sheet shows every candidate)"),
    FlagKind("accuracy mismatch", True, "the log's accuracy is not the grader's: staff look at the log"),
    FlagKind("held-out gap", True, "validation far above held-out accuracy: staff look for tuning on validation"),
    FlagKind("forward disagreement", True, "the student's forward predicts otherwise than the grader's: staff look"),
    FlagKind("architecture violation", True, "the network breaks the assignment's rules (0 points): staff confirm"),
    FlagKind("weights not evaluable", True, "saved weights could not be evaluated (0 points): staff look at them"),
    FlagKind("log not reproduced", True, "the code does not print the notebook's log again: staff look at the log"),
    FlagKind("accuracy unverified", True, "the training's points rest on the log's accuracy alone (no weights the "
             "grader could evaluate; the log replay compares loss lines, not accuracies): staff check the log, or "
             "set the training with merge-manual"),
    FlagKind("accuracy unverified (capped)", True, "points up to the unverified policy's cap rest on the log's "
             "accuracy alone: staff check the log, or set the training with merge-manual"),
    FlagKind("similar <kind>: <who>", True, "near-identical to another submission: staff compare the two"),
    # how the grade was reached: nothing to do
    FlagKind("<item> set by staff", False, "staff decided the item; nothing left to do"),
    FlagKind("accuracy verified", False, "the grader measured the accuracy itself"),
    FlagKind("accuracy from own forward", False, "the staff-held images decided, through the student's own forward"),
    FlagKind("accuracy unverified (no credit)", False, "the log's accuracy, unverified, earned no points anyway"),
    FlagKind("accuracy reported", False, "results from before the training's flags: the log's figure, as policy said"),
    FlagKind("filters do not match weights", False, "the image does not show the saved weights: 0, with the evidence"),
)


def flag_kind(flag: str) -> FlagKind | None:
    """The entry of `FLAG_KINDS` whose words `flag` are, or None for a flag nobody classified."""
    return next((kind for kind in FLAG_KINDS if kind.pattern.fullmatch(flag)), None)


def asks_staff(flag: str) -> bool:
    """Whether a flag asks staff to act; one nobody classified does (shown rather than hidden)."""
    kind = flag_kind(flag)
    return kind is None or kind.asks_staff


def split_flags(cell: str) -> list[str]:
    """A gradebook `flags` cell as its flags (joined with "; ")."""
    return [flag for flag in (cell or "").split("; ") if flag]


def to_act_on(cell: str) -> list[str]:
    """The flags of a gradebook cell that ask staff to act, in their order."""
    return [flag for flag in split_flags(cell) if asks_staff(flag)]

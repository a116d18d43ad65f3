"""Round three of the hostile corpus: attacks graded as staff grade, by `grade.py grade` in a real
subprocess under the limits the grader must hold to (issue "The trust boundary, round three").

Each `Attack` builds one submission (a folder or a zip) from a shared context (a small synthetic
SVHN and honestly trained weights for it) and checks the `results.json` that grading writes: the
points the attack must get and the reasons a correct grader gives. `test_attacks.py` runs every
attack under `prlimit --as=3GiB` with a 150 s wall clock and asserts, besides the attack's own check,
that grading exited 0 with a complete results file and no harness fault.

The attacks live in one module per mechanism (`attacks_worker.py`, `attacks_checks.py`,
`attacks_training.py`, `attacks_files.py`); `ATTACKS` gathers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from autograder.rubric import HIDDEN_CASE_DETAILS


@dataclass
class Context:
    """What builders share: the staff's data folder (also given to the grader as --data), the
    handout's split of it, and weights of the reference network fitted honestly on its training rows."""

    data: Path
    split: dict[str, np.ndarray]
    honest_weights: dict[str, np.ndarray]


@dataclass
class Attack:
    """One submission and what grading it must give.

    `build(folder, context)` writes the submission into `folder` (or a zip beside it) and returns its
    path; `args` are extra `grade.py grade` arguments, with "{data}" replaced by the context's data
    folder; `check(results, out_dir, context)` asserts on the parsed results.json (and may read what
    else grading wrote into `out_dir`).
    """

    name: str
    mechanism: str  # "A" worker, "B" forward on public images, "C" unbounded parsing, "D" slips, "honest"
    build: Callable[[Path, Context], Path]
    check: Callable[[dict, Path, Context], None]
    args: tuple[str, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)


def item(results: dict, item_id: str) -> list[dict]:
    """The results.json tests (components included) of one rubric item."""
    return [test for test in results["tests"] if test.get("tags", [None])[0] == item_id]


def points(results: dict, item_id: str) -> float:
    """An item's points, summed over its components."""
    return float(sum(test["score"] for test in item(results, item_id)))


def outputs(results: dict, item_id: str) -> str:
    """Everything the student reads for one item by the end: its tests, and the details of its hidden cases
    released after the due date (a test of their own, tagged [HIDDEN_CASE_DETAILS, item])."""
    released = [test for test in results["tests"] if test.get("tags", [None])[:2] == [HIDDEN_CASE_DETAILS, item_id]]
    return "\n".join(test.get("output", "") for test in item(results, item_id) + released)


def _gather() -> list[Attack]:
    import attacks_checks
    import attacks_deadlines
    import attacks_files
    import attacks_training
    import attacks_worker
    found: list[Attack] = []
    for module in (attacks_worker, attacks_checks, attacks_training, attacks_files, attacks_deadlines):
        found.extend(module.ATTACKS)
    return found


ATTACKS: list[Attack] = _gather()

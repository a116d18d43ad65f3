"""How a batch shows its progress: a bar for a person at a terminal, JSON lines for a program.

A course's dashboard or a job scheduler follows a batch by reading its standard output: with
`--progress jsonl`, one line per submission, each a JSON object with the student id, what happened
(`graded`, `harness fault`, `timed out`, or `unchanged`: skipped, graded by an earlier run, its lines
first), the score (an unchanged one's from its results.json; null without one), the seconds it took
(0 for an unchanged one), and how many of how many are done (`total` is every submission of the
batch, and `done` reaches it when the batch ends). Nothing else goes to standard output in that mode:
`grade.py batch` says its summary on standard error, so every line parses. `--progress none` shows
nothing; the bar is the default.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, Protocol, TextIO

from tqdm import tqdm

#: The values of `--progress`.
MODES = ("bar", "jsonl", "none")


class _Finished(Protocol):
    student_id: str
    status: str
    score: float | None
    seconds: float


def progress_record(entry: _Finished, done: int, total: int) -> dict:
    """One finished submission as a dashboard reads it (the keys are the interface: documented in the README)."""
    return {"student_id": entry.student_id, "status": str(entry.status),
            "score": None if entry.score is None else round(float(entry.score), 2),
            "seconds": round(float(entry.seconds), 2), "done": done, "total": total}


class Progress:
    """The batch's progress in one of MODES (True is "bar", False "none"), as a context manager. `total`: every
    submission of the batch; `unchanged`: those it skips, counted done at once (in jsonl, a line each)."""

    def __init__(self, mode: bool | str, total: int, unchanged: Iterable[_Finished] = (),
                 stream: TextIO | None = None):
        mode = {True: "bar", False: "none"}.get(mode, mode) if isinstance(mode, bool) else mode
        if mode not in MODES:
            raise ValueError(f"progress {mode!r}: one of {', '.join(MODES)}")
        self.mode, self.total, self.done = mode, total, 0
        self.stream = stream or sys.stdout
        skipped = list(unchanged)
        self.bar = (tqdm(total=total, initial=len(skipped), unit="submission", desc="grading") if mode == "bar"
                    else None)
        if self.bar is not None:  # the bar starts past them (its rate counts what this run grades)
            self.done = len(skipped)
        else:
            for entry in skipped:
                self.finished(entry)

    def finished(self, entry: _Finished) -> None:
        """One more submission is over."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "jsonl":
            self.stream.write(json.dumps(progress_record(entry, self.done, self.total)) + "\n")
            self.stream.flush()  # a reader at the other end of a pipe sees each line as it happens

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()

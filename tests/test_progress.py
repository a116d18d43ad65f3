"""`grade.py batch --progress`: what a dashboard or a job scheduler reads of a running batch."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from conftest import run_grade

from autograder.progress import Progress


@dataclass
class _Entry:
    student_id: str
    status: str = "graded"
    score: float | None = None
    seconds: float = 0.0


def test_jsonl_keeps_stdout_to_json_lines_and_counts_the_unchanged_submissions(tmp_path):
    """A second run over a class with one new submission: stdout holds one JSON line per submission and
    nothing else (the summary is on stderr), the unchanged ones first with their earlier score, and `done`
    reaches `total`, the number of submissions."""
    submissions, out = tmp_path / "in", tmp_path / "out"
    for name in ("ann", "bob"):
        (submissions / name).mkdir(parents=True)  # graded at once: no notebook, no lib
    first = run_grade("batch", str(submissions), "--out", str(out), "--jobs", "1", "--progress", "none")
    assert first.returncode == 0, first.stderr
    assert "2 submission(s): 2 graded" in first.stdout  # without jsonl, the summary stays on stdout
    (submissions / "cy").mkdir()
    again = run_grade("batch", str(submissions), "--out", str(out), "--jobs", "1", "--progress", "jsonl")
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in again.stdout.splitlines()]  # every line of stdout parses
    assert [(line["student_id"], line["status"], line["done"], line["total"]) for line in lines] == [
        ("ann", "unchanged", 1, 3), ("bob", "unchanged", 2, 3), ("cy", "graded", 3, 3)]
    earlier = json.loads((out / "ann" / "results.json").read_text())["score"]
    assert lines[0]["score"] == round(earlier, 2) and lines[0]["seconds"] == 0
    assert all(set(line) == {"student_id", "status", "score", "seconds", "done", "total"} for line in lines)
    assert "3 submission(s): 1 graded, 2 unchanged" in again.stderr
    assert "class report:" in again.stderr


def test_an_unchanged_submission_without_results_has_no_score():
    stream = io.StringIO()
    with Progress("jsonl", 2, [_Entry("ann", "unchanged")], stream=stream) as shown:
        shown.finished(_Entry("bob", score=12.345, seconds=1.5))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [{"student_id": "ann", "status": "unchanged", "score": None, "seconds": 0.0, "done": 1,
                      "total": 2},
                     {"student_id": "bob", "status": "graded", "score": 12.35, "seconds": 1.5, "done": 2,
                      "total": 2}]

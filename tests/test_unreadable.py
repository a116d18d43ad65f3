"""What could not be read is never a settled grade: an unreadable notebook and a zip that is not a zip.

A notebook that is not JSON used to leave no gradebook flag, a grading-sheet card saying "0 words, no answer
found", and, once staff merged the answer, a `complete` row with the notebook's 35 points lost unread. A file
named .zip that is not a zip was `complete` with the inline answer a settled 0. A real batch (a subprocess, as
staff run it) grades both, then staff merge as they would from the sheet.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from conftest import TEMPLATE, run_grade
from submissions import make_submission

from autograder.reports.flags import asks_staff

HEADER = "student_id,item,points,comment\n"


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def _flagged(out: Path) -> dict[str, str]:
    """The class report's "Flagged submissions" (Markdown): student -> the line after the link."""
    report = (out / "class_report.md").read_text(encoding="utf-8")
    section = report[report.index("## Flagged submissions"):].split("\n## ")[0]
    return dict(re.findall(r"^- \[([^\]]+)\]\([^)]*\)(.*)$", section, flags=re.MULTILINE))


def _answer_card(out: Path, student: str) -> str:
    """The inline answer's part of a student's card on the grading sheet."""
    page = (out / "manual_grading.html").read_text(encoding="utf-8")
    card = page[page.index(f"data-student='{student}'>"):]
    card = card[:card.index("</section>")]
    return card[card.index("<div class='item inline-answer'>"):]


def test_an_unreadable_notebook_and_a_zip_that_is_not_one_ask_staff_until_they_decide(tmp_path):
    folder = tmp_path / "submissions"
    make_submission(folder / "3001", source=TEMPLATE)
    (folder / "3001" / "Problem_2.ipynb").write_text("this is { not JSON", encoding="utf-8")
    (folder / "3002.zip").write_bytes(b"not a zip at all, only its name")
    out = tmp_path / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    book = _rows(out)

    notebook = book["3001"]
    assert "unreadable notebook" in notebook["flags"].split("; ") and asks_staff("unreadable notebook")
    assert notebook["status"] == "pending staff" and notebook["inline_answer"] == ""
    card = _answer_card(out, "3001")
    assert "not a readable notebook" in card and "no answer found" not in card
    assert "no answer could be looked for in a notebook that could not be read" in card

    unopened = book["3002"]  # nothing of it was read: the answer is for staff, not a settled 0
    assert unopened["inline_answer"] == "" and unopened["status"] == "pending staff"
    assert unopened["flags"].split("; ") == ["unreadable submission", "inline_answer pending staff"]
    assert float(unopened["total"]) == 0 and float(unopened["provisional"]) == 0
    card = _answer_card(out, "3002")
    assert "the submission could not be opened" in card and "no answer found" not in card
    assert set(_flagged(out)) == {"3001", "3002"}

    scores = tmp_path / "scores.csv"  # staff grade the answers they could find (none): the rows are complete
    scores.write_text(HEADER + "3001,inline_answer,0,notebook unreadable\n3002,inline_answer,0,zip unreadable\n",
                      encoding="utf-8")
    merged = run_grade("merge-manual", str(scores), str(out))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    book = _rows(out)
    assert {book[s]["status"] for s in ("3001", "3002")} == {"complete"}
    flagged = _flagged(out)  # complete, and still in front of staff: the notebook's items were scored unread
    assert flagged["3001"] == ": unreadable notebook" and flagged["3002"] == ": unreadable submission"
    for student, kept in (("3001", "no answer could be looked for in a notebook that could not be read"),
                          ("3002", "the submission could not be opened")):  # what was found, no longer pending
        feedback = (out / student / "feedback.md").read_text(encoding="utf-8")
        answer = feedback[feedback.index("## Inline"):]
        answer = answer[:answer.find("\n## ", 1)] if "\n## " in answer[1:] else answer
        assert kept in answer and "pending" not in answer.lower(), answer
        assert "staff look at the file" not in answer and "staff read the file itself" not in answer, answer

    # Once staff set the notebook's other items themselves, nothing about it is left unread by everyone.
    scores.write_text(HEADER + "3001,training,0,\n3001,filters,0,\n", encoding="utf-8")
    assert run_grade("merge-manual", str(scores), str(out)).returncode == 0
    assert "unreadable notebook" not in _rows(out)["3001"]["flags"]
    assert "3001" not in _flagged(out)

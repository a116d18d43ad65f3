"""Staff's scores merged into graded results: checked as a whole, logged, idempotent, kept on re-grade.

Staff grade the inline answer by hand (and may override any item) in a CSV, UTF-8, with the header
`student_id,item,points` and an optional `comment` column (names compared without case, spaces,
hyphens and underscores; an Excel `sep=,` first line is skipped), one row per (student, item). The
spreadsheet mistakes seen in practice are named with what to do instead: UTF-16, columns separated
by ';' (or `sep=;`), an id turned into a number (42.0) or stripped of its leading zeros. A merge is
all or nothing: every row is checked first against GRADED_DIR (the student's results.json exists,
the item is in the rubric and in those results, the points are a finite number within 0..the item's
points, no (student, item) twice); a single bad row refuses the whole file with every problem named
as `SCORES.csv:<line>`, and nothing is written. A row whose points cell is blank is "not graded yet"
and skipped (a grading sheet may list every student); a blank points cell with a comment is refused.

Every merge appends one JSON line to GRADED_DIR/manual_merges.jsonl (`MERGE_LOG`): when (UTC),
who, which file (name and sha256), and for each (student, item) it changed the old and new points
and comments; a merge that changed nothing is logged too. The line is written before any
results.json (a crash half-way leaves the log naming the merge; the same CSV run again finishes it),
in one `write` on a file opened for appending, then fsync'd; a torn last line (a crash inside that
write) is skipped by readers and never glued to the next record. Merges in one GRADED_DIR take an
exclusive lock (flock on the folder), so two staff merging at once run one after the other.

The staff score replaces the grader's, never adds to it: the grader's own score, status, output and
flags (the filters' "provisional", the training's accuracy flags) are kept in the test's
`extra_data.grader` the first time, and every merge rebuilds the test from them, so merging the same
CSV twice leaves results.json byte-identical. The log is also the record that `batch` re-applies
after re-grading (`reapply_staff_scores`). Each change names the sha256 of the submission it was
given for; a staff score re-applied to another submission (the student resubmitted) is still set but
marked "for an earlier submission", until a merge sets the item again.

This module reads and writes files under GRADED_DIR only; the gradebook and the class report are
rebuilt by the caller (autograder/batch.py `refresh_reports`), which sits above it.
"""

from __future__ import annotations

import codecs
import copy
import csv
import fcntl
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autograder import UserInputError
from autograder.edition import EditionError, get_edition
from autograder.model import AWAITING, ItemStatus, ReasonCode
from autograder.reports.class_files import check_class_files
from autograder.reports.results import FEEDBACK, FEEDBACK_RELEASED, write_atomically
from autograder.rubric import Item, Rubric, all_extra_items, load_rubric

COLUMNS = ("student_id", "item", "points", "comment")
REQUIRED = COLUMNS[:3]
MERGE_LOG = "manual_merges.jsonl"
RESULTS = "results.json"
SECTION_BEGIN = "<!-- scores set by staff -->"
SECTION_END = "<!-- end of scores set by staff -->"
ITEM_BEGIN = "<!-- set by staff -->"  # around the staff's score under an item's heading
ITEM_END = "<!-- end of set by staff -->"
SAVE_AS = "in Excel: save as 'CSV UTF-8 (Comma delimited)'"


class ManualScoresError(UserInputError):
    """A scores file that cannot be merged: every problem found, each naming the file and line."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"{source}: nothing merged, {len(self.problems)} problem(s); fix the file and run it "
                         "again:\n" + "\n".join(f"  {problem}" for problem in self.problems))


@dataclass(frozen=True)
class StaffScore:
    """One row of the scores file, checked."""

    student_id: str
    item: str
    points: float
    comment: str
    line: int


@dataclass
class MergeReport:
    """What one merge did: the changes (as logged), how many rows changed nothing, the log's record."""

    changes: list[dict[str, Any]]
    unchanged: int
    blank: int
    log: Path
    record: dict[str, Any]


# --- reading the scores file ---------------------------------------------------------------------

def _decode(data: bytes, name: str) -> str:
    """The file's text; UTF-16 (a spreadsheet's "Unicode text") and other encodings are refused with
    what to save instead."""
    nuls = data[:200].count(b"\x00")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (nuls and nuls * 3 >= len(data[:200])):
        raise ManualScoresError(name, [f"{name}:1: the file is UTF-16 (a spreadsheet's \"Unicode text\"); save it "
                                       f"as CSV UTF-8 ({SAVE_AS})"])
    if nuls or b"\x00" in data:
        at = data.index(b"\x00")
        line = data[:at].count(b"\n") + 1
        raise ManualScoresError(name, [f"{name}:{line}: a NUL byte (at byte {at}): not a text file; expected CSV "
                                       f"UTF-8 ({SAVE_AS})"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ManualScoresError(name, [f"{name}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); expected a UTF-8 "
                                       f"file (a spreadsheet's \"CSV UTF-8\" export; {SAVE_AS})"]) from None


def _column_key(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text.lower())


def _column(cell: str) -> str:
    """A header cell as a column name: case, spaces, hyphens and underscores do not matter
    ("Student ID", "student-id" and "STUDENT_ID" are student_id); anything else stays as written."""
    key = _column_key(cell)
    return next((column for column in COLUMNS if column.replace("_", "") == key), cell.strip())


def _separator(cells: list[str]) -> str | None:
    """The separator a one-column header seems to use instead of a comma (';' or a tab), or None."""
    if len(cells) == 1:
        for separator in (";", "\t"):
            if separator in cells[0]:
                return separator
    return None


def _header(cells: list[str], name: str, line: int) -> tuple[list[str], list[str]]:
    """The header's column names, and its problems."""
    where = f"{name}:{line}"
    separator = _separator(cells)
    if separator is not None:  # one column "student_id;item;points": say so, not "the header lacks"
        shown = "';'" if separator == ";" else "tabs"
        return [], [f"{where}: the columns are separated by {shown}; expected ',' ({SAVE_AS})"]
    header = [_column(cell) for cell in cells]
    expected = f"expected {','.join(COLUMNS)} (comment optional)"
    problems = []
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        problems.append(f"{where}: the header lacks {', '.join(missing)}; {expected}")
    unknown = [column for column in header if column not in COLUMNS]
    if unknown:
        problems.append(f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; {expected}")
    repeated = sorted({column for column in header if header.count(column) > 1 and column in COLUMNS})
    if repeated:
        problems.append(f"{where}: column(s) {', '.join(repeated)} appear twice; {expected}")
    return header, problems


def _excel_separator_line(text: str, name: str) -> bool:
    """True when the file starts with Excel's `sep=,` line (skipped); `sep=` with another separator is
    refused, the columns would not be split at commas."""
    first = text.split("\n", 1)[0].rstrip("\r")
    found = re.fullmatch(r"(?i) *sep=(.?) *", first)
    if found is None:
        return False
    if found.group(1) != ",":
        raise ManualScoresError(name, [f"{name}:1: {first!r}: the columns are separated by {found.group(1)!r}; "
                                       f"expected ',' ({SAVE_AS})"])
    return True


def _student_hint(student: str, students: set[str]) -> str:
    """Why an id may not match: a spreadsheet dropped its leading zeros or turned it into a number
    (42.0), or its case differs."""
    number = re.fullmatch(r"(\d+)\.0*", student)
    if number:
        alike = sorted(s for s in students if s.isdigit() and s.lstrip("0") == number.group(1).lstrip("0"))
        if alike:
            return (f"; did a spreadsheet turn the id into a number? {alike[0]!r} exists (format the column as "
                    "text, ids are compared exactly)")
    if student.isdigit():
        alike = sorted(s for s in students if s.isdigit() and s != student and s.lstrip("0") == student.lstrip("0"))
        if alike:
            return (f"; did a spreadsheet drop leading zeros? {alike[0]!r} exists (format the column as text, ids "
                    "are compared exactly)")
    alike = sorted(s for s in students if s.lower() == student.lower())
    if alike:
        return f"; ids are compared exactly: {alike[0]!r} exists"
    return ""


def known_items(rubric: Rubric) -> dict[str, Item]:
    """The items a scores file may name: the rubric's, and the extra credit of every edition (a batch may
    hold both editions; whether a student's results have the item is checked against those results)."""
    return {item.id: item for item in (*rubric.items, *all_extra_items())}


def is_extra_credit(test: dict[str, Any]) -> bool:
    """Whether a results.json test is extra credit: shown, never counted in the total."""
    return bool((test.get("extra_data") or {}).get("extra_credit"))


def counted_score(document: dict[str, Any]) -> float:
    """results.json's total: its tests' scores, extra credit left out."""
    return round(sum(test.get("score", 0.0) for test in document.get("tests", []) if not is_extra_credit(test)), 2)


def item_tests(document: dict[str, Any], item_id: str) -> list[dict[str, Any]]:
    """The tests of results.json that hold one rubric item (one, or one per component)."""
    return [test for test in document.get("tests", []) if (test.get("tags") or [None])[0] == item_id]


def _max_points(document: dict[str, Any], item_id: str) -> float:
    return round(sum(test.get("max_score", 0.0) for test in item_tests(document, item_id)), 6)


def _points(raw: str, maximum: float | None, item_id: str, where: str) -> tuple[float | None, str | None]:
    """The points of a row, or why not; `maximum` None: the item is unknown, only the number is checked."""
    expected = f"expected a number from 0 to {maximum:g}" if maximum is not None else "expected a number"
    try:
        points = float(raw)
    except ValueError:
        hint = " with a decimal point, not a comma" if re.fullmatch(r"\d+,\d+", raw) else ""
        return None, f"{where}: points {raw!r} is not a number; {expected}{hint}"
    if not math.isfinite(points):
        return None, f"{where}: points {raw!r} is not a finite number; {expected}"
    points += 0.0  # "-0" is 0
    if maximum is not None and not 0 <= points <= maximum:
        return None, f"{where}: {points:g} points is outside 0..{maximum:g} for {item_id}; {expected}"
    return points, None


def read_scores(data: bytes, name: str, graded_dir: Path, rubric: Rubric
                ) -> tuple[list[StaffScore], int, dict[str, dict[str, Any]]]:
    """Every row of the scores file checked against GRADED_DIR; the scores, how many rows were blank
    (skipped), and the results documents read. Raises ManualScoresError with every problem found."""
    text = _decode(data, name)
    rows = csv.reader(io.StringIO(text, newline=""))
    skip = _excel_separator_line(text, name)
    try:
        if skip:
            next(rows)
        first = next(rows, None)
    except csv.Error as exc:
        raise ManualScoresError(name, [f"{name}:1: not a CSV file ({exc})"]) from None
    header_line = rows.line_num
    if first is None or not any(cell.strip() for cell in first):
        raise ManualScoresError(name, [f"{name}:{max(header_line, 1)}: no header; expected {','.join(COLUMNS)} "
                                       "(comment optional)"])
    header, problems = _header(first, name, header_line)
    if problems:
        raise ManualScoresError(name, problems)
    students = {path.name for path in graded_dir.iterdir() if (path / RESULTS).is_file()}
    known = known_items(rubric)
    items = list(known)
    extra = [item.id for item in known.values() if item.extra_credit]
    documents: dict[str, dict[str, Any]] = {}
    unreadable: set[str] = set()
    scores, seen, blank = [], {}, 0
    previous = rows.line_num
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{name}:{previous + 1}: not valid CSV ({exc})")
            break
        line, previous = previous + 1, rows.line_num
        if not any(cell.strip() for cell in cells):
            continue  # an empty line
        where = f"{name}:{line}"
        if len(cells) > len(header):
            problems.append(f"{where}: {len(cells)} fields, the header has {len(header)} (a comma inside a comment "
                            "needs the comment in double quotes)")
            continue
        values = dict(zip(header, [cell.strip() for cell in cells]))
        student, item_id = values.get("student_id", ""), values.get("item", "")
        raw, comment = values.get("points", ""), values.get("comment", "")
        document = None
        if not student:
            problems.append(f"{where}: no student_id")
        elif student not in students:
            problems.append(f"{where}: unknown student {student!r} (no {student}/{RESULTS} in {graded_dir})"
                            + _student_hint(student, students))
        elif student not in documents and student not in unreadable:
            try:
                documents[student] = json.loads((graded_dir / student / RESULTS).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                unreadable.add(student)
                problems.append(f"{where}: {graded_dir / student / RESULTS} cannot be read ({exc})")
        document = documents.get(student)
        maximum = None
        if not item_id:
            problems.append(f"{where}: no item; expected one of: {', '.join(items)}")
        elif item_id not in items:
            alike = [item for item in items if _column_key(item) == _column_key(item_id)]
            problems.append(f"{where}: unknown item {item_id!r} (items: {', '.join(i.id for i in rubric.items)})"
                            + (f" (extra credit, where the edition has it: {', '.join(extra)})" if extra else "")
                            + (f"; items are compared exactly: {alike[0]!r} exists" if alike else ""))
        elif document is not None:
            if not item_tests(document, item_id):
                problems.append(f"{where}: item {item_id!r} is not in {student}/{RESULTS} (graded without it?)")
            else:
                maximum = _max_points(document, item_id)
        else:
            maximum = known[item_id].points
        if student and item_id:
            if (student, item_id) in seen:
                problems.append(f"{where}: {student} {item_id} again (first at line {seen[student, item_id]}); "
                                "expected one row per student and item")
            else:
                seen[student, item_id] = line
        if not raw:
            if comment:
                problems.append(f"{where}: a comment but no points; expected the points too (a row whose points "
                                "and comment are both blank is skipped)")
            else:
                blank += 1
            continue
        points, problem = _points(raw, maximum, item_id, where)
        if problem:
            problems.append(problem)
        elif maximum is not None and document is not None:
            scores.append(StaffScore(student, item_id, points, comment, line))
    if problems:
        raise ManualScoresError(name, problems)
    return scores, blank, documents


# --- applying a staff score to results.json --------------------------------------------------------

def staff_score(document: dict[str, Any], item_id: str) -> tuple[float, str] | None:
    """The staff's (points, comment) on an item of these results, or None when the grader's score stands."""
    tests = item_tests(document, item_id)
    staff = tests[0].get("extra_data", {}).get("staff") if tests else None
    return (staff["points"], staff["comment"]) if staff else None


def for_earlier_submission(document: dict[str, Any], item_id: str) -> bool:
    """True when the item's staff score was given for an earlier submission than the one these results
    graded (the student resubmitted since the merge): staff are to grade it again."""
    tests = item_tests(document, item_id)
    staff = tests[0].get("extra_data", {}).get("staff") if tests else None
    return bool(isinstance(staff, dict) and staff.get("earlier_submission"))


def submission_sha256(document: dict[str, Any]) -> str | None:
    """The sha256 of the submission these results graded (grading records it), or None."""
    value = (document.get("extra_data") or {}).get("submission_sha256")
    return value if isinstance(value, str) and value else None


def item_score(document: dict[str, Any], item_id: str) -> float:
    """An item's points in these results: the sum of its tests."""
    return round(sum(test.get("score", 0.0) for test in item_tests(document, item_id)), 4)


def _headline(output: str, score: float) -> str:
    return re.sub(r"^(.*?: )-?[0-9.]+( / [0-9.]+ points)", lambda m: f"{m.group(1)}{score:g}{m.group(2)}", output,
                  count=1)


#: How results.json and feedback.md introduce what the grader found, once staff set the item.
FOUND = "What the grader found (its score is replaced):"
def settled_note(note: str, awaiting: Any) -> str:
    """The grader's note on an item once staff have set it: what it found, without the words the item recorded as
    true only while it awaited staff (extra_data's awaiting_staff, autograder/notebook/items.py `awaiting`):
    "pending staff grading; answer of 107 words" is "answer of 107 words". A feedback that shows the staff's score
    must not also say the item is pending. Results written without that record keep their note."""
    for pair in awaiting if isinstance(awaiting, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(words, str) for words in pair):
            note = note.replace(pair[0], pair[1], 1)
    return note


def grader_note(output: str) -> str:
    """The note an item's feedback shows under its heading, from the grader's output in results.json (which adds
    the answer, or the extra-credit work, after it)."""
    for shown in ("\n\nThe answer:\n\n", "\n\nThe extra-credit work"):
        output = output.split(shown, 1)[0]
    return output


def settled_output(output: str, awaiting: Any) -> str:
    """The grader's output of an item staff have set, its note settled (`settled_note`), the rest as it was."""
    note = grader_note(output)
    return settled_note(note, awaiting) + output[len(note):]


def _extra_credit_summary(output: str, document: dict[str, Any]) -> str:
    """results.json's summary with its extra-credit line as the tests now say: the staff's points where set,
    "pending staff grading" only where the work still awaits them."""
    said = []
    for test in document.get("tests", []):
        if not is_extra_credit(test):
            continue
        extra = test.get("extra_data") or {}
        item_id = (test.get("tags") or [""])[0]
        title = str(test.get("name", "")).removesuffix(f" [{item_id}]")
        staff = extra.get("staff") if isinstance(extra.get("staff"), dict) else None
        if staff is not None:
            by = "set by staff for an earlier submission" if staff.get("earlier_submission") else "set by staff"
            said.append(f"{title}: {test.get('score', 0):g} / {test.get('max_score', 0):g} ({by})")
        elif extra.get("grading") == str(ItemStatus.PENDING):
            said.append(f"{title}: pending staff grading")
        else:
            said.append(f"{title}: {test.get('score', 0):g} / {test.get('max_score', 0):g}")
    if not said:
        return output
    return re.sub(r"^(extra credit, not in the [0-9.]+ points: ).*$", lambda m: m.group(1) + "; ".join(said), output,
                  count=1, flags=re.M)


#: What an item's grading says about its own doubts (the filters' "provisional", the training's flags);
#: once staff set the item these are the grader's, kept in extra_data.grader, and the item has none.
GRADER_FLAGS = {"flags": [], "provisional": False}
EARLIER = "given for an earlier submission (the submission changed since; staff are to grade it again)"


def apply_staff_score(document: dict[str, Any], item_id: str, points: float, comment: str,
                      submission: str | None = None) -> dict[str, Any]:
    """A copy of results.json with the item's score set by staff (replacing, never adding to, an earlier
    staff score) and the total recomputed. The grader's own score, status, output, grading, reason
    code and flags stay in each test's extra_data.grader, from which the test is rebuilt every time:
    applying the same score twice gives the same document. An item with components (conv backward's
    dimg, dW, db) gets the staff's points spread over its tests in proportion to their maxima.

    `submission`: the sha256 of the submission staff graded (the merge log's); None means these
    results' own. When it differs from these results' own, the score is still set but marked as
    given for an earlier submission (in extra_data.staff, the output and the feedback)."""
    document = copy.deepcopy(document)
    current = submission_sha256(document)
    graded = submission or current
    earlier = bool(graded and current and graded != current)
    tests = item_tests(document, item_id)
    maximum = sum(test["max_score"] for test in tests)
    given = 0.0
    for index, test in enumerate(tests):
        extra = test.setdefault("extra_data", {})
        grader = extra.setdefault("grader", {"score": test.get("score"), "status": test.get("status"),
                                             "output": test.get("output", ""), "grading": extra.get("grading"),
                                             "reason_code": extra.get("reason_code")})
        for key, cleared in GRADER_FLAGS.items():
            if key in extra:
                grader.setdefault(key, copy.deepcopy(extra[key]))  # results merged before kept them in place
                extra[key] = copy.deepcopy(cleared)
        share = points - given if index == len(tests) - 1 else round(points * test["max_score"] / maximum, 4)
        share = round(share, 4)
        given += share
        line = f"Score set by staff: {points:g} / {maximum:g}"
        if len(tests) > 1:
            line += f" for the whole item ({share:g} / {test['max_score']:g} for this part)"
        if earlier:
            line += f", {EARLIER}"
        line += f". Staff's comment: {comment}" if comment else "."
        test["score"] = share
        test["status"] = "passed" if share >= test["max_score"] else "failed"
        test["output"] = f"{line}\n\n{FOUND}\n\n{settled_output(str(grader['output']), extra.get(AWAITING))}"
        staff = {"points": points, "comment": comment, "submission_sha256": graded}
        if earlier:
            staff["earlier_submission"] = True
        extra.update(grading=str(ItemStatus.GRADED), reason_code=str(ReasonCode.STAFF_SCORE), staff=staff)
    document["score"] = counted_score(document)  # extra credit is shown, never in the total
    if isinstance(document.get("output"), str):
        document["output"] = _extra_credit_summary(_headline(document["output"], document["score"]), document)
    return document


def staff_feedback(text: str, document: dict[str, Any], rubric: Rubric) -> str:
    """feedback.md with the staff's scores in it: the total, each staff-set item's table row and heading,
    and a section listing them with their comments (replaced, never repeated, on every merge)."""
    start = text.find(SECTION_BEGIN)
    if start >= 0:
        end = text.find(SECTION_END, start)
        if end >= 0:
            text = text[:start] + text[end + len(SECTION_END):].removeprefix("\n\n")
    lines = []
    for item in _document_items(document, rubric):
        staff = staff_score(document, item.id)
        if staff is None:
            continue
        points, comment = staff
        maximum = _max_points(document, item.id)
        earlier = for_earlier_submission(document, item.id)
        outside = " (extra credit, not in the total)" if item.extra_credit else ""
        lines.append(f"- {item.title}: {points:g} / {maximum:g}{outside}" + (f", {EARLIER}" if earlier else "")
                     + (f". Comment: {comment}" if comment else ""))
        by = "set by staff for an earlier submission" if earlier else "set by staff"
        title = re.escape(item.title)
        text = re.sub(rf"^\| {title} \| .*\|$", f"| {item.title} | {points:g} | {maximum:g} | {by} |", text,
                      count=1, flags=re.M)
        text = re.sub(rf"^## {title}: .*$", f"## {item.title}: {points:g} / {maximum:g} ({by})", text,
                      count=1, flags=re.M)
        text = _item_section(text, item.title, *_staff_block(document, item.id, points, maximum, comment, earlier))
    headline = re.search(r"^\*\*-?[0-9.]+ / ([0-9.]+) points\*\*.*\n\n", text, flags=re.M)
    if headline is None:
        return text
    text = (text[:headline.start()] + re.sub(r"^\*\*-?[0-9.]+ /", f"**{document['score']:g} /", headline.group(0))
            + text[headline.end():])
    if lines:
        headline = re.search(r"^\*\*-?[0-9.]+ / ([0-9.]+) points\*\*.*\n\n", text, flags=re.M)
        aside = ", extra credit aside" if any("(extra credit, not in the total)" in line for line in lines) else ""
        section = "\n".join([SECTION_BEGIN, "**Scores set by staff** (they replace the grader's; the total above "
                             f"includes them{aside}):", "", *lines, SECTION_END]) + "\n\n"
        text = text[:headline.end()] + section + text[headline.end():]
    return text


def _staff_block(document: dict[str, Any], item_id: str, points: float, maximum: float, comment: str,
                 earlier: bool) -> tuple[str, str]:
    """What an item's section of feedback.md says first once staff set it: their score and comment, then, for an
    item whose section is the grader's note (no cases: the notebook's items, extra credit), what the grader found,
    settled. Returns the block and that note as grading wrote it (to take out of the section), or ""."""
    line = f"**Score set by staff: {points:g} / {maximum:g}**" + (f", {EARLIER}" if earlier else "")
    line += f". Staff's comment: {comment}" if comment else "."
    tests = item_tests(document, item_id)
    extra = (tests[0].get("extra_data") or {}) if len(tests) == 1 else {}
    grader = extra.get("grader")
    if not isinstance(grader, dict) or extra.get("cases"):
        return line, ""
    note = grader_note(str(grader.get("output") or ""))
    return (f"{line}\n\n{FOUND} {settled_note(note, extra.get(AWAITING))}" if note else line), note


def _item_section(text: str, title: str, block: str, note: str) -> str:
    """feedback.md with `block` first under the item's heading, between markers (replaced, never repeated, by the
    next merge). The grader's `note` that stood there (saying that the item awaits staff) goes: the block says what
    the grader found, settled; "as staff will read it" becomes "as staff read it"."""
    heading = re.search(rf"^## {re.escape(title)}: .*\n\n", text, flags=re.M)
    if heading is None:
        return text
    end = text.find("\n## ", heading.end())
    end = len(text) if end < 0 else end + 1
    body = text[heading.end():end].rstrip("\n")
    trailing = text[heading.end() + len(body):end]  # the blank line before the next heading, or the last new line
    if body.startswith(ITEM_BEGIN) and ITEM_END in body:
        body = body[body.index(ITEM_END) + len(ITEM_END):].lstrip("\n")
    elif note and (body == note.rstrip("\n") or body.startswith(note + "\n")):
        body = body[len(note):].lstrip("\n")
    body = body.replace("as staff will read it", "as staff read it")
    return (text[:heading.end()] + f"{ITEM_BEGIN}\n{block}\n{ITEM_END}" + (f"\n\n{body}" if body else "")
            + (trailing or "\n") + text[end:])


def _graded_as(document: dict[str, Any], rubric: Rubric) -> Rubric:
    """The rubric in the words the student's feedback was written in: that of the edition its results name
    (extra_data.edition), so that an item's title ("... 40 % ... on CIFAR-100") is found and kept; results
    from before editions, or of an edition this grader no longer knows, keep `rubric`'s."""
    edition = (document.get("extra_data") or {}).get("edition")
    name = edition.get("name") if isinstance(edition, dict) else None
    if not isinstance(name, str) or name == rubric.edition.name:
        return rubric
    try:
        return rubric.with_edition(get_edition(name))
    except EditionError:
        return rubric


def _document_items(document: dict[str, Any], rubric: Rubric) -> list[Item]:
    """The rubric's items and the extra-credit items these results hold, the latter under the title their
    test carries (the edition's), as feedback.md shows them."""
    items = list(rubric.items)
    for item in all_extra_items():
        tests = item_tests(document, item.id)
        if tests:
            title = str(tests[0].get("name", "")).removesuffix(f" [{item.id}]") or item.title
            items.append(Item(item.id, title, item.points, item.kind, extra_credit=True))
    return items


def _write_student(student_dir: Path, document: dict[str, Any], rubric: Rubric) -> bool:
    """Write results.json (atomically) and then feedback.md; False when results.json was already so."""
    text = json.dumps(document, indent=1) + "\n"
    results = student_dir / RESULTS
    if results.is_file() and results.read_text(encoding="utf-8") == text:
        changed = False
    else:
        write_atomically(results, text)
        changed = True
    for feedback in (student_dir / FEEDBACK, student_dir / FEEDBACK_RELEASED):  # before and after the due date
        if feedback.is_file():
            old = feedback.read_text(encoding="utf-8")
            new = staff_feedback(old, document, _graded_as(document, rubric))
            if new != old:
                write_atomically(feedback, new)
    return changed


# --- the log and the lock ---------------------------------------------------------------------------

@contextmanager
def merge_lock(graded_dir: Path) -> Iterator[None]:
    """Hold GRADED_DIR's merge lock: merges (and a batch re-applying staff scores) run one at a time.
    The lock is the folder's own (flock on its descriptor), so it leaves no file behind."""
    descriptor = os.open(graded_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line in a single write, then fsync: a crash leaves the whole line or a torn
    tail, never part of a record inside the file (a torn tail is ended before the next record)."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line
        if os.write(descriptor, line) != len(line):
            raise OSError(f"{path}: the merge record was written only in part")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_log(graded_dir: Path) -> list[dict[str, Any]]:
    """Every complete record of GRADED_DIR's merge log, oldest first (a torn line is skipped)."""
    path = graded_dir / MERGE_LOG
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def current_staff_scores(graded_dir: Path) -> dict[str, dict[str, tuple[float, str, str | None]]]:
    """student -> item -> (points, comment, the sha256 of the submission they were given for, or None
    in a log from before it was recorded): the latest staff score of each, replayed from the log."""
    current: dict[str, dict[str, tuple[float, str, str | None]]] = {}
    for record in read_log(graded_dir):
        for change in record.get("changes", []):
            try:
                sha = change.get("submission_sha256")
                current.setdefault(str(change["student_id"]), {})[str(change["item"])] = (
                    float(change["new_points"]), str(change.get("new_comment") or ""),
                    sha if isinstance(sha, str) and sha else None)
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
    return current


def _login() -> str:
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in this environment (getpass raises KeyError or OSError)
        return "unknown"


# --- the merge ----------------------------------------------------------------------------------------

def merge_manual(scores_csv: Path, graded_dir: Path, by: str | None = None) -> MergeReport:
    """Merge a scores file into GRADED_DIR, all or nothing (ManualScoresError lists every problem and
    writes nothing). Order of writes: the log's record first, then each changed student's results.json
    (atomically) and feedback.md; the caller rebuilds the gradebook last."""
    if scores_csv.is_dir():
        swapped = " (the two look swapped)" if graded_dir.is_file() else ""
        raise UserInputError(f"{scores_csv}: SCORES.csv is a folder: the order is SCORES.csv GRADED_DIR{swapped}")
    if graded_dir.is_file():
        raise UserInputError(f"{graded_dir}: GRADED_DIR is a file, not a folder of graded results: the order is "
                             "SCORES.csv GRADED_DIR")
    try:
        data = scores_csv.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{scores_csv}: cannot be read ({exc.strerror})") from None
    if not graded_dir.is_dir():
        raise UserInputError(f"{graded_dir}: not a folder of graded results")
    check_class_files(graded_dir)  # the log, the gradebook, the reports: a folder in one's place is named, not hit
    rubric = load_rubric()
    name = scores_csv.name
    with merge_lock(graded_dir):
        scores, blank, documents = read_scores(data, name, graded_dir, rubric)
        changes, updated, unchanged = [], {}, 0
        for score in scores:
            before = updated.get(score.student_id, documents[score.student_id])
            after = apply_staff_score(before, score.item, score.points, score.comment)
            old = staff_score(before, score.item)
            if after == before:
                unchanged += 1
                continue
            updated[score.student_id] = after
            changes.append({"student_id": score.student_id, "item": score.item, "line": score.line,
                            "old_points": item_score(before, score.item), "new_points": score.points,
                            "old_by": "staff" if old else "grader", "old_comment": old[1] if old else None,
                            "new_comment": score.comment, "submission_sha256": submission_sha256(before)})
        record = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": by or _login(),
                  "file": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(scores) + blank,
                  "blank_rows": blank, "changed": len(changes), "unchanged": unchanged, "changes": changes}
        log = graded_dir / MERGE_LOG
        append_record(log, record)
        for student, document in updated.items():
            _write_student(graded_dir / student, document, rubric)
    return MergeReport(changes, unchanged, blank, log, record)


def reapply_staff_scores(graded_dir: Path, students: list[str]) -> tuple[list[str], list[str], list[str]]:
    """After a re-grade: set the log's current staff scores again in these students' results (a fresh
    results.json holds the grader's scores only). Returns the students whose results changed, a note
    per staff score that no longer fits (an item gone, points above a new maximum), and the students
    with a staff score given for an earlier submission (they resubmitted since the merge: the score
    is still set, as documented, but marked so that staff grade the new submission)."""
    scores = current_staff_scores(graded_dir)
    if not scores:
        return [], [], []
    rubric = load_rubric()
    changed, notes, earlier = [], [], []
    with merge_lock(graded_dir):
        for student in students:
            results = graded_dir / student / RESULTS
            if student not in scores or not results.is_file():
                continue
            try:
                document = json.loads(results.read_text(encoding="utf-8"))
            except ValueError as exc:
                notes.append(f"{results}: staff scores not re-applied, it cannot be read ({exc})")
                continue
            updated = document
            for item_id, (points, comment, submission) in sorted(scores[student].items()):
                if not item_tests(updated, item_id) or not 0 <= points <= _max_points(updated, item_id):
                    notes.append(f"{student}: the staff score {points:g} for {item_id!r} ({MERGE_LOG}) no longer "
                                 "fits these results; not re-applied")
                    continue
                updated = apply_staff_score(updated, item_id, points, comment, submission)
            if _write_student(graded_dir / student, updated, rubric):
                changed.append(student)
            if any(for_earlier_submission(updated, item_id) for item_id in known_items(rubric)):
                earlier.append(student)
    return changed, notes, earlier

"""merge-manual on a real batch's output: refusals by line, all or nothing, the log, idempotence,
the gradebook and class report rebuilt, and staff scores kept when the batch re-grades."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone

import filter_renderings as draw
import nbformat
import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from gaming import build
from gaming import notebook as official_layout
from submissions import make_submission

from autograder import REPO_ROOT
from autograder.reports.manual import (
    MERGE_LOG,
    ManualScoresError,
    current_staff_scores,
    merge_lock,
    merge_manual,
    read_log,
)

HEADER = "student_id,item,points,comment\n"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A real batch of three: the reference (0042, an id with leading zeros), the template, the reference again."""
    root = tmp_path_factory.mktemp("class")
    folder = root / "submissions"
    make_submission(folder / "0042", source=REFERENCE)
    make_submission(folder / "1002", source=TEMPLATE)
    make_submission(folder / "1003", source=REFERENCE)
    out = root / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, out


@pytest.fixture
def graded(batch, tmp_path):
    """A fresh copy of the batch's output for one test."""
    copy = tmp_path / "graded"
    shutil.copytree(batch[1], copy)
    return copy


def section(feedback: str, title: str) -> str:
    """One item's section of feedback.md: its heading up to the next heading."""
    start = feedback.index(f"## {title}: ")
    end = feedback.find("\n## ", start)
    return feedback[start:] if end < 0 else feedback[start:end]


def book(out):
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def results(out, student):
    return json.loads((out / student / "results.json").read_text(encoding="utf-8"))


def item_test(document, item):
    return next(test for test in document["tests"] if test["tags"] == [item])


def snapshot(out):
    """Every file of the output folder by its bytes."""
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


def scores_file(tmp_path, text, name="scores.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


REFUSALS = [
    ("0042,inline_answer,7,\n",
     "scores.csv:2: 7 points is outside 0..5 for inline_answer; expected a number from 0 to 5"),
    ("1002,inline_answer,1,\n0042,inline_answer,-0.5,\n", "scores.csv:3: -0.5 points is outside 0..5"),
    ("0042,inline_answer,nan,\n", "scores.csv:2: points 'nan' is not a finite number; expected a number from 0 to 5"),
    ("0042,training,inf,\n", "scores.csv:2: points 'inf' is not a finite number; expected a number from 0 to 25"),
    ("0042,inline_answer,four,\n", "scores.csv:2: points 'four' is not a number; expected a number from 0 to 5"),
    ('0042,inline_answer,"4,5",\n', "scores.csv:2: points '4,5' is not a number; expected a number from 0 to 5 "
                                    "with a decimal point, not a comma"),
    ("9999,inline_answer,3,\n", "scores.csv:2: unknown student '9999' (no 9999/results.json in"),
    ("42,inline_answer,3,\n", "scores.csv:2: unknown student '42' (no 42/results.json in"),
    ("42,inline_answer,3,\n", "did a spreadsheet drop leading zeros? '0042' exists"),
    ("../0042,inline_answer,3,\n", "scores.csv:2: unknown student '../0042'"),
    ("0042,filter,3,\n", "scores.csv:2: unknown item 'filter' (items: output_size, conv_forward, conv_backward, "
                         "pool_forward, pool_backward, test_cnn, training, filters, inline_answer)"),
    ("0042,inline_answer,3,\n1002,filters,1,\n0042,inline_answer,4,\n",
     "scores.csv:4: 0042 inline_answer again (first at line 2); expected one row per student and item"),
    ("0042,inline_answer,,looks fine\n", "scores.csv:2: a comment but no points"),
    ("0042,inline_answer,3,good,extra\n", "scores.csv:2: 5 fields, the header has 4"),
    (",inline_answer,3,\n", "scores.csv:2: no student_id"),
]


@pytest.mark.parametrize("rows,expected", REFUSALS)
def test_each_bad_row_is_named_by_line_and_nothing_is_merged(graded, tmp_path, rows, expected):
    before = snapshot(graded)
    with pytest.raises(ManualScoresError) as refused:
        merge_manual(scores_file(tmp_path, HEADER + rows), graded, by="tester")
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
    assert snapshot(graded) == before  # all or nothing: not even the log


@pytest.mark.parametrize("content,expected", [
    ("student_id,item,comment\n0042,inline_answer,ok\n",
     "scores.csv:1: the header lacks points; expected student_id,item,points,comment (comment optional)"),
    ("student_id,item,points,coment\n", "scores.csv:1: unknown column(s) 'coment'"),
    ("student_id,item,points,points\n", "scores.csv:1: column(s) points appear twice"),
    ("", "scores.csv:1: no header"),
    (HEADER.encode() + "0042,inline_answer,5,très bien\n".encode("utf-8")
     + "1002,inline_answer,4,très\n".encode("latin-1"),
     "scores.csv:3: not UTF-8 (byte 0xe8)"),
])
def test_a_bad_file_is_named_and_nothing_is_merged(graded, tmp_path, content, expected):
    before = snapshot(graded)
    with pytest.raises(ManualScoresError) as refused:
        merge_manual(scores_file(tmp_path, content), graded)
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
    assert snapshot(graded) == before


def test_the_cli_lists_every_problem_and_exits_2(graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "0042,inline_answer,4.5,fine\n42,inline_answer,4,\n"
                                            "1002,filter,3,\n1002,inline_answer,9,\n")
    before = snapshot(graded)
    done = run_grade("merge-manual", str(scores), str(graded))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing merged, 3 problem(s)" in done.stderr
    for line in (3, 4, 5):
        assert f"scores.csv:{line}: " in done.stderr
    assert "scores.csv:2:" not in done.stderr and "Traceback" not in done.stderr
    assert snapshot(graded) == before  # the good row on line 2 was not merged either


def test_help_says_all_or_nothing_and_the_format():
    done = run_grade("merge-manual", "--help")
    text = " ".join(done.stdout.split())
    assert done.returncode == 0
    for words in ("All or nothing", "NOTHING is merged", "student_id,item,points[,comment]",
                  "blank points", "manual_merges.jsonl", "--by NAME", "exit 2",
                  "the grading sheet (manual_grading.html)", "CSV UTF-8 (Comma delimited)",
                  "SCORES.csv the staff's scores (e.g. manual_scores.csv from the grading sheet)",
                  "GRADED_DIR the batch's output folder (batch --out)", "cannot be given back to the grader",
                  "set by staff for an earlier submission"):
        assert words in text, words
    batch = " ".join(run_grade("batch", "--help").stdout.split())
    assert "Staff scores merged before (OUT/manual_merges.jsonl) are set again in the new results" in batch


def test_merge_sets_scores_and_the_gradebook_and_report_follow(graded, tmp_path):
    before = book(graded)["0042"]
    assert "inline_answer pending staff" in before["flags"]
    assert before["status"] == "pending staff" and before["inline_answer"] == ""  # blank, not 0, until staff set it
    assert float(before["provisional"]) == 0  # the pending answer's 0 points; nothing else awaits staff
    total = float(before["total"])
    sources = {student: row["source"] for student, row in book(graded).items()}
    scores = scores_file(tmp_path, HEADER + " 0042 , inline_answer ,4.5,\"Good, but brief\"\n"
                                            "1002,filters,2,staff saw filters\n1003,inline_answer,,\n")
    done = run_grade("merge-manual", str(scores), str(graded), "--by", "tester")
    assert done.returncode == 0, done.stderr
    assert "2 changed, 0 unchanged, 1 blank row(s) skipped" in done.stdout
    assert "0042 inline_answer: 0 (grader) -> 4.5 (Good, but brief)" in done.stdout
    assert "(1 complete, 2 pending staff)" in done.stdout  # what is left for staff
    rows = book(graded)
    assert float(rows["0042"]["inline_answer"]) == 4.5 and float(rows["0042"]["total"]) == pytest.approx(total + 4.5)
    assert "pending" not in rows["0042"]["flags"]
    assert float(rows["1002"]["filters"]) == 2 and "filters set by staff" in rows["1002"]["flags"]
    assert all("inline_answer pending staff" in rows[student]["flags"] for student in ("1002", "1003"))
    assert {student: row["source"] for student, row in rows.items()} == sources
    assert {student: row["status"] for student, row in rows.items()} == {
        "0042": "complete", "1002": "pending staff", "1003": "pending staff"}  # their answers still await staff
    assert float(rows["0042"]["provisional"]) == 0 and rows["1003"]["inline_answer"] == ""
    report = (graded / "class_report.md").read_text(encoding="utf-8")
    inline = next(line for line in report.splitlines() if line.startswith("| Inline question"))
    assert "| 4.50 | 5 | 0/1 |" in inline  # the one answer staff graded; the two pending are not zeros
    failures = report[report.index("## Most common failures"):report.index("## Failure patterns")]
    assert "staff score" not in failures  # a staff's partial score is no failure pattern

    document = results(graded, "0042")
    test = item_test(document, "inline_answer")
    assert test["score"] == 4.5 and test["status"] == "failed"
    assert test["output"].startswith("Score set by staff: 4.5 / 5. Staff's comment: Good, but brief")
    assert test["extra_data"]["grading"] == "graded" and test["extra_data"]["reason_code"] == "staff_score"
    assert test["extra_data"]["grader"]["grading"] == "pending" and test["extra_data"]["grader"]["score"] == 0
    assert document["score"] == pytest.approx(sum(t["score"] for t in document["tests"]))
    assert document["output"].startswith(f"0042: {document['score']:g} / 60 points")
    feedback = (graded / "0042" / "feedback.md").read_text(encoding="utf-8")
    assert f"**{document['score']:g} / 60 points**" in feedback
    assert "- Inline question: what kinds of filters (graded by staff): 4.5 / 5. Comment: Good, but brief" in feedback
    assert "| Inline question: what kinds of filters (graded by staff) | 4.5 | 5 | set by staff |" in feedback
    answer = section(feedback, "Inline question: what kinds of filters (graded by staff)")
    assert answer.startswith("## Inline question: what kinds of filters (graded by staff): 4.5 / 5 (set by staff)")
    assert "pending" not in answer and "**Score set by staff: 4.5 / 5**. Staff's comment: Good, but brief" in answer
    assert re.search(r"What the grader found \(its score is replaced\): answer of \d+ words \(cell", answer), answer
    assert "pending" not in test["output"] and "What the grader found" in test["output"]


def test_merging_again_changes_nothing_and_a_new_score_replaces(graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "0042,inline_answer,4.5,brief\n1002,inline_answer,1,\n")
    first = run_grade("merge-manual", str(scores), str(graded))
    assert first.returncode == 0 and "2 changed, 0 unchanged" in first.stdout
    merged = snapshot(graded)
    again = run_grade("merge-manual", str(scores), str(graded))
    assert again.returncode == 0 and "0 changed, 2 unchanged" in again.stdout
    now = snapshot(graded)
    changed = {name for name in merged if merged[name] != now.get(name)}
    assert changed == {MERGE_LOG}  # results, feedback, gradebook, report byte-identical; one more log line
    test = item_test(results(graded, "0042"), "inline_answer")
    assert test["output"].count("Score set by staff") == 1
    assert (graded / "0042" / "feedback.md").read_text().count("Scores set by staff") == 1
    records = read_log(graded)
    assert [r["changed"] for r in records] == [2, 0] and records[1]["unchanged"] == 2 and records[1]["changes"] == []

    total = results(graded, "0042")["score"]
    fixed = scores_file(tmp_path, HEADER + "0042,inline_answer,3,on reflection\n", name="second.csv")
    done = run_grade("merge-manual", str(fixed), str(graded))
    assert done.returncode == 0 and "1 changed, 0 unchanged" in done.stdout
    assert "0042 inline_answer: 4.5 -> 3 (on reflection)" in done.stdout
    document = results(graded, "0042")
    assert item_test(document, "inline_answer")["score"] == 3 and document["score"] == pytest.approx(total - 1.5)
    assert float(book(graded)["0042"]["inline_answer"]) == 3
    change = read_log(graded)[-1]["changes"][0]
    assert (change["old_points"], change["new_points"], change["old_by"]) == (4.5, 3, "staff")
    assert (change["old_comment"], change["new_comment"], change["line"]) == ("brief", "on reflection", 2)
    assert item_test(document, "inline_answer")["output"].count("Score set by staff") == 1


def test_the_log_says_when_who_which_file_and_what_changed(graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "1003,filters,4,\n1003,inline_answer,5,excellent\n")
    environment = dict(os.environ, LOGNAME="ta-login", USER="ta-login")
    started = datetime.now(timezone.utc).replace(microsecond=0)
    done = subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), "merge-manual", str(scores), str(graded)],
                          capture_output=True, text=True, env=environment, cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    [record] = read_log(graded)
    sha = results(graded, "1003")["extra_data"]["submission_sha256"]
    assert len(sha) == 64
    when = datetime.fromisoformat(record["when"])
    assert when.utcoffset().total_seconds() == 0 and started <= when <= datetime.now(timezone.utc)
    assert record["by"] == "ta-login" and record["file"] == "scores.csv"
    assert record["sha256"] == hashlib.sha256(scores.read_bytes()).hexdigest()
    assert record["changed"] == 2 and record["rows"] == 2
    assert record["changes"] == [
        {"student_id": "1003", "item": "filters", "line": 2, "old_points": 0.0, "new_points": 4.0,
         "old_by": "grader", "old_comment": None, "new_comment": "", "submission_sha256": sha},
        {"student_id": "1003", "item": "inline_answer", "line": 3, "old_points": 0.0, "new_points": 5.0,
         "old_by": "grader", "old_comment": None, "new_comment": "excellent", "submission_sha256": sha}]
    assert (graded / MERGE_LOG).read_text().count("\n") == 1
    assert current_staff_scores(graded) == {"1003": {"filters": (4.0, "", sha),
                                                     "inline_answer": (5.0, "excellent", sha)}}


def test_a_torn_last_line_is_skipped_and_never_glued_to_the_next(graded, tmp_path):
    merge_manual(scores_file(tmp_path, HEADER + "0042,inline_answer,2,\n"), graded, by="a")
    with open(graded / MERGE_LOG, "a", encoding="utf-8") as handle:
        handle.write('{"when": "2030-01-01T00:00:00+00:00", "changes": [{"student_id": "0042", "item": "inl')
    assert [r["by"] for r in read_log(graded)] == ["a"]
    merge_manual(scores_file(tmp_path, HEADER + "1002,inline_answer,1,\n"), graded, by="b")
    lines = (graded / MERGE_LOG).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["by"] == "b"
    assert [r["by"] for r in read_log(graded)] == ["a", "b"]
    shas = {student: results(graded, student)["extra_data"]["submission_sha256"] for student in ("0042", "1002")}
    assert current_staff_scores(graded) == {"0042": {"inline_answer": (2.0, "", shas["0042"])},
                                            "1002": {"inline_answer": (1.0, "", shas["1002"])}}


def test_a_merge_cut_short_after_its_log_line_is_finished_by_running_it_again(batch, graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "0042,inline_answer,4,\n1002,inline_answer,2,\n")
    merge_manual(scores, graded)
    # as if the process died after the log line and 0042's results, before 1002's: put 1002's back
    for name in ("results.json", "feedback.md"):
        shutil.copy(batch[1] / "1002" / name, graded / "1002" / name)
    done = run_grade("merge-manual", str(scores), str(graded))
    assert done.returncode == 0 and "1 changed, 1 unchanged" in done.stdout
    assert item_test(results(graded, "1002"), "inline_answer")["score"] == 2
    assert float(book(graded)["1002"]["inline_answer"]) == 2


def test_an_item_with_components_is_overridden_as_a_whole(graded, tmp_path):
    merge_manual(scores_file(tmp_path, HEADER + "0042,conv_backward,2.5,regraded by hand\n"), graded)
    parts = [t for t in results(graded, "0042")["tests"] if t["tags"] == ["conv_backward"]]
    assert len(parts) == 3 and sum(t["score"] for t in parts) == pytest.approx(2.5)
    assert [t["score"] for t in parts] == pytest.approx([t["max_score"] / 2 for t in parts])
    assert all(t["output"].startswith("Score set by staff: 2.5 / 5 for the whole item") for t in parts)
    from autograder.batch import refresh_reports
    refresh_reports(graded)
    row = book(graded)["0042"]
    assert float(row["conv_backward"]) == 2.5 and "conv_backward set by staff" in row["flags"]


def test_two_merges_at_once_run_one_after_the_other(graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "1003,inline_answer,3,\n")
    with merge_lock(graded):  # another merge holds the lock
        waiting = subprocess.Popen([sys.executable, str(REPO_ROOT / "grade.py"), "merge-manual", str(scores),
                                    str(graded)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(3)
        assert waiting.poll() is None and item_test(results(graded, "1003"), "inline_answer")["score"] == 0
        assert not (graded / MERGE_LOG).exists()
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert item_test(results(graded, "1003"), "inline_answer")["score"] == 3 and len(read_log(graded)) == 1


@pytest.mark.slow
def test_a_forced_regrade_keeps_the_staff_scores(batch, graded, tmp_path):
    folder, _ = batch
    scores = scores_file(tmp_path, HEADER + "0042,inline_answer,4.5,Good\n1002,filters,2,\n")
    assert run_grade("merge-manual", str(scores), str(graded)).returncode == 0
    merged = {student: results(graded, student)["score"] for student in ("0042", "1002", "1003")}
    done = run_grade("batch", str(folder), "--out", str(graded), "--jobs", "2", "--force")
    assert done.returncode == 0, done.stderr
    assert "3 graded" in done.stdout and "set again in the new results of 2 student(s): 0042, 1002" in done.stdout
    assert {student: results(graded, student)["score"] for student in merged} == merged
    document = results(graded, "0042")
    test = item_test(document, "inline_answer")
    assert test["score"] == 4.5 and test["output"].count("Score set by staff") == 1
    assert "Score set by staff" not in test["extra_data"]["grader"]["output"]  # the new grader output, kept once
    feedback = (graded / "0042" / "feedback.md").read_text(encoding="utf-8")
    assert "Scores set by staff" in feedback and "4.5 / 5. Comment: Good" in feedback
    rows = book(graded)
    assert float(rows["0042"]["inline_answer"]) == 4.5 and float(rows["1002"]["filters"]) == 2
    assert "pending" not in rows["0042"]["flags"] and "filters set by staff" in rows["1002"]["flags"]
    # merging the same file after the re-grade: nothing left to change
    again = run_grade("merge-manual", str(scores), str(graded))
    assert again.returncode == 0 and "0 changed, 2 unchanged" in again.stdout


# --- spreadsheet mistakes, swapped arguments ---------------------------------------------------------

EXCEL = "(in Excel: save as 'CSV UTF-8 (Comma delimited)')"
UTF16 = "scores.csv:1: the file is UTF-16 (a spreadsheet's \"Unicode text\"); save it as CSV UTF-8 " + EXCEL
SPREADSHEET_MISTAKES = [
    pytest.param(b"student_id;item;points;comment\r\n0042;inline_answer;4,5;gut\r\n",
                 "scores.csv:1: the columns are separated by ';'; expected ',' " + EXCEL, id="semicolons"),
    pytest.param(b"sep=;\r\nstudent_id;item;points;comment\r\n0042;inline_answer;4,5;gut\r\n",
                 "scores.csv:1: 'sep=;': the columns are separated by ';'; expected ',' " + EXCEL, id="excel-sep"),
    pytest.param(b"student_id\titem\tpoints\n0042\tinline_answer\t4\n",
                 "scores.csv:1: the columns are separated by tabs; expected ','", id="tabs"),
    pytest.param((HEADER + "0042,inline_answer,4,ok\n").encode("utf-16"), UTF16, id="utf16-bom"),
    pytest.param((HEADER + "0042,inline_answer,4,ok\n").encode("utf-16-le"), UTF16, id="utf16le-no-bom"),
    pytest.param((HEADER + "0042,inline_answer,4,ok\n").encode("utf-16-be"), UTF16, id="utf16be-no-bom"),
    pytest.param((HEADER + "42.0,inline_answer,3,\n").encode(),
                 "did a spreadsheet turn the id into a number? '0042' exists (format the column as text",
                 id="id-made-a-number"),
    pytest.param((HEADER + "1003.0,inline_answer,3,\n").encode(), "turn the id into a number? '1003' exists",
                 id="id-made-a-float"),
    pytest.param((HEADER + "0042,Inline_Answer,3,\n").encode(),
                 "scores.csv:2: unknown item 'Inline_Answer' (items: ", id="item-case"),
    pytest.param((HEADER + "0042,Inline_Answer,3,\n").encode(), "items are compared exactly: 'inline_answer' exists",
                 id="item-case-hint"),
]


@pytest.mark.parametrize("content,expected", SPREADSHEET_MISTAKES)
def test_spreadsheet_mistakes_are_named_with_what_to_do(graded, tmp_path, content, expected):
    before = snapshot(graded)
    done = run_grade("merge-manual", str(scores_file(tmp_path, content)), str(graded))
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr, done.stderr
    assert "the header lacks" not in done.stderr and "Traceback" not in done.stderr
    assert snapshot(graded) == before


@pytest.mark.parametrize("header", [
    "Student ID,Item,Points,Comment", "\ufeffSTUDENT-ID , item,POINTS", "sep=,\r\nstudent id,Item,points,comment",
    "student_id,item,points,comment"])
def test_header_names_ignore_case_spaces_hyphens_and_an_excel_sep_line(graded, tmp_path, header):
    report = merge_manual(scores_file(tmp_path, header + "\r\n0042,inline_answer,4.5\r\n"), graded)
    assert len(report.changes) == 1 and item_test(results(graded, "0042"), "inline_answer")["score"] == 4.5


def test_after_an_excel_sep_line_problems_name_the_real_line(graded, tmp_path):
    with pytest.raises(ManualScoresError) as refused:
        merge_manual(scores_file(tmp_path, "sep=,\nstudent_id,item,points\n0042,inline_answer,9\n"), graded)
    assert refused.value.problems == ["scores.csv:3: 9 points is outside 0..5 for inline_answer; expected a number "
                                      "from 0 to 5"]


def test_swapped_arguments_are_said(graded, tmp_path):
    scores = scores_file(tmp_path, HEADER + "0042,inline_answer,4,\n")
    before = snapshot(graded)
    swapped = run_grade("merge-manual", str(graded), str(scores))
    assert swapped.returncode == 2, swapped.stdout + swapped.stderr
    assert (f"error: {graded}: SCORES.csv is a folder: the order is SCORES.csv GRADED_DIR (the two look swapped)"
            in swapped.stderr)
    twice = run_grade("merge-manual", str(scores), str(scores))
    assert twice.returncode == 2 and "GRADED_DIR is a file, not a folder of graded results" in twice.stderr
    assert snapshot(graded) == before and "Traceback" not in swapped.stderr + twice.stderr


# --- the grader's flags once staff set an item; a resubmission after the merge ------------------------

@pytest.fixture(scope="module")
def doubtful(tmp_path_factory):
    """A real batch of one whose grader has doubts: a training log but no weights (accuracy unverified)
    and a filter image with nothing to check it against (filters provisional)."""
    root = tmp_path_factory.mktemp("doubtful")
    folder = root / "submissions"
    draw.show_filters(build(folder / "1004", book=official_layout()), draw.handout(draw.weights("trained_1"), 4, 4),
                      None)
    out = root / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, out


def test_an_item_set_by_staff_keeps_none_of_the_graders_flags(doubtful, tmp_path):
    folder, out = doubtful
    graded = tmp_path / "graded"
    shutil.copytree(out, graded)
    document = results(graded, "1004")
    filters, training = item_test(document, "filters"), item_test(document, "training")
    assert filters["extra_data"]["provisional"] is True and filters["extra_data"]["flags"] == ["filters provisional"]
    assert training["extra_data"]["flags"] == ["accuracy unverified"]
    assert book(graded)["1004"]["flags"].split("; ") == ["accuracy unverified", "filters provisional",
                                                         "inline_answer pending staff"]

    done = run_grade("merge-manual", str(scores_file(tmp_path, HEADER + "1004,filters,3,\n1004,training,20,\n")),
                     str(graded))
    assert done.returncode == 0, done.stderr

    def check():
        assert book(graded)["1004"]["flags"].split("; ") == ["inline_answer pending staff", "training set by staff",
                                                             "filters set by staff"]
        document = results(graded, "1004")
        filters, training = item_test(document, "filters")["extra_data"], item_test(document, "training")["extra_data"]
        assert filters["flags"] == [] and filters["grader"]["flags"] == ["filters provisional"]
        assert filters["provisional"] is False and filters["grader"]["provisional"] is True
        assert training["flags"] == [] and training["grader"]["flags"] == ["accuracy unverified"]
        report = (graded / "class_report.md").read_text(encoding="utf-8")
        line = next(line for line in report.splitlines() if line.startswith("- ") and "1004" in line)
        assert line.endswith(" (pending staff): inline_answer pending staff")  # what asks staff to act, alone
        assert "filters set by staff" in (graded / "class_report.html").read_text(encoding="utf-8")
        assert "staff's score: <b>3 / 5</b>" in card(graded, "1004")
        feedback = (graded / "1004" / "feedback.md").read_text(encoding="utf-8")
        filters_said = section(feedback, "Visualisation of the first conv layer's filters")
        assert "staff will" not in filters_said and "provisional" not in filters_said, filters_said
        assert "**Score set by staff: 3 / 5**." in filters_said and filters_said.count("Score set by staff") == 1
        assert "What the grader found (its score is replaced): " in filters_said

    check()
    again = run_grade("batch", str(folder), "--out", str(graded), "--jobs", "1", "--force")  # re-graded: set again
    assert again.returncode == 0 and "set again in the new results of 1 student(s): 1004" in again.stdout
    check()


def set_answer(folder, text):
    """Put `text` in the notebook's tagged answer cell, as a student resubmitting would."""
    path = folder / "Problem_2.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "inline-answer" in c.metadata.get("tags", []))
    cell.source = text
    nbformat.write(notebook, path)


def card(out, student):
    page = (out / "manual_grading.html").read_text(encoding="utf-8")
    return page.split(f"data-student='{student}'>", 1)[1].split("</section>", 1)[0]


def test_a_resubmission_keeps_the_staff_score_flagged_until_staff_merge_again(batch, graded, tmp_path):
    folder = tmp_path / "submissions"
    shutil.copytree(batch[0], folder)
    first = scores_file(tmp_path, HEADER + "0042,inline_answer,4.5,Good\n0042,filters,3,blurred\n"
                                           "1003,inline_answer,2,\n")
    assert run_grade("merge-manual", str(first), str(graded)).returncode == 0
    old_sha = results(graded, "0042")["extra_data"]["submission_sha256"]
    assert "earlier" not in book(graded)["0042"]["flags"]

    set_answer(folder / "0042", "A new answer: edges at several angles, and colour blobs.")
    done = run_grade("batch", str(folder), "--out", str(graded), "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 graded, 2 unchanged" in done.stdout
    note = next(line for line in done.stdout.splitlines() if "earlier submission" in line)
    assert note.startswith("note: staff scores given for an earlier submission of 1 student(s)")
    assert note.endswith(": 0042")
    document = results(graded, "0042")
    assert document["extra_data"]["submission_sha256"] != old_sha
    answer, filters = item_test(document, "inline_answer"), item_test(document, "filters")
    assert answer["score"] == 4.5 and filters["score"] == 3  # still set: the documented behaviour
    assert answer["extra_data"]["staff"] == {"points": 4.5, "comment": "Good", "submission_sha256": old_sha,
                                             "earlier_submission": True}
    assert answer["output"].startswith("Score set by staff: 4.5 / 5, given for an earlier submission (the "
                                       "submission changed since; staff are to grade it again). Staff's comment")
    assert filters["extra_data"]["staff"]["earlier_submission"] is True and filters["extra_data"]["flags"] == []
    flags = book(graded)["0042"]["flags"].split("; ")
    assert "inline_answer set by staff for an earlier submission" in flags
    assert "filters set by staff for an earlier submission" in flags
    assert "filters set by staff" not in flags and "filters provisional" not in flags, flags
    row = book(graded)["0042"]  # not final: both items are staff's to grade again, their old points provisional
    assert (row["status"], row["inline_answer"], row["filters"]) == ("pending staff", "", "")
    assert float(row["provisional"]) == 7.5 and float(row["total"]) == document["score"]
    assert "earlier" not in book(graded)["1003"]["flags"]
    feedback = (graded / "0042" / "feedback.md").read_text(encoding="utf-8")
    assert "- Inline question: what kinds of filters (graded by staff): 4.5 / 5, given for an earlier submission" \
        in feedback
    assert "| 4.5 | 5 | set by staff for an earlier submission |" in feedback
    sheet = card(graded, "0042")
    assert sheet.count("Merged for an earlier submission") == 2 and "data-merged=" not in sheet
    assert "staff's, for an earlier submission, score: <b>3 / 5</b>" in sheet
    assert "data-merged='2'" in card(graded, "1003")

    second = scores_file(tmp_path, HEADER + "0042,inline_answer,3,new answer\n0042,filters,3,blurred\n",
                         name="regraded.csv")
    merged = run_grade("merge-manual", str(second), str(graded))
    assert merged.returncode == 0 and "2 changed, 0 unchanged" in merged.stdout, merged.stdout + merged.stderr
    assert "0042 filters: 3 -> 3 (blurred)" in merged.stdout  # the same points, now for this submission
    new_sha = results(graded, "0042")["extra_data"]["submission_sha256"]
    assert [c["submission_sha256"] for c in read_log(graded)[-1]["changes"]] == [new_sha, new_sha]
    flags = book(graded)["0042"]["flags"].split("; ")
    assert "filters set by staff" in flags and not [flag for flag in flags if "earlier" in flag], flags
    row = book(graded)["0042"]
    assert (row["status"], row["inline_answer"], row["filters"], row["provisional"]) == ("complete", "3.0", "3.0",
                                                                                          "0.0")
    document = results(graded, "0042")
    assert "earlier" not in item_test(document, "inline_answer")["output"].split("\n\n")[0]
    assert "earlier" not in (graded / "0042" / "feedback.md").read_text(encoding="utf-8")
    sheet = card(graded, "0042")
    assert "Merged for an earlier submission" not in sheet and "data-merged='3'" in sheet

    again = run_grade("batch", str(folder), "--out", str(graded), "--jobs", "1")
    assert again.returncode == 0 and "3 unchanged" in again.stdout and "earlier submission" not in again.stdout
    assert not [flag for flag in book(graded)["0042"]["flags"].split("; ") if "earlier" in flag]

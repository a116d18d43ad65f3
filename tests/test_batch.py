"""Batch grading of a class: every submission gets a row, re-runs skip what did not change."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from loop_submission import LOOP_LAYERS
from notebooks import broken_pdf, official_2023_notebook, official_handout
from submissions import LAYERS, make_submission

from autograder.batch import BatchEntry, refresh_reports, write_gradebook
from autograder.model import BatchStatus
from autograder.reports.grading_log import GRADING_LOG
from autograder.reports.similarity import PAIRS
from autograder.rubric import all_extra_items, load_rubric

pytestmark = pytest.mark.slow


class _Page(HTMLParser):
    """Counts the class report's student rows and collects its images."""

    def __init__(self):
        super().__init__()
        self.student_rows, self.images = 0, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and attributes.get("class") == "student":
            self.student_rows += 1
        if tag == "img":
            self.images.append(attributes.get("src", ""))


def zip_tree(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".ipynb"):
                bundle.write(path, prefix + path.relative_to(folder).as_posix())


@pytest.fixture
def classroom(tmp_path):
    """Seven submissions: the reference, the template, two mutants, a wrapper zip, a corrupt zip, a repeated id."""
    folder = tmp_path / "submissions"
    make_submission(folder / "1001", source=REFERENCE)
    make_submission(folder / "1002", source=TEMPLATE)
    make_submission(folder / "1003", [(LAYERS, "dout.sum(axis=0)", "dout.mean(axis=0)")])
    make_submission(folder / "1004", [(LAYERS, "windows.max(axis=(4, 5))", "windows.mean(axis=(4, 5))")])
    zip_tree(REFERENCE, folder / "1005.zip", prefix="assignment1/")
    (folder / "1006.zip").write_bytes(b"PK\x03\x04 truncated")
    zip_tree(TEMPLATE, folder / "1001.zip")
    return folder


def rows(out):
    with open(out / "gradebook.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_a_class_is_graded_into_a_gradebook_and_resumes(tmp_path, classroom):
    out = tmp_path / "graded"
    done = run_grade("batch", str(classroom), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "7 graded" in done.stdout and "graded as 1001-2" in done.stdout
    book = rows(out)
    assert sorted(book) == ["1001", "1001-2", "1002", "1003", "1004", "1005", "1006"]
    header = list(next(iter(book.values())))
    assert header[:3] == ["student_id", "total", "provisional"] and header[-3:] == ["status", "flags", "source"]
    extra = [item.id for item in all_extra_items()]  # extra credit: its own columns, outside the total
    assert header[3:-4] == [item.id for item in load_rubric().items] + extra and header[-4] == "edition"
    for student, row in book.items():  # total: the settled cells and the provisional points, nothing else
        settled = sum(float(row[item.id]) for item in load_rubric().items if row[item.id] != "")
        assert float(row["total"]) == pytest.approx(settled + float(row["provisional"])), student
    # every answer awaits staff (blank, not 0), the unreadable zip's too: nobody could read it, so it is not a 0
    assert {student: row["status"] for student, row in book.items() if row["inline_answer"] == ""} == {
        student: "pending staff" for student in book}
    assert {row["edition"] for row in book.values()} <= {"2022-svhn", "2022-svhn (default)"}
    assert float(book["1001"]["total"]) == 25 and float(book["1005"]["total"]) == 25
    assert float(book["1002"]["total"]) == 0 and float(book["1001-2"]["total"]) == 0
    assert float(book["1003"]["conv_backward"]) < 5 and float(book["1003"]["pool_forward"]) == 5
    assert float(book["1004"]["pool_forward"]) < 5 and float(book["1004"]["conv_backward"]) == 5
    assert book["1006"]["flags"] == "unreadable submission; inline_answer pending staff"
    assert float(book["1006"]["total"]) == 0
    for student in book:
        assert (out / student / "results.json").is_file() and (out / student / "feedback.md").is_file()

    page = (out / "class_report.html").read_text()
    parser = _Page()
    parser.feed(page)
    assert parser.student_rows == 7 and parser.images  # one row per student, and the histogram
    png = base64.b64decode(parser.images[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG")
    report = (out / "class_report.md").read_text()
    assert "[1006](1006/feedback.md) (pending staff): unreadable submission; inline_answer pending staff" in report
    assert re.search(r"- \*\*conv_backward\*\*: failing cases: [^;]*wrong value \(7 cases\)", report)  # 1003's 7
    assert re.search(r"- \*\*training\*\*: students: [^;]*no accuracy \(\d+ students\)", report)  # by reason code

    again = run_grade("batch", str(classroom), "--out", str(out))
    assert "0 graded, 7 unchanged" in again.stdout
    assert rows(out) == book  # the gradebook is rebuilt, complete, from what is on disk

    layers = classroom / "1003" / LAYERS
    layers.write_text(layers.read_text().replace("dout.mean(axis=0)", "dout.sum(axis=0)"))
    fixed = run_grade("batch", str(classroom), "--out", str(out))
    assert "1 graded, 6 unchanged" in fixed.stdout
    assert float(rows(out)["1003"]["total"]) == 25

    forced = run_grade("batch", str(classroom), "--out", str(out), "--force", "--jobs", "1")
    assert "7 graded, 0 unchanged" in forced.stdout


def test_batch_refuses_a_missing_folder(tmp_path):
    done = run_grade("batch", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "not a folder of submissions" in done.stderr


def test_a_file_name_that_reads_as_a_formula_stays_text_in_the_gradebook(tmp_path):
    """The source column copies the submission's file name; a spreadsheet must not run `=1+2` from it."""
    out = tmp_path / "out"
    out.mkdir()
    entries = [BatchEntry("1_2", Path("=1+2.zip"), BatchStatus.HARNESS_FAULT, detail="x"),
               BatchEntry("0042", Path("0042.zip"), BatchStatus.HARNESS_FAULT, detail="x")]
    rows = {row["student_id"]: row for row in csv.DictReader(write_gradebook(out, entries).open(newline=""))}
    assert rows["1_2"]["source"] == "'=1+2.zip" and rows["0042"]["source"] == "0042.zip"
    assert refresh_reports(out) is not None  # rebuilt from the file itself: quoted once, not again
    rows = {row["student_id"]: row for row in csv.DictReader((out / "gradebook.csv").open(newline=""))}
    assert rows["1_2"]["source"] == "'=1+2.zip"


def test_a_harness_fault_in_one_submission_leaves_the_others_graded(tmp_path):
    """A stale file where one student's output folder belongs makes writing that student's results
    fail inside the harness; the batch records it, grades the rest and exits 3."""
    folder = tmp_path / "submissions"
    make_submission(folder / "7001", source=REFERENCE)
    make_submission(folder / "7002", source=REFERENCE)
    make_submission(folder / "7003", source=TEMPLATE)
    out = tmp_path / "graded"
    out.mkdir()
    (out / "7002").write_text("left here by hand\n")
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "2 graded, 0 unchanged since the last run, 1 harness fault(s)" in done.stdout
    assert re.search(r"harness fault: 7002 \(7002\): \w*Error", done.stderr)
    book = rows(out)
    assert float(book["7001"]["total"]) == 25 and float(book["7003"]["total"]) == 0
    assert book["7002"]["status"] == "fault" and book["7002"]["total"] == ""
    assert book["7002"]["flags"].startswith("harness fault: ")
    assert (out / "7002").read_text() == "left here by hand\n"  # nothing of the staff's is overwritten
    assert "7002" in (out / "class_report.md").read_text()

    (out / "7002").unlink()
    again = run_grade("batch", str(folder), "--out", str(out))
    assert again.returncode == 0 and "1 graded, 2 unchanged" in again.stdout  # only the faulted one is redone
    assert float(rows(out)["7002"]["total"]) == 25


ODD_LOG = ("(Epoch 1 / 2) Training Accuracy: 0.9., Validation Accuracy: 0.85.\n"
           "(Epoch 2 / 2) Training Accuracy: nan, Validation Accuracy: 1e999\n"
           "(Epoch 3 / 3) Training Accuracy: 0.5, Validation Accuracy: " + "9" * 5000 + "\n"
           "(Epoch \u0663 / 3) Training Accuracy: \uff10.9, Validation Accuracy: 0.99\u202e%\n"
           "Validation accuracy is 0.8.5.\n")


def test_the_handout_is_nobodys_and_library_warnings_go_to_the_log(tmp_path):
    """The class received the official handout (given as --baseline, a zip, then the same as a folder).
    Two students hand it in untouched, two solve the code and leave the answer cell empty; one of them
    hands in a slightly broken PDF and a training log with odd lines."""
    handout = official_handout(tmp_path / "handout", TEMPLATE)
    skeleton = (handout / LAYERS).read_text()
    sequential = skeleton[skeleton.index("class sequential"):]
    archive = tmp_path / "official.zip"
    zip_tree(handout, archive)
    folder = tmp_path / "submissions"
    shutil.copytree(handout, folder / "3001")
    zip_tree(handout, folder / "3002.zip")
    for student, append in (("3003", {LAYERS: sequential}), ("3004", {LAYERS: LOOP_LAYERS + "\n" + sequential})):
        solved = make_submission(folder / student, append=append)
        notebook = official_2023_notebook(answer="")
        if student == "3003":
            notebook.cells[9].outputs[0].text = ODD_LOG
            broken_pdf(solved / "problem_2_solution.pdf")
        nbformat.write(notebook, str(solved / "Problem_2.ipynb"))
    out = tmp_path / "graded"

    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2", "--baseline", str(archive))
    assert done.returncode == 0, done.stderr
    assert "4 graded" in done.stdout and "0 harness fault(s)" in done.stdout
    assert "wrong pointing object" not in done.stderr  # nothing over the progress bar
    assert "Ignoring wrong pointing object" in (out / "3003" / GRADING_LOG).read_text()
    assert "library warnings (a broken PDF, an old notebook) of 1 submission(s)" in done.stdout
    assert not (out / "3004" / GRADING_LOG).exists()
    pairs = json.loads((out / PAIRS).read_text())
    assert [p for p in pairs if p["kind"] == "answer"] == []
    assert [p for p in pairs if {"3001", "3002"} & {p["first"], p["second"]}] == []
    book = rows(out)
    assert "similar" not in book["3001"]["flags"] and "similar" not in book["3002"]["flags"]
    assert "harness fault" not in " ".join(row["flags"] for row in book.values())
    results = json.loads((out / "3003" / "results.json").read_text())
    tests = {test["tags"][0]: test for test in results["tests"]}
    assert "no answer found" in tests["inline_answer"]["output"]
    assert tests["training"]["extra_data"]["reported"] == 0.85

    again = run_grade("batch", str(folder), "--out", str(out), "--baseline", str(handout))
    assert again.returncode == 0 and "0 graded, 4 unchanged" in again.stdout  # the same handout as a folder

    ours = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")  # another baseline: all regraded
    assert "4 graded, 0 unchanged" in ours.stdout
    flagged = {(p["kind"], p["first"], p["second"]) for p in json.loads((out / PAIRS).read_text())}
    assert ("code", "3001", "3002") in flagged  # their skeleton is not our template's: what it could not tell
    assert ("answer", "3001", "3002") not in flagged  # the Extra-Credit prompt is never an answer

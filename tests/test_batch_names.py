"""Submissions named like the batch's own files are graded under another id; OUT's files stay files.

A folder `manual_merges.jsonl` in INPUT used to become OUT/manual_merges.jsonl/, after which every
merge-manual failed with IsADirectoryError; a `class_report.html.zip` was a harness fault (FileExistsError)
because the class report was already there. The batch runs here as staff run it (a real subprocess), and so
does merge-manual.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from conftest import TEMPLATE, run_grade
from submissions import make_submission

from autograder.batch import BatchEntry, discover, timed_out_result, write_gradebook
from autograder.model import BatchStatus
from autograder.reports.class_files import CLASS_FILES, GRADEBOOK, is_reserved
from autograder.reports.manual import MERGE_LOG
from autograder.reports.manual_sheet import SHEET
from autograder.reports.results import write_reports
from autograder.reports.similarity import PAIRS

HEADER = "student_id,item,points,comment\n"


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".ipynb"):
                bundle.write(path, path.relative_to(folder).as_posix())
    return archive


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / GRADEBOOK, newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_the_reserved_names_are_the_files_the_modules_write_compared_without_case():
    for name in (MERGE_LOG, PAIRS, SHEET, GRADEBOOK, "class_report.html", "class_report.md"):
        assert name in CLASS_FILES
    assert is_reserved("Manual_Merges.JSONL") and is_reserved("gradebook.csv") and not is_reserved("gradebook")
    assert not is_reserved("manual_merges.jsonl-2")


def test_discover_grades_a_reserved_name_as_its_second_holder_and_says_so(tmp_path):
    folder = tmp_path / "submissions"
    for name in ("1001", "manual_merges.jsonl", "Class_Report.HTML"):
        (folder / name).mkdir(parents=True)
    (folder / "gradebook.csv.zip").write_bytes(b"PK")
    (folder / "gradebook.csv").mkdir()  # the same id twice: the next suffix
    entries, notes = discover(folder)
    assert sorted(entry.student_id for entry in entries) == [
        "1001", "Class_Report.HTML-2", "gradebook.csv-2", "gradebook.csv-3", "manual_merges.jsonl-2"]
    said = "\n".join(notes)
    assert ("manual_merges.jsonl: student id manual_merges.jsonl is the name of a file the batch writes in its OUT "
            "folder; graded as manual_merges.jsonl-2") in said
    assert "graded as Class_Report.HTML-2" in said and "graded as gradebook.csv-3" in said


def _graded_dir(tmp_path: Path) -> Path:
    """A batch's output of one student, written by the real report writers."""
    out = tmp_path / "graded"
    write_reports(timed_out_result("0001", 90.0, 91.0), out / "0001")
    write_gradebook(out, [BatchEntry("0001", Path("0001"), BatchStatus.TIMED_OUT)])
    return out


@pytest.mark.parametrize("name", [MERGE_LOG, GRADEBOOK, "class_report.html", SHEET])
def test_merge_manual_names_a_folder_where_its_file_goes_and_writes_nothing(tmp_path, name):
    out = _graded_dir(tmp_path)
    if (out / name).exists():
        (out / name).unlink()
    write_reports(timed_out_result(name, 90.0, 91.0), out / name)  # as an earlier batch graded a student there
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    scores = tmp_path / "scores.csv"
    scores.write_text(HEADER + "0001,inline_answer,3,\n", encoding="utf-8")
    done = run_grade("merge-manual", str(scores), str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "IsADirectoryError" not in done.stderr
    assert f"{out / name}: a folder, where the batch keeps its own file {name}" in done.stderr
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_batch_names_a_folder_where_its_file_goes_before_grading(tmp_path):
    folder = tmp_path / "submissions"
    make_submission(folder / "1001", source=TEMPLATE)
    out = tmp_path / "graded"
    (out / MERGE_LOG).mkdir(parents=True)
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{out / MERGE_LOG}: a folder" in done.stderr and "Traceback" not in done.stderr
    assert not (out / "1001").exists()


@pytest.mark.slow
def test_submissions_named_like_the_batch_s_files_are_graded_under_safe_ids_and_merges_work(tmp_path):
    folder = tmp_path / "submissions"
    for name in ("1001", "manual_merges.jsonl", "Gradebook.CSV", "class_report_scores.png"):
        make_submission(folder / name, source=TEMPLATE)
    _zip(TEMPLATE, folder / "class_report.html.zip")
    _zip(TEMPLATE, folder / "similarity.json.zip")
    out = tmp_path / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 graded" in done.stdout and "0 harness fault(s)" in done.stdout
    for name in ("manual_merges.jsonl", "Gradebook.CSV", "class_report_scores.png", "class_report.html",
                 "similarity.json"):
        assert f"student id {name} is the name of a file the batch writes in its OUT folder; graded as {name}-2" \
            in done.stdout
    book = _rows(out)
    assert sorted(book) == ["1001", "Gradebook.CSV-2", "class_report.html-2", "class_report_scores.png-2",
                            "manual_merges.jsonl-2", "similarity.json-2"]
    assert {row["status"] for row in book.values()} == {"pending staff"}  # graded; the answers await staff
    assert book["class_report.html-2"]["source"] == "class_report.html.zip"
    for name in CLASS_FILES[:-1]:  # the merge log comes with the first merge
        assert (out / name).is_file(), name

    scores = tmp_path / "scores.csv"
    scores.write_text(HEADER + "manual_merges.jsonl-2,inline_answer,2,\nclass_report.html-2,inline_answer,1,\n",
                      encoding="utf-8")
    merged = run_grade("merge-manual", str(scores), str(out))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert (out / MERGE_LOG).is_file() and float(_rows(out)["manual_merges.jsonl-2"]["inline_answer"]) == 2
    # Everything at the top of OUT is a student's folder or one of the batch's own files: the list is complete.
    own = {path.name for path in out.iterdir() if not path.is_dir() and not path.name.startswith(".")}
    assert own == set(CLASS_FILES)
    assert {path.name for path in out.iterdir() if path.is_dir()} == set(book)

    again = run_grade("batch", str(folder), "--out", str(out))  # the same ids next time: nothing regraded
    assert again.returncode == 0 and "0 graded, 6 unchanged" in again.stdout

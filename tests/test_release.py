"""Release rules: before the due date no hidden case's inputs reach a student, and nothing that reads the
grade back changes for it.

The rubric's [release] table says who sees what, in Gradescope's visibility words. results.json keeps
each item's points, its public cases and, of a hidden case, only whether it passed and how it failed; the
hidden cases in full are 0-point tests tagged [hidden_case_details, item] shown after the due date, and the
staff's notes one hidden 0-point test tagged [staff_notes]. feedback.md names no hidden input unless
`--release`; feedback_released.md, beside it, always does. The gradebook, the class report and merge-manual
read the same grade as before the release tests existed.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import REFERENCE, run_grade
from submissions import LAYERS, make_submission

from autograder.attributes import Geometry, sides
from autograder.batch import BatchEntry, refresh_reports, run_batch, write_gradebook
from autograder.checks.plugin import describe_case
from autograder.diagnosis import diagnose
from autograder.evidence import shape_evidence
from autograder.fixtures import load_cases
from autograder.grading import DEFAULT_FIXTURES, grade_submission
from autograder.model import BatchStatus, CaseResult, GradeResult, graded_tests, is_release_test
from autograder.outcomes import Passed, WrongShape, WrongValue
from autograder.reports.class_report import build_class_report
from autograder.reports.manual import merge_manual
from autograder.reports.results import FEEDBACK, FEEDBACK_RELEASED, feedback_markdown, results_json, write_reports
from autograder.rubric import (
    HIDDEN_CASE_DETAILS,
    RUBRIC_PATH,
    STAFF_NOTES,
    VISIBILITIES,
    Release,
    RubricError,
    load_rubric,
)
from autograder.score import score_submission
from autograder.staff.gradescope import fault_document

# --- the [release] table ------------------------------------------------------------------------------------


def test_the_rubric_reads_its_release_table_into_typed_fields():
    release = load_rubric().release
    assert isinstance(release, Release)
    assert (release.public, release.hidden_details, release.staff_notes) == ("visible", "after_due_date", "hidden")
    assert (release.visibility, release.stdout_visibility) == ("visible", "hidden")


def _edited_rubric(tmp_path: Path, old: str, new: str) -> Path:
    """rubric.toml with one line of its [release] table changed, written as rubric.toml elsewhere."""
    text = RUBRIC_PATH.read_text(encoding="utf-8")
    assert old in text, f"rubric.toml no longer has {old!r}"
    path = tmp_path / "rubric.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, message", [
    ('hidden_details = "after_due_date"', 'hidden_details = "after_deadline"',
     r"rubric.toml: \[release\] hidden_details: must be one of visible, hidden, after_due_date, after_published, "
     r"not 'after_deadline'"),
    ('staff_notes = "hidden"', 'staff_notes = "Hidden"', r"rubric.toml: \[release\] staff_notes: must be one of"),
    ('stdout_visibility = "hidden"', "stdout_visibility = 0", r"rubric.toml: \[release\] stdout_visibility: must be "
                                                               r"a string"),
    ('public = "visible"\n', "", r"rubric.toml: \[release\] public: missing"),
    ('public = "visible"\n', 'public = "visible"\nstudents = "visible"\n',
     r"rubric.toml: \[release\] students: unknown key"),
])
def test_a_bad_release_setting_is_an_error_naming_the_file_and_key(tmp_path, old, new, message):
    with pytest.raises(RubricError, match=message):
        load_rubric(_edited_rubric(tmp_path, old, new))


def test_every_visibility_word_of_gradescope_is_accepted(tmp_path):
    for word in VISIBILITIES:
        (tmp_path / word).mkdir()
        path = _edited_rubric(tmp_path / word, 'hidden_details = "after_due_date"', f'hidden_details = "{word}"')
        assert load_rubric(path).release.hidden_details == word


def test_an_item_may_not_take_a_release_tag_as_its_id(tmp_path):
    path = _edited_rubric(tmp_path, 'id = "filters"', f'id = "{HIDDEN_CASE_DETAILS}"')
    with pytest.raises(RubricError, match="tag of results.json's release tests"):
        load_rubric(path)


# --- what a diagnosis says before the due date ---------------------------------------------------------------

def _dimg_case(name: str, visibility: str, shape: Geometry, got: tuple | None) -> CaseResult:
    """conv backward's dimg on one case: passed (`got` None), or returned an array of shape `got`."""
    expected = (shape.batch, shape.height, shape.width, shape.channels)
    outcome = Passed() if got is None else WrongShape(
        "backward(dout)", got, expected, shape_evidence(got, expected, "your dimg", "the input's"))
    description = f"input {expected}, kernel {shape.kernel}, stride {shape.stride}, padding {shape.padding}"
    return CaseResult("conv_backward", name, visibility, 0.0 if visibility == "public" else 1.0, description, outcome,
                      component="dimg", sides=sides("conv_backward", shape), geometry=shape)


HIDDEN_A = Geometry(2, 5, 10, 2, 4, 3, 0)
HIDDEN_B = Geometry(1, 7, 13, 1, 2, 2, 0)
PASSING = Geometry(4, 6, 6, 1, 1, 1, 0)


def test_a_diagnosis_names_no_hidden_shape_before_the_due_date():
    cases = [_dimg_case("public", "public", PASSING, None), _dimg_case("hidden_00", "hidden", HIDDEN_A, (2, 5, 5, 2)),
             _dimg_case("hidden_01", "hidden", HIDDEN_B, (1, 7, 7, 1)),
             _dimg_case("hidden_02", "hidden", PASSING, None)]
    _, diagnosis = diagnose("conv_backward", "dimg", cases)
    assert "your dimg has width 5 where the input's is 10" in diagnosis.summary  # the full one tells the shape
    assert "width 5" not in diagnosis.before_due and "10" not in diagnosis.before_due and "13" not in \
        diagnosis.before_due
    assert "the width taken from the height in each: is the width taken from the height" in diagnosis.before_due
    assert diagnosis.before_due.startswith("fails 2 of 4 cases (`hidden_00`, `hidden_01`)")  # which, and how many


def test_a_public_case_failing_alike_is_shown_in_the_hidden_cases_place():
    public = Geometry(1, 8, 9, 1, 3, 1, 0)
    cases = [_dimg_case("hidden_00", "hidden", HIDDEN_A, (2, 5, 5, 2)),
             _dimg_case("public", "public", public, (1, 8, 8, 1)),
             _dimg_case("hidden_01", "hidden", PASSING, None)]
    _, diagnosis = diagnose("conv_backward", "dimg", cases)
    assert "in `public` your dimg has width 8 where the input's is 9, and alike in the others" in diagnosis.before_due
    assert "width 5" not in diagnosis.before_due and "width 5" in diagnosis.summary


def test_a_diagnosis_that_names_no_hidden_input_is_said_alike_before_and_after():
    cases = [_dimg_case("hidden_00", "hidden", HIDDEN_A, None), _dimg_case("hidden_01", "hidden", PASSING, None)]
    failing = CaseResult("conv_backward", "hidden_02", "hidden", 1.0, "x", WrongValue("backward(dout)", 0.5, 1e-6),
                         component="dimg", sides=sides("conv_backward", HIDDEN_B), geometry=HIDDEN_B)
    _, diagnosis = diagnose("conv_backward", "dimg", [*cases, failing])
    assert diagnosis.summary and diagnosis.withheld == "" and diagnosis.before_due == diagnosis.summary


# --- results.json and feedback.md of a grade -------------------------------------------------------------------

HIDDEN_TEXTS = ("(2, 5, 10, 2)", "(1, 7, 13, 1)", "width 5 where", "has shape (2, 5, 5, 2)", "relative error 5.00e-01")


def _result(student: str, failing: bool = True, printed: str = "") -> GradeResult:
    """A grade of conv backward only: dimg fails two hidden cases by their shapes, dW one by its values."""
    cases = [_dimg_case("public", "public", PASSING, None),
             _dimg_case("hidden_00", "hidden", HIDDEN_A, (2, 5, 5, 2) if failing else None),
             _dimg_case("hidden_01", "hidden", HIDDEN_B, (1, 7, 7, 1) if failing else None),
             _dimg_case("hidden_02", "hidden", PASSING, None)]
    dw = [CaseResult("conv_backward", case.case, case.visibility, case.weight, case.description,
                     WrongValue("grads[w_name]", 0.5, 1e-6) if failing and case.case == "hidden_01" else Passed(),
                     component="dw", sides=case.sides, geometry=case.geometry) for case in cases]
    db = [CaseResult("conv_backward", case.case, case.visibility, case.weight, case.description, Passed(),
                     component="db", sides=case.sides, geometry=case.geometry) for case in cases]
    items = score_submission(load_rubric(), [*cases, *dw, *db], None, "0: the notebook was not read")
    metadata = {"sandbox": "namespace", "worker_restarts": 0}
    return GradeResult(student, items, 1.0, metadata=metadata, printed=printed, printed_bytes=len(printed))


def _words(test: dict) -> str:
    """Everything of a test a student could be shown: its name, output and extra data."""
    return json.dumps(test)


def test_results_json_keeps_the_hidden_inputs_in_the_after_due_date_tests_only():
    document = results_json(_result("7001"))
    shown = [test for test in document["tests"] if test["visibility"] != "after_due_date"]
    later = [test for test in document["tests"] if test["visibility"] == "after_due_date"]
    for text in HIDDEN_TEXTS:
        assert not any(text in _words(test) for test in shown), text
        assert any(text in _words(test) for test in later), text  # ... where they are, for after the due date
    [details] = later
    assert details["tags"] == [HIDDEN_CASE_DETAILS, "conv_backward"] and details["score"] == details["max_score"] == 0
    dimg = next(test for test in document["tests"] if test["name"].endswith("[conv_backward.dimg]"))
    assert "hidden_00 (hidden): failed (wrong shape)" in dimg["output"]  # which failed, and how
    assert "the width taken from the height in each" in dimg["output"]  # the pattern, in words
    assert dimg["extra_data"]["patterns"] == ["conv_backward.dimg.width_from_height"]  # the codes, as before
    assert [case["reason_code"] for case in dimg["extra_data"]["cases"]] == ["passed", "wrong_shape", "wrong_shape",
                                                                              "passed"]
    staff = [test for test in document["tests"] if test["tags"] == [STAFF_NOTES]]
    assert len(staff) == 1 and staff[0]["visibility"] == "hidden" and staff[0]["max_score"] == 0
    assert "sandbox" in staff[0]["output"]
    assert (document["visibility"], document["stdout_visibility"]) == ("visible", "hidden")


def test_the_items_tests_still_hold_every_point():
    result = _result("7001")
    document = results_json(result)
    items = graded_tests(document)
    assert all(not is_release_test(test) for test in items)
    assert sum(test["score"] for test in items) == pytest.approx(document["score"]) == pytest.approx(result.score)
    assert sum(test["max_score"] for test in items) == pytest.approx(load_rubric().total)
    assert all(test["score"] == test["max_score"] == 0 for test in document["tests"] if is_release_test(test))


def test_the_visibility_words_come_from_the_rubric():
    release = Release(public="visible", hidden_details="after_published", staff_notes="after_due_date",
                      visibility="after_due_date", stdout_visibility="visible")
    document = results_json(_result("7001"), release)
    assert {test["visibility"] for test in document["tests"] if test["tags"][0] == HIDDEN_CASE_DETAILS} == \
        {"after_published"}
    assert next(test for test in document["tests"] if test["tags"] == [STAFF_NOTES])["visibility"] == "after_due_date"
    assert (document["visibility"], document["stdout_visibility"]) == ("after_due_date", "visible")
    dimg = next(test for test in document["tests"] if test["name"].endswith("[conv_backward.dimg]"))
    assert "shown once the grades are published" in dimg["output"]


def test_feedback_before_the_due_date_names_no_hidden_input_and_the_released_one_does(tmp_path):
    result = _result("7001", printed="x.shape = (2, 5, 10, 2)\n")
    written = write_reports(result, tmp_path / "7001")
    before = written[FEEDBACK].read_text(encoding="utf-8")
    after = written[FEEDBACK_RELEASED].read_text(encoding="utf-8")
    for text in HIDDEN_TEXTS:
        assert text not in before, text
        assert text in after, text
    assert "- `hidden_00` (hidden): **wrong shape**" in before and "- `hidden_02` (hidden): passed" in before
    assert "the width taken from the height in each" in before
    assert "x.shape" not in before and "shown after the due date" in before  # what the code printed, later
    assert "x.shape = (2, 5, 10, 2)" in after
    assert after == feedback_markdown(result, released=True)
    released = write_reports(result, tmp_path / "released", released=True)
    assert released[FEEDBACK].read_text(encoding="utf-8") == after


def test_a_submission_with_no_hidden_case_failing_still_keeps_the_inputs_for_later():
    document = results_json(_result("7002", failing=False))
    shown = [test for test in document["tests"] if test["visibility"] != "after_due_date"]
    assert not any("(2, 5, 10, 2)" in _words(test) for test in shown)
    details = [test for test in document["tests"] if test["tags"][0] == HIDDEN_CASE_DETAILS]
    assert len(details) == 1 and details[0]["status"] == "passed" and "(2, 5, 10, 2)" in details[0]["output"]


def test_a_self_check_has_no_release_tests():
    result = _result("7003")
    result.public_only = True
    assert not [test for test in results_json(result)["tests"] if test["tags"] == [STAFF_NOTES]]


def test_a_gradescope_fault_keeps_its_traceback_for_staff_and_says_its_visibility():
    document = fault_document("The grader failed on this submission; staff have been told.",
                              'Traceback (most recent call last):\n  File "/autograder/source/autograder/x.py"')
    assert document["output"] == "The grader failed on this submission; staff have been told."
    assert (document["visibility"], document["stdout_visibility"]) == ("visible", "hidden")
    [staff] = document["tests"]
    assert staff["tags"] == [STAFF_NOTES] and staff["visibility"] == "hidden" and staff["max_score"] == 0
    assert "Traceback" in staff["output"] and "Traceback" not in document["output"]


# --- the readers: the gradebook, the class report, merge-manual ---------------------------------------------

def _without_release_tests(folder: Path) -> None:
    """Each results.json of `folder` as it was before release tests existed."""
    for path in folder.glob("*/results.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        document["tests"] = graded_tests(document)
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _gradebook(folder: Path) -> list[dict[str, str]]:
    with open(folder / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_gradebook_class_report_and_merge_read_the_same_grade(tmp_path):
    ours, before = tmp_path / "ours", tmp_path / "before"
    for student, failing in (("7001", True), ("7002", False)):
        write_reports(_result(student, failing), ours / student)
    shutil.copytree(ours, before)
    _without_release_tests(before)
    entries = [BatchEntry(student, Path(f"{student}.zip"), BatchStatus.GRADED) for student in ("7001", "7002")]
    for folder in (ours, before):
        write_gradebook(folder, entries)
        build_class_report(folder)
    assert _gradebook(ours) == _gradebook(before)
    row = {r["student_id"]: r for r in _gradebook(ours)}["7001"]
    assert float(row["conv_backward"]) == 3 and float(row["total"]) == 3  # dimg 0.67, dW 1.33, db 1
    assert "hidden_case_details" not in (ours / "gradebook.csv").read_text(encoding="utf-8")
    report = (ours / "class_report.md").read_text(encoding="utf-8")
    assert report == (before / "class_report.md").read_text(encoding="utf-8")  # no case counted twice
    assert "hidden case details" not in report and "staff notes" not in report

    details = [t for t in json.loads((ours / "7001" / "results.json").read_text())["tests"] if is_release_test(t)]
    scores = tmp_path / "scores.csv"
    scores.write_text("student_id,item,points,comment\n7001,conv_backward,4,seen by staff\n7001,inline_answer,3,\n",
                      encoding="utf-8")
    for folder in (ours, before):
        merge_manual(scores, folder, by="test")
        refresh_reports(folder)
    assert _gradebook(ours) == _gradebook(before)
    row = {r["student_id"]: r for r in _gradebook(ours)}["7001"]
    assert float(row["conv_backward"]) == 4 and float(row["inline_answer"]) == 3 and float(row["total"]) == 7
    document = json.loads((ours / "7001" / "results.json").read_text())
    assert [t for t in document["tests"] if is_release_test(t)] == details  # merge leaves them as they were
    assert document["score"] == 7
    for name in (FEEDBACK, FEEDBACK_RELEASED):  # the staff's score in both feedback files
        assert "seen by staff" in (ours / "7001" / name).read_text(encoding="utf-8"), name


# --- real submissions, graded as staff grade them ---------------------------------------------------------------

DIMG = "dimg = np.ascontiguousarray(dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0))"
#: dimg cropped with the height twice (fails the hidden cases whose width differs, by their shapes), db a mean
#: (wrong values on every case of a batch above one), and a debug print of every input.
BUGS = [(LAYERS, DIMG, DIMG.replace("p:p + in_h, p:p + in_w", "p:p + in_h, p:p + in_h")),
        (LAYERS, "self.grads[self.b_name] = dout.sum(axis=0)", "self.grads[self.b_name] = dout.mean(axis=0)"),
        (LAYERS, "    def forward(self, img):\n        output = None\n",
         "    def forward(self, img):\n        print('input', img.shape, img.ravel()[:2])\n        output = None\n")]


def _hidden_inputs(result: GradeResult) -> list[str]:
    """Texts that name a hidden case's inputs or what it returned: each hidden fixture's description and input
    shape, and each failing hidden case's message; those that a public case shows too are left out."""
    public = " ".join(describe_case(case) for case in load_cases(DEFAULT_FIXTURES, public_only=True))
    texts = set()
    for case in load_cases(DEFAULT_FIXTURES):
        if case.visibility == "hidden" and case.item != "test_cnn":
            texts.add(describe_case(case))
            texts |= {str(tuple(array.shape)) for role, array in case.arrays.items() if role == "x"}
    texts |= {case.outcome.message() for item in result.items for case in item.cases
              if case.visibility == "hidden" and not case.outcome.passed}
    return sorted(text for text in texts if text not in public)


@pytest.mark.slow
def test_a_buggy_submission_shows_its_hidden_inputs_only_after_the_due_date(tmp_path):
    result, out = grade_submission(make_submission(tmp_path / "sub", BUGS), tmp_path / "out")
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    hidden = _hidden_inputs(result)
    assert len(hidden) > 30 and any("your dimg has width" in text for text in hidden)
    before = (out / FEEDBACK).read_text(encoding="utf-8")
    after = (out / FEEDBACK_RELEASED).read_text(encoding="utf-8")
    shown = json.dumps([test for test in document["tests"] if test["visibility"] != "after_due_date"]) + \
        json.dumps(document["output"])
    later = json.dumps([test for test in document["tests"] if test["visibility"] == "after_due_date"])
    for text in hidden:
        assert text not in before, text
        assert json.dumps(text)[1:-1] not in shown, text
        assert text in after, text
        assert json.dumps(text)[1:-1] in later, text
    assert "input (" not in before.split("## What your code printed")[1]  # the debug prints of hidden inputs
    assert "**Fails 3 of 7 cases (`hidden_00`, `hidden_04`, `hidden_05`), each for the same visible reason: the " \
           "width taken from the height in each: is the width taken from the height" in before
    scores = {test["tags"][0]: 0.0 for test in graded_tests(document)}
    for test in graded_tests(document):
        scores[test["tags"][0]] += test["score"]
    assert scores["conv_backward"] < 5 and scores["conv_forward"] == 5
    assert sum(scores.values()) == pytest.approx(document["score"]) == pytest.approx(result.score)
    assert (document["visibility"], document["stdout_visibility"]) == ("visible", "hidden")


@pytest.mark.slow
def test_release_makes_feedback_md_the_released_one(tmp_path):
    submission = make_submission(tmp_path / "sub", BUGS[:1])
    done = run_grade("grade", str(submission), "--out", str(tmp_path / "before"))
    assert done.returncode == 0, done.stderr
    assert "feedback_released.md" in done.stdout
    done = run_grade("grade", str(submission), "--out", str(tmp_path / "after"), "--release")
    assert done.returncode == 0, done.stderr
    before, after = tmp_path / "before", tmp_path / "after"
    assert (before / FEEDBACK).read_text() != (before / FEEDBACK_RELEASED).read_text()
    assert "your dimg has width 5 where the input's is 10" not in (before / FEEDBACK).read_text()
    released = (after / FEEDBACK).read_text()
    assert "your dimg has width 5 where the input's is 10" in released
    assert released.replace(str(after), "") == (before / FEEDBACK_RELEASED).read_text().replace(str(before), "")
    assert (after / FEEDBACK_RELEASED).read_text() == released
    results = json.loads((after / "results.json").read_text())  # results.json keeps its rules either way
    assert {t["visibility"] for t in results["tests"] if t["tags"][0] == HIDDEN_CASE_DETAILS} == {"after_due_date"}


@pytest.mark.slow
def test_a_batch_passes_release_to_every_grade_and_regrades_for_it(tmp_path):
    folder = tmp_path / "submissions"
    make_submission(folder / "8001", BUGS[:1])
    make_submission(folder / "8002", source=REFERENCE)
    out = tmp_path / "graded"
    entries, _ = run_batch(folder, out, jobs=2, replay=False)
    assert {entry.status for entry in entries} == {BatchStatus.GRADED}
    first = _gradebook(out)
    assert "your dimg has width" not in (out / "8001" / FEEDBACK).read_text()
    assert "your dimg has width" in (out / "8001" / FEEDBACK_RELEASED).read_text()
    row = {r["student_id"]: r for r in first}
    assert float(row["8001"]["conv_backward"]) < 5 and float(row["8002"]["conv_backward"]) == 5
    assert not any(key for key in row["8001"] if key in (HIDDEN_CASE_DETAILS, STAFF_NOTES))

    entries, _ = run_batch(folder, out, jobs=2, replay=False, release=True)  # after the due date
    assert {entry.status for entry in entries} == {BatchStatus.GRADED}  # regraded, not "unchanged"
    assert (out / "8001" / FEEDBACK).read_text() == (out / "8001" / FEEDBACK_RELEASED).read_text()
    assert "your dimg has width" in (out / "8001" / FEEDBACK).read_text()
    assert _gradebook(out) == first

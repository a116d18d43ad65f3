"""Fair credit and feedback that locates the bug, end to end on real graded submissions.

Partial credit by component (a wrong dimg keeps dW and db), no points for repeating the
notebook's printed answers, no "is the TODO still empty?" where other cases returned arrays, the
self-check claiming no points, Gradescope-valid results, and the class report counting patterns
from their codes.
"""

from __future__ import annotations

import csv
import json
import re

import nbformat
import pytest
from conftest import REFERENCE
from submissions import CODE_ITEMS, LAYERS, grade, make_submission

from autograder.grading import grade_submission
from autograder.model import graded_tests, is_release_test
from autograder.reports.class_report import build_class_report
from autograder.rubric import load_rubric

pytestmark = pytest.mark.slow

DIMG = "dimg = np.ascontiguousarray(dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0))"
#: Real submissions: dimg cropped with x[p:-p], and only when p > 0, so None is returned for p = 0.
NONE_AT_PADDING_0 = [(LAYERS, DIMG, "if p > 0:\n            " + DIMG.replace("p:p + in_h, p:p + in_w", "p:-p, p:-p"))]
CROP = [(LAYERS, DIMG, DIMG.replace("p:p + in_h, p:p + in_w", "p:-p, p:-p"))]
#: Six real students: dimg cropped with the height in both places; on the hidden cases it fails exactly the
#: three whose stride does not divide the input.
HEIGHT_FOR_WIDTH = [(LAYERS, DIMG, DIMG.replace("p:p + in_h, p:p + in_w", "p:p + in_h, p:p + in_h"))]
SCATTER = "dimg_pad[:, :, u:u + s * out_h:s, v:v + s * out_w:s] += dcols[u, v]"
STRIDE_IN_DIMG = [(LAYERS, SCATTER, "dimg_pad[:, :, u:u + out_h, v:v + out_w] += dcols[u, v]")]


def _printed_arrays() -> list[str]:
    """The expected arrays the notebook prints (`correct_out = np.array(...)`), as their source text."""
    notebook = nbformat.read(str(REFERENCE / "Problem_2.ipynb"), as_version=4)
    found = [match.group(1) for cell in notebook.cells if cell.cell_type == "code"
             for match in re.finditer(r"correct_out = (np\.array\(\[.*?\]\]\]\]\))", cell.source, re.S)]
    assert len(found) == 2, "the notebook no longer prints the conv and pool forward answers"
    return found


def _memorised() -> str:
    """Code that returns the notebook's printed answers for the public inputs, and zeros elsewhere."""
    conv, pool = _printed_arrays()
    return f'''
_PRINTED_CONV = {conv}
_PRINTED_POOL = {pool}

def _size(self, input_size):
    return [32, 16, 16, 16] if tuple(input_size) == (32, 28, 28, 3) else [0, 0, 0, 0]

def _conv_forward(self, img):
    return _PRINTED_CONV.copy() if img.shape == (1, 8, 8, 1) else np.zeros(img.shape)

def _pool_forward(self, img):
    return _PRINTED_POOL.copy() if img.shape == (1, 8, 8, 1) else np.zeros(img.shape)

ConvLayer2D.get_output_size = _size
ConvLayer2D.forward = _conv_forward
MaxPoolingLayer.forward = _pool_forward
'''


def test_a_memorised_public_case_earns_nothing_and_is_still_shown(tmp_path):
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", append={LAYERS: _memorised()}), tmp_path)
    feedback = (out_dir / "feedback.md").read_text()
    for item_id in ("output_size", "conv_forward", "pool_forward"):
        item = scores[item_id]
        public = [case for case in item.cases if case.visibility == "public"]
        assert public and all(case.outcome.passed for case in public), item_id  # the printed answer passes ...
        assert item.score == 0, (item_id, item.reason)  # ... and earns nothing
        assert any(not case.outcome.passed for case in item.cases if case.visibility == "hidden")
    assert "- `public` (public, no points; input (1, 8, 8, 1), kernel 5, 2 filters, stride 1, padding 0): passed" \
        in feedback
    assert "earns nothing by itself" in feedback


def test_none_only_when_padding_is_0_costs_dimg_alone_and_guesses_nothing(tmp_path):
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", NONE_AT_PADDING_0), tmp_path)
    backward = scores["conv_backward"]
    dimg, dw, db = backward.components
    assert (dw.score, db.score) == (dw.component.points, db.component.points)  # dW and db keep their points
    assert 0 < dimg.score < dimg.component.points
    failing = [case for case in dimg.cases if not case.outcome.passed]
    assert failing and {case.outcome.label for case in failing} == {"returned None"}
    # None is a form counted on its own; padding 0, which nothing returned contradicts, beside it
    assert dimg.diagnosis.patterns == ("conv_backward.dimg.returned_none", "conv_backward.dimg.padding_0")
    feedback = (out_dir / "feedback_released.md").read_text()  # a hidden case's own words: after the due date
    results = (out_dir / "results.json").read_text()
    assert "TODO still empty" not in feedback and "TODO still empty" not in results
    assert "TODO still empty" not in (out_dir / "feedback.md").read_text()
    assert "backward(dout) returned None in this case" in feedback
    assert "(hidden): **returned None**" in (out_dir / "feedback.md").read_text()
    assert all(scores[i].score == scores[i].item.points for i in CODE_ITEMS if i != "conv_backward")


def test_results_json_has_one_test_per_component_adding_up_to_the_item(tmp_path):
    result, out_dir = grade_submission(make_submission(tmp_path / "sub", CROP), tmp_path / "out")
    document = json.loads((out_dir / "results.json").read_text())
    rubric = load_rubric()
    totals: dict[str, float] = {}
    assert all(test["max_score"] == 0 for test in document["tests"] if is_release_test(test))
    for test in graded_tests(document):
        assert test["tags"] and test["tags"][0] in {item.id for item in rubric.items} | {"pdf_consistency"}
        totals[test["tags"][0]] = totals.get(test["tags"][0], 0) + test["max_score"]
        assert 0 <= test["score"] <= test["max_score"]
        assert "tolerances." not in test["output"]  # values, not the rubric's keys
    for item in rubric.items:
        assert totals[item.id] == pytest.approx(item.points), item.id
    assert document["score"] == pytest.approx(sum(test["score"] for test in document["tests"]))
    dimg = next(t for t in document["tests"] if t["name"].endswith("[conv_backward.dimg]"))
    assert dimg["extra_data"]["patterns"] == ["conv_backward.dimg.padding_0"]
    backward = next(item for item in result.items if item.item.id == "conv_backward")
    padding_0 = sum(1 for case in backward.components[0].cases if "padding_0" in case.sides)
    assert padding_0 >= 1 and dimg["extra_data"]["reason"].startswith(
        f"fails exactly the {padding_0} case{'s' if padding_0 > 1 else ''} with padding 0 and passes the other "
        f"{len(backward.components[0].cases) - padding_0}")
    assert "relative error at most 1e-06" in dimg["output"]
    dw = next(t for t in document["tests"] if t["name"].endswith("[conv_backward.dw]"))
    assert dw["score"] == dw["max_score"] == 2 and dw["status"] == "passed"


def test_the_self_check_shows_the_public_cases_and_claims_no_points(tmp_path):
    result, out_dir = grade_submission(REFERENCE, tmp_path / "out", public_only=True)
    code = [item for item in result.items if item.item.kind == "code"]
    assert all(item.status == "self-check" and item.score == 0 for item in code)
    assert all(case.visibility in ("public", "check") and case.outcome.passed for item in code for case in item.cases)
    feedback = (out_dir / "feedback.md").read_text()
    assert "**Self-check**" in feedback and "no points claimed" in feedback
    assert "## ConvLayer2D.forward: 1 of 1 pass (self-check, no points)" in feedback


def _gradebook(out, students) -> None:
    """gradebook.csv for graded folders, as the batch writes it (the class report reads it first)."""
    with open(out / "gradebook.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        items = [item.id for item in load_rubric().items]
        writer.writerow(["student_id", "total", *items, "status", "flags", "source"])
        for student in students:
            document = json.loads((out / student / "results.json").read_text())
            points = {i: sum(t["score"] for t in document["tests"] if t["tags"][0] == i) for i in items}
            writer.writerow([student, document["score"], *[points[i] for i in items], "graded", "", student])


def test_height_for_width_students_are_told_and_counted_by_their_shapes_not_the_stride(tmp_path):
    out = tmp_path / "graded"
    students = {"4001": HEIGHT_FOR_WIDTH, "4002": HEIGHT_FOR_WIDTH, "4003": STRIDE_IN_DIMG}
    for student, changes in students.items():
        grade_submission(make_submission(tmp_path / "in" / student, changes), out / student)
    feedback = (out / "4001" / "feedback_released.md").read_text()  # the hidden cases' shapes: after the due date
    assert "**Fails 3 of 7 cases (`hidden_00`, `hidden_04`, `hidden_05`), each for the same visible reason: in " \
           "`hidden_00` your dimg has width 5 where the input's is 10, and alike in the other 2: is the width taken " \
           "from the height" in feedback
    assert "backward(dout) has shape (2, 5, 5, 2); expected (2, 5, 10, 2): your dimg has width 5 where the " \
           "input's is 10" in feedback
    assert "stride" not in feedback.split("### dimg")[1].split("\n\n")[1]  # the diagnosis line
    before_due = (out / "4001" / "feedback.md").read_text()
    assert "**Fails 3 of 7 cases (`hidden_00`, `hidden_04`, `hidden_05`), each for the same visible reason: the " \
           "width taken from the height in each: is the width taken from the height" in before_due
    assert "width 5" not in before_due and "(2, 5, 10, 2)" not in before_due
    document = json.loads((out / "4001" / "results.json").read_text())
    dimg = next(t for t in document["tests"] if t["name"].endswith("[conv_backward.dimg]"))
    assert dimg["extra_data"]["patterns"] == ["conv_backward.dimg.width_from_height"]
    stride = json.loads((out / "4003" / "results.json").read_text())
    assert "conv_backward.dimg.stride_many" in next(
        t for t in stride["tests"] if t["name"].endswith("[conv_backward.dimg]"))["extra_data"]["patterns"]
    _gradebook(out, students)
    build_class_report(out)
    report = (out / "class_report.md").read_text()
    assert "- the width taken from the height in ConvLayer2D.backward (dimg, dW, db), dimg: 2 students " \
           "([4001](4001/feedback.md), [4002](4002/feedback.md)) `conv_backward.dimg.width_from_height`" in report
    assert "- stride > 1 in ConvLayer2D.backward (dimg, dW, db), dimg: 1 student ([4003](4003/feedback.md)) " \
           "`conv_backward.dimg.stride_many`" in report
    assert "uneven_stride" not in report and "does not divide" not in report


def test_the_class_report_counts_patterns_from_their_codes(tmp_path):
    out = tmp_path / "graded"
    students = {"2001": CROP, "2002": NONE_AT_PADDING_0, "2003": []}
    for student, changes in students.items():
        grade_submission(make_submission(tmp_path / "in" / student, changes), out / student)
    _gradebook(out, students)
    build_class_report(out)
    line = "- padding 0 in ConvLayer2D.backward (dimg, dW, db), dimg: 2 students ([2001](2001/feedback.md), " \
           "[2002](2002/feedback.md)) `conv_backward.dimg.padding_0`"
    assert line in (out / "class_report.md").read_text()
    assert "conv_backward.dimg.padding_0" in (out / "class_report.html").read_text()

    # The report reads the codes, not the words: a code removed from one results.json is one student fewer.
    path = out / "2002" / "results.json"
    document = json.loads(path.read_text())
    for test in document["tests"]:
        test["extra_data"]["patterns"] = []
    path.write_text(json.dumps(document))
    build_class_report(out)
    assert "dimg: 1 student ([2001](2001/feedback.md))" in (out / "class_report.md").read_text()

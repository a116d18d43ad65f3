"""Determinism and audit: the same submission graded twice gives the same results, and the results
say enough to reproduce the grade later."""

from __future__ import annotations

import json
import platform
import zipfile

import numpy as np
import pytest
from conftest import FIXTURES, REFERENCE, run_grade
from corpus import CONV_FORWARD
from submissions import LAYERS, make_submission, quick_limits, untimed

from autograder import __version__
from autograder.fixtures import manifest_digest
from autograder.grading import grade_submission
from autograder.intake import input_digest

pytestmark = pytest.mark.slow

def _without_timings(document: dict) -> dict:
    """The document without the only fields allowed to differ: how long grading took (and where the staff's
    notes repeat it)."""
    document = json.loads(json.dumps(document))
    document.pop("execution_time")
    document["extra_data"].pop("worker_start_seconds")
    for test in document["tests"]:  # the staff's notes repeat how the run went, its start time among it
        if test["tags"] == ["staff_notes"]:
            test["extra_data"]["run"].pop("worker_start_seconds")
            test["output"] = untimed(test["output"])
    return document


def _grade_twice(submission, tmp_path) -> tuple[dict, dict, list]:
    documents, outputs = [], []
    for run in ("first", "second"):
        out = tmp_path / run
        done = run_grade("grade", str(submission), "--out", str(out))
        assert done.returncode == 0, done.stderr
        documents.append(json.loads((out / "results.json").read_text()))
        outputs.append(out)
    return documents[0], documents[1], outputs


def test_grading_twice_gives_identical_results_apart_from_timings(tmp_path):
    first, second, (out1, out2) = _grade_twice(make_submission(tmp_path / "sub", [(
        LAYERS, "output = windows.max(axis=(4, 5))", "output = windows.mean(axis=(4, 5))")]), tmp_path)
    assert first != second  # the timings do differ, so the comparison below is not vacuous
    assert _without_timings(first) == _without_timings(second)
    assert (out1 / "feedback.md").read_bytes() == (out2 / "feedback.md").read_bytes()
    assert (out1 / "problem_2_solution.pdf").read_bytes() == (out2 / "problem_2_solution.pdf").read_bytes()


def test_a_submission_that_times_out_is_graded_the_same_twice(tmp_path):
    """Time-outs are the least deterministic thing a grader does; their outcome must not be.
    (In-process, with a 1 s time-out instead of the rubric's 5 s, to keep the test short.)"""
    loop = make_submission(tmp_path / "loop",
                           [(LAYERS, CONV_FORWARD, CONV_FORWARD + "        while True:\n            pass\n")])
    first, second = [json.loads((grade_submission(loop, tmp_path / run, limits=quick_limits(1.0))[1]
                                 / "results.json").read_text()) for run in ("first", "second")]
    assert _without_timings(first) == _without_timings(second)
    conv = next(t for t in first["tests"] if t["tags"] == ["conv_forward"])
    assert conv["score"] == 0 and {c["outcome"] for c in conv["extra_data"]["cases"]} == {"timed out"}


def test_results_record_what_is_needed_to_reproduce_the_grade(tmp_path):
    archive = tmp_path / "s123.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((REFERENCE / "lib").rglob("*.py")):
            bundle.write(path, path.relative_to(REFERENCE).as_posix())
    done = run_grade("grade", str(archive), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    extra = json.loads((tmp_path / "out" / "results.json").read_text())["extra_data"]
    assert extra["harness_version"] == __version__
    assert extra["fixtures_manifest_sha256"] == manifest_digest(FIXTURES)
    assert extra["python"] == platform.python_version() and extra["numpy"] == np.__version__
    assert extra["submission_sha256"] == input_digest(archive)
    assert extra["sandbox"] in ("namespace", "user", "none")

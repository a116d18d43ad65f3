"""The grade's model and its readers load without pytest or the sandbox: rewriting a grade (merging
staff's scores, reporting) never loads what runs student code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from autograder.model import CaseResult, GradeResult, ItemStatus, ReasonCode, graded_tests
from autograder.outcomes import (
    HarnessFault,
    NotImplementedYet,
    NotRunAfterTimeouts,
    Passed,
    StudentException,
    TimedOut,
    WrongValue,
)
from autograder.reports.results import results_json
from autograder.rubric import load_rubric
from autograder.score import score_submission


@pytest.mark.parametrize("module", ["autograder.model", "autograder.score", "autograder.reports.results",
                                    "autograder.reports.manual"])
def test_model_modules_import_neither_pytest_nor_the_sandbox(module):
    code = (f"import sys, {module}; "
            "print([m for m in ('pytest', 'autograder.sandbox.parent', 'autograder.sandbox.worker', "
            "'autograder.checks.plugin') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_outcome_has_a_reason_code():
    outcomes = [Passed(), NotImplementedYet("forward"), TimedOut(5), NotRunAfterTimeouts(2),
                WrongValue("out", 1.0, 1e-7), StudentException("ValueError", "x"), HarnessFault("bug")]
    assert [CaseResult("conv_forward", "c", "hidden", 1, "", o).reason_code for o in outcomes] == [
        "passed", "not_implemented", "timed_out", "timed_out", "wrong_value", "student_exception", "harness_fault"]


def test_results_json_carries_codes_per_case_and_per_item():
    rubric = load_rubric()
    results = [CaseResult("conv_forward", f"h{i}", "hidden", 1.0, "", outcome) for i, outcome in
               enumerate([TimedOut(5), TimedOut(5), WrongValue("out", 1.0, 1e-7), Passed()])]
    items = score_submission(rubric, results, None, "0: the notebook was not read", False,
                             ReasonCode.NOTEBOOK_UNREADABLE)
    document = json.loads(json.dumps(results_json(GradeResult("s1", items, 1.0))))
    tests = {test["extra_data"]["item"]: test for test in graded_tests(document)}
    forward = tests["conv_forward"]["extra_data"]
    assert forward["reason_code"] == "timed_out" and forward["grading"] == ItemStatus.GRADED == "graded"
    assert [case["reason_code"] for case in forward["cases"]] == ["timed_out", "timed_out", "wrong_value", "passed"]
    assert tests["output_size"]["extra_data"]["reason_code"] == "not_run"
    assert tests["training"]["extra_data"]["reason_code"] == "notebook_unreadable"
    assert tests["training"]["extra_data"]["grading"] == "not graded"

"""Every submission of the hostile corpus gets a complete, fair result and changes nothing.

For each case (see corpus.py): the grade is complete (every item scored, every case with an
outcome and a reason), the case's own expectations hold, the attack gains nothing, the harness's
files and the submission are unchanged, the output folder holds only what the grader writes, no
process of the worker outlives grading, and the worker's memory stayed within its limit. Time is
bounded by the per-test time-out.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import harness_digest, need_mode
from corpus import CASES, NOTEBOOK_ITEMS
from processes import no_survivors, survivors
from submissions import CODE_ITEMS, RESULT_TESTS, item_tags, quick_limits

from autograder.grading import grade_submission
from autograder.intake import input_digest
from autograder.model import graded_tests

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

GRADER_FILES = {"results.json", "feedback.md", "feedback_released.md", "problem_2_solution.pdf", "pdf_evidence"}
def test_the_survivor_check_finds_a_lingering_process(tmp_path):
    """The check above can fail: a process whose worker folder is gone is reported."""
    home = tmp_path / "cnn-grader-worker-gone" / "submission"
    lingering = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 10
        while not any(pid == lingering.pid for pid, _ in survivors()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the child's environ is readable once it has exec'd
        assert (lingering.pid, str(home)) in survivors()
    finally:
        lingering.kill()
        lingering.wait()
    assert lingering.pid not in [pid for pid, _ in survivors()]


def test_the_corpus_is_large_and_covers_each_group():
    groups = {case.group for case in CASES}
    assert len(CASES) >= 40 and groups == {"worker", "tamper", "packaging"}
    assert len({case.name for case in CASES}) == len(CASES)


def _complete(out_dir: Path) -> dict:
    document = json.loads((out_dir / "results.json").read_text())
    items = [t for t in graded_tests(document) if t["tags"][0] != "pdf_consistency"]
    assert item_tags({"tests": items}) == CODE_ITEMS + NOTEBOOK_ITEMS and len(items) == RESULT_TESTS
    for test in items:
        assert isinstance(test["score"], (int, float)) and 0 <= test["score"] <= test["max_score"]
        assert test["output"].strip(), test["name"]
        assert test["extra_data"]["reason"] or test["status"] == "passed", test["name"]
        for case in test["extra_data"]["cases"]:
            assert case["outcome"] and case["message"], (test["name"], case)
    assert (out_dir / "results.json").stat().st_size < 200_000
    return document


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_submission(case, tmp_path):
    if case.confined_only:
        need_mode("user")  # destructive outside a sandbox
    submission = case.build(tmp_path / "in" / "hostile")
    harness_before, input_before = harness_digest(), input_digest(submission)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    limits = quick_limits(**{"call_timeout": 1.0, "start_timeout": 8, **case.limits})

    result, out_dir = grade_submission(submission, tmp_path / "out", limits=limits, hidden=[tmp_path / "in"])

    scores = {item.item.id: item for item in result.items}
    document = _complete(out_dir)
    for item, labels in case.expect.items():
        found = {c.outcome.label for c in scores[item].cases} or ({"passed"} if scores[item].score else {"failed"})
        assert found <= labels, (item, found, [c.outcome.message() for c in scores[item].cases][:2])
    for item in case.full:
        assert scores[item].score == scores[item].item.points, (item, scores[item].reason)
    assert document["score"] <= case.at_most
    assert not any(c.outcome.label == "harness fault" for item in scores.values() for c in item.cases)
    if case.check is not None:
        assert case.check(scores, result, out_dir), "the case's own check failed"

    assert harness_digest() == harness_before  # fixtures, reference, template, harness code
    assert input_digest(submission) == input_before  # the worker only ever had a copy
    assert {p.name for p in out_dir.iterdir()} <= GRADER_FILES
    assert no_survivors() == []
    limit_kb = limits.memory_mb * 1024
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss <= max(children_before, limit_kb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 * 1024 * 1024  # the grader itself: under 2 GB
    assert os.path.exists(tmp_path / "out" / "results.json")

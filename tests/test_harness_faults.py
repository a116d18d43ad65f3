"""A fault of the harness, however early, still leaves a complete results.json and exit 3 with its
traceback; exit 2 is kept for the user's own bad input."""

from __future__ import annotations

import json

import pytest
from conftest import TEMPLATE

import autograder.grading as grading
from autograder import cli
from autograder.grading import HarnessError, grade_submission
from autograder.model import graded_tests
from autograder.reports.grading_log import GRADING_LOG
from autograder.rubric import load_rubric
from autograder.sandbox.parent import WorkerProcess


def _boom(*args, **kwargs):
    raise RuntimeError("injected fault")


EARLY = {
    "loading the cases": (grading, "load_cases"),
    "the manifest digest": (grading, "manifest_digest"),
    "the rubric": (grading, "load_rubric"),
    "starting the worker": (WorkerProcess, "start"),
    "the baseline": (grading, "default_baseline"),
}


def _assert_complete(document: dict, with_items: bool) -> None:
    assert document["score"] == 0 and document["extra_data"]["reason_code"] == "harness_fault"
    assert "injected fault" in document["extra_data"]["harness_fault"]
    items = {test["tags"][0]: test for test in graded_tests(document)}
    if with_items:
        assert list(items) == [item.id for item in load_rubric().items]
        for test in items.values():
            assert test["extra_data"]["reason_code"] == "harness_fault" and test["score"] == 0
            assert "injected fault" in test["extra_data"]["reason"]


@pytest.mark.parametrize("stage", sorted(EARLY))
def test_an_early_fault_still_writes_a_complete_result(stage, tmp_path, monkeypatch):
    owner, name = EARLY[stage]
    monkeypatch.setattr(owner, name, _boom)
    with pytest.raises(HarnessError, match="injected fault"):
        grade_submission(TEMPLATE, tmp_path / "out", public_only=True)
    _assert_complete(json.loads((tmp_path / "out" / "results.json").read_text()), with_items=stage != "the rubric")
    log = (tmp_path / "out" / GRADING_LOG).read_text()
    assert "Traceback" in log and "RuntimeError: injected fault" in log
    assert (tmp_path / "out" / "feedback.md").is_file()


@pytest.mark.parametrize("command", ["grade", "check"])
def test_cli_exits_3_with_the_traceback(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grading, "load_cases", _boom)
    argv = ["grade", str(TEMPLATE), "--out", str(tmp_path / "out"), "--public-only"] if command == "grade" else \
        ["check", str(TEMPLATE)]
    if command == "check":  # the self-check writes beside the student's lib/: grade a copy
        import shutil
        shutil.copytree(TEMPLATE, tmp_path / "copy")
        argv = ["check", str(tmp_path / "copy")]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: injected fault" in err and "harness fault" in err
    written = tmp_path / ("out" if command == "grade" else "copy/self_check") / "results.json"
    _assert_complete(json.loads(written.read_text()), with_items=True)


def test_an_internal_value_error_is_a_harness_fault_not_bad_input(monkeypatch, capsys, tmp_path):
    def broken(args):
        raise ValueError("an internal bug")
    monkeypatch.setattr(cli, "_cmd_data", broken)
    assert cli.main(["data", "--synthetic", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal bug" in err


@pytest.mark.parametrize("argv,message", [
    (["grade", "/nonexistent/submission.zip"], "no such file or folder"),
    (["grade", ".", "--quick"], "--quick shortens"),
    (["grade", ".", "--data", "/nonexistent"], "missing train_32x32.mat"),
    (["grade", ".", "--baseline", "/nonexistent"], "baseline /nonexistent: no such file or folder"),
    (["data", "--out", "unused"], "only synthetic data"),
    (["grade", ".", "--out", "README.md/graded"], "--out must be a folder, but README.md is a file"),
    (["batch", ".", "--out", "README.md"], "--out must be a folder, but README.md is a file"),
])
def test_the_users_bad_input_is_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

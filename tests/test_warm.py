"""The local batch's grading processes are forks of a warm server (autograder/warm.py): each starts with the
harness loaded, and each is fresh: nothing one grading process does reaches the next, and each runs with the
batch's environment of the moment, not the server's."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import REFERENCE
from submissions import make_submission

from autograder.batch import run_batch, warm_context
from autograder.sandbox.confinement import CAP_VARIABLE, REQUIRE_VARIABLE, available_mode

pytestmark = pytest.mark.slow

_MARK = []  # a grading process's own state: a fork of the server starts with it empty


def _look(answer) -> None:
    """In a grading process: what it found at its start, then leave a mark a later fork must not see."""
    answer.send({"preloaded": sorted(name for name in ("autograder.grading", "autograder.batch", "reportlab")
                                     if name in sys.modules),
                 "marks": list(_MARK), "pid": os.getpid()})
    _MARK.append(os.getpid())
    answer.close()


def _start(context):
    answers, answer = context.Pipe(duplex=False)
    process = context.Process(target=_look, args=(answer,))
    process.start()
    answer.close()
    found = answers.recv()
    process.join(timeout=60)
    return found


def test_a_grading_process_starts_warm_and_fresh():
    context = warm_context()
    first, second = _start(context), _start(context)
    assert first["preloaded"] == ["autograder.batch", "autograder.grading", "reportlab"], first
    assert first["marks"] == [] and second["marks"] == [], (first, second)  # the first's mark died with it
    assert first["pid"] != second["pid"] != os.getpid()


def test_each_grading_process_runs_with_the_batch_s_environment(tmp_path, monkeypatch):
    """The server was started with the environment of the first batch in this process; a later batch that
    caps the confinement (CAP_VARIABLE) is graded under its own cap, as with a fresh interpreter."""
    make_submission(tmp_path / "in" / "1001", source=REFERENCE)
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    run_batch(tmp_path / "in", tmp_path / "first", jobs=1, progress=False)
    uncapped = available_mode()
    monkeypatch.setenv(CAP_VARIABLE, "none")
    run_batch(tmp_path / "in", tmp_path / "capped", jobs=1, progress=False)
    modes = [json.loads((tmp_path / out / "1001" / "results.json").read_text())["extra_data"]["sandbox"]
             for out in ("first", "capped")]
    assert modes == [uncapped, "none"], modes

"""Grade one submission: intake -> checks in a worker -> score -> reports.

`grade_submission` is the API behind `grade.py grade`. Whatever the submission does, it
returns a complete result with every rubric item scored and a reason: an unreadable zip or a
missing lib/ scores 0 everywhere with that reason; a hang, crash or exit costs only the cases
it happened in. Only a fault of the harness itself is raised, after its result is written.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from autograder import REPO_ROOT, __version__
from autograder.checks.plugin import CaseResult, run_checks
from autograder.fixtures import load_cases, manifest_digest
from autograder.intake import IntakeError, Submission, open_submission, student_id_for
from autograder.outcomes import HarnessFault, Outcome, StudentException
from autograder.report import GradeResult, terminal_table, write_reports
from autograder.rubric import Rubric, load_rubric
from autograder.sandbox import Limits, Worker
from autograder.score import score_submission

DEFAULT_FIXTURES = REPO_ROOT / "fixtures"
#: Never visible to student code: the expected values, the solution, the history holding both.
SECRET_PATHS = [REPO_ROOT / "fixtures", REPO_ROOT / "reference_solution", REPO_ROOT / ".git"]


class HarnessError(RuntimeError):
    """The grader itself failed; the result written says so for every item."""


def _all_cases_fail(cases, rubric: Rubric, outcome: Outcome) -> list[CaseResult]:
    """Every case and fixed check of every code item, ended with the same outcome."""
    results = []
    for case in cases:
        item = rubric.item(case.item)
        weight = item.public_weight if case.visibility == "public" else item.hidden_weight
        results.append(CaseResult(case.item, case.name, case.visibility, weight, case.name, outcome))
    for item_id, checks in rubric.raw.get("checks", {}).items():
        for check, weight in checks.items():
            results.append(CaseResult(item_id, check, "public", float(weight), check, outcome))
    return results


def _module_notes(worker: Worker) -> list[str]:
    notes = []
    for module, error in worker.import_errors.items():
        notes.append(f"importing {module} raised {error.get('type')}: {error.get('message', '')[:300]}")
    return notes


def grade_submission(path: Path, out_dir: Path | None = None, public_only: bool = False,
                     fixtures_dir: Path = DEFAULT_FIXTURES, hidden: list[Path] = (),
                     limits: Limits | None = None) -> tuple[GradeResult, Path]:
    """Grade `path` (folder or zip) and write its reports; returns the result and the output folder.

    `hidden`: further folders the student's code must not see (a batch's input folder, say).
    `limits`: the worker's limits, when not the rubric's (tests use shorter time-outs).
    """
    started = time.monotonic()
    rubric = load_rubric()
    limits = limits or Limits.from_rubric(rubric.raw["worker"])
    out_dir = Path(out_dir) if out_dir is not None else Path("graded") / student_id_for(path)
    cases = load_cases(fixtures_dir, public_only)
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-intake-"))
    notes: list[str] = []
    printed, printed_bytes = "", 0
    metadata = {"harness_version": __version__, "fixtures_manifest_sha256": manifest_digest(fixtures_dir),
                "python": platform.python_version(), "numpy": np.__version__}
    harness_fault: Exception | None = None
    try:
        submission: Submission | None = None
        try:
            submission = open_submission(Path(path), scratch, rubric.raw["intake"]["max_unpacked_mb"] << 20,
                                         rubric.raw["intake"]["max_files"])
        except IntakeError as exc:
            notes.append(str(exc))
            results = _all_cases_fail(cases, rubric, StudentException("SubmissionError", str(exc)))
        if submission is not None:
            notes += submission.notes
            metadata["submission_sha256"] = submission.sha256
            secret = [*SECRET_PATHS, out_dir.resolve(), Path(path).resolve(), *hidden]
            with Worker(submission.root, limits, hidden=secret) as worker:
                worker.start()  # a failure is remembered and ends every case with its reason
                metadata["worker_start_seconds"] = round(worker.start_seconds, 3)
                try:
                    results = run_checks(worker, cases, rubric, public_only)
                except Exception as exc:  # noqa: BLE001 - our fault: say so in the result, then raise
                    harness_fault = exc
                    results = _all_cases_fail(cases, rubric, HarnessFault(f"{type(exc).__name__}: {exc}"))
                notes += _module_notes(worker) + list(worker.confinement.notes)
                metadata["sandbox"] = worker.confinement.mode
                metadata["worker_restarts"] = worker.restarts
                printed, printed_bytes = worker.printed()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = GradeResult(student_id_for(Path(path)), score_submission(rubric, results), time.monotonic() - started,
                         public_only, notes, printed, printed_bytes, metadata)
    write_reports(result, out_dir)
    if harness_fault is not None:
        raise HarnessError(f"grading {path} failed inside the harness: {harness_fault}") from harness_fault
    return result, out_dir


def summary(result: GradeResult, out_dir: Path) -> str:
    """What the terminal shows after grading one submission."""
    return "\n".join([f"{result.student_id}: {result.score:g} / {result.max_score:g}", terminal_table(result),
                      f"results: {out_dir / 'results.json'}", f"feedback: {out_dir / 'feedback.md'}"])

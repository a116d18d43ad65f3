"""Grade one submission: intake -> checks in a worker -> score -> reports.

`grade_submission` is the API behind `grade.py grade`. Whatever the submission does, it
returns a complete result with every rubric item scored and a reason: an unreadable zip or a
missing lib/ scores 0 everywhere with that reason; a hang, crash or exit costs only the cases
it happened in. Only a fault of the harness itself is raised, after its result is written.
Before anything else, a full grade refuses (SecretsExposed, nothing written) where student
code could read the expected values (exposure.py).
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np

from autograder import REPO_ROOT, __version__
from autograder.baseline import Baseline, default_baseline
from autograder.checks.plugin import CaseResult, case_sides, result_order, run_checks
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.fixtures import load_cases, manifest_digest
from autograder.notebook.execute import execute_notebook
from autograder.sandbox.exposure import guard_secrets, trust_note
from autograder.reports.grading_log import captured, write_log
from autograder.intake import IntakeError, Submission, open_submission, student_id_for
from autograder.notebook.reading import Findings, NotebookError, choose_notebook, extract, read_notebook
from autograder.notebook.items import score_filters, score_inline_answer, score_training
from autograder.outcomes import HarnessFault, Outcome, StudentException
from autograder.notebook.items import answer_text
from autograder.notebook.pdf import SECTIONS, build_pdf
from autograder.notebook.pdf_check import Consistency, compare
from autograder.notebook.replay import annotate, replay_log
from autograder.reports.results import GradeResult, terminal_table, write_atomically, write_reports
from autograder.rubric import Rubric, load_rubric
from autograder.sandbox.parent import Limits, WorkerProcess
from autograder.score import ItemScore, score_submission
from autograder.notebook.training_evidence import gather_training_evidence

DEFAULT_FIXTURES = REPO_ROOT / "fixtures"


class HarnessError(RuntimeError):
    """The grader itself failed; the result written says so for every item."""


def _all_cases_fail(cases, rubric: Rubric, outcome: Outcome) -> list[CaseResult]:
    """Every case, component and fixed check of every code item, ended with the same outcome."""
    results = []
    for case in cases:
        item = rubric.item(case.item)
        weight = item.public_weight if case.visibility == "public" else item.hidden_weight
        results += [CaseResult(case.item, case.name, case.visibility, weight, case.name, outcome, component=part.id,
                               sides=case_sides(case)) for part in item.components if not part.check]
    for item in rubric.code_items():
        results += [CaseResult(item.id, part.id, "check", 1.0, part.title, outcome, component=part.id)
                    for part in item.components if part.check]
    return sorted(results, key=lambda r: result_order(rubric, r))


def _module_notes(worker: WorkerProcess) -> list[str]:
    notes = []
    for module, error in worker.import_errors.items():
        notes.append(f"importing {module} raised {error.get('type')}: {error.get('message', '')[:300]}")
    return notes


def _pdf_and_consistency(submission: Submission, findings: Findings, out_dir: Path, notes: list[str]
                         ) -> list[Consistency]:
    """Write the staff's copy of the PDF; compare every PDF the student handed in with the notebook."""
    made = build_pdf(findings, answer_text(findings), out_dir / "problem_2_solution.pdf", submission.student_id)
    notes.extend(f"PDF: missing part: {message}" for message in made.missing)
    sections = {SECTIONS[0]: findings.curve_images, SECTIONS[1]: findings.filter_images}
    theirs = sorted(p for p in submission.root.rglob("*.pdf") if "__MACOSX" not in p.parts)
    return [compare(pdf, sections) for pdf in theirs]


def _grade_notebook(submission: Submission, worker: WorkerProcess, rubric: Rubric, out_dir: Path, data_dir: Path | None,
                    execute: bool, quick: bool, secret: list[Path], notes: list[str],
                    checks: list[Consistency], baseline: Baseline, replay: bool = True) -> dict[str, ItemScore]:
    """Scores of the training, filters and inline-answer items; PDF checks are appended to `checks`."""
    chosen, others = choose_notebook(submission.root)
    findings: Findings | None = None
    unreadable = ""  # why the notebook could not be read, for the notebook items' reasons
    weights = submission.root / "svhn_cnn_params.npz"
    weights_how = "the saved svhn_cnn_params.npz"
    if chosen is None:
        notes.append("no .ipynb notebook found in the submission")
    else:
        notes.append(f"notebook graded: {chosen.relative_to(submission.root).as_posix()}"
                     + (f" (also found: {', '.join(others)})" if others else ""))
        limit_mb = rubric.raw["intake"]["max_notebook_mb"]
        size = chosen.stat().st_size
        if size > limit_mb << 20:
            unreadable = (f"{chosen.name} is {size / (1 << 20):.0f} MB, over the {limit_mb} MB a notebook may "
                          f"have (clear large outputs, save, resubmit); it was not read")
            notes.append(unreadable)
        else:
            source = chosen
            if execute:
                run = execute_notebook(submission.root, chosen, data_dir, out_dir, rubric.raw["execution"],
                                       rubric.raw["execution"]["quick"] if quick else None, secret)
                notes.extend(run.notes)
                notes.append(f"executed headless: {run.notebook.name}" + ("" if run.completed else f"; {run.problem}"))
                source, weights, weights_how = run.notebook, run.weights, "weights from the headless run"
            try:
                findings = extract(read_notebook(source), source, baseline.text)
                checks.extend(_pdf_and_consistency(submission, findings, out_dir, notes))
                notes.extend(f"a cell ended in an error: {error}" for error in findings.errors[:5])
                if not findings.has_outputs:
                    notes.append(f"{source.name} has no outputs: run it and save it with its outputs")
            except NotebookError as exc:
                unreadable = str(exc)
                notes.append(unreadable)
    if weights is not None and not weights.is_file():
        weights = None
    evidence, first_conv_w = gather_training_evidence(worker, rubric, findings, weights, weights_how, data_dir)
    scores = {"training": score_training(rubric, evidence), "filters": score_filters(rubric, findings, first_conv_w),
              "inline_answer": score_inline_answer(rubric, findings)}
    if replay and weights is None and data_dir is not None and not execute and findings is not None:
        # No weights to verify: check at least that this code prints this log (autograder/notebook/replay.py).
        scores["training"] = annotate(scores["training"], replay_log(submission.root, chosen, data_dir, rubric, secret))
    if unreadable:  # say why first: "no accuracy found" alone would send the student looking in the wrong place
        scores = {item: replace(score, note=f"{unreadable}; {score.note}") if score.score == 0 else score
                  for item, score in scores.items()}
    return scores


def _code_lines(root: Path, out_dir: Path, baseline: Baseline) -> list[str] | None:
    """The submission's own normalised lib/cnn lines (the baseline's left out); on a fault, None and
    the trace beside the results (the grade stands; only this submission's similarity comparison is lost)."""
    try:
        from autograder.reports.similarity import fingerprint  # a batch's tool: not in the student handout
        return fingerprint(root, baseline.code)["code"]
    except Exception:  # noqa: BLE001
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "fingerprint_error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return None


def grade_submission(path: Path, out_dir: Path | None = None, public_only: bool = False,
                     fixtures_dir: Path = DEFAULT_FIXTURES, hidden: list[Path] = (),
                     limits: Limits | None = None, data_dir: Path | None = None, execute: bool = False,
                     quick: bool = False, write_fingerprint: bool = False,
                     baseline: Baseline | None = None, replay: bool = True) -> tuple[GradeResult, Path]:
    """Grade `path` (folder or zip) and write its reports; returns the result and the output folder.

    `hidden`: further folders the student's code must not see (a batch's input folder, say).
    `limits`: the worker's limits, when not the rubric's (tests use shorter time-outs).
    `data_dir`: SVHN files (official or synthetic) to verify saved weights on, and to run with.
    `execute`: run the notebook headless first (needs data_dir); `quick`: a short smoke run.
    `replay`: when the notebook saved no weights and `data_dir` is given, re-run its training cell until
    its first logged losses are printed again (autograder/notebook/replay.py; minutes per submission).
    `write_fingerprint`: also write OUT/fingerprint.json for a batch's similarity check, taken here while
    the submission is unpacked.
    Raises SecretsExposed, before the submission is even opened, where the worker could read the hidden
    fixtures (a weaker confinement than `namespace` with readable files; see exposure.py).
    `baseline`: the handout students received (default: our student template), whose text is never
    the student's answer and whose lib/cnn lines count for no one in the similarity check.
    Warnings that libraries log or raise meanwhile (a broken PDF, an old notebook) go to
    OUT/grading.log, not to the terminal.
    """
    with captured() as log:
        result, out_dir, harness_fault = _grade(path, out_dir, public_only, fixtures_dir, hidden, limits, data_dir,
                                                execute, quick, write_fingerprint, baseline or default_baseline(),
                                                replay)
    try:
        write_log(out_dir, log, f"warnings while grading {Path(path).name} (cnn-grader {__version__})")
    except OSError:  # the results were written; a log that cannot be is no reason to fail the grade
        pass
    if harness_fault is not None:
        raise HarnessError(f"grading {path} failed inside the harness: {harness_fault}") from harness_fault
    return result, out_dir


def _grade(path: Path, out_dir: Path | None, public_only: bool, fixtures_dir: Path, hidden: list[Path],
           limits: Limits | None, data_dir: Path | None, execute: bool, quick: bool, write_fingerprint: bool,
           baseline: Baseline, replay: bool) -> tuple[GradeResult, Path, Exception | None]:
    """`grade_submission` without the log: the result, the output folder, and the harness's own fault."""
    started = time.monotonic()
    exposure = guard_secrets(fixtures_dir, public_only)
    rubric = load_rubric()
    limits = limits or Limits.from_rubric(rubric.raw["worker"])
    out_dir = Path(out_dir) if out_dir is not None else Path("graded") / student_id_for(path)
    cases = load_cases(fixtures_dir, public_only)
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-intake-"))
    notes: list[str] = [note for note in [trust_note(exposure)] if note]
    printed, printed_bytes = "", 0
    metadata = {"harness_version": __version__, "fixtures_manifest_sha256": manifest_digest(fixtures_dir),
                "python": platform.python_version(), "numpy": np.__version__, "secrets_check": exposure.metadata(),
                "baseline": baseline.label, "baseline_sha256": baseline.digest}
    harness_fault: Exception | None = None
    notebook_scores: dict[str, ItemScore] = {}
    pdf_checks: list[Consistency] = []
    missing_reason = ""
    code_lines: list[str] | None = None
    try:
        submission: Submission | None = None
        try:
            submission = open_submission(Path(path), scratch, rubric.raw["intake"]["max_unpacked_mb"] << 20,
                                         rubric.raw["intake"]["max_files"])
        except IntakeError as exc:
            notes.append(str(exc))
            metadata["intake_error"] = str(exc)
            missing_reason = f"0: {exc}"
            results = _all_cases_fail(cases, rubric, StudentException("SubmissionError", str(exc)))
        if submission is not None:
            notes += submission.notes
            metadata["submission_sha256"] = submission.sha256
            if write_fingerprint:
                code_lines = _code_lines(submission.root, out_dir, baseline)
            secret = [*SECRET_PATHS, Path(fixtures_dir).resolve(), out_dir.resolve(), Path(path).resolve(), *hidden]
            with WorkerProcess(submission.root, limits, hidden=secret) as worker:
                worker.start()  # a failure is remembered and ends every case with its reason
                metadata["worker_start_seconds"] = round(worker.start_seconds, 3)
                try:
                    results = run_checks(worker, cases, rubric)
                except Exception as exc:  # noqa: BLE001 - our fault: say so in the result, then raise
                    harness_fault = exc
                    results = _all_cases_fail(cases, rubric, HarnessFault(f"{type(exc).__name__}: {exc}"))
                try:
                    notebook_scores = _grade_notebook(submission, worker, rubric, out_dir, data_dir, execute, quick,
                                                      secret, notes, pdf_checks, baseline, replay)
                except Exception as exc:  # noqa: BLE001 - our fault: the code items keep their scores
                    harness_fault = harness_fault or exc
                    missing_reason = f"0: harness fault while reading the notebook ({type(exc).__name__}: {exc})"
                notes += _module_notes(worker) + list(worker.confinement.notes)
                metadata["sandbox"] = worker.confinement.mode
                metadata["worker_restarts"] = worker.restarts
                printed, printed_bytes = worker.printed()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    items = score_submission(rubric, results, notebook_scores, missing_reason, public_only)
    result = GradeResult(student_id_for(Path(path)), items, time.monotonic() - started,
                         public_only, notes, printed, printed_bytes, metadata, pdf_checks)
    write_reports(result, out_dir)
    if code_lines is not None:
        answer = next((item.extra.get("answer", "") for item in items if item.item.id == "inline_answer"), "")
        from autograder.reports.similarity import FINGERPRINT
        write_atomically(out_dir / FINGERPRINT, json.dumps({"code": code_lines, "answer": answer}) + "\n")
    return result, out_dir, harness_fault


def summary(result: GradeResult, out_dir: Path) -> str:
    """What the terminal shows after grading one submission."""
    head = f"{result.student_id}: self-check, no points claimed" if result.public_only else \
        f"{result.student_id}: {result.score:g} / {result.max_score:g}"
    return "\n".join([head, terminal_table(result),
                      f"results: {out_dir / 'results.json'}", f"feedback: {out_dir / 'feedback.md'}"])

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
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from autograder import REPO_ROOT, __version__
from autograder.baseline import Baseline, default_baseline
from autograder.checks.plugin import case_sides, result_order, run_checks
from autograder.deadlines import Deadline, StageTimeout
from autograder.edition import Decision, Edition, default_edition, detect
from autograder.fixtures import load_cases, manifest_digest
from autograder.intake import IntakeError, Submission, open_submission, student_id_for
from autograder.model import CaseResult, GradeResult, ItemScore, ItemStatus, NotebookOutcome, ReasonCode
from autograder.notebook.architecture import FirstConv
from autograder.notebook.data_cache import cache_root
from autograder.notebook.datasets import missing_files
from autograder.notebook.execute import execute_notebook
from autograder.notebook.filter_match import is_first_layer, render_filters
from autograder.notebook.items import (
    TrainingEvidence,
    answer_text,
    awaiting,
    note_left_out_images,
    score_extra_credit,
    score_filters,
    score_inline_answer,
    score_training,
)
from autograder.notebook.pdf import SECTIONS, build_pdf
from autograder.notebook.pdf_check import Consistency, compare, write_evidence
from autograder.notebook.reading import Findings, NotebookError, choose_notebook, extract, read_notebook
from autograder.notebook.replay import annotate, replay_log
from autograder.notebook.training_evidence import gather_training_evidence, load_weights
from autograder.notebook.weights_file import WeightsError
from autograder.outcomes import HarnessFault, Outcome, Unreadable
from autograder.reports.grading_log import captured, write_log
from autograder.reports.results import (
    FEEDBACK,
    FEEDBACK_RELEASED,
    UNREAD_RUBRIC_RELEASE,
    terminal_table,
    write_atomically,
    write_reports,
)
from autograder.rubric import Rubric, load_rubric
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.sandbox.exposure import guard_secrets, trust_note
from autograder.sandbox.folders import remove_tree
from autograder.sandbox.parent import Limits, WorkerProcess, lib_modules
from autograder.sandbox.warm_worker import WarmClient
from autograder.score import score_submission

DEFAULT_FIXTURES = REPO_ROOT / "fixtures"


class HarnessError(RuntimeError):
    """The grader itself failed; the result written says so for every item."""


@dataclass(frozen=True)
class GradeOptions:
    """What one grade runs, besides the submission and the output folder.

    `hidden`: further folders the student's code must not see (a batch's input folder, say).
    `limits`: the worker's limits, when not the rubric's (tests use shorter time-outs).
    `data_dir`: the edition's data files (official or synthetic) to verify saved weights on, and to run with.
    `execute`: run the notebook headless first (needs data_dir); `quick`: a short smoke run.
    `replay`: when the notebook saved no weights and `data_dir` is given, re-run its training cell until
    its first logged losses are printed again (autograder/notebook/replay.py; minutes per submission).
    `write_fingerprint`: also write OUT/fingerprint.json for a batch's similarity check, taken here while
    the submission is unpacked.
    `baseline`: the handout students received (default: our student template), whose text is never
    the student's answer and whose lib/cnn lines count for no one in the similarity check.
    `edition`: the edition staff fixed (`--edition`); None: each submission's is detected from its own
    files (autograder/edition.py `detect`). A submission whose files contradict a given edition is graded
    as given and flagged ("edition contradiction"), never zeroed for it.
    `release`: after the due date, feedback.md is the released version (the hidden cases' inputs, values and
    differences, as feedback_released.md, which is written either way); before it, feedback.md names none.
    `warm`: the batch slot's warm worker, which forks this submission's workers (sandbox/warm_worker.py);
    None: each worker is started afresh.
    """

    public_only: bool = False
    fixtures_dir: Path = DEFAULT_FIXTURES
    hidden: tuple[Path, ...] | list[Path] = ()
    limits: Limits | None = None
    data_dir: Path | None = None
    execute: bool = False
    quick: bool = False
    write_fingerprint: bool = False
    baseline: Baseline | None = None
    replay: bool = True
    edition: Edition | None = None
    release: bool = False
    warm: WarmClient | None = None


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


def _pdf_and_consistency(submission: Submission, findings: Findings, out_dir: Path, rubric: Rubric
                         ) -> tuple[list[Consistency], list[str]]:
    """Write the staff's copy of the PDF; compare every PDF the student handed in with the notebook.
    Returns the comparisons and the notes on parts missing from the notebook. Each is a stage that
    fails alone (`_contained`): no item's points depend on either."""
    deadline = Deadline(rubric.deadlines.pdf_seconds, "reading your PDF")  # for all of them together
    notes, failed = _contained(out_dir, "pdf_error.txt", lambda: _staff_pdf(submission, findings, out_dir, rubric),
                               "the staff's copy of the PDF could not be made", [])
    sections = {SECTIONS[0]: findings.curve_images, SECTIONS[1]: findings.filter_images}
    theirs = sorted(p for p in submission.root.rglob("*.pdf") if "__MACOSX" not in p.parts and p.is_file())
    def check() -> list[Consistency]:
        checks = [compare(pdf, sections, rubric.intake.max_image_pixels, deadline, rubric.pdf_check) for pdf in theirs]
        write_evidence(checks, out_dir, rubric.pdf_check)  # both pictures of a different or undecided figure
        return checks

    checks, unchecked = _contained(out_dir, "pdf_check_error.txt", check,
                                   "the PDF handed in could not be compared with the notebook", [])
    return checks, notes + [note for note in (failed, unchecked) if note]


def _staff_pdf(submission: Submission, findings: Findings, out_dir: Path, rubric: Rubric) -> list[str]:
    """The staff's copy of the PDF, made from the notebook; the notes on its missing parts."""
    made = build_pdf(findings, answer_text(findings), out_dir / rubric.assignment.pdf, submission.student_id,
                     rubric.edition)
    notes = [f"PDF: missing part: {message}" for message in made.missing]
    if made.fallback:
        notes.append(f"PDF: the answer is shown as typed, its Markdown could not be laid out ({made.fallback})")
    return notes


def _contained(out_dir: Path, trace_file: str, stage, what: str, default):
    """(`stage()`, ""), or, when it raises, (`default`, the note `what` with the exception), the traceback
    in OUT/`trace_file`: a stage whose failure costs no item anything must not end the grade."""
    try:
        return stage(), ""
    except Exception as exc:  # noqa: BLE001 - contained: staff read the trace, the grade stands
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / trace_file).write_text(traceback.format_exc(), encoding="utf-8")
        return default, f"{what} ({type(exc).__name__}: {str(exc)[:200]}); staff are told"


def _grade_notebook(submission: Submission, worker: WorkerProcess, rubric: Rubric, out_dir: Path, options: GradeOptions,
                    secret: list[Path], baseline: Baseline) -> NotebookOutcome:
    """Scores of the training, filters and inline-answer items, with the notes on the notebook read
    and the findings the PDF is made from (None when no notebook could be read)."""
    outcome = NotebookOutcome()
    notes = outcome.notes
    unreadable_code = ReasonCode.NOTEBOOK_UNREADABLE
    chosen, others = choose_notebook(submission.root)
    findings: Findings | None = None
    format_note = ""
    weights = submission.root / rubric.assignment.weights_file
    weights_how = f"the saved {rubric.assignment.weights_file}"
    if chosen is None:
        notes.append("no .ipynb notebook found in the submission")
    else:
        notes.append(f"notebook graded: {chosen.relative_to(submission.root).as_posix()}"
                     + (f" (also found: {', '.join(others)})" if others else ""))
        limit_mb = rubric.intake.max_notebook_mb
        size = chosen.stat().st_size
        if size > limit_mb << 20:
            outcome.unreadable = (f"{chosen.name} is {size / (1 << 20):.0f} MB, over the {limit_mb} MB a notebook may "
                                  f"have (clear large outputs, save, resubmit); it was not read")
            notes.append(outcome.unreadable)
        else:
            source = chosen
            if options.execute:
                run = execute_notebook(submission.root, chosen, options.data_dir, out_dir, rubric.execution,
                                       rubric.execution.quick if options.quick else None, secret,
                                       edition=rubric.edition)
                notes.extend(run.notes)
                notes.append(f"executed headless: {run.notebook.name}" + ("" if run.completed else f"; {run.problem}"))
                source, weights, weights_how = run.notebook, run.weights, "weights from the headless run"
            try:
                problems: list[str] = []
                deadline = Deadline(rubric.deadlines.notebook_seconds, "reading your notebook")
                findings = extract(read_notebook(source, problems), source, baseline.text, rubric.intake, deadline,
                                   rubric.edition)
                format_note = _format_note(source.name, problems)
                notes.extend([format_note] if format_note else [])
                notes.extend(f"a cell ended in an error: {error}" for error in findings.errors[:5])
                notes.extend(f"image left out: {note}" for _, note in (findings.left_out + findings.unreadable)[:5])
                if not findings.has_outputs:
                    notes.append(f"{source.name} has no outputs: run it and save it with its outputs")
            except NotebookError as exc:
                outcome.unreadable = str(exc)
                notes.append(outcome.unreadable)
            except StageTimeout as late:  # the student's notebook, not our fault: its items say so
                outcome.unreadable, unreadable_code = late.reason, ReasonCode.TIMED_OUT
                notes.append(outcome.unreadable)
    if weights is not None and not (weights.is_file() or weights.is_dir()):
        weights = None  # a folder of that name is handed in, and cannot be evaluated: the reader says so
    try:
        evidence, first_conv = gather_training_evidence(worker, rubric, findings, weights, weights_how,
                                                        options.data_dir)
    except Exception as exc:  # noqa: BLE001 - our fault: the training item says so, the others are scored
        evidence, first_conv, evidence_fault = None, None, exc
    else:
        evidence_fault = None

    def training() -> ItemScore:
        if evidence_fault is not None:
            raise evidence_fault
        score = score_training(rubric, evidence)
        if options.replay and weights is None and options.data_dir is not None and not options.execute \
                and findings is not None:
            # No weights to verify: check at least that this code prints this log (autograder/notebook/replay.py).
            score = annotate(score, replay_log(submission.root, chosen, options.data_dir, rubric, secret))
        return score

    def filters_item() -> ItemScore:
        if evidence_fault is not None:
            raise evidence_fault
        filters, unchecked = _first_layer(weights, first_conv, evidence, rubric)
        first_conv_w = first_conv.name if first_conv is not None else None
        score = note_left_out_images(score_filters(
            rubric, findings, first_conv_w, filters, unchecked,
            Deadline(rubric.deadlines.filters_seconds, "reading your filter image")), findings)
        _write_filter_images(out_dir, score, findings, filters, rubric)
        return score

    stages = {"training": training, "filters": filters_item,
              "inline_answer": lambda: score_inline_answer(rubric, findings)}
    stages.update({item.id: lambda: score_extra_credit(rubric, findings) for item in rubric.extra_items})
    scores = _each_alone(rubric, stages, outcome.faults)
    if format_note and not outcome.unreadable:  # where a zero may come from what could not be read
        scores = {item: replace(score, note=f"{score.note}; {format_note}") if score.score == 0
                  and score.code != ReasonCode.HARNESS_FAULT else score for item, score in scores.items()}
    scores = _say_refused(scores, submission.refused, rubric)
    if outcome.unreadable:  # say why first: "no accuracy found" alone would send the student looking elsewhere
        scores = {item: _said_unreadable(score, outcome.unreadable, unreadable_code) if score.score == 0 else score
                  for item, score in scores.items()}
    outcome.scores, outcome.findings = scores, findings
    return outcome


def _said_unreadable(score: ItemScore, why: str, code: ReasonCode) -> ItemScore:
    """An item that earned nothing because the notebook could not be read (or ran out of time being read),
    saying so first, with `code` (notebook_unreadable: the gradebook flags "unreadable notebook"). The inline
    answer's "no answer found" would tell staff the student wrote none, when nobody could look: its reason
    says that the notebook was not read and that staff read the file itself."""
    if score.code == ReasonCode.NO_ANSWER:
        extra = dict(score.extra)
        note = awaiting(extra, f"{why}; no answer could be looked for in a notebook that could not be read",
                        (": staff read the file itself",))
        return replace(score, note=note, extra=extra, code=code)
    return replace(score, note=f"{why}; {score.note}", code=code)


def _say_refused(scores: dict[str, ItemScore], refused: dict[str, str], rubric: Rubric) -> dict[str, ItemScore]:
    """Each notebook item whose file was refused at intake (a link out of the submission, a pipe, a
    device: autograder/intake.py) says so first: the saved weights for the training and filters items,
    a notebook for all three."""
    weights = rubric.assignment.weights_file
    said = {item: [] for item in scores}
    for name, why in refused.items():
        if name == weights:
            for item in ("training", "filters"):
                said.get(item, []).append(f"{name} was not read: {why}")
        elif name.lower().endswith(".ipynb"):
            for item in said:
                said[item].append(f"{name} was not read: {why}")
    return {item: replace(score, note="; ".join([*said[item], score.note])) if said[item] else score
            for item, score in scores.items()}


def _format_note(name: str, problems: list[str]) -> str:
    """What the student reads when the notebook breaks the notebook format: where, and what was done."""
    if not problems:
        return ""
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return (f"{name} does not follow the notebook format, so what is wrong was not read: {'; '.join(problems[:3])}"
            f"{more}; open it in Jupyter, re-run it and save it")


def _each_alone(rubric: Rubric, stages: dict, faults: list) -> dict[str, ItemScore]:
    """Each item's score from its own stage: an exception in one is the harness's fault for that item
    only (recorded in `faults`, so the grade still ends as a harness fault), the others keep theirs."""
    scores = {}
    for item_id, stage in stages.items():
        try:
            scores[item_id] = stage()
        except Exception as exc:  # noqa: BLE001 - ours: contained to this item, said, and raised at the end
            faults.append(exc)
            scores[item_id] = ItemScore(rubric.item(item_id), 0.0, (), ItemStatus.NOT_GRADED,
                                        f"0: harness fault while grading this item ({type(exc).__name__}: {exc}); "
                                        f"not your fault, staff are told", code=ReasonCode.HARNESS_FAULT)
    return scores


def _first_layer(weights: Path | None, first_conv: FirstConv | None, evidence: TrainingEvidence, rubric: Rubric
                 ) -> tuple[np.ndarray | None, str]:
    """The first conv layer's weights (K, K, C, F) from the saved or headless run's parameters: the array
    the validated description names for its first convolution, of the shape it gives (read alone, under
    the rubric's limits); or None when there are none to check the filter image against, and why when
    there were weights (the filters are then provisional, for staff to confirm)."""
    if weights is None or first_conv is None:
        return None, ""
    limit = rubric.training["max_disagreements"]
    if evidence.verified is not None and evidence.disagreements is None:
        return None, (f"your own forward could not be run on the saved weights to confirm the grader's rebuild of "
                      f"your network, so its first layer {first_conv.name!r} is not known to be your network's")
    if evidence.disagreements is not None and evidence.disagreements > limit:
        return None, (f"the grader's rebuild of your network disagrees with your own forward on "
                      f"{evidence.disagreements} validation images, so its first layer {first_conv.name!r} is not "
                      f"known to be your network's")
    try:
        read = load_weights(weights, rubric, {first_conv.name: first_conv.shape})
    except WeightsError as exc:  # the training item says why too; the filters are then provisional
        return None, f"the saved {first_conv.name!r} could not be read as your first layer ({exc})"
    array = read.arrays.get(first_conv.name)
    if array is None:
        return None, (evidence.unevaluable or f"the saved weights hold no {first_conv.name!r} of shape "
                      f"{first_conv.shape}, your network's first layer")
    if not is_first_layer(array) or not np.all(np.isfinite(array)):
        return None, f"the saved {first_conv.name!r} is not a finite (K, K, 3, F) first layer"
    return np.array(array, dtype=np.float64), ""


def _write_filter_images(out_dir: Path, score: ItemScore, findings: Findings | None, filters: np.ndarray | None,
                         rubric: Rubric) -> None:
    """Beside results.json, for the staff's grading sheet: the notebook image that was scored (its own
    PNG bytes) and the grader's drawing of the first layer's filters, under the names `extra` gives."""
    index = score.extra.get("image_index")
    if findings is not None and index is not None and score.extra.get("notebook_image"):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / score.extra["notebook_image"]).write_bytes(findings.filter_images[index])
    if filters is not None and score.extra.get("rendered_image"):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / score.extra["rendered_image"]).write_bytes(render_filters(filters, rubric.filters.rendered_width))


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


def grade_submission(path: Path, out_dir: Path | None = None, options: GradeOptions | None = None,
                     **fields) -> tuple[GradeResult, Path]:
    """Grade `path` (folder or zip) and write its reports; returns the result and the output folder.

    `options` (or its fields as keywords, see GradeOptions) say what to run. Raises SecretsExposed,
    before the submission is even opened, where the worker could read the hidden fixtures (a weaker
    confinement than `namespace` with readable files; see exposure.py). Any other failure of the harness,
    however early (the rubric, the fixtures, the worker's start), still writes a complete results.json
    (every item 0 with the reason, reason_code harness_fault) and the traceback to OUT/grading.log, then
    raises HarnessError. Warnings that libraries log meanwhile (a broken PDF, an old notebook) go to
    OUT/grading.log, not to the terminal.
    """
    options = replace(options or GradeOptions(), **fields)
    with captured() as log:
        result, out_dir, harness_fault = _grade(path, out_dir, options)
    if harness_fault is not None:
        for line in "".join(traceback.format_exception(harness_fault)).rstrip().splitlines():
            log.add(line)
    try:
        write_log(out_dir, log, f"warnings while grading {Path(path).name} (cnn-grader {__version__})")
    except OSError:  # the results were written; a log that cannot be is no reason to fail the grade
        pass
    if harness_fault is not None:
        raise HarnessError(f"grading {path} failed inside the harness: {harness_fault}") from harness_fault
    return result, out_dir


def _grade(path: Path, out_dir: Path | None, options: GradeOptions) -> tuple[GradeResult, Path, Exception | None]:
    """`grade_submission` without the log: the result (written), the output folder, and the harness's fault."""
    started = time.monotonic()
    exposure = guard_secrets(options.fixtures_dir, options.public_only)  # a refusal writes nothing
    out_dir = Path(out_dir) if out_dir is not None else Path("graded") / student_id_for(path)
    run = _Run(Path(path), out_dir, options, started, notes=[note for note in [trust_note(exposure)] if note],
               metadata={"harness_version": __version__, "python": platform.python_version(),
                         "numpy": np.__version__, "secrets_check": exposure.metadata()})
    code_lines: list[str] | None = None
    try:
        run.rubric = load_rubric()
        result, fault, code_lines = _grade_stages(run)
    except Exception as exc:  # noqa: BLE001 - our fault, however early: a complete result says so
        result, fault = _fault_result(run, exc), exc
    write_reports(result, out_dir, run.rubric.release if run.rubric else UNREAD_RUBRIC_RELEASE,
                  released=run.options.release)
    if code_lines is not None:
        answer = next((item.extra.get("answer", "") for item in result.items if item.item.id == "inline_answer"), "")
        from autograder.reports.similarity import FINGERPRINT
        write_atomically(out_dir / FINGERPRINT, json.dumps({"code": code_lines, "answer": answer}) + "\n")
    return result, out_dir, fault


@dataclass
class _Run:
    """What one grading run knows so far, for the result a fault still has to write."""

    path: Path
    out_dir: Path
    options: GradeOptions
    started: float
    notes: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    rubric: Rubric | None = None

    def decide(self, decision: Decision) -> None:
        """Grade as `decision.edition` from here on (the rubric's target, chance, weights file and words),
        and say which edition and why: in results.json (extra_data.edition), in the notes, and, when a
        given edition contradicts the files, as a note staff see (the gradebook flags it)."""
        self.rubric = self.rubric.with_edition(decision.edition)
        self.metadata["edition"] = decision.as_json()
        edition = decision.edition
        why = {"given": ", as staff asked (--edition)", "detected": ", detected from your files"}.get(decision.how, "")
        evidence = f": {'; '.join(decision.evidence)}" if decision.evidence else ""
        self.notes.append(f"graded as the {edition.name} edition ({edition.task}){why}{evidence}")
        if decision.contradiction:
            self.notes.append(f"EDITION CONTRADICTION: {decision.contradiction}; staff are told (the gradebook "
                              f"flags it) and will check which handout you used")
        data_dir = self.options.data_dir
        missing = missing_files(edition, data_dir, edition.dataset.needed_files) if data_dir is not None else []
        if missing:
            # Staff's --data lacks this edition's files (a batch of both editions given one edition's data): the
            # student is graded as without --data (no headless run, no evaluation), never zeroed for it.
            self.options = replace(self.options, data_dir=None, execute=False)
            self.metadata["data_missing"] = missing
            self.notes.append(f"the staff's data folder has no {edition.dataset.name} files for this edition "
                              f"(missing {', '.join(missing)}): graded as without --data (nothing executed or "
                              "evaluated); not your fault, staff are told")

    def result(self, items: list[ItemScore], printed: str = "", printed_bytes: int = 0,
               pdf_checks: list[Consistency] = ()) -> GradeResult:
        return GradeResult(student_id_for(self.path), items, time.monotonic() - self.started, self.options.public_only,
                           self.notes, printed, printed_bytes, self.metadata, list(pdf_checks))


def _fault_result(run: _Run, exc: Exception) -> GradeResult:
    """Every rubric item at 0 with the harness's fault as its reason (none at all when the rubric itself failed)."""
    what = f"{type(exc).__name__}: {exc}"
    run.metadata.update(harness_fault=what, reason_code=str(ReasonCode.HARNESS_FAULT))
    run.notes.append("the grader itself failed before grading this submission (not your fault; staff are told): "
                     f"{what}")
    items = [ItemScore(item, 0.0, (), ItemStatus.NOT_GRADED, f"0: harness fault before grading ({what})",
                       code=ReasonCode.HARNESS_FAULT) for item in (run.rubric.items if run.rubric else ())]
    return run.result(items)


def _grade_stages(run: _Run) -> tuple[GradeResult, Exception | None, list[str] | None]:
    """Intake, checks, notebook, PDF and score, each stage returning what the next needs."""
    rubric, options = run.rubric, run.options
    baseline = options.baseline or default_baseline()
    run.metadata.update(baseline=baseline.label, baseline_sha256=baseline.digest)
    limits = options.limits or rubric.worker
    cases = load_cases(options.fixtures_dir, options.public_only)
    run.metadata["fixtures_manifest_sha256"] = manifest_digest(options.fixtures_dir)
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-intake-"))
    try:
        try:
            submission = open_submission(run.path, scratch, rubric.intake.max_unpacked_mb << 20,
                                         rubric.intake.max_files, rubric.intake.max_folder_entries)
        except IntakeError as exc:
            # Nothing to detect from: the given edition, else the default, says whose words the zeros are in.
            run.decide(Decision(options.edition, "given") if options.edition is not None else
                       Decision(default_edition(), "default", ("the submission could not be opened",)))
            run.notes.append(str(exc))
            run.metadata["intake_error"] = str(exc)
            results = _all_cases_fail(cases, run.rubric, Unreadable(str(exc)))
            items = score_submission(run.rubric, results, _unopened_manual_items(run.rubric, exc, options),
                                     f"0: {exc}", options.public_only, ReasonCode.UNREADABLE_SUBMISSION,
                                     ReasonCode.UNREADABLE_SUBMISSION)
            return run.result(items), None, None
        run.decide(detect(submission.root, rubric.assignment.notebook, options.edition))
        return _grade_opened(run, submission, cases, limits, baseline)
    finally:
        remove_tree(scratch)


def _unopened_manual_items(rubric: Rubric, exc: IntakeError, options: GradeOptions) -> dict[str, ItemScore]:
    """The items staff grade by hand (the inline answer) of a submission that could not be opened: pending
    staff, not a settled 0. Nobody has read the answer: staff get the file from the student, or decide, and the
    gradebook row stays `pending staff` (its cell blank) until they merge a score. A self-check claims nothing."""
    if options.public_only:
        return {}
    scores = {}
    for item in rubric.items:
        if item.kind == "manual":
            extra: dict = {}
            note = awaiting(extra, ("pending staff: ",), f"the submission could not be opened ({exc}), so the answer "
                            "could not be read", ("; staff look at the file handed in",))
            scores[item.id] = ItemScore(item, 0.0, (), ItemStatus.PENDING, note, extra,
                                        code=ReasonCode.UNREADABLE_SUBMISSION)
    return scores


def _code_checks(worker: WorkerProcess, cases, rubric: Rubric
                 ) -> tuple[list[CaseResult], Exception | None]:
    """Every code item's cases, run in the worker; on our own fault, every case ends with it."""
    try:
        return run_checks(worker, cases, rubric), None
    except Exception as exc:  # noqa: BLE001 - our fault: say so in the result, then raise
        return _all_cases_fail(cases, rubric, HarnessFault(f"{type(exc).__name__}: {exc}")), exc


def _grade_opened(run: _Run, submission: Submission, cases, limits: Limits, baseline: Baseline
                  ) -> tuple[GradeResult, Exception | None, list[str] | None]:
    """The stages that need the unpacked submission and its worker."""
    rubric, options = run.rubric, run.options
    run.notes += submission.notes
    run.metadata["submission_sha256"] = submission.sha256
    code_lines = _code_lines(submission.root, run.out_dir, baseline) if options.write_fingerprint else None
    # the data cache holds the held-out images: private to the grader's user, and out of the worker's view too
    secret = [*SECRET_PATHS, Path(options.fixtures_dir).resolve(), run.out_dir.resolve(), run.path.resolve(),
              *options.hidden, *filter(None, [cache_root()])]
    missing_reason, missing_code = "", ReasonCode.NOTEBOOK_UNREADABLE
    pdf_checks: list[Consistency] = []
    modules = lib_modules(rubric.edition.dataset.loader_module)  # only the modules this edition's handout has
    with WorkerProcess(submission.root, limits, hidden=secret, modules=modules, warm=options.warm) as worker:
        worker.start()  # a failure is remembered and ends every case with its reason
        run.metadata["worker_start_seconds"] = round(worker.start_seconds, 3)
        results, fault = _code_checks(worker, cases, rubric)
        try:
            notebook = _grade_notebook(submission, worker, rubric, run.out_dir, options, secret, baseline)
            fault = fault or next(iter(notebook.faults), None)
        except Exception as exc:  # noqa: BLE001 - our fault: the code items keep their scores
            fault = fault or exc
            notebook = NotebookOutcome()
            missing_reason = f"0: harness fault while reading the notebook ({type(exc).__name__}: {exc})"
            missing_code = ReasonCode.HARNESS_FAULT
        if notebook.findings is not None:  # a stage of its own: its failure costs no item anything
            pdf_checks, pdf_notes = _pdf_and_consistency(submission, notebook.findings, run.out_dir, rubric)
            notebook.notes += pdf_notes
        run.notes += notebook.notes + _module_notes(worker) + list(worker.confinement_notes)
        run.metadata["sandbox"] = worker.mode
        run.metadata["worker_restarts"] = worker.restarts
        run.metadata["worker_exits"] = worker.exits
    printed, printed_bytes = worker.printed()  # after close: everything the worker flushed has been read
    checks_failed = fault is not None and any(isinstance(r.outcome, HarnessFault) for r in results)
    items = score_submission(rubric, results, notebook.scores, missing_reason, options.public_only, missing_code,
                             ReasonCode.HARNESS_FAULT if checks_failed else None)
    return run.result(items, printed, printed_bytes, pdf_checks), fault, code_lines


def summary(result: GradeResult, out_dir: Path) -> str:
    """What the terminal shows after grading one submission."""
    head = f"{result.student_id}: self-check, no points claimed" if result.public_only else \
        f"{result.student_id}: {result.score:g} / {result.max_score:g}"
    full = "" if result.public_only else \
        f" (the full one, the hidden cases' inputs included: {out_dir / FEEDBACK_RELEASED})"
    return "\n".join([head, terminal_table(result), f"results: {out_dir / 'results.json'}",
                      f"feedback: {out_dir / FEEDBACK}{full}"])

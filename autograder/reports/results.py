"""Reports of one graded submission: results.json, feedback.md and a terminal table.

results.json follows Gradescope's schema (top-level score, execution_time, output, visibility,
stdout_visibility, tests, extra_data; per test name, score, max_score, status, output, tags,
visibility, extra_data); each test is one rubric item, or one component of an item that has
several (conv backward's dimg, dW, db), and its `tags` hold the item id: the max_scores of an
item's tests add up to the item's points. A component's extra_data carries its diagnosis and
`patterns`, the codes of the failure patterns it names (autograder/diagnosis.py), which the class
report counts. feedback.md says, per item and component, what was checked, what separates the
failing cases from the passing ones, and per failing case what went wrong in words a student can
act on.

Release rules (rubric.toml [release]): before the due date a hidden case must stay hidden. The
items' tests say of each hidden case only whether it passed and how it failed, and the diagnosis
in words that name no hidden input (`Diagnosis.before_due`); each code item's hidden cases in full
(inputs, values, differences) are a 0-point test of their own tagged [HIDDEN_CASE_DETAILS, item]
with [release] hidden_details' visibility, and what is meant for staff alone one 0-point test
tagged [STAFF_NOTES]. Neither tag is an item's id: readers that group tests by item skip them
(`model.graded_tests`). feedback.md follows the same rule unless `released`; feedback_released.md,
written beside it, is the full version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autograder.model import CaseResult, ComponentScore, GradeResult, ItemScore
from autograder.rubric import HIDDEN_CASE_DETAILS, STAFF_NOTES, Release, RubricError, load_rubric

_MAX_CASE_TEXT = 1500


_VISIBILITY = {"public": "public, no points", "hidden": "hidden", "check": "check"}

_POLICY = ("Points come from the hidden cases and the fixed checks. The notebook's public case of each item is "
           "run and shown (marked \"public, no points\") but earns nothing by itself: its answer is printed in "
           "the notebook.")


#: The feedback files: the one a student reads before the due date, and the full one (the hidden cases' inputs).
FEEDBACK = "feedback.md"
FEEDBACK_RELEASED = "feedback_released.md"

#: When the hidden cases in full are shown, by [release] hidden_details, in the words of the tests that withhold them.
_WHEN = {"after_due_date": "after the due date", "after_published": "once the grades are published",
         "visible": "in a test of their own", "hidden": "to staff only"}

#: Who sees what when the rubric itself could not be read (a harness fault before any grading): rubric.toml's
#: own defaults, so that a fault's results.json still carries the visibility fields.
UNREAD_RUBRIC_RELEASE = Release(public="visible", hidden_details="after_due_date", staff_notes="hidden",
                                visibility="visible", stdout_visibility="hidden")


def release_rules() -> Release:
    """The rubric's [release] table, or its defaults when the rubric cannot be read (a fault's results)."""
    try:
        return load_rubric().release
    except RubricError:
        return UNREAD_RUBRIC_RELEASE


def _withheld(case: CaseResult) -> bool:
    """Whether what a case was run on, returned and differed by is withheld before the due date."""
    return case.visibility == "hidden"


def _case_line(case) -> str:
    text = case.outcome.message()
    if len(text) > _MAX_CASE_TEXT:
        text = text[:_MAX_CASE_TEXT] + " …(cut)"
    return f"{case.case} ({_VISIBILITY.get(case.visibility, case.visibility)}; {case.description}): {text}"


def _withheld_outcome(case: CaseResult) -> str:
    """A hidden case's outcome with no input, value or difference in it: "passed", "failed (wrong shape)"."""
    return "passed" if case.outcome.passed else f"failed ({case.outcome.label})"


def _withheld_case_line(case: CaseResult) -> str:
    return f"{case.case} (hidden): {_withheld_outcome(case)}"


def _component_output(item: ItemScore, part: ComponentScore, release: Release) -> str:
    lines = [f"Checked: {item.item.checked}" if item.item.checked else ""]
    if part.component.id:
        lines.append(f"This test: {part.component.title}, {part.component.points:g} of the item's "
                     f"{item.item.points:g} points.")
    lines.append(part.diagnosis.before_due or _component_reason(part))
    lines += [_withheld_case_line(case) if _withheld(case) else _case_line(case) for case in part.cases]
    if any(_withheld(case) for case in part.cases):
        lines.append(f"The hidden cases' inputs, your outputs and the differences are shown "
                     f"{_WHEN[release.hidden_details]}.")
    return "\n".join(line for line in lines if line)


def _component_reason(part: ComponentScore) -> str:
    if part.passed == len(part.cases):
        return f"all {len(part.cases)} {'case' if len(part.cases) == 1 else 'cases'} passed"
    return f"{part.passed}/{len(part.cases)} passed"


def _test_output(item: ItemScore) -> str:
    if item.item.kind == "manual" and item.extra.get("answer"):
        return f"{item.note}\n\nThe answer:\n\n{item.extra['answer']}"
    if item.item.extra_credit and item.extra.get("work"):
        return f"{item.note}\n\nThe extra-credit work (its text; its figures are in the PDF):\n\n{item.extra['work']}"
    return item.note


def _extra_credit_line(result: GradeResult) -> str:
    """What the summary says of extra credit: outside the total, pending or set."""
    items = [item for item in result.items if item.item.extra_credit]
    if not items or result.public_only:
        return ""
    shown = "; ".join(f"{item.item.title}: " + ("pending staff grading" if item.status == "pending" else
                                                  f"{item.score:g} / {item.item.points:g}") for item in items)
    return f"extra credit, not in the {result.max_score:g} points: {shown}"


def _scope(result: GradeResult) -> str:
    if result.public_only:
        return ("self-check: public cases only, no points claimed (points come from the hidden cases, which staff "
                "run)")
    return "public and hidden cases"


def _case_data(case, full: bool = True) -> dict[str, Any]:
    """A case in extra_data; `full` False: a hidden case's message withheld (its outcome alone)."""
    message = case.outcome.message()[:_MAX_CASE_TEXT] if full or not _withheld(case) else _withheld_outcome(case)
    return {"case": case.case, "visibility": case.visibility, "weight": case.weight, "passed": case.outcome.passed,
            "outcome": case.outcome.label, "reason_code": str(case.reason_code), "message": message,
            **({"component": case.component} if case.component else {})}


def _hidden_details_test(item: ItemScore, release: Release) -> dict[str, Any] | None:
    """A code item's hidden cases in full (inputs, returned values, differences, the diagnosis in full): 0
    points, [release] hidden_details' visibility; None for an item without hidden cases."""
    hidden = [case for case in item.cases if _withheld(case)]
    if not hidden:
        return None
    lines = []
    for part in item.components:
        cases = [case for case in part.cases if _withheld(case)]
        if not cases:
            continue
        if part.component.id:
            lines.append(f"{part.component.title}:")
        lines += [line for line in [part.diagnosis.summary] if line]
        lines += [_case_line(case) for case in cases]
    return {
        "name": f"{item.item.title}: the hidden cases in full (no points) [{item.item.id}]",
        "score": 0.0, "max_score": 0.0,
        "status": "passed" if all(case.outcome.passed for case in hidden) else "failed",
        "output": "\n".join(lines),
        "tags": [HIDDEN_CASE_DETAILS, item.item.id],
        "visibility": release.hidden_details,
        "extra_data": {"release": HIDDEN_CASE_DETAILS, "item": item.item.id,
                       "reasons": {part.component.id: part.diagnosis.summary for part in item.components
                                   if part.diagnosis.summary},
                       "hidden_cases": [_case_data(case) for case in hidden]},
    }


#: The training item's figures that are staff's evidence, not the student's feedback (autograder/notebook/items.py).
_STAFF_FIGURES = ("verified_how", "heldout", "heldout_images", "student_forward", "disagreements", "noise_agreement",
                  "unverified_reason", "unevaluable_reason", "not_rebuilt", "layer_notes", "replay")
#: The run's facts that concern staff alone (the sandbox, the worker's restarts, the secrets check).
_STAFF_METADATA = ("sandbox", "worker_restarts", "worker_exits", "worker_start_seconds", "secrets_check",
                   "harness_fault", "data_missing", "intake_error")


def _staff_notes_test(result: GradeResult, release: Release) -> dict[str, Any] | None:
    """What is meant for staff alone, in one 0-point test with [release] staff_notes' visibility: the training
    item's evidence figures (forward disagreements, held-out and noise agreement, the log replay), every item's
    flags, and how the grading ran (sandbox, restarts, the secrets check); None when there is nothing to say."""
    training = next((item.extra for item in result.items if item.item.id == "training"), {})
    figures = {key: training[key] for key in _STAFF_FIGURES if training.get(key) is not None}
    flags = {item.item.id: list(item.extra["flags"]) for item in result.items
             if isinstance(item.extra.get("flags"), list) and item.extra["flags"]}
    run = {key: result.metadata[key] for key in _STAFF_METADATA if key in result.metadata}
    if not (figures or flags or run):
        return None
    lines = ["For staff only: the grader's evidence and how it ran (no points; never shown to students unless "
             "[release] staff_notes says so)."]
    lines += [f"training {key.replace('_', ' ')}: {json.dumps(value, default=str)}" for key, value in figures.items()]
    lines += [f"{item_id} flags: {'; '.join(map(str, named))}" for item_id, named in flags.items()]
    lines += [f"{key.replace('_', ' ')}: {json.dumps(value, default=str)}" for key, value in run.items()]
    return {"name": "Notes for staff (no points)", "score": 0.0, "max_score": 0.0, "status": "passed",
            "output": "\n".join(lines), "tags": [STAFF_NOTES], "visibility": release.staff_notes,
            "extra_data": {"release": STAFF_NOTES, "training": figures, "item_flags": flags, "run": run}}


def _component_tests(item: ItemScore, release: Release) -> list[dict[str, Any]]:
    """One Gradescope test per component of a graded code item."""
    tests = []
    for part in item.components:
        name = f"{item.item.title}: {part.component.title} [{item.item.id}.{part.component.id}]" \
            if part.component.id else f"{item.item.title} [{item.item.id}]"
        passed = part.passed == len(part.cases) if item.status == "self-check" else part.score >= part.component.points
        tests.append({
            "name": name,
            "score": part.score,
            "max_score": part.component.points,
            "status": "passed" if passed else "failed",
            "output": _component_output(item, part, release),
            "tags": [item.item.id],
            "visibility": release.public,
            "extra_data": {
                "item": item.item.id, "component": part.component.id, "grading": str(item.status),
                "reason": part.diagnosis.before_due or _component_reason(part),
                "reason_code": str(item.code or part.reason_code),
                "patterns": list(part.diagnosis.patterns),
                "cases": [_case_data(case, full=False) for case in part.cases],
            },
        })
    return tests


def results_json(result: GradeResult, release: Release | None = None) -> dict[str, Any]:
    """The Gradescope results.json document, split by who may see what when (`release`: the rubric's [release]
    by default): the items' tests, each code item's hidden cases in full, the staff's notes."""
    release = release or release_rules()
    tests = []
    details = []
    for item in result.items:
        if item.components and item.status in ("graded", "self-check"):
            tests += _component_tests(item, release)
            details += [test for test in [_hidden_details_test(item, release)] if test]
            continue
        tests.append({
            "name": f"{item.item.title} [{item.item.id}]",
            "score": item.score,
            "max_score": item.item.points,
            "status": "passed" if item.status == "graded" and item.score >= item.item.points else "failed",
            **({"output_format": "md"} if item.item.kind == "manual" else {}),
            "output": _test_output(item),
            "tags": [item.item.id],
            "visibility": release.public,
            "extra_data": {
                **item.extra,
                **({"extra_credit": True, "counted_in_total": False} if item.item.extra_credit else {}),
                "item": item.item.id, "grading": str(item.status), "reason": item.reason,
                "reason_code": str(item.reason_code),
                "cases": [_case_data(c) for c in item.cases],
            },
        })
    for check in result.pdf_checks:
        lines = ([check.problem] if check.problem else [_pdf_section_line(check, section, state)
                                                        for section, state in check.sections.items()])
        lines += check.left_out
        tests.append({
            "name": f"{check.pdf} shows this notebook's plots (informational, no points)",
            "score": 0.0, "max_score": 0.0, "status": "passed" if check.consistent else "failed",
            "output": "\n".join(lines), "tags": ["pdf_consistency"], "visibility": release.public,
            "extra_data": {"pdf": check.pdf, "sections": check.sections, "problem": check.problem,
                           "left_out": check.left_out, "mismatch": check.mismatched,
                           "evidence": {section: evidence.data() for section, evidence in check.evidence.items()}},
        })
    summary = [f"{result.student_id}: " + ("self-check" if result.public_only else
                                            f"{result.score:g} / {result.max_score:g} points") + f" ({_scope(result)})"]
    summary += [line for line in [_extra_credit_line(result)] if line]
    summary += result.notes
    tests += details
    staff = None if result.public_only else _staff_notes_test(result, release)
    tests += [staff] if staff else []
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 2),
        "output": "\n".join(summary),
        "visibility": release.visibility,
        "stdout_visibility": release.stdout_visibility,
        "tests": tests,
        "extra_data": dict(result.metadata, student_id=result.student_id, public_only=result.public_only,
                           printed_bytes=result.printed_bytes),
    }


def _points(score: float, points: float, status: str, cases) -> str:
    if status == "self-check":
        passed = sum(1 for case in cases if case.outcome.passed)
        return f"{passed} of {len(cases)} pass (self-check, no points)"
    return f"{score:g} / {points:g}"


def _case_lines(cases, released: bool) -> list[str]:
    lines, previous = [], None
    for case in cases:
        mark = "passed" if case.outcome.passed else f"**{case.outcome.label}**"
        if _withheld(case) and not released:  # before the due date: whether it passed and how it failed, no more
            lines.append(f"- `{case.case}` (hidden): {mark}")
            previous = None
            continue
        message = case.outcome.message()
        detail = ""
        if not case.outcome.passed:
            detail = " (same as above)" if message == previous else "\n  " + message.replace("\n", "\n  ")
        previous = None if case.outcome.passed else message
        lines.append(f"- `{case.case}` ({_VISIBILITY.get(case.visibility, case.visibility)}; {case.description}): "
                     f"{mark}{detail}")
    return lines


def _same_story(part: ComponentScore) -> tuple:
    """What a component's cases say, to show components that say the same thing only once."""
    return part.diagnosis.summary, tuple((c.case, c.outcome.passed, c.outcome.message()) for c in part.cases)


def _code_item_lines(item: ItemScore, released: bool) -> list[str]:
    lines = [f"Checked: {item.item.checked}.", ""] if item.item.checked else []
    groups: list[list[ComponentScore]] = []
    for part in item.components:  # parts whose cases end alike (all "not implemented", say) are shown once
        if groups and part.component.id and _same_story(groups[-1][0]) == _same_story(part):
            groups[-1].append(part)
        else:
            groups.append([part])
    for group in groups:
        part = group[0]
        if part.component.id:
            lines += ["### " + "; ".join(f"{p.component.title}: "
                                         f"{_points(p.score, p.component.points, item.status, p.cases)}"
                                         for p in group), ""]
            if len(group) > 1 and part.passed < len(part.cases):
                lines += ["These parts fail and pass on the same cases, with the same messages:", ""]
        if part.diagnosis.summary:
            summary = part.diagnosis.summary if released else part.diagnosis.before_due
            stop = "" if summary.endswith(("?", ".")) else "."
            lines += [f"**{summary[0].upper()}{summary[1:]}{stop}**", ""]
        if part.component.id and part.passed == len(part.cases):
            lines += [f"All {len(part.cases)} {'case' if len(part.cases) == 1 else 'cases'} passed.", ""]
        else:
            lines += _case_lines(part.cases, released) + [""]
    return lines[:-1] if lines and lines[-1] == "" else lines


_WITHHELD = ("Before the due date this feedback names no hidden case's inputs: each hidden case says whether it "
             "passed and how it failed, and each part what its failing cases show. The hidden cases' inputs, your "
             "outputs and the differences are shown after the due date.")


def feedback_markdown(result: GradeResult, released: bool = False) -> str:
    """feedback.md: the table, then each item (and component) with every case and what to fix. Before the due
    date (`released` False) a hidden case says only whether it passed and how it failed, and the diagnosis names
    no hidden input, so that the hidden cases stay hidden after a first submission; `released`: everything."""
    head = (f"**Self-check** ({_scope(result)})." if result.public_only else
            f"**{result.score:g} / {result.max_score:g} points** ({_scope(result)}).")
    withheld = not released and any(_withheld(case) for item in result.items for case in item.cases)
    lines = [f"# Feedback for {result.student_id}", "", head, "", _POLICY, ""]
    lines += [_WITHHELD, ""] if withheld else []
    if result.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in result.notes] + [""]
    lines += ["| item | points | of | |", "|---|---:|---:|---|"]
    lines += [f"| {i.item.title} | {'-' if i.status == 'self-check' else f'{i.score:g}'} | {i.item.points:g} | "
              f"{'(extra credit, not in the total) ' if i.item.extra_credit else ''}{i.reason} |"
              for i in result.items]
    for item in result.items:
        lines += ["", f"## {item.item.title}: {_points(item.score, item.item.points, item.status, item.cases)}", ""]
        if item.status not in ("graded", "self-check") or not item.cases:
            lines.append(item.note)
            if item.item.kind == "manual" and item.extra.get("answer"):
                lines += ["", "Your answer, as staff will read it:", ""]
                lines += ["> " + line for line in item.extra["answer"].splitlines()]
            if item.item.extra_credit and item.extra.get("work"):
                lines += ["", "Your extra-credit work, as staff will read it (its figures are in the PDF):", ""]
                lines += ["> " + line for line in item.extra["work"].splitlines()]
            if item.extra.get("mismatch"):
                allowed = item.extra.get("mismatch_allowed")
                beyond = (f" by more than {allowed:.3f}, more than rounding or chance over the images each was "
                          f"measured on explain" if isinstance(allowed, (int, float)) else "")
                lines += ["", f"**The accuracy your log reports ({item.extra['reported']:.4f}) differs from the "
                              f"accuracy of your saved weights ({item.extra['accuracy']:.4f}){beyond}.** "
                              f"Staff are told."]
            continue
        lines += _code_item_lines(item, released)
    for check in result.pdf_checks:
        lines += ["", f"## Your PDF {check.pdf} against your notebook (no points)", ""]
        lines += [f"- {check.problem}"] if check.problem else \
            [f"- {_pdf_section_line(check, section, state, bold=True)}" for section, state in check.sections.items()]
        lines += [f"- {note}" for note in check.left_out]
        if check.mismatched:
            lines += ["", "A figure in your PDF is not the one your notebook shows. Staff are told, and see both "
                          "side by side."]
    if result.printed_bytes and withheld:  # printed while the hidden cases ran: it may show their inputs
        lines += ["", "## What your code printed", "",
                  f"{result.printed_bytes} bytes, shown after the due date (printed while the hidden cases ran, "
                  "it may show their inputs). The handout asks to remove debug prints."]
    elif result.printed_bytes:
        shown = len(result.printed.encode("utf-8", "replace"))
        lines += ["", "## What your code printed", "",
                  f"{result.printed_bytes} bytes"
                  + (f", the first {shown} shown" if shown < result.printed_bytes else "")
                  + ". The handout asks to remove debug prints.", "", "```", result.printed.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _pdf_section_line(check, section: str, state: str, bold: bool = False) -> str:
    """One section of a PDF check: its outcome and the evidence in words (which image, the score, how found)."""
    evidence = check.evidence.get(section)
    note = f": {evidence.note}" if evidence is not None and evidence.note else ""
    return f"{section}: {f'**{state}**' if bold else state}{note}"


def terminal_table(result: GradeResult) -> str:
    """A fixed-width table for the terminal."""
    width = max(len(item.item.id) for item in result.items)
    rows = [f"{'item':{width}s}  {'points':>6s}  {'max':>4s}  reason"]
    for item in result.items:
        points = f"{'-':>6s}" if item.status == "self-check" else f"{item.score:6.2f}"
        rows.append(f"{item.item.id:{width}s}  {points}  {item.item.points:4g}  {item.reason}")
    total = f"{'-':>6s}" if result.public_only else f"{result.score:6.2f}"
    rows.append(f"{'total':{width}s}  {total}  {result.max_score:4g}  {_scope(result)}")
    return "\n".join(rows)


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write `path` so that it appears complete or not at all (a temporary file, then a rename): a batch
    rewrites its reports while it runs, and may be stopped at any moment."""
    temporary = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        temporary.write_bytes(text)
    else:
        temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_reports(result: GradeResult, out_dir: Path, release: Release | None = None,
                  released: bool = False) -> dict[str, Path]:
    """Write results.json, feedback.md and feedback_released.md atomically (each file appears complete or not at
    all). feedback.md is what a student may read before the due date (no hidden input), unless `released` (after
    the due date: `--release`); feedback_released.md is always the full one, for staff and for later."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    full = feedback_markdown(result, released=True)
    for name, text in (("results.json", json.dumps(results_json(result, release), indent=1) + "\n"),
                       (FEEDBACK, full if released else feedback_markdown(result)),
                       (FEEDBACK_RELEASED, full)):
        write_atomically(out_dir / name, text)
        written[name] = out_dir / name
    return written

"""Reports of one graded submission: results.json, feedback.md and a terminal table.

results.json follows Gradescope's schema (top-level score, execution_time, output, tests,
extra_data; per test name, score, max_score, status, output, tags, visibility, extra_data);
each test is one rubric item, or one component of an item that has several (conv backward's
dimg, dW, db), and its `tags` hold the item id: the max_scores of an item's tests add up to the
item's points. A component's extra_data carries its diagnosis and `patterns`, the codes of the
failure patterns it names (autograder/diagnosis.py), which the class report counts. feedback.md
says, per item and component, what was checked, what separates the failing cases from the
passing ones, and per failing case what went wrong in words a student can act on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autograder.model import ComponentScore, GradeResult, ItemScore

_MAX_CASE_TEXT = 1500


_VISIBILITY = {"public": "public, no points", "hidden": "hidden", "check": "check"}

_POLICY = ("Points come from the hidden cases and the fixed checks. The notebook's public case of each item is "
           "run and shown (marked \"public, no points\") but earns nothing by itself: its answer is printed in "
           "the notebook.")


def _case_line(case) -> str:
    text = case.outcome.message()
    if len(text) > _MAX_CASE_TEXT:
        text = text[:_MAX_CASE_TEXT] + " …(cut)"
    return f"{case.case} ({_VISIBILITY.get(case.visibility, case.visibility)}; {case.description}): {text}"


def _component_output(item: ItemScore, part: ComponentScore) -> str:
    lines = [f"Checked: {item.item.checked}" if item.item.checked else ""]
    if part.component.id:
        lines.append(f"This test: {part.component.title}, {part.component.points:g} of the item's "
                     f"{item.item.points:g} points.")
    lines.append(part.diagnosis.summary or _component_reason(part))
    lines += [_case_line(case) for case in part.cases]
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


def _case_data(case) -> dict[str, Any]:
    return {"case": case.case, "visibility": case.visibility, "weight": case.weight, "passed": case.outcome.passed,
            "outcome": case.outcome.label, "reason_code": str(case.reason_code),
            "message": case.outcome.message()[:_MAX_CASE_TEXT],
            **({"component": case.component} if case.component else {})}


def _component_tests(item: ItemScore) -> list[dict[str, Any]]:
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
            "output": _component_output(item, part),
            "tags": [item.item.id],
            "visibility": "visible",
            "extra_data": {
                "item": item.item.id, "component": part.component.id, "grading": str(item.status),
                "reason": part.diagnosis.summary or _component_reason(part),
                "reason_code": str(item.code or part.reason_code),
                "patterns": list(part.diagnosis.patterns),
                "cases": [_case_data(case) for case in part.cases],
            },
        })
    return tests


def results_json(result: GradeResult) -> dict[str, Any]:
    """The Gradescope results.json document."""
    tests = []
    for item in result.items:
        if item.components and item.status in ("graded", "self-check"):
            tests += _component_tests(item)
            continue
        tests.append({
            "name": f"{item.item.title} [{item.item.id}]",
            "score": item.score,
            "max_score": item.item.points,
            "status": "passed" if item.status == "graded" and item.score >= item.item.points else "failed",
            **({"output_format": "md"} if item.item.kind == "manual" else {}),
            "output": _test_output(item),
            "tags": [item.item.id],
            "visibility": "visible",
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
            "output": "\n".join(lines), "tags": ["pdf_consistency"], "visibility": "visible",
            "extra_data": {"pdf": check.pdf, "sections": check.sections, "problem": check.problem,
                           "left_out": check.left_out, "mismatch": check.mismatched,
                           "evidence": {section: evidence.data() for section, evidence in check.evidence.items()}},
        })
    summary = [f"{result.student_id}: " + ("self-check" if result.public_only else
                                            f"{result.score:g} / {result.max_score:g} points") + f" ({_scope(result)})"]
    summary += [line for line in [_extra_credit_line(result)] if line]
    summary += result.notes
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 2),
        "output": "\n".join(summary),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": dict(result.metadata, student_id=result.student_id, public_only=result.public_only,
                           printed_bytes=result.printed_bytes),
    }


def _points(score: float, points: float, status: str, cases) -> str:
    if status == "self-check":
        passed = sum(1 for case in cases if case.outcome.passed)
        return f"{passed} of {len(cases)} pass (self-check, no points)"
    return f"{score:g} / {points:g}"


def _case_lines(cases) -> list[str]:
    lines, previous = [], None
    for case in cases:
        mark = "passed" if case.outcome.passed else f"**{case.outcome.label}**"
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


def _code_item_lines(item: ItemScore) -> list[str]:
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
            summary = part.diagnosis.summary
            stop = "" if summary.endswith(("?", ".")) else "."
            lines += [f"**{summary[0].upper()}{summary[1:]}{stop}**", ""]
        if part.component.id and part.passed == len(part.cases):
            lines += [f"All {len(part.cases)} {'case' if len(part.cases) == 1 else 'cases'} passed.", ""]
        else:
            lines += _case_lines(part.cases) + [""]
    return lines[:-1] if lines and lines[-1] == "" else lines


def feedback_markdown(result: GradeResult) -> str:
    """feedback.md: the table, then each item (and component) with every case and what to fix."""
    head = (f"**Self-check** ({_scope(result)})." if result.public_only else
            f"**{result.score:g} / {result.max_score:g} points** ({_scope(result)}).")
    lines = [f"# Feedback for {result.student_id}", "", head, "", _POLICY, ""]
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
        lines += _code_item_lines(item)
    for check in result.pdf_checks:
        lines += ["", f"## Your PDF {check.pdf} against your notebook (no points)", ""]
        lines += [f"- {check.problem}"] if check.problem else \
            [f"- {_pdf_section_line(check, section, state, bold=True)}" for section, state in check.sections.items()]
        lines += [f"- {note}" for note in check.left_out]
        if check.mismatched:
            lines += ["", "A figure in your PDF is not the one your notebook shows. Staff are told, and see both "
                          "side by side."]
    if result.printed_bytes:
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


def write_reports(result: GradeResult, out_dir: Path) -> dict[str, Path]:
    """Write results.json and feedback.md atomically (each file appears complete or not at all)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in (("results.json", json.dumps(results_json(result), indent=1) + "\n"),
                       ("feedback.md", feedback_markdown(result))):
        write_atomically(out_dir / name, text)
        written[name] = out_dir / name
    return written

"""Reports of one graded submission: results.json, feedback.md and a terminal table.

results.json follows Gradescope's schema (top-level score, execution_time, output, tests,
extra_data; per test name, score, max_score, status, output, tags, visibility, extra_data);
each test is one rubric item and its `tags` hold the item id. feedback.md says, per item,
what was checked and, per failing case, what went wrong in words a student can act on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.score import ItemScore, round_points

_MAX_CASE_TEXT = 1500


@dataclass
class GradeResult:
    """Everything known about one graded submission."""

    student_id: str
    items: list[ItemScore]
    execution_time: float
    public_only: bool = False
    notes: list[str] = field(default_factory=list)
    printed: str = ""
    printed_bytes: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    pdf_checks: list = field(default_factory=list)  # pdf_check.Consistency, one per PDF handed in

    @property
    def score(self) -> float:
        return round_points(sum(item.score for item in self.items))

    @property
    def max_score(self) -> float:
        return round_points(sum(item.item.points for item in self.items))


def _case_line(case) -> str:
    text = case.outcome.message()
    if len(text) > _MAX_CASE_TEXT:
        text = text[:_MAX_CASE_TEXT] + " …(cut)"
    return f"{case.case} ({case.visibility}; {case.description}): {text}"


def _test_output(item: ItemScore) -> str:
    if item.item.kind == "manual" and item.extra.get("answer"):
        return f"{item.note}\n\nThe answer:\n\n{item.extra['answer']}"
    if item.status != "graded" or not item.cases:
        return item.note
    lines = [f"Checked: {item.item.checked}" if item.item.checked else "", item.reason]
    lines += [_case_line(case) for case in item.cases]
    return "\n".join(line for line in lines if line)


def _scope(result: GradeResult) -> str:
    if result.public_only:
        return "public cases only (hidden cases not run: this is a self-check, not a grade)"
    return "public and hidden cases"


def results_json(result: GradeResult) -> dict[str, Any]:
    """The Gradescope results.json document."""
    tests = []
    for item in result.items:
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
                "item": item.item.id, "grading": item.status, "reason": item.reason,
                "cases": [{"case": c.case, "visibility": c.visibility, "weight": c.weight, "passed": c.outcome.passed,
                           "outcome": c.outcome.label, "message": c.outcome.message()[:_MAX_CASE_TEXT]}
                          for c in item.cases],
            },
        })
    for check in result.pdf_checks:
        lines = [check.problem] if check.problem else [f"{section}: {state}" for section, state in check.sections.items()]
        tests.append({
            "name": f"{check.pdf} shows this notebook's plots (informational, no points)",
            "score": 0.0, "max_score": 0.0, "status": "passed" if check.consistent else "failed",
            "output": "\n".join(lines), "tags": ["pdf_consistency"], "visibility": "visible",
            "extra_data": {"pdf": check.pdf, "sections": check.sections, "problem": check.problem},
        })
    summary = [f"{result.student_id}: {result.score:g} / {result.max_score:g} points ({_scope(result)})"]
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


def feedback_markdown(result: GradeResult) -> str:
    """feedback.md: the table, then each item with every case and what to fix."""
    lines = [f"# Feedback for {result.student_id}", "",
             f"**{result.score:g} / {result.max_score:g} points** ({_scope(result)}).", ""]
    if result.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in result.notes] + [""]
    lines += ["| item | points | of | |", "|---|---:|---:|---|"]
    lines += [f"| {i.item.title} | {i.score:g} | {i.item.points:g} | {i.reason} |" for i in result.items]
    for item in result.items:
        lines += ["", f"## {item.item.title}: {item.score:g} / {item.item.points:g}", ""]
        if item.status != "graded" or not item.cases:
            lines.append(item.note)
            if item.item.kind == "manual" and item.extra.get("answer"):
                lines += ["", "Your answer, as staff will read it:", ""]
                lines += ["> " + line for line in item.extra["answer"].splitlines()]
            if item.extra.get("mismatch"):
                lines += ["", f"**The accuracy your log reports ({item.extra['reported']:.4f}) differs from the "
                              f"accuracy of your saved weights ({item.extra['accuracy']:.4f}).** Staff are told."]
            continue
        if item.item.checked:
            lines += [f"Checked: {item.item.checked}.", ""]
        previous = None
        for case in item.cases:
            mark = "passed" if case.outcome.passed else f"**{case.outcome.label}**"
            message = case.outcome.message()
            detail = ""
            if not case.outcome.passed:
                detail = " (same as above)" if message == previous else "\n  " + message.replace("\n", "\n  ")
            previous = None if case.outcome.passed else message
            lines.append(f"- `{case.case}` ({case.visibility}; {case.description}): {mark}{detail}")
    for check in result.pdf_checks:
        lines += ["", f"## Your PDF {check.pdf} against your notebook (no points)", ""]
        lines += [f"- {check.problem}"] if check.problem else \
            [f"- {section}: **{state}**" for section, state in check.sections.items()]
    if result.printed_bytes:
        shown = len(result.printed.encode("utf-8", "replace"))
        lines += ["", "## What your code printed", "",
                  f"{result.printed_bytes} bytes" + (f", the first {shown} shown" if shown < result.printed_bytes else "")
                  + ". The handout asks to remove debug prints.", "", "```", result.printed.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def terminal_table(result: GradeResult) -> str:
    """A fixed-width table for the terminal."""
    width = max(len(item.item.id) for item in result.items)
    rows = [f"{'item':{width}s}  {'points':>6s}  {'max':>4s}  reason"]
    for item in result.items:
        rows.append(f"{item.item.id:{width}s}  {item.score:6.2f}  {item.item.points:4g}  {item.reason}")
    rows.append(f"{'total':{width}s}  {result.score:6.2f}  {result.max_score:4g}  {_scope(result)}")
    return "\n".join(rows)


def write_atomically(path: Path, text: str) -> None:
    """Write `path` so that it appears complete or not at all (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
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

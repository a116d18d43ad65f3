"""Merging staff's manual scores (the inline answer, or any override) into graded results.

SCORES.csv has a header `student_id,item,points,comment`. Each row sets that item's score in
GRADED_DIR/<student_id>/results.json (status "passed" at full points), adds the comment to
the item's output, recomputes the total, and records the merge in extra_data. A bad row is
reported with its line number and skipped; the others are merged.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from autograder.reports.results import write_atomically

REQUIRED = ("student_id", "item", "points")


def merge_manual(scores_csv: Path, graded_dir: Path) -> tuple[int, list[str]]:
    """Merge every valid row; returns how many were merged and a message per rejected row."""
    problems: list[str] = []
    merged = 0
    try:
        handle = open(scores_csv, newline="", encoding="utf-8-sig")
    except OSError as exc:
        return 0, [f"{scores_csv}: cannot be read ({exc.strerror})"]
    with handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED if column not in (reader.fieldnames or [])]
        if missing:
            return 0, [f"{scores_csv}: the header lacks {', '.join(missing)} (expected student_id,item,points,comment)"]
        for row in reader:
            where = f"{scores_csv.name}:{reader.line_num}"
            student, item_id = (row.get("student_id") or "").strip(), (row.get("item") or "").strip()
            results = graded_dir / student / "results.json"
            if not student or not results.is_file():
                problems.append(f"{where}: no graded results for student {student!r} in {graded_dir}")
                continue
            document = json.loads(results.read_text(encoding="utf-8"))
            test = next((t for t in document["tests"] if item_id in t.get("tags", [])), None)
            if test is None:
                problems.append(f"{where}: no item {item_id!r} in {results}")
                continue
            try:
                points = float(row["points"])
            except (TypeError, ValueError):
                problems.append(f"{where}: points {row.get('points')!r} is not a number")
                continue
            if not 0 <= points <= test["max_score"]:
                problems.append(f"{where}: {points:g} points is outside 0..{test['max_score']:g} for {item_id}")
                continue
            comment = (row.get("comment") or "").strip()
            test["score"] = points
            test["status"] = "passed" if points >= test["max_score"] else "failed"
            test["output"] = f"Graded by staff: {points:g} / {test['max_score']:g}" + \
                (f". {comment}" if comment else "") + "\n\n" + test["output"]
            test.setdefault("extra_data", {}).update(grading="manual", staff_points=points, staff_comment=comment)
            document["score"] = round(sum(t["score"] for t in document["tests"]), 2)
            write_atomically(results, json.dumps(document, indent=1) + "\n")
            merged += 1
    return merged, problems

"""From case outcomes to points: the policy, in one place.

An item's points are spread over its cases in proportion to their weights (rubric.toml): a
case that passes earns its share, one that fails earns nothing. With --public-only the share
is taken over the public cases alone, and the result says so. Items this run cannot grade
are listed with 0 points and a reason, never left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from autograder.checks.plugin import CaseResult
from autograder.rubric import Item, Rubric


@dataclass(frozen=True)
class ItemScore:
    """One rubric item's points and why."""

    item: Item
    score: float
    cases: tuple[CaseResult, ...]
    status: str  # "graded", "pending" (waits for staff) or "not graded"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # figures for results.json's extra_data

    @property
    def reason(self) -> str:
        """One line for tables: passed counts, or the most common failure."""
        if self.status != "graded" or not self.cases:
            return self.note
        passed = sum(1 for case in self.cases if case.outcome.passed)
        if passed == len(self.cases):
            return f"all {len(self.cases)} cases passed"
        failures = Counter(case.outcome.label for case in self.cases if not case.outcome.passed)
        label, count = failures.most_common(1)[0]
        return f"{passed}/{len(self.cases)} cases passed; {count} {label}"


def round_points(value: float) -> float:
    """Points to two decimals: stable in JSON, fair to a hundredth of a point."""
    return round(value + 0.0, 2)


def score_item(item: Item, cases: list[CaseResult]) -> ItemScore:
    """Points of one code item from its cases."""
    total = sum(case.weight for case in cases)
    if not cases or total <= 0:
        return ItemScore(item, 0.0, tuple(cases), "not graded", "no cases were run")
    earned = sum(case.weight for case in cases if case.outcome.passed)
    return ItemScore(item, round_points(item.points * earned / total), tuple(cases), "graded")


def score_submission(rubric: Rubric, results: list[CaseResult],
                     notebook_items: dict[str, ItemScore] | None = None, missing_reason: str = "") -> list[ItemScore]:
    """Every rubric item, in order, with its points; notebook items come scored from notebook_items.py."""
    scores = []
    for item in rubric.items:
        if item.kind == "code":
            scores.append(score_item(item, [r for r in results if r.item == item.id]))
        elif notebook_items and item.id in notebook_items:
            scores.append(notebook_items[item.id])
        else:
            scores.append(ItemScore(item, 0.0, (), "not graded", missing_reason or "the notebook was not read"))
    return scores

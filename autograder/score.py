"""From case outcomes to points: the policy, in one place.

An item's points are split over its components (rubric.toml: conv backward's dimg, dW and db;
TestCNN's layers, initialisation, scores, loss and gradients; one component holding all the
points for the other items). A component's points are spread over its cases in proportion to
their weights: a case that passes earns its share, one that fails earns nothing. The public
cases weigh 0 (their answers are printed in the notebook), so points come from the hidden cases
and the fixed checks. With --public-only (the self-check) nothing claims points: each item says
which public cases and checks pass. Items this run cannot grade are listed with 0 points and a
reason, never left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from autograder.checks.plugin import CaseResult
from autograder.attributes import SIDE_TEXT
from autograder.diagnosis import Diagnosis, diagnose, split_code
from autograder.rubric import Component, Item, Rubric


@dataclass(frozen=True)
class ComponentScore:
    """One component's points, its cases and what they show together."""

    component: Component
    score: float
    cases: tuple[CaseResult, ...]
    diagnosis: Diagnosis = Diagnosis()

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.outcome.passed)


@dataclass(frozen=True)
class ItemScore:
    """One rubric item's points and why."""

    item: Item
    score: float
    cases: tuple[CaseResult, ...]  # every component's cases, in report order
    status: str  # "graded", "self-check" (public cases only, no points), "pending" (staff) or "not graded"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # figures for results.json's extra_data
    components: tuple[ComponentScore, ...] = ()

    @property
    def reason(self) -> str:
        """One line for tables: passed counts, or what fails where."""
        if self.status not in ("graded", "self-check") or not self.cases:
            return self.note
        prefix = "self-check, no points: " if self.status == "self-check" else ""
        if all(case.outcome.passed for case in self.cases):
            count = len({case.case for case in self.cases})
            return f"{prefix}{'its one case' if count == 1 else f'all {count} cases'} passed"
        found: dict[str, list[str]] = {}  # what failed -> the components it describes
        for part in self.components:
            if part.passed == len(part.cases):
                continue
            failures = Counter(case.outcome.label for case in part.cases if not case.outcome.passed)
            label, count = failures.most_common(1)[0]
            what = f"{count} {label}"
            if len(part.diagnosis.patterns) == 1:
                what += f", exactly those with {SIDE_TEXT[split_code(part.diagnosis.patterns[0])[2]]}"
            found.setdefault(f"{part.passed}/{len(part.cases)} passed; {what}", []).append(part.component.id)
        return prefix + "; ".join(f"{', '.join(ids)}: {text}" if any(ids) else text for text, ids in found.items())


def round_points(value: float) -> float:
    """Points to two decimals: stable in JSON, fair to a hundredth of a point."""
    return round(value + 0.0, 2)


def score_component(item: Item, component: Component, cases: list[CaseResult], public_only: bool) -> ComponentScore:
    """Points of one component from its cases (0 in a self-check: public cases claim none)."""
    cases_seen, diagnosis = diagnose(item.id, component.id, cases)
    total = sum(case.weight for case in cases_seen)
    earned = sum(case.weight for case in cases_seen if case.outcome.passed)
    score = 0.0 if public_only or total <= 0 else round_points(component.points * earned / total)
    return ComponentScore(component, score, cases_seen, diagnosis)


def score_item(item: Item, cases: list[CaseResult], public_only: bool = False) -> ItemScore:
    """Points of one code item from its cases, component by component."""
    if not cases:
        return ItemScore(item, 0.0, (), "not graded", "no cases were run")
    parts = tuple(score_component(item, component, [c for c in cases if c.component == component.id], public_only)
                  for component in item.components)
    order = {(case.case, case.component): index for index, case in enumerate(cases)}
    ordered = tuple(sorted((case for part in parts for case in part.cases), key=lambda c: order[(c.case, c.component)]))
    if public_only:
        return ItemScore(item, 0.0, ordered, "self-check", components=parts)
    weights = sum(case.weight for case in ordered)
    if weights <= 0:
        return ItemScore(item, 0.0, ordered, "not graded", "no hidden cases were run", components=parts)
    return ItemScore(item, round_points(sum(part.score for part in parts)), ordered, "graded", components=parts)


def score_submission(rubric: Rubric, results: list[CaseResult],
                     notebook_items: dict[str, ItemScore] | None = None, missing_reason: str = "",
                     public_only: bool = False) -> list[ItemScore]:
    """Every rubric item, in order, with its points; notebook items come scored from notebook_items.py."""
    scores = []
    for item in rubric.items:
        if item.kind == "code":
            scores.append(score_item(item, [r for r in results if r.item == item.id], public_only))
        elif notebook_items and item.id in notebook_items:
            scores.append(notebook_items[item.id])
        else:
            scores.append(ItemScore(item, 0.0, (), "not graded", missing_reason or "the notebook was not read"))
    return scores

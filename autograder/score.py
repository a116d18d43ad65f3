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

from dataclasses import replace

from autograder.diagnosis import diagnose
from autograder.model import CaseResult, ComponentScore, ItemScore, ItemStatus, ReasonCode
from autograder.rubric import Component, Item, Rubric


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
        return ItemScore(item, 0.0, (), ItemStatus.NOT_GRADED, "no cases were run", code=ReasonCode.NOT_RUN)
    parts = tuple(score_component(item, component, [c for c in cases if c.component == component.id], public_only)
                  for component in item.components)
    order = {(case.case, case.component): index for index, case in enumerate(cases)}
    ordered = tuple(sorted((case for part in parts for case in part.cases), key=lambda c: order[(c.case, c.component)]))
    if public_only:
        return ItemScore(item, 0.0, ordered, ItemStatus.SELF_CHECK, components=parts)
    weights = sum(case.weight for case in ordered)
    if weights <= 0:
        return ItemScore(item, 0.0, ordered, ItemStatus.NOT_GRADED, "no hidden cases were run", components=parts,
                         code=ReasonCode.NOT_RUN)
    return ItemScore(item, round_points(sum(part.score for part in parts)), ordered, ItemStatus.GRADED,
                     components=parts)


def score_submission(rubric: Rubric, results: list[CaseResult],
                     notebook_items: dict[str, ItemScore] | None = None, missing_reason: str = "",
                     public_only: bool = False, missing_code: ReasonCode = ReasonCode.NOT_RUN,
                     code_override: ReasonCode | None = None) -> list[ItemScore]:
    """Every rubric item, in order, with its points; notebook items come scored from notebook_items.py.
    Items without a score get `missing_reason` and `missing_code`; `code_override` is every code
    item's code when one cause ended all their cases (an unreadable zip, a harness fault)."""
    scores = []
    for item in (*rubric.items, *rubric.extra_items):  # the edition's extra credit last, outside the total
        if item.kind == "code":
            score = score_item(item, [r for r in results if r.item == item.id], public_only)
            scores.append(replace(score, code=code_override) if code_override is not None else score)
        elif notebook_items and item.id in notebook_items:
            scores.append(notebook_items[item.id])
        else:
            scores.append(ItemScore(item, 0.0, (), ItemStatus.NOT_GRADED,
                                    missing_reason or "the notebook was not read", code=missing_code))
    return scores

"""The rubric as typed, read-only data, loaded from rubric.toml.

Code asks this module for points, weights, tolerances and thresholds instead of keeping its
own constants, so that one file says how the assignment is graded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

RUBRIC_PATH = Path(__file__).with_name("rubric.toml")


class RubricError(ValueError):
    """The rubric file is missing a field or holds an inconsistent value."""


@dataclass(frozen=True)
class Item:
    """One rubric line: what is graded, how many points, and how its cases are weighted."""

    id: str
    title: str
    points: float
    kind: str  # "code", "notebook" or "manual"
    public_weight: float = 0.0
    hidden_weight: float = 0.0
    checked: str = ""  # what the checks look at, in words, for feedback


@dataclass(frozen=True)
class Rubric:
    """The whole rubric; `raw` keeps the parsed file for sections read by one module only."""

    title: str
    items: tuple[Item, ...]
    tolerances: Mapping[str, float]
    training: Mapping[str, Any]
    fixtures: Mapping[str, Any]
    raw: Mapping[str, Any]

    @property
    def total(self) -> float:
        return sum(item.points for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"no rubric item {item_id!r}")

    def code_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.kind == "code")


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise RubricError(f"{where}: missing '{key}'")
    return table[key]


def parse_rubric(data: Mapping[str, Any], source: str = "rubric") -> Rubric:
    """Validate a parsed rubric so that a typo fails at start-up, not halfway through a batch."""
    items = []
    for index, table in enumerate(_require(data, "items", source)):
        where = f"{source}: items[{index}]"
        kind = _require(table, "kind", where)
        if kind not in ("code", "notebook", "manual"):
            raise RubricError(f"{where}: kind must be code, notebook or manual, not {kind!r}")
        item = Item(
            id=_require(table, "id", where),
            title=_require(table, "title", where),
            points=float(_require(table, "points", where)),
            kind=kind,
            public_weight=float(table.get("public_weight", 0.0)),
            hidden_weight=float(table.get("hidden_weight", 0.0)),
            checked=str(table.get("checked", "")),
        )
        if item.points < 0:
            raise RubricError(f"{where}: points must not be negative")
        if kind == "code" and item.public_weight + item.hidden_weight <= 0:
            raise RubricError(f"{where}: a code item needs a positive public_weight or hidden_weight")
        items.append(item)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise RubricError(f"{source}: item ids repeat: {ids}")
    fixtures = _require(data, "fixtures", source)
    for item in items:
        if item.kind == "code" and item.id not in _require(fixtures, "hidden_cases", f"{source}: fixtures"):
            raise RubricError(f"{source}: fixtures.hidden_cases has no count for code item {item.id!r}")
    training = dict(_require(data, "training", source))
    policy = training.get("unverified_policy", "reported")
    training_points = next((item.points for item in items if item.id == "training"), 0.0)
    if not (policy in ("reported", "pending") or (isinstance(policy, (int, float)) and not isinstance(policy, bool)
                                                  and 0 <= policy <= training_points)):
        raise RubricError(f"{source}: training.unverified_policy must be \"reported\", \"pending\" or a number of "
                          f"points from 0 to {training_points:g}, not {policy!r}")
    return Rubric(
        title=_require(_require(data, "assignment", source), "title", f"{source}: assignment"),
        items=tuple(items),
        tolerances=dict(_require(data, "tolerances", source)),
        training=training,
        fixtures=dict(fixtures),
        raw=data,
    )


@lru_cache(maxsize=None)
def load_rubric(path: Path = RUBRIC_PATH) -> Rubric:
    """The rubric every command uses; read once per process."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise RubricError(f"{path}: rubric file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from None
    return parse_rubric(data, source=str(path.name))

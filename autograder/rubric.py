"""The rubric as typed, read-only data, loaded from rubric.toml.

Code asks this module for points, weights, tolerances and thresholds instead of keeping its
own constants, so that one file says how the assignment is graded.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

RUBRIC_PATH = Path(__file__).with_name("rubric.toml")


class RubricError(ValueError):
    """The rubric file is missing a field or holds an inconsistent value."""


@dataclass(frozen=True)
class Component:
    """A part of a code item scored on its own (conv backward's dimg, TestCNN's loss, ...).

    An item without components in the rubric has one, with the empty id, holding all its points:
    partial credit is then by case only."""

    id: str
    title: str
    points: float
    check: bool = False  # judged once by a fixed check (TestCNN's layers), not on each case


@dataclass(frozen=True)
class Item:
    """One rubric line: what is graded, how many points, and how its cases are weighted."""

    id: str
    title: str
    points: float
    kind: str  # "code", "notebook" or "manual"
    public_weight: float = 0.0
    hidden_weight: float = 0.0
    checked: str = ""  # what the checks look at, in words, for feedback (rubric values filled in)
    components: tuple[Component, ...] = ()

    def component(self, component_id: str) -> Component:
        for component in self.components:
            if component.id == component_id:
                return component
        raise KeyError(f"item {self.id!r} has no component {component_id!r}")


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

    def hidden_cases_text(self) -> str:
        """What the hidden cases contain, in words, from [fixtures]: so students can test for it."""
        ranges = self.fixtures
        span = lambda key: _span(ranges[key])  # noqa: E731
        return (f"square and non-square images (height {span('height')}, width {span('width')}), batches of "
                f"{span('batch')} images with {span('channels')} channels, kernels of size {span('kernel')} with "
                f"{span('filters')} filters, strides {span('stride')} (including strides that do not divide the "
                f"input), padding {span('padding')} (padding 0 included), and max-pools of size "
                f"{span('pool_size')} with overlapping (stride < pool size) and disjoint windows")


def _span(bounds) -> str:
    low, high = bounds
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_]+)\}")


def _fill(text: str, data: Mapping[str, Any], where: str) -> str:
    """`text` with every {section.key} replaced by the rubric's value; an unknown key is an error."""
    def value(match: re.Match) -> str:
        section, key = match.groups()
        table = data.get(section)
        if not isinstance(table, Mapping) or key not in table:
            raise RubricError(f"{where}: {match.group(0)} names no rubric value")
        found = table[key]
        if isinstance(found, (list, tuple)) and len(found) == 2:
            return _span(found)
        return f"{found:g}" if isinstance(found, (int, float)) else str(found)
    return _PLACEHOLDER.sub(value, text)


def _components(table: Mapping[str, Any], points: float, kind: str, title: str, where: str) -> tuple[Component, ...]:
    listed = table.get("components")
    if listed is None:
        return (Component("", title, points),) if kind == "code" else ()
    if kind != "code":
        raise RubricError(f"{where}: only code items have components")
    components = []
    for index, entry in enumerate(listed):
        at = f"{where}.components[{index}]"
        component = Component(str(_require(entry, "id", at)), str(_require(entry, "title", at)),
                              float(_require(entry, "points", at)), bool(entry.get("check", False)))
        if not component.id or component.points < 0:
            raise RubricError(f"{at}: needs a non-empty id and points of at least 0")
        components.append(component)
    ids = [component.id for component in components]
    if not components or len(set(ids)) != len(ids):
        raise RubricError(f"{where}: components must be listed once each, got {ids}")
    if abs(sum(component.points for component in components) - points) > 1e-9:
        raise RubricError(f"{where}: the components' points add up to "
                          f"{sum(c.points for c in components):g}, not the item's {points:g}")
    return tuple(components)


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
        points = float(_require(table, "points", where))
        title = _require(table, "title", where)
        item = Item(
            id=_require(table, "id", where),
            title=title,
            points=points,
            kind=kind,
            public_weight=float(table.get("public_weight", 0.0)),
            hidden_weight=float(table.get("hidden_weight", 0.0)),
            checked=_fill(str(table.get("checked", "")), data, where),
            components=_components(table, points, kind, title, where),
        )
        if item.points < 0:
            raise RubricError(f"{where}: points must not be negative")
        if kind == "code" and (item.hidden_weight <= 0 or item.public_weight < 0):
            raise RubricError(f"{where}: a code item needs a positive hidden_weight (and a public_weight of at "
                              f"least 0): its points come from the hidden cases")
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

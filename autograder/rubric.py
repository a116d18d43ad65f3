"""The rubric as typed, read-only data, loaded from rubric.toml.

Code asks this module for points, weights, tolerances and thresholds instead of keeping its
own constants, so that one file says how the assignment is graded.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Union, get_type_hints

from autograder import UserInputError
from autograder.edition import Edition, default_edition, editions

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

RUBRIC_PATH = Path(__file__).with_name("rubric.toml")


class RubricError(UserInputError):
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
    # points outside the assignment's total (an edition's extra credit): shown, graded by staff, never
    # counted in the total or its maximum
    extra_credit: bool = False

    def component(self, component_id: str) -> Component:
        for component in self.components:
            if component.id == component_id:
                return component
        raise KeyError(f"item {self.id!r} has no component {component_id!r}")


class Section:
    """A rubric table as a frozen dataclass: attributes (`rubric.worker.call_timeout`), and read-only
    mapping access (`rubric.worker["call_timeout"]`, `dict(rubric.worker)`) for code that takes a table."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        return list(self.__dataclass_fields__)

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.__dataclass_fields__

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self) -> list[tuple[str, Any]]:
        return [(key, self[key]) for key in self.keys()]


Pair = tuple[int, int]
Policy = Union[str, float]


@dataclass(frozen=True)
class Assignment(Section):
    """[assignment]: the handout's title and the names of the files a submission holds."""

    title: str
    notebook: str  # the notebook students hand in
    pdf: str  # the PDF the assignment asks for (and the staff's copy we build)
    weights_file: str  # where the notebook saves the trained network's parameters (from the edition)


@dataclass(frozen=True)
class Tolerances(Section):
    """[tolerances]: how close an answer must be, and how fixtures are checked when written."""

    forward: float
    gradient: float
    numeric_check: float
    numeric_step: float
    numeric_order: int
    verify_fraction: float
    near_zero: float
    init_std_fraction: float
    loss_abs: float


@dataclass(frozen=True)
class CodeChecks(Section):
    """[code_checks] (issue 20, mechanism A): TestCNN's seeded initial weights and the numerical-backward
    probes, checked in the parent."""

    init_values: float
    init_stream_draws: int
    numerical_probe_offset: float
    numerical_probe_spacing: float
    numerical_min_perturbed_forwards: int


@dataclass(frozen=True)
class Training(Section):
    """[training]: thresholds and budgets of the training item's verification."""

    threshold: float  # the edition's target (autograder/editions/*.toml), not written in rubric.toml
    chance: float  # the edition's chance level, likewise
    mismatch: float
    max_conv_layers: int
    max_pool_layers: int
    small_file_validation_fraction: float
    heldout_rows: int
    heldout_seed: int
    heldout_gap: float
    max_disagreements: int
    noise_images: int
    noise_level: float
    min_noise_agreement: float
    unverified_policy: Policy
    max_trusted_parameters: int
    max_trusted_mmacs_per_image: float
    describe_calls: float
    evaluate_timeout: float
    chain_tolerance: float
    probe_max_kernel: int
    probe_max_stride: int
    probe_max_padding: int
    replay_seconds: float
    replay_lines: int
    replay_rtol: float
    replay_max_iteration: int
    network_seed: int
    # round three (issue 20): weights read under limits, flags that allow for binomial noise
    max_weights_mb: float
    max_weights_members: int
    gap_z: float
    mixing_tolerance: float
    mixing_locality: float


@dataclass(frozen=True)
class WorkerLimits(Section):
    """[worker]: limits of the process that runs student code."""

    call_timeout: float
    timeouts_per_item: int
    start_timeout: float
    memory_mb: int
    cpu_seconds: int
    file_size_mb: int
    max_processes: int
    output_kb: int
    # replies and deaths (issue 20, mechanism C)
    max_reply_parts: int
    max_reply_mb: int
    exits_per_item: int
    exits_per_submission: int
    # the local batch's warm workers (sandbox/warm_worker.py)
    warm_workers: bool


@dataclass(frozen=True)
class Execution(Section):
    """[execution]: limits of a headless notebook run (and of the log replay's kernel)."""

    cell_timeout: float
    quick_cell_timeout: float
    memory_mb: int
    cpu_seconds: int
    file_size_mb: int
    max_processes: int
    check_cells_timeout: float
    check_cells_memory_mb: int
    check_cells_cpu_seconds: int
    check_cells_file_size_mb: int
    quick: Mapping[str, int]
    quick_training_rows: int  # round three (issue 20): --quick trains on this many rows of the grader's split


@dataclass(frozen=True)
class Intake(Section):
    """[intake]: limits of a submitted zip and of the notebook in it."""

    max_unpacked_mb: int
    max_files: int
    max_notebook_mb: int
    max_answer_chars: int
    max_image_pixels: int
    # folder submissions (mechanism C, issue 20): entries looked at before the folder is refused
    max_folder_entries: int
    # figures of other cells read for the same-figure check (mechanism C, issue 20)
    max_other_images: int


@dataclass(frozen=True)
class Fixtures(Section):
    """[fixtures]: the hidden cases' seed, counts and ranges."""

    seed: int
    hidden_cases: Mapping[str, int]
    cases_per_side: int
    batch: Pair
    channels: Pair
    height: Pair
    width: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    filters: Pair
    pool_size: Pair


@dataclass(frozen=True)
class Similarity(Section):
    """[similarity]: what counts as near-identical code or answers in a batch."""

    code_kgram: int
    code_threshold: float
    min_code_tokens: int
    answer_kgram: int
    answer_threshold: float
    min_answer_words: int
    report_pairs: int


@dataclass(frozen=True)
class Filters(Section):
    """[filters]: how the filters item reads the notebook's image and compares it with the weights."""

    background_tolerance: float
    uniform_tolerance: float
    separator_share: float
    min_region_fill: float
    min_block_pixels: float
    max_tile_aspect: float
    grid_edge_share: float
    max_tiles: int
    tile_correlation: float
    tile_significance: float
    min_shown_fraction: float
    review_shown_fraction: float
    same_figure_size: int
    same_figure_blur: float
    same_figure_correlation: float
    rendered_width: int
    max_analysed_pixels: int
    # bounds of the first layer and of the layouts tried (issue 20, mechanism C)
    max_filters: int
    max_kernel: int
    max_channels: int
    max_layouts: int


@dataclass(frozen=True)
class Deadlines(Section):
    """[deadlines]: time budgets of the stages that read student files, and of one submission in a batch."""

    notebook_seconds: float
    pdf_seconds: float
    filters_seconds: float
    submission_seconds: float
    execute_submission_seconds: float
    kill_grace_seconds: float
    report_interval_seconds: float


@dataclass(frozen=True)
class PdfCheck(Section):
    """[pdf_check]: how a submitted PDF's images are compared with the notebook's figures."""

    same_distance: float
    different_distance: float
    min_correlation: float
    unlike_correlation: float
    ink_strong: float
    ink_weak: float
    ink_radius: int
    ink_shift: int
    compare_size: int
    analysis_size: int
    margin_tolerance: float
    search_size: int
    min_cover: float
    scales: int
    refine_candidates: int
    blur: float
    min_side: int
    min_ink: int
    max_pdf_images: int
    evidence_size: int
    max_evidence_images: int


@dataclass(frozen=True)
class GradingSheet(Section):
    """[grading_sheet]: the staff's page for the items a person grades (autograder/reports/manual_sheet.py)."""

    point_step: float


#: Gradescope's words for who sees a test of results.json, and when (its per-test and top-level `visibility`).
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class Release(Section):
    """[release]: who sees what of a grade, and when, in Gradescope's visibility words. Before the due date a
    hidden case must stay hidden: its inputs, values and differences are withheld from the tests students see
    (and from feedback.md) and kept in tests of their own with `hidden_details`' visibility."""

    public: str  # each item's points, its public cases, and which hidden cases failed and why (no inputs)
    hidden_details: str  # the hidden cases' inputs, returned values and differences
    staff_notes: str  # what is meant for staff alone: evidence figures, the log replay, the sandbox
    visibility: str  # results.json's top-level visibility (the whole result)
    stdout_visibility: str  # the grader's printed output


SECTIONS: dict[str, type[Section]] = {
    "assignment": Assignment, "tolerances": Tolerances, "training": Training, "worker": WorkerLimits,
    "execution": Execution, "intake": Intake, "fixtures": Fixtures, "similarity": Similarity, "filters": Filters,
    "grading_sheet": GradingSheet, "code_checks": CodeChecks, "deadlines": Deadlines, "pdf_check": PdfCheck,
    "release": Release,
}
ITEM_KEYS = ("id", "title", "points", "kind", "public_weight", "hidden_weight", "checked", "components")
COMPONENT_KEYS = ("id", "title", "points", "check")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(value: Any, kind: Any, where: str) -> Any:
    """`value` checked against the field's type: an int is a float too (kept as written), a pair is two
    integers, a table is a table of integers."""
    if kind is str:
        ok = isinstance(value, str)
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = _is_number(value)
    elif kind == Pair:
        ok = (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in value) and value[0] <= value[1])
        value = tuple(value) if ok else value
    elif kind == Policy:
        ok = isinstance(value, str) or _is_number(value)
    else:  # Mapping[str, int]
        ok = isinstance(value, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
        value = dict(value) if ok else value
    if not ok:
        expected = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
                    Pair: "[low, high] integers, low <= high",
                    Policy: "a string or a number"}.get(kind, "a table of integers")
        raise RubricError(f"{where}: must be {expected}, not {value!r}")
    return value


def _known_keys(table: Any, allowed: tuple[str, ...] | list[str], where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise RubricError(f"{where}: must be a table, not {table!r}")
    unknown = [key for key in table if key not in allowed]
    if unknown:
        raise RubricError(f"{where} {unknown[0]}: unknown key (known: {', '.join(allowed)})")
    return table


def _section(data: Mapping[str, Any], name: str, source: str) -> Section:
    """[name] of the rubric as its typed section: every key known, present and of its type."""
    cls = SECTIONS[name]
    where = f"{source}: [{name}]"
    table = _known_keys(_require(data, name, source), list(cls.__dataclass_fields__), where)
    hints = get_type_hints(cls)
    values = {}
    for key in cls.__dataclass_fields__:
        if key not in table:
            raise RubricError(f"{where} {key}: missing")
        values[key] = _typed(table[key], hints[key], f"{where} {key}")
    return cls(**values)


@dataclass(frozen=True)
class Rubric:
    """The whole rubric, every table typed (rubric.worker.call_timeout, rubric.assignment.notebook, ...)."""

    items: tuple[Item, ...]
    assignment: Assignment
    tolerances: Tolerances
    training: Training
    worker: WorkerLimits
    execution: Execution
    intake: Intake
    fixtures: Fixtures
    similarity: Similarity
    filters: Filters
    grading_sheet: GradingSheet
    code_checks: CodeChecks
    deadlines: Deadlines
    pdf_check: PdfCheck
    release: Release
    edition: Edition = field(default_factory=default_edition)
    # The items' titles and `checked` texts as written, {edition.*} unfilled: with_edition fills them anew.
    raw_texts: tuple[tuple[str, str], ...] = ()

    def with_edition(self, edition: Edition) -> "Rubric":
        """This rubric for one edition: its target and chance level, its weights file, its items' words.
        Everything else (points, cases, tolerances, limits) is the same in every edition."""
        items = tuple(replace(item, title=_edition_fill(title, edition), checked=_edition_fill(checked, edition))
                      for item, (title, checked) in zip(self.items, self.raw_texts or
                                                        [(i.title, i.checked) for i in self.items]))
        return replace(self, edition=edition, items=items,
                       assignment=replace(self.assignment, weights_file=edition.training.weights_file),
                       training=replace(self.training, threshold=edition.training.target,
                                        chance=edition.training.chance))

    @property
    def title(self) -> str:
        return self.assignment.title

    @property
    def total(self) -> float:
        """The assignment's points: the items', extra credit left out."""
        return sum(item.points for item in self.items)

    @property
    def extra_items(self) -> tuple[Item, ...]:
        """The edition's extra credit as an item outside the total (none for an edition without)."""
        item = extra_credit_item(self.edition)
        return (item,) if item is not None else ()

    def item(self, item_id: str) -> Item:
        for item in (*self.items, *self.extra_items):
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


#: The id of an edition's extra credit, as an item (results.json's tag, the gradebook's column, the CSV's item).
EXTRA_CREDIT = "extra_credit"


#: The tags (`tags[0]`) of results.json's 0-point release tests (autograder/reports/results.py): a code item's
#: hidden cases in full (shown after the due date), and what is meant for staff alone. Never an item's id, so
#: that the readers that group tests by item (gradebook, class report, merge-manual) can tell them apart.
HIDDEN_CASE_DETAILS = "hidden_case_details"
STAFF_NOTES = "staff_notes"
RELEASE_TAGS = (HIDDEN_CASE_DETAILS, STAFF_NOTES)


def extra_credit_item(edition: Edition) -> Item | None:
    """An edition's extra credit ([extra_credit] of its file) as a staff-graded item outside the total, or
    None when it has none (0 points)."""
    if edition.extra_credit.points <= 0:
        return None
    return Item(id=EXTRA_CREDIT, title=edition.extra_credit.title, points=edition.extra_credit.points,
                kind="manual", extra_credit=True)


def all_extra_items() -> tuple[Item, ...]:
    """The extra-credit items of every known edition, one per id (the newest edition's title): the columns
    and items a batch that may hold every edition knows."""
    found: dict[str, Item] = {}
    for edition in editions():
        item = extra_credit_item(edition)
        if item is not None:
            found[item.id] = item
    return tuple(found.values())


_EDITION_PLACEHOLDER = re.compile(r"\{edition\.([a-z_]+)\}")


def _edition_fill(text: str, edition: Edition) -> str:
    """`text` with {edition.target}, {edition.dataset}, {edition.classes} and {edition.year} filled in."""
    values = {"target": edition.training.target_percent, "dataset": edition.dataset.name,
              "classes": str(edition.dataset.classes), "year": str(edition.year)}

    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise RubricError(f"unknown placeholder {match.group(0)} (known: "
                              + ", ".join(f"{{edition.{key}}}" for key in values) + ")")
        return values[match.group(1)]
    return _EDITION_PLACEHOLDER.sub(value, text)


def _span(bounds) -> str:
    low, high = bounds
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_]+)\}")


def _fill(text: str, data: Mapping[str, Any], where: str) -> str:
    """`text` with every {section.key} replaced by the rubric's value; an unknown key is an error. The
    {edition.*} placeholders stay, for `_edition_fill`."""
    def value(match: re.Match) -> str:
        section, key = match.groups()
        if section == "edition":  # filled per edition (_edition_fill)
            return match.group(0)
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
        _known_keys(entry, COMPONENT_KEYS, at)
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
    unknown = [name for name in data if name not in SECTIONS and name != "items"]
    if unknown:
        raise RubricError(f"{source}: [{unknown[0]}]: unknown table (known: {', '.join([*SECTIONS, 'items'])})")
    edition = default_edition()
    for table, key in (("assignment", "weights_file"), ("training", "threshold"), ("training", "chance")):
        if isinstance(data.get(table), Mapping) and key in data[table]:
            raise RubricError(f"{source}: [{table}] {key}: set per edition (autograder/editions/*.toml), "
                              "not in the rubric")
    data = {**data, "assignment": {**_require(data, "assignment", source),
                                   "weights_file": edition.training.weights_file},
            "training": {**_require(data, "training", source), "threshold": edition.training.target,
                         "chance": edition.training.chance}}
    sections = {name: _section(data, name, source) for name in SECTIONS}
    items = []
    raw_texts = []
    for index, table in enumerate(_require(data, "items", source)):
        where = f"{source}: items[{index}]"
        _known_keys(table, ITEM_KEYS, where)
        kind = _require(table, "kind", where)
        if kind not in ("code", "notebook", "manual"):
            raise RubricError(f"{where}: kind must be code, notebook or manual, not {kind!r}")
        points = float(_require(table, "points", where))
        title = _require(table, "title", where)
        checked = _fill(str(table.get("checked", "")), data, where)
        raw_texts.append((title, checked))
        try:
            filled_title, filled_checked = _edition_fill(title, edition), _edition_fill(checked, edition)
        except RubricError as exc:
            raise RubricError(f"{where}: {exc}") from None
        item = Item(
            id=_require(table, "id", where),
            title=filled_title,
            points=points,
            kind=kind,
            public_weight=float(table.get("public_weight", 0.0)),
            hidden_weight=float(table.get("hidden_weight", 0.0)),
            checked=filled_checked,
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
    taken = [item_id for item_id in ids if item_id in RELEASE_TAGS]
    if taken:
        raise RubricError(f"{source}: item id {taken[0]!r} is the tag of results.json's release tests; choose another")
    fixtures = sections["fixtures"]
    for item in items:
        if item.kind == "code" and item.id not in fixtures.hidden_cases:
            raise RubricError(f"{source}: [fixtures] hidden_cases: no count for code item {item.id!r}")
    _check_filters(sections["filters"], source)
    _check_pdf_check(sections["pdf_check"], source)
    _check_deadlines(sections["deadlines"], sections["training"], sections["execution"], source)
    _check_intake(sections["intake"], source)
    _check_worker_bounds(sections["worker"], source)
    _check_release(sections["release"], source)
    if not 0 < sections["grading_sheet"].point_step <= min((i.points for i in items if i.kind == "manual"), default=1):
        raise RubricError(f"{source}: [grading_sheet] point_step: must be above 0 and at most a manual item's points")
    policy = sections["training"].unverified_policy
    training_points = next((item.points for item in items if item.id == "training"), 0.0)
    if not (policy in ("reported", "pending") or (_is_number(policy) and 0 <= policy <= training_points)):
        raise RubricError(f"{source}: [training] unverified_policy: must be \"reported\", \"pending\" or a number "
                          f"of points from 0 to {training_points:g}, not {policy!r}")
    _check_round_three_training(sections["training"], source)
    return Rubric(items=tuple(items), **sections, edition=edition, raw_texts=tuple(raw_texts))


def _check_release(release: Release, source: str) -> None:
    """[release]: every key one of Gradescope's visibility words (anything else Gradescope would read as
    visible, or reject, and hidden cases would show)."""
    for key in release.keys():
        if release[key] not in VISIBILITIES:
            raise RubricError(f"{source}: [release] {key}: must be one of {', '.join(VISIBILITIES)}, "
                              f"not {release[key]!r}")


def _check_worker_bounds(worker: WorkerLimits, source: str) -> None:
    """[worker]: a reply holds at least its header and one array; a worker may die at least once."""
    if worker.max_reply_parts < 2:
        raise RubricError(f"{source}: [worker] max_reply_parts: must be at least 2, not {worker.max_reply_parts!r}")
    for key in ("max_reply_mb", "exits_per_item", "exits_per_submission"):
        if worker[key] <= 0:
            raise RubricError(f"{source}: [worker] {key}: must be positive, not {worker[key]!r}")


def _check_round_three_training(training: Training, source: str) -> None:
    """[training] round-three keys: the weights file's caps and the flags' z are positive."""
    for key in ("max_weights_mb", "max_weights_members", "gap_z", "mixing_tolerance", "mixing_locality"):
        if training[key] <= 0:
            raise RubricError(f"{source}: [training] {key}: must be positive, not {training[key]!r}")


def _check_intake(intake: Intake, source: str) -> None:
    """[intake]: every limit positive; the image cap at most Pillow's decompression-bomb limit, above which
    Pillow warns or refuses to open an image (the cap is checked first, so Pillow's never speaks)."""
    for key in intake.keys():
        if intake[key] <= 0:
            raise RubricError(f"{source}: [intake] {key}: must be positive, not {intake[key]!r}")
    from PIL import Image  # noqa: PLC0415 - only this check needs Pillow

    if Image.MAX_IMAGE_PIXELS is not None and intake.max_image_pixels > Image.MAX_IMAGE_PIXELS:
        raise RubricError(f"{source}: [intake] max_image_pixels: must be at most {Image.MAX_IMAGE_PIXELS} (Pillow's "
                          f"decompression-bomb limit), not {intake.max_image_pixels!r}")


def _check_filters(filters: Filters, source: str) -> None:
    """[filters]: correlations and shares are fractions, sizes are positive."""
    fractions = ("separator_share", "min_region_fill", "grid_edge_share", "tile_correlation", "min_shown_fraction",
                 "review_shown_fraction", "same_figure_correlation")
    for key in fractions:
        if not 0 < filters[key] <= 1:
            raise RubricError(f"{source}: [filters] {key}: must be in (0, 1], not {filters[key]!r}")
    positive = ("tile_significance", "min_block_pixels", "max_tiles", "same_figure_size", "rendered_width",
                "max_analysed_pixels", "max_filters", "max_kernel", "max_channels", "max_layouts")
    for key in positive:
        if filters[key] <= 0:
            raise RubricError(f"{source}: [filters] {key}: must be positive, not {filters[key]!r}")
    for key in ("background_tolerance", "uniform_tolerance", "same_figure_blur"):
        if filters[key] < 0:
            raise RubricError(f"{source}: [filters] {key}: must not be negative, not {filters[key]!r}")
    if filters.review_shown_fraction >= filters.min_shown_fraction:
        raise RubricError(f"{source}: [filters] review_shown_fraction: must be below min_shown_fraction "
                          f"({filters.min_shown_fraction!r}), not {filters.review_shown_fraction!r}")
    if filters.max_tile_aspect < 1:
        raise RubricError(f"{source}: [filters] max_tile_aspect: must be at least 1, not {filters.max_tile_aspect!r}")


def _check_pdf_check(check: PdfCheck, source: str) -> None:
    """[pdf_check]: the verdict's bands in order (same below different, unlike below min_correlation), stroke
    levels within 0..255 with the faint one below the strong one, sizes that nest (search, compare, analysis)."""
    where = f"{source}: [pdf_check]"
    for key in ("same_distance", "different_distance", "min_correlation", "min_cover"):
        if not 0 < check[key] <= 1:
            raise RubricError(f"{where} {key}: must be in (0, 1], not {check[key]!r}")
    if not 0 <= check.unlike_correlation < check.min_correlation:
        raise RubricError(f"{where} unlike_correlation: must be at least 0 and below min_correlation "
                          f"({check.min_correlation!r}), not {check.unlike_correlation!r}")
    if check.same_distance >= check.different_distance:
        raise RubricError(f"{where} same_distance: must be below different_distance ({check.different_distance!r}), "
                          f"not {check.same_distance!r}")
    if not 0 < check.ink_weak < check.ink_strong < 255:
        raise RubricError(f"{where} ink_weak, ink_strong: must be 0 < ink_weak < ink_strong < 255, not "
                          f"{check.ink_weak!r} and {check.ink_strong!r}")
    for key in ("compare_size", "analysis_size", "search_size", "scales", "refine_candidates", "min_side", "min_ink",
                "max_pdf_images", "evidence_size", "max_evidence_images"):
        if check[key] <= 0:
            raise RubricError(f"{where} {key}: must be positive, not {check[key]!r}")
    for key in ("ink_radius", "ink_shift", "margin_tolerance", "blur"):
        if check[key] < 0:
            raise RubricError(f"{where} {key}: must not be negative, not {check[key]!r}")
    if not 16 <= check.search_size <= check.compare_size <= check.analysis_size:
        raise RubricError(f"{where} search_size, compare_size, analysis_size: must be 16 <= search_size <= "
                          f"compare_size <= analysis_size, not {check.search_size!r}, {check.compare_size!r}, "
                          f"{check.analysis_size!r}")


def _check_deadlines(deadlines: Deadlines, training: Training, execution: Execution, source: str) -> None:
    """[deadlines]: every budget positive; a submission's deadline no shorter than the budgets an honest
    grading may use (so it stops only what no other limit stopped)."""
    for key in deadlines.keys():
        if not deadlines[key] > 0:
            raise RubricError(f"{source}: [deadlines] {key}: must be positive, not {deadlines[key]!r}")
    needed = float(training["evaluate_timeout"]) + float(training["replay_seconds"])
    if deadlines.submission_seconds < needed:
        raise RubricError(f"{source}: [deadlines] submission_seconds: must be at least [training] evaluate_timeout "
                          f"+ replay_seconds ({needed:g}), not {deadlines.submission_seconds!r}")
    if deadlines.execute_submission_seconds < execution.cpu_seconds:
        raise RubricError(f"{source}: [deadlines] execute_submission_seconds: must be at least [execution] "
                          f"cpu_seconds ({execution.cpu_seconds}), not {deadlines.execute_submission_seconds!r}")


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

"""Editions of the assignment: what changes from one year's handout to the next, as data.

The course runs this homework every year and changes its training task between years (2022: SVHN to 88 %;
2023: CIFAR-100's 20 superclasses to 40 %, a new loader, GELU, an extra-credit section). The graded layers,
their fixtures and the 60 points stay. Everything that differs lives in one TOML file per edition beside
this module (autograder/editions/NAME.toml); code reads it through the typed fields below, never by string
keys, so that next year's edition is a new file, not new code.

Each submission's edition is decided from its own files (`detect`): the loader it ships, the data and the
target its notebook names. Staff may fix it (`--edition`); a submission whose files say otherwise is then
graded as told and flagged, never silently zeroed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, get_type_hints

from autograder import UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's image): the same parser, from PyPI
    import tomli as tomllib

EDITIONS_DIR = Path(__file__).with_name("editions")
#: The edition graded when a submission's files name none (a blank template, say) and staff gave none.
DEFAULT_EDITION = "2022-svhn"
FORMATS = ("svhn-mat", "cifar100-mat")
NORMALISATIONS = ("pixel-mean", "channel-standardise")
LOGGED_LOSSES = ("last", "average")
ACTIVATIONS = ("leaky_relu", "relu", "gelu")


class EditionError(UserInputError):
    """An edition file is missing a field or holds a bad value, or an edition name is unknown."""


@dataclass(frozen=True)
class Dataset:
    """[dataset]: the data the edition trains on, and how the handout's loader prepares it."""

    name: str  # in the edition's own words, for notes ("SVHN", "CIFAR-100")
    format: str  # one of FORMATS
    folder: str  # where the handout's loader reads the files, relative to the notebook
    train_file: str
    test_file: str
    meta_file: str  # "" when the format has none
    loader_file: str  # the handout's loader, relative to the submission's root
    loader_module: str
    loader_function: str
    num_training: int
    num_validation: int
    normalisation: str  # one of NORMALISATIONS
    label_offset: int  # added to the file's labels to give 0..classes-1
    classes: int
    class_names: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """The files a data folder of this edition holds."""
        return tuple(name for name in (self.train_file, self.test_file, self.meta_file) if name)

    @property
    def needed_files(self) -> tuple[str, ...]:
        """The files without which nothing can be evaluated (the test file only adds the held-out check)."""
        return tuple(name for name in (self.train_file, self.meta_file) if name)


@dataclass(frozen=True)
class Training:
    """[training]: the target, the credit formula's chance level, and the training log's shape."""

    target: float
    chance: float
    weights_file: str
    iteration_line: str  # a regular expression with groups iteration, total, loss
    epoch_line: str  # a regular expression with groups epoch, total, train, val
    logged_loss: str  # one of LOGGED_LOSSES
    optimizers: tuple[str, ...]
    train_net_extra_arguments: tuple[str, ...]
    activations: tuple[str, ...]

    @property
    def target_percent(self) -> str:
        return f"{self.target * 100:g} %"


@dataclass(frozen=True)
class NotebookSections:
    """[notebook]: the headings that mark the notebook's sections, and the words of its data and target."""

    training_heading: str
    filters_heading: str
    question_heading: str
    extra_credit_heading: str  # "" when the edition has no such section
    # the handout's own heading of its extra-credit prompt (the cell is the handout's, not the student's);
    # "" when the edition has no such section
    extra_credit_prompt: str
    data_markers: tuple[str, ...]
    target_text: str


@dataclass(frozen=True)
class ExtraCredit:
    """[extra_credit]: staff-graded points outside the assignment's total (0 points: none)."""

    points: float
    title: str
    pdf_section: str


@dataclass(frozen=True)
class Edition:
    """One year's handout of the assignment."""

    name: str  # contains its year: "2023-cifar100"
    year: int
    summary: str
    dataset: Dataset
    training: Training
    notebook: NotebookSections
    extra_credit: ExtraCredit
    source: str = ""  # the file it was read from, for messages

    @property
    def task(self) -> str:
        """The training task in the edition's own words, for notes and titles."""
        return f"{self.dataset.name}, trained to {self.training.target_percent}"


def _typed(value: Any, kind: Any, where: str) -> Any:
    if kind is str:
        if not isinstance(value, str):
            raise EditionError(f"{where}: must be text, not {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EditionError(f"{where}: must be a whole number, not {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EditionError(f"{where}: must be a number, not {value!r}")
        return float(value)
    if kind == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EditionError(f"{where}: must be a list of text, not {value!r}")
        return tuple(value)
    raise EditionError(f"{where}: unsupported field type {kind!r}")  # pragma: no cover - a programming error


def _table(cls: type, table: Any, where: str) -> Any:
    """A frozen dataclass from one TOML table: every field required, no unknown key."""
    if not isinstance(table, Mapping):
        raise EditionError(f"{where}: missing, or not a table")
    hints = get_type_hints(cls)
    fields = [name for name in cls.__dataclass_fields__ if name != "source"]
    unknown = [key for key in table if key not in fields]
    if unknown:
        raise EditionError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(fields)})")
    missing = [name for name in fields if name not in table]
    if missing:
        raise EditionError(f"{where}: missing '{missing[0]}'")
    return cls(**{name: _typed(table[name], hints[name], f"{where}: {name}") for name in fields})


def parse_edition(data: Mapping[str, Any], source: str = "edition") -> Edition:
    """Validate a parsed edition file, so that a typo fails at start-up, not halfway through a batch."""
    tables = {"dataset": Dataset, "training": Training, "notebook": NotebookSections, "extra_credit": ExtraCredit}
    unknown = [key for key in data if key not in (*tables, "name", "year", "summary")]
    if unknown:
        raise EditionError(f"{source}: unknown key or table '{unknown[0]}'")
    for key, kind in (("name", str), ("year", int), ("summary", str)):
        if key not in data:
            raise EditionError(f"{source}: missing '{key}'")
        _typed(data[key], kind, f"{source}: {key}")
    parts = {key: _table(cls, data.get(key), f"{source}: [{key}]") for key, cls in tables.items()}
    edition = Edition(name=data["name"], year=data["year"], summary=data["summary"], source=source, **parts)
    _check(edition, source)
    return edition


def _check(edition: Edition, source: str) -> None:
    dataset, training = edition.dataset, edition.training
    if str(edition.year) not in edition.name:
        raise EditionError(f"{source}: name {edition.name!r} must contain its year ({edition.year})")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", edition.name):
        raise EditionError(f"{source}: name {edition.name!r}: lower-case letters, digits and '-' only")
    choices = ((dataset.format, FORMATS, "[dataset] format"), (dataset.normalisation, NORMALISATIONS,
               "[dataset] normalisation"), (training.logged_loss, LOGGED_LOSSES, "[training] logged_loss"))
    for value, allowed, where in choices:
        if value not in allowed:
            raise EditionError(f"{source}: {where}: {value!r} is not one of {', '.join(allowed)}")
    for name in training.activations:
        if name not in ACTIVATIONS:
            raise EditionError(f"{source}: [training] activations: {name!r} is not one of {', '.join(ACTIVATIONS)}")
    if dataset.classes < 2 or len(dataset.class_names) != dataset.classes:
        raise EditionError(f"{source}: [dataset] class_names: {len(dataset.class_names)} names for "
                           f"{dataset.classes} classes")
    if dataset.num_training < 1 or dataset.num_validation < 1:
        raise EditionError(f"{source}: [dataset] num_training and num_validation must be positive")
    if not 0 <= training.chance < training.target <= 1:
        raise EditionError(f"{source}: [training] chance and target: need 0 <= chance < target <= 1, not "
                           f"{training.chance!r} and {training.target!r}")
    groups = {"iteration_line": {"iteration", "total", "loss"}, "epoch_line": {"epoch", "total", "train", "val"}}
    for key, needed in groups.items():
        try:
            pattern = re.compile(getattr(training, key))
        except re.error as exc:
            raise EditionError(f"{source}: [training] {key}: not a regular expression ({exc})") from None
        if not needed <= set(pattern.groupindex):
            raise EditionError(f"{source}: [training] {key}: needs the named groups {', '.join(sorted(needed))}")
    if edition.extra_credit.points < 0 or (edition.extra_credit.points > 0 and not edition.extra_credit.title):
        raise EditionError(f"{source}: [extra_credit]: points must be at least 0, and extra credit needs a title")
    if bool(edition.notebook.extra_credit_heading) != bool(edition.notebook.extra_credit_prompt):
        raise EditionError(f"{source}: [notebook]: extra_credit_heading and extra_credit_prompt go together (both "
                           "empty: no extra-credit section)")
    if dataset.format == "cifar100-mat" and not dataset.meta_file:
        raise EditionError(f"{source}: [dataset] meta_file: the cifar100-mat format reads class names from it")


def load_edition_file(path: Path) -> Edition:
    """One edition from its TOML file (a new year's, or a test's invented one)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise EditionError(f"{path}: edition file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise EditionError(f"{path}: not valid TOML: {exc}") from None
    return parse_edition(data, source=path.name)


@lru_cache(maxsize=None)
def editions(folder: Path = EDITIONS_DIR) -> tuple[Edition, ...]:
    """Every edition the grader knows, oldest first; names must not repeat."""
    found = tuple(sorted((load_edition_file(path) for path in sorted(folder.glob("*.toml"))),
                         key=lambda e: (e.year, e.name)))
    names = [edition.name for edition in found]
    if len(set(names)) != len(names):
        raise EditionError(f"{folder}: two edition files share a name: {names}")
    return found


def edition_names(folder: Path = EDITIONS_DIR) -> list[str]:
    return [edition.name for edition in editions(folder)]


def get_edition(name: str, folder: Path = EDITIONS_DIR) -> Edition:
    """An edition by its name ("2023-cifar100"), its year alone ("2023") or a path to an edition file."""
    if name.endswith(".toml") and Path(name).is_file():
        return load_edition_file(Path(name))
    known = editions(folder)
    matches = [e for e in known if e.name == name] or [e for e in known if str(e.year) == name]
    if len(matches) != 1:
        listed = ", ".join(f"{e.name} ({e.year})" for e in known)
        raise EditionError(f"unknown edition {name!r}: the editions are {listed}, or a path to an edition file")
    return matches[0]


def default_edition(folder: Path = EDITIONS_DIR) -> Edition:
    return get_edition(DEFAULT_EDITION, folder)


@dataclass(frozen=True)
class Decision:
    """Which edition a submission is graded as, and why: for results.json, the gradebook and feedback."""

    edition: Edition
    how: str  # "given" (--edition), "detected" or "default" (nothing pointed anywhere)
    evidence: tuple[str, ...] = ()  # what the submission's files say, in words
    contradiction: str = ""  # when given: what in the files points at another edition

    def as_json(self) -> dict[str, Any]:
        return {"name": self.edition.name, "year": self.edition.year, "how": self.how,
                "evidence": list(self.evidence), "contradiction": self.contradiction}


@dataclass
class _Votes:
    edition: Edition
    evidence: list[str] = field(default_factory=list)


#: The notebook text read for detection, at most (markers sit in the first cells; a notebook is capped
#: by [intake] max_notebook_mb elsewhere, but detection never needs more than this).
_NOTEBOOK_BYTES = 4 << 20


def _notebook_text(root: Path, notebook_name: str) -> str:
    """The start of the submission's notebook as text (the one named as the handout names it, else the
    first .ipynb at the top); "" when there is none or it cannot be read. Links are refused at intake."""
    candidates = [root / notebook_name] + sorted(p for p in root.glob("*.ipynb") if p.name != notebook_name)
    for path in candidates:
        try:
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as handle:
                    return handle.read(_NOTEBOOK_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
    return ""


def evidence_for(edition: Edition, root: Path, notebook_text: str) -> list[str]:
    """What in a submission's files belongs to `edition`, in words (empty: nothing)."""
    found = []
    loader = root / edition.dataset.loader_file
    if loader.is_file() and not loader.is_symlink():
        found.append(f"it has {edition.dataset.loader_file}")
    markers = [m for m in edition.notebook.data_markers if m in notebook_text]
    if markers:
        found.append(f"its notebook names {markers[0]}")
    target = edition.notebook.target_text
    if target and re.search(re.escape(target).replace("%", r"\s*%"), notebook_text):
        found.append(f"its notebook's target is {target}")
    return found


def detect(root: Path, notebook_name: str, given: Edition | None = None,
           folder: Path = EDITIONS_DIR) -> Decision:
    """The edition a submission is graded as. Given (`--edition`): that one, with a contradiction noted when
    the files point only at another edition. Otherwise the edition with the most evidence in the files; a tie
    or no evidence at all gives the default edition, and says so."""
    text = _notebook_text(root, notebook_name)
    votes = [_Votes(edition, evidence_for(edition, root, text)) for edition in editions(folder)]
    if given is not None:
        own = next((v.evidence for v in votes if v.edition.name == given.name), [])
        others = [v for v in votes if v.edition.name != given.name and len(v.evidence) > len(own)]
        contradiction = ""
        if others:
            best = max(others, key=lambda v: len(v.evidence))
            contradiction = (f"graded as {given.name} as staff asked, but the files look like {best.edition.name}: "
                             + "; ".join(best.evidence))
        return Decision(given, "given", tuple(own), contradiction)
    ranked = sorted(votes, key=lambda v: len(v.evidence), reverse=True)
    if not ranked or not ranked[0].evidence or (len(ranked) > 1 and len(ranked[1].evidence) == len(ranked[0].evidence)):
        fallback = default_edition(folder)
        said = [f"{v.edition.name}: " + "; ".join(v.evidence) for v in ranked if v.evidence]
        why = ("the files point at more than one edition (" + " / ".join(said) + ")") if said else \
            "nothing in the files names an edition"
        return Decision(fallback, "default", (f"{why}; graded as the default, {fallback.name}",))
    return Decision(ranked[0].edition, "detected", tuple(ranked[0].evidence))

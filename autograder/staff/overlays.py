"""Each edition's reference solution and student template, sharing every file the editions have in common.

The default edition (2022) is complete where it always was: `reference_solution/` and the
`student_template/` generated from it. Every other edition is an overlay on those two folders:

    edition_overlays/<edition name>/
        removed.txt              the default edition's files this edition does not have, one a line
        reference_solution/      this edition's reference files that differ from reference_solution/ (or are new)
        student_template/        generated: this edition's template files that differ from student_template/

An edition's folder is then the default one, without the files of removed.txt, with the overlay's files on
top (an overlay file replaces the file of the same path). A file that is the same in both editions (the
convolution and pooling layers, grad_check.py, collectSubmission.sh) exists once. `composed_files` gives that
folder as a mapping, `materialise` writes it out, and `edition_folder` hands out a materialised copy for
the process to grade, zip or import.

The overlay folder sits beside reference_solution/, not inside it: the default reference is graded, zipped
and copied as a submission by the tests and the demo, and must hold nothing else. Like reference_solution/,
edition_overlays/ is one of the paths student code never sees (sandbox/confinement.py).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT, UserInputError
from autograder.edition import Edition, default_edition

REFERENCE = "reference_solution"
TEMPLATE = "student_template"
KINDS = (REFERENCE, TEMPLATE)
OVERLAYS = REPO_ROOT / "edition_overlays"
REMOVED = "removed.txt"
#: Never part of an edition's folder: run products, caches, data.
_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", "data"}


class OverlayError(UserInputError):
    """An edition has no reference here, or its overlay names a file the default edition does not have."""


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")  # a programming error


def is_default(edition: Edition) -> bool:
    return edition.name == default_edition().name


def overlay_dir(edition: Edition, root: Path = REPO_ROOT) -> Path:
    """Where `edition`'s overlay lives (whether or not it exists)."""
    return root / OVERLAYS.name / edition.name


def has_reference(edition: Edition, root: Path = REPO_ROOT) -> bool:
    """Whether this repository holds a reference solution for `edition`."""
    return is_default(edition) or (overlay_dir(edition, root) / REFERENCE).is_dir()


def removed_files(edition: Edition, root: Path = REPO_ROOT) -> list[str]:
    """The default edition's files that `edition` does not have (removed.txt; `#` starts a comment)."""
    if is_default(edition):
        return []
    path = overlay_dir(edition, root) / REMOVED
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def _files_under(folder: Path) -> dict[str, Path]:
    found = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part in _SKIPPED_PARTS for part in relative.parts) \
                and path.suffix != ".pyc":
            found[relative.as_posix()] = path
    return found


def composed_files(kind: str, edition: Edition, root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every file of `edition`'s reference or template (kind) by its relative path, mapped to the file it is
    read from: the default edition's, or the overlay's where the overlay has one."""
    _check_kind(kind)
    base = _files_under(root / kind)
    if is_default(edition):
        return base
    if not has_reference(edition, root):
        raise OverlayError(f"there is no reference solution for the edition {edition.name} here "
                           f"(no {overlay_dir(edition, root).relative_to(root) / REFERENCE}/)")
    for relative in removed_files(edition, root):
        if relative not in base:
            raise OverlayError(f"{overlay_dir(edition, root).relative_to(root) / REMOVED}: {relative} is not a "
                               f"file of {kind}/")
        del base[relative]
    base.update(_files_under(overlay_dir(edition, root) / kind))
    return dict(sorted(base.items()))


def materialise(kind: str, edition: Edition, destination: Path, root: Path = REPO_ROOT) -> Path:
    """Write `edition`'s reference or template (kind) into `destination`, which must not exist yet; file
    modes are kept (the shell scripts stay executable)."""
    files = composed_files(kind, edition, root)
    if destination.exists():
        raise FileExistsError(f"{destination} exists already")
    for relative, source in files.items():
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    destination.mkdir(parents=True, exist_ok=True)
    return destination


@lru_cache(maxsize=None)
def _scratch() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cnn-grader-editions-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def edition_folder(kind: str, edition: Edition, root: Path = REPO_ROOT) -> Path:
    """A folder holding `edition`'s reference or template (kind): the default edition's own folder, any
    other a copy composed once per process in a temporary folder (removed at exit). Treat it as read-only."""
    _check_kind(kind)
    if is_default(edition):
        return root / kind
    destination = _scratch() / f"{edition.name}-{kind}-{abs(hash(str(root)))}"
    if not destination.is_dir():
        materialise(kind, edition, destination.with_name(destination.name + ".new"), root)
        destination.with_name(destination.name + ".new").rename(destination)
    return destination

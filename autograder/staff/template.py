"""The student template, derived from the reference solution by removing solution regions.

The template is committed so that staff can read it and students can receive it, but it is
never edited by hand: `grade.py template` rewrites it and `grade.py template --check` (run by
the tests) fails when it no longer matches the reference.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import REPO_ROOT
from autograder.edition import Edition, default_edition
from autograder.staff.overlays import REFERENCE, OverlayError, is_default, materialise, overlay_dir, removed_files
from autograder.staff.regions import strip_solutions

#: Names never copied from the reference: run products, caches, data, local PDFs.
_SKIP_DIRS = {"data", "__pycache__", ".ipynb_checkpoints"}
_SKIP_SUFFIXES = {".npz", ".npy", ".pdf", ".pyc", ".zip", ".mat"}


@dataclass(frozen=True)
class TemplateFile:
    """A file of the template: its text and whether it is executable (the shell scripts)."""

    text: str
    executable: bool


def _student_notebook(text: str, source: str) -> str:
    notebook = nbformat.reads(text, as_version=4)
    for index, cell in enumerate(notebook.cells):
        where = f"{source} cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, "python", where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, "markdown", where)
        # Keep only the tags: they are how the grader finds cells in our template.
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
    return nbformat.writes(notebook)


def reference_files(reference: Path) -> list[Path]:
    """The reference's files that belong in a student's assignment folder, sorted."""
    found = []
    for path in sorted(reference.rglob("*")):
        relative = path.relative_to(reference)
        if any(part in _SKIP_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in _SKIP_SUFFIXES:
            continue
        found.append(path)
    return found


def build_template(reference: Path) -> dict[str, TemplateFile]:
    """Every template file by its path relative to the folder, computed in memory."""
    files: dict[str, TemplateFile] = {}
    for path in reference_files(reference):
        relative = path.relative_to(reference).as_posix()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            text = strip_solutions(text, "python", relative)
        elif path.suffix == ".ipynb":
            text = _student_notebook(text, relative)
        files[relative] = TemplateFile(text, executable=os.access(path, os.X_OK))
    return files


def edition_template(edition: Edition, root: Path = REPO_ROOT) -> dict[str, TemplateFile]:
    """The whole template of `edition`, built from its reference (composed from the overlay, if any)."""
    if is_default(edition):
        return build_template(root / REFERENCE)
    with tempfile.TemporaryDirectory(prefix="cnn-grader-template-") as scratch:
        return build_template(materialise(REFERENCE, edition, Path(scratch) / REFERENCE, root))


def overlay_template(edition: Edition, root: Path = REPO_ROOT) -> dict[str, TemplateFile]:
    """What `edition`'s committed template overlay holds: its template files that differ from the default
    edition's template, or that only it has. Its removed.txt must name exactly the default template's files
    that it lacks, so that base and overlay compose to the template built from its reference."""
    if is_default(edition):
        raise ValueError("the default edition's template is a whole folder, not an overlay")
    full = edition_template(edition, root)
    base = edition_template(default_edition(), root)
    lacking, declared = set(base) - set(full), set(removed_files(edition, root))
    if lacking != declared:
        raise OverlayError(f"{overlay_dir(edition, root).relative_to(root)}/removed.txt names "
                           f"{sorted(declared) or 'nothing'}, but the template lacks {sorted(lacking) or 'nothing'}")
    return {relative: wanted for relative, wanted in full.items() if base.get(relative) != wanted}


def template_differences(files: dict[str, TemplateFile], destination: Path) -> list[str]:
    """What `destination` lacks or has wrong compared with `files`; empty when in sync."""
    problems = []
    present = {p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()} \
        if destination.is_dir() else set()
    for relative, wanted in sorted(files.items()):
        path = destination / relative
        if relative not in present:
            problems.append(f"missing: {relative}")
        elif path.read_text(encoding="utf-8") != wanted.text:
            problems.append(f"differs from the reference: {relative}")
        elif os.access(path, os.X_OK) != wanted.executable:
            problems.append(f"executable bit differs: {relative}")
    for relative in sorted(present - set(files)):
        if "__pycache__" not in relative:
            problems.append(f"not in the reference: {relative}")
    return problems


def write_template(files: dict[str, TemplateFile], destination: Path) -> None:
    """Replace `destination` with exactly `files` (written to a sibling, then swapped in)."""
    staging = destination.with_name(destination.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    for relative, wanted in files.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted.text, encoding="utf-8")
        path.chmod(0o755 if wanted.executable else 0o644)
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)

"""Refuse to grade where student code could read the expected values.

In mode `namespace` the worker's view of the file system is an allow-list that holds none of
the harness's secrets. In the weaker modes (`user`: root without namespaces, as in a plain
container; `none`: the grader is not root) it sees the machine's files. So before any student
code runs, a full grade checks that the worker's user cannot read the secrets: every fixture
file except the public cases' (which every student has in the handout), the manifest, the
reference solution and the repository's history. If it can, nothing is graded and the error
says what to do: run as root where namespaces work, make the files unreadable to other users,
or grade the public cases only. A self-check (`--public-only`) needs no check.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.fixtures import MANIFEST, read_manifest
from autograder.sandbox.confinement import SECRET_PATHS, ConfinementError, available_mode, probes, readable_by_worker

#: "1": grade even where the worker could read the secrets, with a note in every result. Only for
#: submissions that are trusted: the harness's own test suite sets it, so that it runs for a
#: developer who is not root.
TRUST_VARIABLE = "CNN_GRADER_TRUST_SUBMISSIONS"
#: How many of the readable files a refusal names.
_SHOWN = 5


class SecretsExposed(RuntimeError):
    """Student code could read the expected values here: nothing was graded."""


@dataclass(frozen=True)
class Exposure:
    """What the check found: the mode, how many secret files it tried, which the worker could read."""

    mode: str
    checked: int
    readable: tuple[Path, ...]
    seconds: float
    skipped: bool = False  # a public-only grade: nothing secret is used

    def metadata(self) -> dict:
        """For results.json's extra_data (no timing: grading twice gives the same document)."""
        return {"mode": self.mode, "files_checked": self.checked, "files_readable": len(self.readable),
                "skipped": self.skipped}


def _not_secret(folder: Path) -> set[Path]:
    """In a fixtures folder (one that holds a manifest): the public cases' files, and the manifest too
    when it lists public cases only (as the handout's does)."""
    if not (folder / MANIFEST).is_file():
        return set()
    cases = read_manifest(folder)["cases"]
    public = {(folder / entry["file"]).resolve() for entry in cases if entry["visibility"] == "public"}
    if len(public) == len(cases):
        public.add((folder / MANIFEST).resolve())
    return public


def secret_files(fixtures_dir: Path) -> list[Path]:
    """Every file student code must not read during a full grade, in a stable order: the fixtures
    (those in use and the repository's own) except the public cases, the reference solution and
    the repository's history, where they exist. Public cases are no secret: every student has them."""
    files: list[Path] = []
    for root in dict.fromkeys(Path(os.path.abspath(p)) for p in (fixtures_dir, *SECRET_PATHS)):
        if root.is_file():
            files.append(root)
            continue
        public = _not_secret(root) if root.is_dir() else set()
        for folder, folders, names in os.walk(root):
            folders.sort()
            files += [Path(folder) / name for name in sorted(names)
                      if not public or (Path(folder) / name).resolve() not in public]
    return files


def _roots(paths: tuple[Path, ...], fixtures_dir: Path) -> list[Path]:
    """The secret folders that hold `paths`, for a chmod line."""
    roots = dict.fromkeys(Path(os.path.abspath(p)) for p in (fixtures_dir, *SECRET_PATHS))
    return [root for root in roots if any(path == root or root in path.parents for path in paths)]


def _refusal(exposure: Exposure, fixtures_dir: Path) -> str:
    readable = exposure.readable
    lines = [f"refusing to grade: the student's code could read the expected values. The worker that runs it is "
             f"confined in mode {exposure.mode!r} here, and could read {len(readable)} of the harness's secret "
             f"file(s), such as:"]
    lines += [f"  {path}" for path in readable[:_SHOWN]]
    if len(readable) > _SHOWN:
        lines.append(f"  ... and {len(readable) - _SHOWN} more")
    fixes = []
    if exposure.mode == "namespace":
        lines.append("They lie inside folders bound into the worker's view (the interpreter, the virtual environment "
                     "or the harness code).")
        fixes.append("move them out of those folders")
    elif exposure.mode == "user":
        namespace = next((probe for probe in probes() if probe.mode == "namespace"), None)
        why = f" ({namespace.detail})" if namespace is not None and namespace.detail else ""
        lines.append(f"Mount namespaces do not work here{why}, so the worker runs under a user id of its own and can "
                     "read every file that all users may read.")
        chmod = " ".join(str(root) for root in _roots(readable, fixtures_dir))
        fixes.append(f"make them unreadable to other users, e.g. `chmod -R go-rwx {chmod}` (the Gradescope bundle's "
                     "setup.sh does this for its fixtures)")
    elif os.geteuid() != 0:
        lines.append(f"The grader runs as user id {os.geteuid()}, not root, so the worker runs as the same user and "
                     "can read whatever the grader reads.")
    else:
        lines.append("The grader runs as root, but the worker could not be confined at all, so it would run as root:\n"
                     + "\n".join(f"  {probe.line()}" for probe in probes() if not probe.works))
    if exposure.mode != "namespace":
        fixes.insert(0, "run the grader as root on a machine where mount namespaces work (mode 'namespace'; "
                        "`python grade.py sandbox` shows what works here and why)")
    fixes.append("grade the public cases only, with --public-only: they are no secret (every student has them), but "
                 "the result is a self-check, not a grade")
    lines.append("To grade, do one of:")
    lines += [f"  - {fix}" for fix in fixes]
    return "\n".join(lines)


def guard_secrets(fixtures_dir: Path, public_only: bool = False) -> Exposure:
    """Check, before any student code runs, that the worker could not read the secrets; raise
    SecretsExposed, with what to do, when it could (unless TRUST_VARIABLE is "1")."""
    started = time.monotonic()
    mode = available_mode()
    if public_only:
        return Exposure(mode, 0, (), time.monotonic() - started, skipped=True)
    files = secret_files(Path(fixtures_dir))
    try:
        readable = tuple(readable_by_worker(files))
    except ConfinementError as exc:  # fail closed: what cannot be checked is not graded
        raise SecretsExposed(f"refusing to grade: {exc} (--public-only grades the public cases, which are no "
                             "secret)") from None
    exposure = Exposure(mode, len(files), readable, time.monotonic() - started)
    if readable and os.environ.get(TRUST_VARIABLE) != "1":
        raise SecretsExposed(_refusal(exposure, Path(fixtures_dir)))
    return exposure


def trust_note(exposure: Exposure) -> str | None:
    """What a result must say when it was graded although the worker could read the secrets."""
    if not exposure.readable:
        return None
    return (f"the worker (mode {exposure.mode!r}) could read {len(exposure.readable)} secret file(s), such as "
            f"{exposure.readable[0]}; graded anyway because {TRUST_VARIABLE}=1 (trusted submissions only)")

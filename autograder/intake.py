"""Intake: turn what a student handed in (a folder or a zip) into a folder to grade.

Zips are unpacked safely into a scratch folder: entries with absolute paths, `..`, or links
are refused, and the unpacked size and entry count are capped while reading (a zip's declared
sizes can lie). The submission root is the folder that holds `lib/`, wherever the zip put it
(`collectSubmission.sh` zips have no top folder; hand-made ones often do; macOS adds
`__MACOSX/`). The student id is the zip's or folder's name, as the course collects them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder import UserInputError

_CHUNK = 1 << 20
_IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}


class IntakeError(UserInputError):
    """The submission cannot be graded as handed in; the message says why, naming the file."""


@dataclass
class Submission:
    """A submission ready to grade: where its `lib/` is, and who it belongs to."""

    student_id: str
    source: Path
    root: Path
    sha256: str
    notes: list[str] = field(default_factory=list)


def student_id_for(path: Path) -> str:
    """The id the course uses: the zip's stem or the folder's name, reduced to safe characters."""
    name = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(_file_digest(path).encode())
    return digest.hexdigest()


def input_digest(path: Path) -> str:
    """sha256 of what was handed in: the zip file's bytes, or every file of the folder."""
    return folder_digest(path) if path.is_dir() else _file_digest(path)


def safe_unzip(archive: Path, destination: Path, max_bytes: int, max_files: int) -> None:
    """Unpack `archive` into `destination`, refusing anything that could escape or explode."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
            if len(entries) > max_files:
                raise IntakeError(f"{archive.name}: {len(entries)} entries, more than the limit of {max_files}")
            written = 0
            for entry in entries:
                name = entry.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                    raise IntakeError(f"{archive.name}: entry {entry.filename!r} points outside the folder")
                if stat.S_ISLNK(entry.external_attr >> 16):
                    raise IntakeError(f"{archive.name}: entry {entry.filename!r} is a symbolic link")
                target = destination.joinpath(*parts) if parts else destination
                if entry.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry) as source, open(target, "wb") as sink:
                    for chunk in iter(lambda: source.read(_CHUNK), b""):
                        written += len(chunk)
                        if written > max_bytes:
                            raise IntakeError(f"{archive.name}: unpacks to more than {max_bytes // (1 << 20)} MB")
                        sink.write(chunk)
    except zipfile.BadZipFile as exc:
        raise IntakeError(f"{archive.name}: not a valid zip file ({exc})") from None
    except (OSError, RuntimeError, NotImplementedError, EOFError, zipfile.LargeZipFile) as exc:
        raise IntakeError(f"{archive.name}: could not be unpacked ({exc})") from None


def find_root(folder: Path, label: str) -> tuple[Path, list[str]]:
    """The folder that holds `lib/`, searched breadth-first; notes say what was chosen."""
    candidates = []
    queue = [folder]
    while queue:
        current = queue.pop(0)
        if (current / "lib").is_dir():
            candidates.append(current)
        if len(current.relative_to(folder).parts) < 4:
            queue.extend(sorted(p for p in current.iterdir()
                                if p.is_dir() and not p.is_symlink() and p.name not in _IGNORED_DIRS
                                and p.name != "lib"))
    if not candidates:
        archives = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.zip") if "__MACOSX" not in p.parts)
        inside = (f"; it holds {', '.join(archives[:3])}: submit what is inside instead of a zip in a zip"
                  if archives else "")
        raise IntakeError(f"{label}: no lib/ folder found (expected lib/cnn/layer_utils.py){inside}")
    with_layers = [c for c in candidates if (c / "lib" / "cnn" / "layer_utils.py").is_file()]
    chosen = (with_layers or candidates)[0]
    notes = []
    if chosen != folder:
        notes.append(f"graded the folder {chosen.relative_to(folder).as_posix()}/ inside the submission")
    if len(candidates) > 1:
        others = ", ".join(c.relative_to(folder).as_posix() or "." for c in candidates if c != chosen)
        notes.append(f"several lib/ folders found; graded the first, ignored: {others}")
    if not (chosen / "lib" / "cnn" / "layer_utils.py").is_file():
        notes.append("lib/cnn/layer_utils.py is missing")
    return chosen, notes


def open_submission(path: Path, scratch: Path, max_bytes: int, max_files: int) -> Submission:
    """A gradable Submission from a folder or zip; raises IntakeError naming what is wrong."""
    if not path.exists():
        raise IntakeError(f"{path}: no such file or folder")
    student_id = student_id_for(path)
    if path.is_dir():
        root, notes = find_root(path, path.name)
        return Submission(student_id, path, root, folder_digest(path), notes)
    if path.suffix.lower() != ".zip":
        raise IntakeError(f"{path.name}: not a folder or a .zip file")
    unpacked = scratch / "unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    unpacked.mkdir(parents=True)
    safe_unzip(path, unpacked, max_bytes, max_files)
    root, notes = find_root(unpacked, path.name)
    return Submission(student_id, path, root, _file_digest(path), notes)

"""Intake: turn what a student handed in (a folder or a zip) into a folder to grade.

Zips are unpacked safely into a scratch folder: entries with absolute paths, `..`, or links
are refused, and the unpacked size and entry count are capped while reading (a zip's declared
sizes can lie). The submission root is the folder that holds `lib/`, wherever the zip put it
(`collectSubmission.sh` zips have no top folder; hand-made ones often do; macOS adds
`__MACOSX/`). The student id is the zip's or folder's name, as the course collects them.

A folder is graded from a copy in scratch, made without following links and without reading special
files: a symbolic link is followed only to a regular file inside the folder; any other link, a named
pipe, a socket or a device file is refused, and named in a note (`Submission.refused`). The copy is
capped like a zip (size and file count; the largest files are the ones left out).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import struct
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder import UserInputError

_CHUNK = 1 << 20
#: The most central-directory bytes one entry may take on average (46 fixed, a path, extra fields):
#: Python's zipfile parses the whole directory the end record points to, whatever count it declares.
DIRECTORY_BYTES_PER_ENTRY = 1024
#: Folders deeper than this inside a submitted folder are not read (a course's lib/ is three deep).
_MAX_FOLDER_DEPTH = 32
_END, _END64_LOCATOR = b"PK\x05\x06", b"PK\x06\x07"
#: The zip extra field that holds a file's modification time as a Unix time (Info-ZIP's "UT").
_EXTENDED_TIMESTAMP = 0x5455
IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}


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
    # files of a submitted folder that were not copied for grading (links, special files), by their path
    # relative to `root`, each with why
    refused: dict[str, str] = field(default_factory=dict)


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
    for relative in _regular_files(folder):
        digest.update(os.fsencode(relative) + b"\0")  # any bytes a name holds
        digest.update(_file_digest(folder / relative).encode())
    return digest.hexdigest()


def _regular_files(folder: Path) -> list[str]:
    """The relative POSIX paths of the regular files below `folder`, sorted; links, special files,
    folders deeper than _MAX_FOLDER_DEPTH and folders that cannot be listed passed over (iterative: a
    student's folder may nest deeper than Python recurses)."""
    found, pending = [], [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(folder / relative if relative else folder) as entries:
                for entry in entries:
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if name.count("/") < _MAX_FOLDER_DEPTH:
                            pending.append(name)
                    elif entry.is_file(follow_symlinks=False):
                        found.append(name)
        except OSError:
            continue
    return sorted(found)


def input_digest(path: Path) -> str:
    """sha256 of what was handed in: the zip file's bytes, or every file of the folder."""
    return folder_digest(path) if path.is_dir() else _file_digest(path)


def zip_directory(archive: Path) -> tuple[int, int]:
    """(entries, central-directory bytes) as the zip's end record declares them (zip64's when it has
    one), read from the file's tail before anything parses the directory; ValueError when there is none."""
    with open(archive, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        tail_size = min(size, 22 + 0xFFFF + 20)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(_END)
        if at < 0 or at + 22 > len(tail):
            raise ValueError("no end-of-central-directory record")
        entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
        locator = at - 20
        if locator >= 0 and tail[locator:locator + 4] == _END64_LOCATOR:
            (record,) = struct.unpack("<Q", tail[locator + 8:locator + 16])
            if record + 56 > size:
                raise ValueError("its zip64 end record points past the file")
            handle.seek(record)
            zip64 = handle.read(56)
            if zip64[:4] != b"PK\x06\x06":
                raise ValueError("its zip64 end record is missing")
            entries, directory = struct.unpack("<QQ", zip64[32:48])
    return entries, directory


def directory_problem(archive: Path, max_entries: int) -> str:
    """Why the zip's directory is too large to parse (more entries, or more bytes, than `max_entries`
    may take), or "": checked before zipfile reads it (a 241 MB directory cost 3 GB to parse)."""
    try:
        entries, directory = zip_directory(archive)
    except (OSError, ValueError, struct.error) as exc:
        return f"not a valid zip file ({exc})"
    if entries > max_entries:
        return f"{entries} entries, more than the limit of {max_entries}"
    if directory > max_entries * DIRECTORY_BYTES_PER_ENTRY:
        return (f"its directory is {directory / (1 << 20):.1f} MB, more than {max_entries} entries "
                f"could take")
    return ""


#: What Python's zipfile can inflate; an entry in another method (Deflate64, which Windows Explorer uses
#: for large files) is left out with a note instead of failing the whole zip.
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def safe_unzip(archive: Path, destination: Path, max_bytes: int, max_files: int) -> dict[str, str]:
    """Unpack `archive` into `destination`, refusing anything that could escape or explode. Returns the
    entries left out because their compression method cannot be read: name -> why, for the student."""
    skipped: dict[str, str] = {}
    problem = directory_problem(archive, max_files)
    if problem:
        raise IntakeError(f"{archive.name}: {problem}")
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
                if entry.compress_type not in _READABLE_METHODS:
                    skipped["/".join(parts)] = (f"compressed with a method the grader cannot read (method "
                                                f"{entry.compress_type}); zip it again with another tool")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry) as source, open(target, "wb") as sink:
                    for chunk in iter(lambda: source.read(_CHUNK), b""):
                        written += len(chunk)
                        if written > max_bytes:
                            raise IntakeError(f"{archive.name}: unpacks to more than {max_bytes // (1 << 20)} MB")
                        sink.write(chunk)
                os.utime(target, (entry_mtime(entry),) * 2)
    except zipfile.BadZipFile as exc:
        raise IntakeError(f"{archive.name}: not a valid zip file ({exc})") from None
    except (OSError, RuntimeError, NotImplementedError, EOFError, zipfile.LargeZipFile, ValueError) as exc:
        # UnicodeDecodeError (a name flagged UTF-8 that is not) is a ValueError: the student's zip, not ours
        raise IntakeError(f"{archive.name}: could not be unpacked ({str(exc)[:300]})") from None
    return skipped


def entry_mtime(entry: zipfile.ZipInfo) -> float:
    """When a zipped file was last modified: its extended timestamp (a Unix time, written by Info-ZIP, macOS
    and `pack_folder`) where it has one, else its DOS date and time read as this machine's local time, as
    `unzip` does. The PDF says when the notebook was last saved; unpacked, it must be then, not now."""
    extra = entry.extra
    while len(extra) >= 4:
        kind, size = struct.unpack("<HH", extra[:4])
        data, extra = extra[4:4 + size], extra[4 + size:]
        if kind == _EXTENDED_TIMESTAMP and len(data) >= 5 and data[0] & 1:
            return float(struct.unpack("<I", data[1:5])[0])
    try:
        return time.mktime((*entry.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return 0.0


def mtime_extra(mtime: float) -> bytes:
    """A zip entry's extended-timestamp field holding `mtime` (see `entry_mtime`)."""
    return struct.pack("<HHBI", _EXTENDED_TIMESTAMP, 5, 1, max(0, min(int(mtime), 0xFFFFFFFF)))


def _kind_of(mode: int) -> str:
    """What a file that is not a regular file or a folder is, as the student is told."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def _copy_file(source: Path, target: Path, budget: int) -> int:
    """Copy one regular file without following a link or blocking on a pipe (O_NOFOLLOW, O_NONBLOCK, and a
    check of what was opened); the bytes copied. IntakeError past `budget` bytes, OSError if it is not one."""
    handle = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(handle, "rb") as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise OSError(f"{source.name} is not a regular file")
        written = 0
        with open(target, "wb") as sink:
            for chunk in iter(lambda: reader.read(_CHUNK), b""):
                written += len(chunk)
                if written > budget:
                    raise IntakeError("over budget")
                sink.write(chunk)
        opened = os.fstat(reader.fileno())
        os.utime(target, ns=(opened.st_atime_ns, opened.st_mtime_ns))  # the copy was last saved when the file was
        return written


def _folder_entries(folder: Path, limit: int) -> tuple[list[tuple[str, os.stat_result]], dict[str, str]]:
    """Every file of `folder` (relative POSIX path, lstat), links and special files resolved or refused:
    a link is followed only to a regular file inside the folder; a link to a folder, a link outside,
    a pipe, a socket or a device file is refused, with why. Folders the grader ignores are skipped.
    IntakeError past `limit` entries."""
    real_root = os.path.realpath(folder)
    files: list[tuple[str, os.stat_result]] = []
    refused: dict[str, str] = {}
    pending, seen = [""], 0
    while pending:
        relative = pending.pop()
        try:
            listed = os.scandir(folder / relative if relative else folder)
        except OSError as exc:  # a path too long for the system, a folder without permission: skipped, said
            refused[relative] = f"a folder that could not be listed ({exc.strerror or type(exc).__name__})"
            continue
        with listed as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                seen += 1
                if seen > limit:
                    raise IntakeError(f"{folder.name}: more than {limit} entries")
                name = f"{relative}/{entry.name}" if relative else entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    if name.count("/") >= _MAX_FOLDER_DEPTH:
                        refused[name] = f"a folder nested more than {_MAX_FOLDER_DEPTH} deep (not read)"
                    elif entry.name not in IGNORED_DIRS:
                        pending.append(name)
                elif stat.S_ISREG(mode):
                    files.append((name, entry.stat(follow_symlinks=False)))
                elif stat.S_ISLNK(mode):
                    target = os.path.realpath(entry.path)
                    inside = os.path.commonpath([real_root, target]) == real_root
                    try:
                        target_mode = os.stat(target).st_mode
                    except OSError:
                        target_mode = 0
                    if inside and stat.S_ISREG(target_mode):
                        files.append((name, os.stat(target)))
                    else:
                        where = ("to a folder" if inside and stat.S_ISDIR(target_mode) else "to a file that does "
                                 "not exist" if inside and not target_mode else "pointing outside the submission"
                                 if not inside else f"to {_kind_of(target_mode)}")
                        refused[name] = f"a symbolic link {where} (links are followed only to files inside it)"
                else:
                    refused[name] = _kind_of(mode)
    return files, refused


def copy_folder(folder: Path, destination: Path, max_bytes: int, max_files: int, max_entries: int) -> dict[str, str]:
    """Copy a submitted folder into `destination` (scratch) as grading needs it, never following a link
    out of it nor reading a special file (a notebook linked to /dev/zero, a FIFO named Problem_2.ipynb,
    weights linked to another student's). The smallest files are copied first, so that when the folder
    holds more than `max_bytes` or `max_files` (a dataset left in it) what is left out is the largest.
    IntakeError past `max_entries` entries. Returns what was not copied: relative path -> why, for the student."""
    files, refused = _folder_entries(folder, max_entries)
    budget, copied = max_bytes, 0
    for name, info in sorted(files, key=lambda item: (item[1].st_size, item[0])):
        if copied >= max_files or info.st_size > budget:
            refused[name] = (f"{info.st_size / (1 << 20):.1f} MB, beyond the {max_bytes >> 20} MB or "
                             f"{max_files} files the grader copies")
            continue
        target = destination / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _copy_file(folder / name, target, budget) if not (folder / name).is_symlink() else \
                _copy_file(Path(os.path.realpath(folder / name)), target, budget)
        except IntakeError:
            target.unlink(missing_ok=True)
            refused[name] = f"growing beyond the {max_bytes >> 20} MB the grader copies while it was read"
            continue
        except OSError as exc:
            target.unlink(missing_ok=True)
            refused[name] = f"unreadable: {type(exc).__name__}: {str(exc)[:100]}"
            continue
        copied += 1
    return dict(sorted(refused.items()))


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
                                if p.is_dir() and not p.is_symlink() and p.name not in IGNORED_DIRS
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


def open_submission(path: Path, scratch: Path, max_bytes: int, max_files: int,
                    max_entries: int | None = None) -> Submission:
    """A gradable Submission from a folder or zip; raises IntakeError naming what is wrong. A folder is
    copied (`copy_folder`), walking at most `max_entries` entries (default: ten times `max_files`)."""
    if not path.exists():
        raise IntakeError(f"{path}: no such file or folder")
    student_id = student_id_for(path)
    unpacked = scratch / "unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    unpacked.mkdir(parents=True)
    if path.is_dir():  # graded from a copy: no link followed out of it, no special file read
        try:
            refused = copy_folder(path, unpacked, max_bytes, max_files, max_entries or 10 * max_files)
        except OSError as exc:
            raise IntakeError(f"{path.name}: could not be read ({type(exc).__name__}: {str(exc)[:200]})") from None
        root, notes = find_root(unpacked, path.name)
        notes = [f"{name} was not read: {why}" for name, why in refused.items()][:20] + notes
        return Submission(student_id, path, root, folder_digest(path), notes, refused_paths(refused, unpacked, root))
    if path.suffix.lower() != ".zip":
        raise IntakeError(f"{path.name}: not a folder or a .zip file")
    skipped = safe_unzip(path, unpacked, max_bytes, max_files)
    root, notes = find_root(unpacked, path.name)
    notes = [f"{name} was not read: {why}" for name, why in skipped.items()][:20] + notes
    return Submission(student_id, path, root, _file_digest(path), notes, refused_paths(skipped, unpacked, root))


def refused_paths(refused: dict[str, str], copied: Path, root: Path) -> dict[str, str]:
    """The refused files under the graded root, by their path relative to it (as grading names files)."""
    prefix = root.relative_to(copied).as_posix()
    if prefix == ".":
        return dict(refused)
    return {name[len(prefix) + 1:]: why for name, why in refused.items() if name.startswith(prefix + "/")}

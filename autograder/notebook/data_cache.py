"""A disk cache of the staff's prepared data, so that a batch reads the official files once, not per student.

Every submission is graded in a fresh process (a batch spawns one per submission, a Dask task is one), so an
in-process cache cannot carry the prepared validation split and held-out set from one student to the next:
without this module each of them paid for reading hundreds of MB of Matlab files and preparing them again.
Here the first process writes what it prepared as `.npy` files, and every later one maps them read-only.

What makes an entry (`cached`):

- **Its key** is a sha256 over the data files' own sha256 and every setting that changes the preparation (the
  caller's `settings`, NumPy's version, FORMAT_VERSION), so changed data or settings find a new entry and an
  old one is never served for them. Hashing the files costs ~0.3 s for the official ones, so a small index
  (`digests/`) remembers each file's sha256 beside its stamp (resolved path, size, mtime, ctime, inode,
  device), and a file is hashed again only when its stamp changes.
- **It is written atomically**: every file goes into a fresh hidden folder beside the entries, is fsynced, and
  the folder is renamed to the key's name. A process killed midway leaves only a hidden folder (never read,
  swept later); two processes racing to write the same entry both end with a whole, correct one.
- **It is never trusted blindly**: an entry records each array's shape, dtype, memory order and the sha256 of
  its bytes, its key's inputs, and the caller may check what it means; anything missing, truncated, foreign or
  different is logged, moved away and rebuilt from the data files.
- **It is private**: the held-out images are data no student has seen, so the cache folder is the grader's
  own (created 0700, files 0600), and a folder that other users could read or write is not used at all.
  Student code never runs in this process, and the worker's view hides the folder (grading.py).

Where: `$CNN_GRADER_DATA_CACHE` (a folder, or `off`), else `$XDG_CACHE_HOME/cnn-grader`, else
`~/.cache/cnn-grader`. A folder that cannot be used (read-only home, wrong owner) costs speed only: the data
files are read as before, and one log line (the submission's grading.log) says why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

#: A folder for the cache, or "off": no cache at all (every process reads the data files).
CACHE_VARIABLE = "CNN_GRADER_DATA_CACHE"
OFF = "off"
#: The layout of an entry; a new layout must change it, so that no entry of another layout is read.
FORMAT_VERSION = 1
ENTRIES = "splits"  # <root>/splits/<key>/entry.json and <name>.npy
DIGESTS = "digests"  # <root>/digests/<sha256 of the file's resolved path>.json
ENTRY_FILE = "entry.json"
#: A hidden folder older than this is a writer's that died; a live one takes seconds.
_ABANDONED_SECONDS = 3600
_MAX_JSON_BYTES = 1 << 16
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """What a cache entry holds: named arrays (None for one the data did not give) and small JSON values."""

    arrays: Mapping[str, np.ndarray | None]
    info: Mapping[str, Any] = field(default_factory=dict)


class _Unusable(Exception):
    """The cache folder cannot be used here; the message says why (for the log line)."""


class _Damaged(Exception):
    """An entry that is not exactly what was written for its key; the message says what is wrong."""


def cache_root() -> Path | None:
    """The cache folder staff would expect (see the module's docstring), or None when it is switched off or
    no home folder is known. Only names it: nothing is created or checked."""
    chosen = os.environ.get(CACHE_VARIABLE, "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(os.path.abspath(os.path.expanduser(chosen)))
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG specification: a relative path is invalid and ignored
        return Path(xdg) / "cnn-grader"
    try:
        return Path.home() / ".cache" / "cnn-grader"
    except (RuntimeError, KeyError):  # no HOME and no account for this user id
        return None


def cached(sources: Mapping[str, Path], settings: Mapping[str, Any], build: Callable[[], Entry],
           check: Callable[[Entry], str] = lambda entry: "") -> Entry:
    """The entry for these data files (`sources`: a role, e.g. "train", to a path that may not exist) and
    `settings` (JSON values), read from the cache when a sound one is there, otherwise `build()` and stored
    for the next process. `check` says what is wrong with an entry read back ("" when nothing): an entry it
    faults is rebuilt. Arrays read from the cache are read-only views of the mapped files, in the memory
    order `build` gave them (so later arithmetic rounds exactly as on freshly built arrays). Errors of
    `build` (the data files' own) pass through; the cache's never do."""
    root = cache_root()
    if root is None:
        return build()
    try:
        root = _private_folder(root)
        entries = _private_folder(root / ENTRIES)
        stamps = {role: _stamp(path) for role, path in sources.items()}
        digests = {role: _file_digest(root, Path(path)) for role, path in sources.items()}
    except Exception as exc:  # noqa: BLE001 - the cache may cost speed, never a grade
        log.warning("data cache %s not used (%s): the data files are read instead", root, exc)
        return build()
    key = _key(digests, settings)
    folder = entries / key
    try:
        entry = _read(folder, key, digests, settings)
        problem = check(entry)
        if not problem:
            return entry
        raise _Damaged(problem)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with an entry, it is not trusted
        log.warning("data cache entry %s ignored and rebuilt: %s", folder, exc)
        _discard(folder)
    entry = build()
    if {role: _stamp(path) for role, path in sources.items()} != stamps:
        return entry  # a data file changed while it was read: what was built may be of neither version
    try:
        _write(entries, key, entry, digests, settings)
    except Exception as exc:  # noqa: BLE001 - the arrays were built: this grade goes on without the cache
        log.warning("data cache %s: could not store the prepared data (%s); the next process reads the files "
                    "again", root, exc)
    return entry


# ------------------------------------------------------------------------------------------------ the folder


def _private(status: os.stat_result) -> bool:
    """Ours alone: owned by this process's user, and no permission for anyone else."""
    return status.st_uid == os.geteuid() and not status.st_mode & 0o077


def _private_folder(path: Path) -> Path:
    """`path` (its links resolved) as a folder only this user can use, created 0700 when absent (missing
    parents as the umask makes them); _Unusable when it is a file, someone else's, or open to others: an
    existing folder is never re-permissioned, as it may be one staff share on purpose (/tmp, say)."""
    path = Path(os.path.realpath(path))
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            status = os.lstat(path)
            if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) != 0o700:
                os.chmod(path, 0o700)  # ours, just made: a umask may have taken bits off (or left some on)
                status = os.lstat(path)
        except OSError as exc:
            raise _Unusable(f"cannot create it: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(status.st_mode):
        raise _Unusable(f"{path} is not a folder")
    if not _private(status):
        raise _Unusable(f"{path} is not private to user id {os.geteuid()} (owner {status.st_uid}, mode "
                        f"{stat.S_IMODE(status.st_mode):04o}); the held-out images must not be readable by "
                        "others: `chmod 700` it, or choose another folder")
    return path


def _open_private(path: Path) -> int:
    """A read-only descriptor of our own regular file, never through a link."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or not _private(status):
        os.close(descriptor)
        raise _Damaged(f"{path.name} is not a private regular file of this user")
    return descriptor


def _write_private(path: Path, data: bytes | None = None, array: np.ndarray | None = None) -> None:
    """A new 0600 file holding `data` or `array` (as .npy), fsynced before it is closed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        if array is not None:
            np.lib.format.write_array(stream, array, allow_pickle=False)
        else:
            stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _discard(folder: Path) -> None:
    """Move a bad entry out of its key's name (atomically: no reader sees half of it), then delete it.
    Arrays other processes mapped from it stay valid: their files are unlinked, not changed."""
    try:
        hidden = Path(tempfile.mkdtemp(prefix=".discarded-", dir=folder.parent))
    except OSError:  # a read-only cache: the entry stays, and is rebuilt in memory each time
        return
    try:
        os.rename(folder, hidden / "entry")
    except OSError:  # gone already: another process discarded it
        pass
    shutil.rmtree(hidden, ignore_errors=True)


def _sweep(folder: Path) -> None:
    """Remove what writers that died (killed mid-write) left long enough ago: hidden files and folders."""
    now = time.time()
    for child in folder.iterdir():
        if child.name.startswith("."):
            try:
                status = child.lstat()
                if now - status.st_mtime <= _ABANDONED_SECONDS:
                    continue
                if stat.S_ISDIR(status.st_mode):
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
            except OSError:
                continue


# ----------------------------------------------------------------------------------------- the files' sha256


def _stamp(path: Path) -> tuple[str, int, int, int, int, int] | None:
    """What changes when a file is rewritten, replaced or moved: (resolved path, size, mtime, ctime, inode,
    device); None when there is no such file."""
    resolved = os.path.realpath(path)
    try:
        status = os.stat(resolved)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return resolved, status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()  # chunked: hashlib.file_digest is Python 3.11+, the bundle runs 3.10
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_digest(root: Path, path: Path) -> str | None:
    """The sha256 of a data file (None when there is none), from the index while its stamp is unchanged, so
    that only the first process after a change reads the whole file to hash it."""
    stamp = _stamp(path)
    if stamp is None:
        return None
    record_path = root / DIGESTS / (hashlib.sha256(stamp[0].encode()).hexdigest() + ".json")
    try:
        descriptor = _open_private(record_path)
        with os.fdopen(descriptor, "rb") as stream:
            record = json.loads(stream.read(_MAX_JSON_BYTES))
        if record.get("stamp") == list(stamp) and _is_sha256(record.get("sha256")):
            return record["sha256"]
    except (OSError, ValueError, _Damaged, AttributeError):
        pass  # no record, or a stale or damaged one: hash the file
    digest = _hash_file(stamp[0])
    if _stamp(path) == stamp:  # not rewritten while hashed
        try:
            folder = _private_folder(root / DIGESTS)
            _sweep(folder)
            _replace(folder, record_path.name, json.dumps({"stamp": list(stamp), "sha256": digest}).encode())
        except (OSError, _Unusable) as exc:
            log.warning("data cache %s: could not record the sha256 of %s (%s)", root, stamp[0], exc)
    return digest


def _replace(folder: Path, name: str, data: bytes) -> None:
    """Write `folder/name` atomically: a fresh temporary file beside it, fsynced, renamed over it."""
    temporary = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        _write_private(temporary, data)
        os.rename(temporary, folder / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


# ------------------------------------------------------------------------------------------------ the entries


def _key(digests: Mapping[str, str | None], settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(_identity(digests, settings), sort_keys=True).encode()).hexdigest()


def _identity(digests: Mapping[str, str | None], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the entry's content depends on, as JSON: recorded in the entry and compared on reading."""
    return {"format": FORMAT_VERSION, "numpy": np.__version__, "sources": dict(digests),
            "settings": json.loads(json.dumps(dict(settings)))}


def _memory_order(array: np.ndarray) -> tuple[int, ...]:
    """The axes from slowest to fastest in memory: `array.transpose(order)` is C-contiguous for an array laid
    out densely in any axis order (the prepared images are views of channel-major data, neither C nor F)."""
    return tuple(sorted(range(array.ndim), key=lambda axis: -array.strides[axis]))


def _write(entries: Path, key: str, entry: Entry, digests: Mapping[str, str | None],
           settings: Mapping[str, Any]) -> None:
    """Store `entry` under `key`: written whole in a hidden folder, then renamed into place (atomic)."""
    _sweep(entries)
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=entries))  # 0700
    try:
        arrays: dict[str, Any] = {}
        for name, array in entry.arrays.items():
            if array is None:
                arrays[name] = None
                continue
            order = _memory_order(array)
            stored = array.transpose(order)
            if not stored.flags.c_contiguous:  # not dense: stored in C order (same values, another layout)
                order, stored = tuple(range(array.ndim)), np.ascontiguousarray(array)
            _write_private(staging / f"{name}.npy", array=stored)
            arrays[name] = {"shape": list(stored.shape), "dtype": stored.dtype.str, "order": list(order),
                            "sha256": hashlib.sha256(stored).hexdigest()}
        document = {"key": key, **_identity(digests, settings), "arrays": arrays, "info": dict(entry.info)}
        _write_private(staging / ENTRY_FILE, json.dumps(document, sort_keys=True).encode())
        _fsync_folder(staging)
        try:
            os.rename(staging, entries / key)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return  # another process stored the same entry first: theirs is as good (the finally removes ours)
        _fsync_folder(entries)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read(folder: Path, key: str, digests: Mapping[str, str | None], settings: Mapping[str, Any]) -> Entry:
    """The entry stored under `key`, its arrays mapped read-only; FileNotFoundError when there is none,
    _Damaged (or OSError, ValueError) when it is not exactly what this key's writer stored."""
    status = os.lstat(folder)  # FileNotFoundError: no entry (yet)
    if not stat.S_ISDIR(status.st_mode) or not _private(status):
        raise _Damaged("not a private folder of this user")
    try:
        return _read_files(folder, key, digests, settings)
    except FileNotFoundError as exc:  # one of its files: a damaged entry, not a missing one
        raise _Damaged(f"{Path(exc.filename or '?').name} is missing") from None


def _read_files(folder: Path, key: str, digests: Mapping[str, str | None], settings: Mapping[str, Any]) -> Entry:
    descriptor = _open_private(folder / ENTRY_FILE)
    with os.fdopen(descriptor, "rb") as stream:
        document = json.loads(stream.read(_MAX_JSON_BYTES))
    if not isinstance(document, dict) or document.get("key") != key:
        raise _Damaged("written for another key")
    expected = _identity(digests, settings)
    if {name: document.get(name) for name in expected} != expected:
        raise _Damaged("written for other data files or settings")
    arrays: dict[str, np.ndarray | None] = {}
    for name, record in document["arrays"].items():
        arrays[name] = None if record is None else _mapped(folder / f"{name}.npy", record)
    info = document["info"]
    if not isinstance(info, dict):
        raise _Damaged("its info is not a table")
    return Entry(arrays, info)


def _mapped(path: Path, record: Mapping[str, Any]) -> np.ndarray:
    """One stored array, mapped read-only and checked against its record (shape, dtype, sha256 of its
    bytes), in the memory order it was built in."""
    os.close(_open_private(path))  # ours, a regular file, no link
    empty = 0 in record["shape"]  # nothing to map (mmap refuses a length of 0): read, and made read-only
    stored = np.load(path, mmap_mode=None if empty else "r", allow_pickle=False)
    stored.flags.writeable = False
    if list(stored.shape) != list(record["shape"]) or stored.dtype.str != record["dtype"] \
            or not stored.flags.c_contiguous:
        raise _Damaged(f"{path.name} holds {stored.dtype.str} {stored.shape}, not {record['dtype']} "
                       f"{tuple(record['shape'])}")
    if hashlib.sha256(stored).hexdigest() != record["sha256"]:
        raise _Damaged(f"{path.name}'s bytes are not those written")
    order = [int(axis) for axis in record["order"]]
    if sorted(order) != list(range(stored.ndim)):
        raise _Damaged(f"{path.name}'s axis order {order} is not a permutation")
    return np.asarray(stored).transpose(np.argsort(order))

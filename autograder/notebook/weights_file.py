"""A student's saved weights (the rubric's weights_file, an .npz), read under limits.

`np.load` of a whole .npz trusts the file: a 3 MB archive whose member declares a 2 GiB array makes
the grader allocate and inflate 2 GiB (and more for every copy). Here the archive is read as what it
is, a zip of .npy members, and nothing is allocated or inflated before it is known to be wanted and
small enough:

- the archive must be a zip with at most `max_weights_members` members (counted from its end record,
  before the member list is parsed), each stored or deflated (bzip2 and LZMA inflate without a bound
  per read);
- only the members the described network needs are opened (`expected`: name -> shape); the others
  are never decompressed;
- each member's .npy header (versions 1.0 and 2.0, read from the first bytes of its stream) must
  declare a plain numeric array (no objects: nothing is ever unpickled) of the expected shape, and
  its declared size must be what the zip's directory says the member holds;
- the sum of the members' sizes is capped (`max_weights_mb`), and a member that is itself an archive
  (a zip inside the .npz) is refused, so nested archives count;
- the array is then read into a buffer of exactly its declared size, a chunk at a time.

Everything wrong with the file is a `WeightsError` whose message is the student-facing reason; a
member of another shape is not an error here but a `problems` line, worded as the training item has
always worded it, so that the student reads which array does not fit.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
from numpy.lib import format as npy_format

from autograder.intake import directory_problem

_CHUNK = 1 << 20
_END_RECORD = b"PK\x05\x06"
_NUMPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class WeightsError(ValueError):
    """The weights file cannot be read within the limits; the message says why, for the student."""


@dataclass
class SavedWeights:
    """What was read: the arrays (name -> array), and the members of the wrong shape or kind."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _member_count(path: Path) -> int:
    """The number of members the zip's end record declares (read before Python parses the whole
    directory); zip64 archives declare 0xFFFF here and are refused by the caller's cap."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        tail_size = min(size, 22 + 0xFFFF)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
    at = tail.rfind(_END_RECORD)
    if at < 0 or at + 22 > len(tail):
        raise WeightsError("it is not an .npz archive (np.savez writes a zip of .npy arrays)")
    return struct.unpack("<H", tail[at + 10:at + 12])[0]


def _header(stream, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The member's declared shape, order and dtype, from its .npy header alone."""
    magic = stream.read(len(_NUMPY_MAGIC))
    if magic[:4] in _ZIP_MAGIC:
        raise WeightsError(f"member {name!r} is itself an archive; an .npz holds .npy arrays only")
    if magic != _NUMPY_MAGIC:
        raise WeightsError(f"member {name!r} is not an .npy array")
    version = tuple(stream.read(2))
    try:
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise WeightsError(f"member {name!r} has an .npy header of version {version}; np.save writes 1.0 or 2.0")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise WeightsError(f"member {name!r} has a malformed .npy header ({str(exc)[:120]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise WeightsError(f"member {name!r} holds {dtype} values; only plain numbers are read (never pickles)")
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _size(shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = 1
    for n in shape:
        count *= n
    return count * dtype.itemsize


def read_weights(path: Path, expected: Mapping[str, tuple[int, ...]] | None, max_mb: float,
                 max_members: int) -> SavedWeights:
    """The arrays of `path` that `expected` names (all of them when None), each checked against its
    expected shape from its header before anything is inflated; at most `max_mb` MB in all.

    Raises WeightsError (the student-facing reason) when the file is not an .npz of plain arrays, or
    when reading what is needed would pass a limit."""
    path = Path(path)
    if not path.is_file():  # a folder of that name, say: submitted, and not readable as weights
        raise WeightsError("it is not a file (a folder or a special file has that name)")
    cap = int(max_mb * (1 << 20))
    if path.stat().st_size > cap:
        raise WeightsError(f"the file is {path.stat().st_size / (1 << 20):.0f} MB, over the {max_mb:g} MB "
                           f"the grader reads")
    count = _member_count(path)
    if count > max_members:
        raise WeightsError(f"it has {count} members, over the {max_members} the grader reads")
    too_large = directory_problem(path, max_members)  # zipfile parses the whole directory, whatever count
    if too_large:
        raise WeightsError(f"it is not an .npz the grader reads: {too_large}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(f"it is not an .npz archive ({str(exc)[:120]})") from None
    found = SavedWeights()
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist()[:max_members]:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name in members:
                raise WeightsError(f"it holds two members named {name!r}")
            members[name] = info
        wanted = list(members) if expected is None else [name for name in expected if name in members]
        total = 0
        for name in wanted:
            info = members[name]
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise WeightsError(f"member {name!r} is encrypted or compressed other than np.savez / "
                                   f"np.savez_compressed do")
            try:
                found_one = _read_member(archive, info, name, None if expected is None else expected[name],
                                         cap - total)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise WeightsError(f"member {name!r} could not be read ({type(exc).__name__}: {str(exc)[:120]})"
                                   ) from None
            if isinstance(found_one, str):
                found.problems.append(found_one)
                continue
            total += found_one.nbytes
            found.arrays[name] = found_one
    return found


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, shape: tuple[int, ...] | None,
                 room: int) -> np.ndarray | str:
    """One member as an array, or the problem line when its shape is not the expected one."""
    with archive.open(info) as stream:
        declared, fortran, dtype = _header(stream, name)
        if shape is not None and declared != tuple(shape):
            return f"{name} has shape {declared}; your network's has {tuple(shape)}"
        nbytes = _size(declared, dtype)
        if nbytes > room:
            raise WeightsError(f"member {name!r} declares a {declared} array of {dtype} "
                               f"({nbytes / (1 << 20):,.0f} MB); the grader reads at most "
                               f"{room / (1 << 20):,.1f} MB more of weights")
        if stream.tell() + nbytes != info.file_size:
            raise WeightsError(f"member {name!r} declares {nbytes} bytes of data, but the archive says it holds "
                               f"{info.file_size - stream.tell()}")
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        done = 0
        while done < nbytes:
            read = stream.readinto(view[done:done + _CHUNK])
            if not read:
                raise WeightsError(f"member {name!r} ends before its {nbytes} bytes of data")
            done += read
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(declared, order="F" if fortran else "C")

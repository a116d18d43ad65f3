"""The wire format between the grader and the worker: JSON headers and .npy arrays.

A message is a 4-byte big-endian length, a UTF-8 JSON header, then the arrays the header
lists, each as a 4-byte length and the bytes of `numpy.save`. The header names the arrays
(`arrays`) and announces each one's length (`sizes`), so that a receiver can refuse a message
that is too large, or has too many parts, from the header alone, before it reads or allocates
anything of the arrays (`Bounds`): the worker runs student code, which can patch `send` or
write to the answer pipe itself. Arrays are read back with `allow_pickle=False` semantics (an
object dtype is refused), straight into one buffer of the announced length, so no object can
cross the boundary, only numbers. Both sides import this module; it holds no grading logic and
no expected values.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The largest part (a header or one array) either side accepts when no tighter bound is given, in bytes.
MAX_PART_BYTES = 256 * 1024 * 1024
_LENGTH = struct.Struct(">I")
_CHUNK = 1 << 20


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class MessageTooLarge(ProtocolError):
    """A well-formed message over the receiver's bounds, refused from its header (nothing more was read)."""

    def __init__(self, what: str, parts: int, size: int, bounds: "Bounds"):
        super().__init__(f"{what}: {parts} part(s), {size} bytes, over the limit of {bounds.max_parts} parts "
                         f"and {bounds.max_bytes} bytes")
        self.parts, self.size, self.bounds = parts, size, bounds


@dataclass(frozen=True)
class Bounds:
    """The most one message may hold: parts (the header and each array) and bytes (all parts together)."""

    max_parts: int
    max_bytes: int


#: What a receiver accepts when the caller gives no bounds (the worker reading the grader's requests).
UNBOUNDED = Bounds(max_parts=1 << 20, max_bytes=1 << 62)


def _wait(fd: int, for_writing: bool, deadline: float | None) -> None:
    """Block until fd is ready, or raise TimeoutError at the deadline (None: wait forever)."""
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    ready = (select.select([], [fd], [], max(remaining, 0)) if for_writing
             else select.select([fd], [], [], max(remaining, 0)))
    if not any(ready):
        raise TimeoutError("no answer before the deadline")


def _read_into(fd: int, buffer: bytearray, deadline: float | None) -> bytearray:
    """Fill `buffer` from fd (no other copy is made)."""
    view, done = memoryview(buffer), 0
    while done < len(buffer):
        _wait(fd, False, deadline)
        try:
            got = os.readv(fd, [view[done:done + _CHUNK]])
        except BlockingIOError:
            continue
        if not got:
            raise EOFError("the other side closed the channel")
        done += got
    return buffer


def _read_length(fd: int, deadline: float | None) -> int:
    return _LENGTH.unpack(bytes(_read_into(fd, bytearray(_LENGTH.size), deadline)))[0]


def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, True, deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]


def array_bytes(array: np.ndarray) -> bytes:
    """An array as .npy bytes; refuses object arrays, which would need pickle."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def send(fd: int, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
         deadline: float | None = None) -> None:
    """Write one message: the header (with the arrays' names and lengths added) and the arrays.

    With a deadline (a time.monotonic() value) the fd must be non-blocking; TimeoutError
    is raised when the other side stops reading.
    """
    arrays = arrays or {}
    blobs = [array_bytes(value) for value in arrays.values()]
    header = dict(header, arrays=list(arrays), sizes=[len(blob) for blob in blobs])
    parts = [json.dumps(header).encode("utf-8"), *blobs]
    _write_all(fd, b"".join(_LENGTH.pack(len(part)) + part for part in parts), deadline)


def _array(name: str, blob: bytearray) -> np.ndarray:
    """The .npy bytes as an array over `blob` itself (no copy); object dtypes are refused."""
    stream = io.BytesIO(bytes(memoryview(blob)[:65536 + 16]))  # the .npy header, whatever its version
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy version {version} is not read here")
        shape, fortran_order, dtype = read_header(stream)
        if dtype.hasobject:
            raise ValueError("object arrays cannot be loaded when allow_pickle=False")
        offset, count = stream.tell(), int(np.prod(shape, dtype=np.int64))
        if len(blob) - offset != count * dtype.itemsize:
            raise ValueError(f"{len(blob) - offset} data bytes for {count} items of {dtype.itemsize} bytes")
        flat = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        return flat.reshape(shape, order="F" if fortran_order else "C")
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise ProtocolError(f"array {name!r} is not a plain .npy array: {exc}") from None


def receive(fd: int, deadline: float | None = None, bounds: Bounds | None = None
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one message; raises EOFError when the other side has gone, ProtocolError when garbled,
    MessageTooLarge (a ProtocolError) when its header announces more than `bounds` allow, and
    TimeoutError when a deadline is given and passes first.

    The bounds are checked before each read: the header's own length first, then the number and
    announced lengths of its arrays, so nothing larger than they allow is ever allocated.
    """
    bounds = bounds or UNBOUNDED
    length = _read_length(fd, deadline)
    if length > min(bounds.max_bytes, MAX_PART_BYTES):
        raise MessageTooLarge("header", 1, length, bounds)
    try:
        header = json.loads(bytes(_read_into(fd, bytearray(length), deadline)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    names, sizes = header.get("arrays", []), header.get("sizes", [])
    if not (isinstance(names, list) and isinstance(sizes, list) and len(names) == len(sizes)
            and all(type(size) is int and 0 <= size <= MAX_PART_BYTES for size in sizes)):
        raise ProtocolError("header lacks an 'arrays' list and a 'sizes' list of as many lengths")
    total = length + sum(sizes)
    if 1 + len(names) > bounds.max_parts or total > bounds.max_bytes:
        raise MessageTooLarge(f"{len(names)} array(s) announced", 1 + len(names), total, bounds)
    arrays = {}
    for name, size in zip(names, sizes):
        announced = _read_length(fd, deadline)
        if announced != size:
            raise ProtocolError(f"array {name!r} is {announced} bytes long, not the {size} its header announced")
        arrays[str(name)] = _array(str(name), _read_into(fd, bytearray(size), deadline))
    return header, arrays

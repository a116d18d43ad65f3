"""The wire format between the grader and the worker: JSON headers and .npy arrays.

A message is a 4-byte big-endian length, a UTF-8 JSON header, then the arrays the header
lists, each as a 4-byte length and the bytes of `numpy.save`. Arrays are read back with
`allow_pickle=False`, so no object can cross the boundary, only numbers. Both sides import
this module; it holds no grading logic and no expected values.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time
from typing import Any

import numpy as np

#: The largest message either side accepts (a header or one array), in bytes.
MAX_PART_BYTES = 256 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


def _wait(fd: int, for_writing: bool, deadline: float | None) -> None:
    """Block until fd is ready, or raise TimeoutError at the deadline (None: wait forever)."""
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    ready = (select.select([], [fd], [], max(remaining, 0)) if for_writing
             else select.select([fd], [], [], max(remaining, 0)))
    if not any(ready):
        raise TimeoutError("no answer before the deadline")


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, remaining = [], n
    while remaining:
        _wait(fd, False, deadline)
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_part(fd: int, deadline: float | None) -> bytes:
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    if length > MAX_PART_BYTES:
        raise ProtocolError(f"message part of {length} bytes is over the limit of {MAX_PART_BYTES}")
    return _read_exactly(fd, length, deadline)


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
    """Write one message: the header (with the array names added) and the arrays.

    With a deadline (a time.monotonic() value) the fd must be non-blocking; TimeoutError
    is raised when the other side stops reading.
    """
    arrays = arrays or {}
    blobs = [array_bytes(value) for value in arrays.values()]
    header = dict(header, arrays=list(arrays))
    parts = [json.dumps(header).encode("utf-8"), *blobs]
    _write_all(fd, b"".join(_LENGTH.pack(len(part)) + part for part in parts), deadline)


def receive(fd: int, deadline: float | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one message; raises EOFError when the other side has gone, ProtocolError when garbled,
    TimeoutError when a deadline is given and passes first."""
    try:
        header = json.loads(_read_part(fd, deadline).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise ProtocolError("header is not a JSON object with an 'arrays' list")
    arrays = {}
    for name in header.get("arrays", []):
        blob = _read_part(fd, deadline)
        try:
            arrays[str(name)] = np.load(io.BytesIO(blob), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ProtocolError(f"array {name!r} is not a plain .npy array: {exc}") from None
    return header, arrays

"""Round-three attacks of mechanism worker: see attacks.py for what an attack is.

Student code runs in the worker, and the worker is the student's: code imported there can import
what the worker's view holds, patch the worker's own functions and write to its answer pipe, or
end the process. These attacks try each; a correct grader gives each exactly what the code
earns on its own (a blank template stays blank), refuses an oversized reply without allocating
it, and stops restarting a worker that keeps dying.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from attacks import Attack, Context, item, outputs, points
from conftest import TEMPLATE
from gaming import build, notebook
from submissions import CODE_ITEMS, LAYERS, make_submission

#: The blank template's conv and pool methods, filled from the grader's own trusted forward and
#: central differences when they can be imported (at home they cannot: nothing shows there).
BORROWED_LAYERS = '''

try:
    from autograder.notebook.trusted_eval import conv_forward as _trusted_conv, max_pool as _trusted_pool
    from autograder.numerics import numerical_gradient_array as _numerical
    _BORROWED = True
except ImportError:
    _BORROWED = False
print("SPY borrowed", _BORROWED)


def _borrowed_conv_forward(self, img):
    if not _BORROWED:
        return None
    self.meta = img
    return _trusted_conv(img, self.params[self.w_name], self.params[self.b_name], self.stride, self.padding)


def _borrowed_conv_backward(self, dprev):
    if not _BORROWED:
        return None
    img, w, b = np.array(self.meta, dtype=np.float64), self.params[self.w_name], self.params[self.b_name]
    forward = lambda x, w_, b_: _trusted_conv(x, w_, b_, self.stride, self.padding)
    self.grads[self.w_name] = _numerical(lambda v: forward(img, v, b), np.array(w, dtype=np.float64), dprev, 1e-5)
    self.grads[self.b_name] = _numerical(lambda v: forward(img, w, v), np.array(b, dtype=np.float64), dprev, 1e-5)
    return _numerical(lambda v: forward(v, w, b), img, dprev, 1e-5)


def _borrowed_pool_forward(self, img):
    if not _BORROWED:
        return None
    self.meta = img
    return _trusted_pool(img, self.pool_size, self.stride)


def _borrowed_pool_backward(self, dprev):
    if not _BORROWED:
        return None
    img = np.array(self.meta, dtype=np.float64)
    return _numerical(lambda v: _trusted_pool(v, self.pool_size, self.stride), img, dprev, 1e-5)


ConvLayer2D.forward, ConvLayer2D.backward = _borrowed_conv_forward, _borrowed_conv_backward
MaxPoolingLayer.forward, MaxPoolingLayer.backward = _borrowed_pool_forward, _borrowed_pool_backward
'''

#: Every reply that carries a layer's output ("out": conv and pool forward) is replaced by a
#: well-formed one announcing 8 arrays of 256 MB each, streamed from one small buffer (the worker
#: never holds them). The header is built the way protocol.send builds it, including the sizes a
#: bounded protocol announces up front.
HUGE_REPLY = '''

import json as _json
import os as _os
import struct as _struct

import autograder.sandbox.protocol as _protocol

_honest_send = _protocol.send
_PART = 256 * 1024 * 1024
_COUNT = 8


def _npy_header(total: int) -> bytes:
    """The .npy header of a float64 vector that makes a file of exactly `total` bytes."""
    for length in range(64, 4096, 64):
        count = (total - length) // 8
        text = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % count
        text = text.ljust(length - 10 - 1) + "\\n"
        head = b"\\x93NUMPY\\x01\\x00" + _struct.pack("<H", len(text)) + text.encode("latin1")
        if len(head) == length and length + count * 8 == total:
            return head
    raise AssertionError("no header fits")


def _write(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[_os.write(fd, view):]
        except BlockingIOError:
            import select
            select.select([], [fd], [])


def _huge_send(fd, header, arrays=None, deadline=None):
    if "out" not in (header.get("values") or {}):
        return _honest_send(fd, header, arrays, deadline)
    names = [f"part{index}" for index in range(_COUNT)]
    head = dict(header, values={name: {"kind": "array"} for name in names}, arrays=names,
                sizes=[_PART] * _COUNT)
    head = _json.dumps(head).encode()
    _write(fd, _struct.pack(">I", len(head)) + head)
    npy = _npy_header(_PART)
    zeros = bytes(1 << 20)
    for _ in names:
        _write(fd, _struct.pack(">I", _PART) + npy)
        left = _PART - len(npy)
        while left:
            _write(fd, zeros[:min(left, len(zeros))])
            left -= min(left, len(zeros))


_protocol.send = _huge_send
'''

EXIT_AT_IMPORT = "\nimport os as _os\n_os._exit(3)\n"

#: Every forward (conv and pool; backward and TestCNN call forward too) ends the worker.
EXIT_IN_EVERY_FORWARD = '''

import os as _os


def _exit_forward(self, img):
    _os._exit(7)


ConvLayer2D.forward = _exit_forward
MaxPoolingLayer.forward = _exit_forward
'''


#: Each fresh worker answers its start, then exits on the next request it reads: the worker is lost
#: on every case, whatever the item, and every restart imports the lib/ again.
EXIT_AFTER_EVERY_START = """

import os as _os

import autograder.sandbox.protocol as _protocol



def _receive_then_exit(fd, *args, **kwargs):
    _os._exit(3)  # the start request was read before this module was imported: this is the next one


_protocol.receive = _receive_then_exit
"""


def _template(folder: Path, append: str) -> Path:
    """The blank template with `append` added to its lib/cnn/layer_utils.py, and a notebook with a log."""
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__", "data", "*.npz"))
    path = folder / LAYERS
    path.write_text(path.read_text() + append)
    import nbformat
    nbformat.write(notebook(), str(folder / "Problem_2.ipynb"))
    return folder


def _code_reasons(results: dict) -> dict[str, set[str]]:
    return {item_id: {test["extra_data"]["reason_code"] for test in item(results, item_id)} for item_id in CODE_ITEMS}


def _check_borrowed(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in CODE_ITEMS:
        assert points(results, item_id) == 0, (item_id, outputs(results, item_id))
    codes = _code_reasons(results)
    blank = {item_id for item_id in CODE_ITEMS if item_id != "test_cnn"}
    assert all(codes[item_id] == {"not_implemented"} for item_id in blank), codes
    assert "SPY borrowed False" in results.get("output", "") + (out_dir / "feedback_released.md").read_text()


def _check_huge_reply(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in ("conv_forward", "pool_forward"):
        assert points(results, item_id) == 0, (item_id, outputs(results, item_id))
        text = outputs(results, item_id)
        assert "too large" in text and "256 MB" in text or "not run" in text, text
    for item_id in ("output_size", "conv_backward", "pool_backward", "test_cnn"):
        full = sum(test["max_score"] for test in item(results, item_id))
        assert points(results, item_id) == full, (item_id, outputs(results, item_id))


def _check_exit_at_import(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in CODE_ITEMS:
        assert points(results, item_id) == 0
        text = outputs(results, item_id)
        assert "exit status 3" in text and "lib/" in text, (item_id, text)
    assert results["extra_data"]["worker_restarts"] <= 1, results["extra_data"]["worker_restarts"]


def _check_exit_in_forward(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in ("conv_forward", "conv_backward", "pool_forward", "pool_backward"):
        assert points(results, item_id) == 0, item_id
        text = outputs(results, item_id)
        assert "exit status 7" in text, (item_id, text)
        assert "ended the worker" in text or "not restarted" in text, (item_id, text)
    assert _code_reasons(results)["output_size"] == {"not_implemented"}  # the template's, as without the exits
    assert results["extra_data"]["worker_exits"] <= 6


def _check_exit_after_start(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in CODE_ITEMS:
        assert points(results, item_id) == 0, item_id
        assert "exit status 3" in outputs(results, item_id), (item_id, outputs(results, item_id))
    assert "not restarted after 6" in outputs(results, "test_cnn"), outputs(results, "test_cnn")
    assert results["extra_data"]["worker_exits"] == 6


def _check_honest(results: dict, out_dir: Path, context: Context) -> None:
    for item_id in CODE_ITEMS:
        full = sum(test["max_score"] for test in item(results, item_id))
        assert points(results, item_id) == full, (item_id, outputs(results, item_id))
    assert results["extra_data"]["worker_restarts"] == 0


ATTACKS: list[Attack] = [
    Attack("blank template importing the trusted forward", "A",
           lambda folder, context: _template(folder, BORROWED_LAYERS), _check_borrowed,
           notes="issue 20, A: earned 20 / 60 with the harness package in the worker's view"),
    Attack("reply announcing 8 x 256 MB arrays", "C",
           lambda folder, context: build(folder, append={LAYERS: HUGE_REPLY}), _check_huge_reply,
           notes="issue 20, C: the grader read 2.8 GB"),
    Attack("worker exits at every start", "C",
           lambda folder, context: _template(folder, EXIT_AT_IMPORT), _check_exit_at_import),
    Attack("worker exits after every start", "C",
           lambda folder, context: build(folder, append={LAYERS: EXIT_AFTER_EVERY_START}), _check_exit_after_start),
    Attack("worker exits in every forward", "C",
           lambda folder, context: _template(folder, EXIT_IN_EVERY_FORWARD), _check_exit_in_forward,
           notes="issue 20, C: 44 restarts, 7 minutes"),
    Attack("honest reference beside the worker attacks", "honest",
           lambda folder, context: make_submission(folder), _check_honest),
]

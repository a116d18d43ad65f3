"""The worker holds only the worker, and what it sends back and how often it dies are bounded.

Student code imported in the worker is tried against each limit for real: it imports and reads
what the worker's view might hold of the grader, writes an oversized reply through the worker's
own pipe, and ends the worker on every call.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import attacks  # noqa: F401 - first: it imports attacks_worker itself, in its order
import numpy as np
import pytest
from attacks_worker import HUGE_REPLY
from conftest import FIXTURES, REFERENCE, need_mode
from gaming import build
from submissions import LAYERS, make_submission, quick_limits

from autograder import REPO_ROOT
from autograder.outcomes import CheckFailed, NotRestarted, ProcessExited, ReplyRefused
from autograder.sandbox import protocol
from autograder.sandbox.parent import WorkerProcess
from autograder.sandbox.worker_code import MODULES

#: The worker's own modules and the two packages above them (stubs in its copy).
WORKER_OWN = {"autograder", "autograder.sandbox", *(f"autograder.sandbox.{name[:-3]}" for name in MODULES)}


def harness_modules() -> list[str]:
    """Every module of the harness in the grader's own tree, except the worker's own."""
    names = set()
    for path in (REPO_ROOT / "autograder").rglob("*.py"):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names - WORKER_OWN)


def harness_files() -> list[str]:
    """What of the grader must stay unreadable: every file of the harness package (its code, the rubric,
    the checks' pytest.ini), the fixtures and the reference."""
    files = [p for p in (REPO_ROOT / "autograder").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [FIXTURES / "manifest.json", *sorted((FIXTURES / "hidden").rglob("*.npz"))[:3],
              REFERENCE / "lib" / "cnn" / "layer_utils.py"]
    return sorted(map(str, files))


#: Imported with the submission: tries each module (by name, then again with the grader's folder put
#: on the path and the worker's own `autograder` forgotten) and each file, and prints what worked.
SPY = '''
import importlib as _importlib
import json as _json
import sys as _sys

_got = {"imported": [], "read": [], "package": ""}


def _try_imports(names):
    for name in names:
        try:
            _importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - ImportError, or anything a half-found module raises
            continue
        if name not in _got["imported"]:
            _got["imported"].append(name)


import autograder as _package
_got["package"] = sorted(vars(_package))
_try_imports(NAMES)
_kept = {key: module for key, module in _sys.modules.items() if key == "autograder" or key.startswith("autograder.")}
for _key in _kept:
    del _sys.modules[_key]
_sys.path.insert(0, REPO)
try:
    _try_imports(NAMES)
finally:
    _sys.path.remove(REPO)
    for _key in [k for k in _sys.modules if k == "autograder" or k.startswith("autograder.")]:
        del _sys.modules[_key]
    _sys.modules.update(_kept)
for _path in FILES:
    try:
        with open(_path, "rb") as _file:
            _file.read(1)
        _got["read"].append(_path)
    except OSError:
        pass
print("SPY-VIEW " + _json.dumps(_got))
'''


def _spy_submission(folder: Path) -> Path:
    code = SPY.replace("NAMES", repr(harness_modules())).replace("FILES", repr(harness_files())) \
        .replace("REPO", repr(str(REPO_ROOT)))
    return make_submission(folder, append={LAYERS: code})


def test_the_list_of_harness_modules_is_the_whole_harness():
    modules = harness_modules()
    assert {"autograder.notebook.trusted_eval", "autograder.numerics", "autograder.rubric", "autograder.grading",
            "autograder.sandbox.parent", "autograder.sandbox.worker_code", "autograder.checks.plugin"} <= set(modules)
    assert not WORKER_OWN & set(modules)


def test_the_worker_can_import_and_read_nothing_of_the_grader_but_itself(tmp_path):
    need_mode("namespace")  # in `user` mode file permissions decide (the README says what stays readable)
    with WorkerProcess(_spy_submission(tmp_path / "sub"), quick_limits(5.0)) as worker:
        assert worker.start() is None, worker.printed()[0][-2000:]
        assert worker.import_errors == {}
        # The worker still works: its own modules are all it needs.
        answer = worker.call("output_size", {"input_channels": 3, "kernel_size": 3, "number_filters": 4,
                                             "stride": 1, "padding": 1, "input_size": [2, 5, 5, 3]})
        assert answer.value("size")["items"] == [2, 5, 5, 4]
    printed = worker.printed()[0]  # read after close: a live worker's output reaches us by a thread
    line = next(line for line in printed.splitlines() if line.startswith("SPY-VIEW "))
    got = json.loads(line[len("SPY-VIEW "):])
    assert got["imported"] == [], got["imported"]
    assert got["read"] == [], got["read"]
    assert "REPO_ROOT" not in got["package"] and "__version__" not in got["package"]  # a stub, not the harness's


def test_the_worker_code_is_a_read_only_copy_of_the_worker_modules_alone():
    from autograder.sandbox.worker_code import worker_code
    folder = worker_code()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted(["autograder/__init__.py", "autograder/sandbox/__init__.py",
                            *(f"autograder/sandbox/{name}" for name in MODULES)])
    for name in MODULES:
        assert (folder / "autograder" / "sandbox" / name).read_bytes() == \
            (REPO_ROOT / "autograder" / "sandbox" / name).read_bytes()
    assert all(not p.stat().st_mode & 0o222 for p in [folder, *folder.rglob("*")])  # writable by nobody
    assert all(p.stat().st_mode & 0o005 == 0o005 for p in [folder, *folder.rglob("*")] if p.is_dir())
    assert worker_code() == folder  # once per process


# ------------------------------------------------------------------------------------------- replies
HUGE_REPLY_TO_OUTPUT_SIZE = '''
import json as _json, os as _os, struct as _struct
import autograder.sandbox.protocol as _protocol
_honest = _protocol.send


def _send(fd, header, arrays=None, deadline=None):
    if "size" not in (header.get("values") or {}):
        return _honest(fd, header, arrays, deadline)
    head = _json.dumps(dict(header, arrays=["a%d" % i for i in range(8)], sizes=[256 << 20] * 8)).encode()
    _os.write(fd, _struct.pack(">I", len(head)) + head)
    _os.write(fd, _struct.pack(">I", 256 << 20) + bytes(1 << 16))  # then stop: the grader must not wait for more


_protocol.send = _send
'''

SIZE_ARGS = {"input_channels": 3, "kernel_size": 3, "number_filters": 4, "stride": 1, "padding": 1,
             "input_size": [2, 5, 5, 3]}


def test_a_reply_over_the_bounds_is_refused_unread_and_the_worker_serves_the_next_call(tmp_path):
    sub = make_submission(tmp_path / "sub", append={LAYERS: HUGE_REPLY_TO_OUTPUT_SIZE})
    with WorkerProcess(sub, quick_limits(5.0)) as worker:
        with pytest.raises(CheckFailed) as failure:
            worker.call("output_size", SIZE_ARGS)
        outcome = failure.value.outcome
        assert isinstance(outcome, ReplyRefused), outcome
        assert "9 parts and 2048 MB" in outcome.message() and "256 MB" in outcome.message()
        assert worker.exits == 1 and worker.process is None  # stopped, counted like an exit
        answer = worker.call("pool_forward", {"pool_size": 2, "stride": 2},
                             {"x": np.ones((1, 4, 4, 1))})
        assert answer.value("out").shape == (1, 2, 2, 1)


def test_worker_exits_are_capped_per_submission(tmp_path):
    sub = make_submission(tmp_path / "sub", [(LAYERS, "        output_shape = self.get_output_size(img.shape)\n",
                                              "        import os\n        os._exit(5)\n")])
    limits = replace(quick_limits(5.0), exits_per_submission=3)
    x = np.ones((1, 5, 5, 3))
    arrays = {"x": x, "w": np.ones((3, 3, 3, 2)), "b": np.zeros(2)}
    args = dict(SIZE_ARGS, number_filters=2)
    with WorkerProcess(sub, limits) as worker:
        for _ in range(3):
            with pytest.raises(CheckFailed) as failure:
                worker.call("conv_forward", args, arrays)
            assert isinstance(failure.value.outcome, ProcessExited)
            assert "exit status 5" in failure.value.outcome.message()
        with pytest.raises(CheckFailed) as failure:  # even a call that would not exit: no worker is started
            worker.call("output_size", SIZE_ARGS)
        assert isinstance(failure.value.outcome, NotRestarted)
        assert failure.value.outcome.message() == ("not run: the worker ended 3 times (the last: exit status 5); "
                                                   "not restarted after 3")
        assert worker.exits == 3 and worker.restarts == 3


@pytest.mark.slow
def test_grading_an_oversized_reply_keeps_the_grader_small(tmp_path):
    """The round-three attack (8 x 256 MB announced on every forward), graded by grade.py in a subprocess
    whose peak memory, and its children's, is read back: far below what the announced arrays would take."""
    sub = build(tmp_path / "sub", append={LAYERS: HUGE_REPLY})
    wrapper = ("import json, resource, subprocess, sys\n"
               "done = subprocess.run(sys.argv[1:])\n"
               "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "print(json.dumps({'status': done.returncode, 'max_rss_kb': usage.ru_maxrss}))\n")
    command = [sys.executable, "-c", wrapper, sys.executable, str(REPO_ROOT / "grade.py"), "grade", str(sub),
               "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 0, done.stderr[-3000:]
    assert report["max_rss_kb"] < 1 << 20, report  # under 1 GB for the grader and every worker; 2 GB were announced
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    refused = [case for test in results["tests"] if test["tags"][0] == "conv_forward"
               for case in test["extra_data"]["cases"]]
    assert refused and all(not case["passed"] for case in refused)
    assert "refused" in refused[0]["message"]


def _pipe_with(*parts: bytes) -> int:
    """A pipe's read end holding `parts` (each length-prefixed), its write end left open: a reader
    that wanted more than was written would wait, not see the end."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"".join(len(part).to_bytes(4, "big") + part for part in parts))
    _open_ends.append(write_end)
    return read_end


_open_ends: list[int] = []


def test_the_bounds_are_checked_from_the_header_before_any_array_is_read():
    bounds = protocol.Bounds(max_parts=4, max_bytes=1 << 20)
    blob = protocol.array_bytes(np.arange(6.0))
    within = json.dumps({"arrays": ["x"], "sizes": [len(blob)]}).encode()
    header, arrays = protocol.receive(_pipe_with(within, blob), deadline=time.monotonic() + 5, bounds=bounds)
    assert arrays["x"].tolist() == list(range(6))
    for announced, parts in (([8 << 20], 2), ([10] * 4, 5)):  # too large; too many parts (no array bytes follow)
        header = json.dumps({"arrays": [f"a{i}" for i in range(len(announced))], "sizes": announced}).encode()
        with pytest.raises(protocol.MessageTooLarge) as refused:
            protocol.receive(_pipe_with(header), deadline=time.monotonic() + 5, bounds=bounds)
        assert refused.value.parts == parts
    read_end, write_end = os.pipe()  # a header announced longer than the bound: not even read
    os.write(write_end, (2 << 20).to_bytes(4, "big"))
    _open_ends.append(write_end)
    with pytest.raises(protocol.MessageTooLarge):
        protocol.receive(read_end, deadline=time.monotonic() + 5, bounds=bounds)
    lying = json.dumps({"arrays": ["x"], "sizes": [len(blob) + 8]}).encode()
    with pytest.raises(protocol.ProtocolError, match="not the .* its header announced"):
        protocol.receive(_pipe_with(lying, blob), deadline=time.monotonic() + 5, bounds=bounds)
    with pytest.raises(protocol.ProtocolError, match="'sizes'"):
        protocol.receive(_pipe_with(b'{"arrays": ["x"]}', blob), deadline=time.monotonic() + 5, bounds=bounds)
    for end in _open_ends:
        os.close(end)


def test_arrays_arrive_intact_in_every_layout():
    read_end, write_end = os.pipe()
    sent = {"c": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "f": np.asfortranarray(np.ones((3, 5)) * 2),
            "empty": np.zeros((0, 3)), "scalar": np.array(7, dtype=np.int16), "complex": np.array([1 + 2j])}
    protocol.send(write_end, {"ok": True}, sent)
    header, got = protocol.receive(read_end, deadline=time.monotonic() + 5)
    os.close(read_end)
    os.close(write_end)
    assert header["ok"] and set(got) == set(sent)
    for name, array in sent.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape and np.array_equal(got[name], array)

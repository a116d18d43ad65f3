"""The local batch's warm start. Its grading processes are forks of a warm server (autograder/warm.py): each
starts with the harness loaded, and each is fresh: nothing one grading process does reaches the next, and each
runs with the batch's environment of the moment, not the server's. Its workers are forks of a warm worker per
pool slot (sandbox/zygote.py): nothing one student's code does reaches the next student's, and a warm worker
grades exactly as a worker started afresh."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from conftest import REFERENCE, need_mode
from submissions import LAYERS, make_submission, quick_limits

from autograder.batch import run_batch, warm_context
from autograder.grading import grade_submission
from autograder.rubric import load_rubric
from autograder.sandbox.confinement import (
    CAP_VARIABLE,
    REQUIRE_VARIABLE,
    SECRET_PATHS,
    available_mode,
    interpreter_paths,
)
from autograder.sandbox.parent import WorkerProcess
from autograder.sandbox.warm_worker import WarmClient, WarmWorker

pytestmark = pytest.mark.slow

_MARK = []  # a grading process's own state: a fork of the server starts with it empty


def _look(answer) -> None:
    """In a grading process: what it found at its start, then leave a mark a later fork must not see."""
    answer.send({"preloaded": sorted(name for name in ("autograder.grading", "autograder.batch", "reportlab")
                                     if name in sys.modules),
                 "marks": list(_MARK), "pid": os.getpid()})
    _MARK.append(os.getpid())
    answer.close()


def _start(context):
    answers, answer = context.Pipe(duplex=False)
    process = context.Process(target=_look, args=(answer,))
    process.start()
    answer.close()
    found = answers.recv()
    process.join(timeout=60)
    return found


def test_a_grading_process_starts_warm_and_fresh():
    context = warm_context()
    first, second = _start(context), _start(context)
    assert first["preloaded"] == ["autograder.batch", "autograder.grading", "reportlab"], first
    assert first["marks"] == [] and second["marks"] == [], (first, second)  # the first's mark died with it
    assert first["pid"] != second["pid"] != os.getpid()


def test_each_grading_process_runs_with_the_batch_s_environment(tmp_path, monkeypatch):
    """The server was started with the environment of the first batch in this process; a later batch that
    caps the confinement (CAP_VARIABLE) is graded under its own cap, as with a fresh interpreter."""
    make_submission(tmp_path / "in" / "1001", source=REFERENCE)
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    run_batch(tmp_path / "in", tmp_path / "first", jobs=1, progress=False)
    uncapped = available_mode()
    monkeypatch.setenv(CAP_VARIABLE, "none")
    run_batch(tmp_path / "in", tmp_path / "capped", jobs=1, progress=False)
    modes = [json.loads((tmp_path / out / "1001" / "results.json").read_text())["extra_data"]["sandbox"]
             for out in ("first", "capped")]
    assert modes == [uncapped, "none"], modes


# ----------------------------------------------------------------------------- warm workers (sandbox/zygote.py)
_LEAVE_EVERYTHING = '''
import os as _os, numpy as _np
for _where in ("/tmp", "/var/tmp", "/dev/shm", _os.path.expanduser("~")):
    open(_os.path.join(_where, "left_by_a"), "w").write("a")
_os.makedirs("/tmp/locked/inner")
_os.chmod("/tmp/locked", 0)
import ctypes as _ctypes
_libc = _ctypes.CDLL(None, use_errno=True)
_segment = _libc.shmget(0x5EED, 4096, 0o1000 | 0o600)  # IPC_CREAT: a System V segment would outlive A
assert _segment >= 0, _ctypes.get_errno()
_deep = _os.path.expanduser("~/deep")  # nested past Python's recursion limit: shutil.rmtree cannot remove it
_os.makedirs(_deep)
_here = _os.getcwd()
_os.chdir(_deep)
for _ in range(1500):
    _os.mkdir("d")
    _os.chdir("d")
_os.chdir(_here)
open(_os.path.join(_os.path.dirname(_os.path.dirname(_os.path.expanduser("~"))), "left_by_a"), "w").write("a")
try:  # refused: RLIMIT_MSGQUEUE is 0 (and where an old glibc keeps mq_open in librt, not tried)
    _libc.mq_open(b"/left_by_a", _os.O_CREAT | _os.O_RDWR, 0o600, None)
except AttributeError:
    pass
_ADD_KEY = {"x86_64": 248, "aarch64": 217}.get(__import__("platform").machine())
if _ADD_KEY:  # into the slot user's own keyring (a kernel without keys refuses it: nothing to leak)
    _libc.syscall(_ADD_KEY, b"user", b"left_by_a", b"secret", 6, -4)
_np.LEFT_BY_A = 1
_np.dot = lambda *args, **kwargs: "patched by a"
_os.environ["LEFT_BY_A"] = "1"
if _os.fork() == 0:  # a process of its own session that would outlive its submission
    _os.setsid()
    import time as _time
    while True:
        open("/tmp/still_here", "w").write("a")
        _time.sleep(0.05)
'''

_SPY = '''
import ctypes as _ctypes, json as _json, os as _os, numpy as _np
def _listed(where):
    try:
        return sorted(_os.listdir(where))
    except OSError as exc:
        return str(exc)
def _keys():
    try:
        return "left_by_a" in open("/proc/keys").read()
    except OSError:  # a kernel without keys
        return False
def _queue():
    try:
        return _ctypes.CDLL(None).mq_open(b"/left_by_a", _os.O_RDONLY) >= 0
    except AttributeError:  # mq_open in librt: an old glibc
        return False
def _opens(path):
    try:
        open(path, "rb").read(1)
        return True
    except OSError:
        return False
print("SPY " + _json.dumps({
    "tmp": _listed("/tmp"), "var_tmp": _listed("/var/tmp"), "shm": _listed("/dev/shm"),
    "home": _listed(_os.path.expanduser("~")), "numpy_left": hasattr(_np, "LEFT_BY_A"),
    "dot": str(_np.dot(_np.ones(2), _np.ones(2))), "env_left": "LEFT_BY_A" in _os.environ,
    "ipc": [open(table).read().splitlines()[1:] for table in ("/proc/sysvipc/shm", "/proc/sysvipc/msg",
                                                               "/proc/sysvipc/sem")],
    "slot": _listed(_os.path.dirname(_os.path.dirname(_os.path.expanduser("~")))),
    "keys": _keys(), "queue": _queue(),
    "processes": sorted(int(p) for p in _os.listdir("/proc") if p.isdigit()), "me": _os.getpid(),
    "zygote_memory": _opens("/proc/1/mem"), "zygote_environment": _opens("/proc/1/environ"),
    "own_environment": _opens("/proc/self/environ")}))
'''


@pytest.fixture
def warm_worker():
    """A real warm worker, as the batch starts one for a pool slot."""
    need_mode("namespace")
    worker = WarmWorker(load_rubric().worker, list(SECRET_PATHS))
    worker.start()
    yield worker
    worker.close()


def _spied(tmp_path, worker: WarmWorker) -> dict:
    """What a submission graded next on `worker` sees at import (its lib prints it)."""
    spy = make_submission(tmp_path / "spy", append={"lib/mlp/fully_conn.py": _SPY})
    with WorkerProcess(spy, load_rubric().worker, warm=WarmClient(worker.connect(), worker.address)) as process:
        assert process.start() is None and process.warm is not None
    printed, _ = process.printed()
    line = next(line for line in printed.splitlines() if line.startswith("SPY "))
    return json.loads(line[4:])


def test_nothing_of_one_student_reaches_the_next_on_a_warm_worker(tmp_path, warm_worker):
    """Student A's code leaves files in every writable folder (one it made unreadable, one nested 1,500 deep,
    one in the slot's own folder), a System V shared memory segment, a key in its user's keyring (and tries a
    POSIX message queue), patches NumPy, sets an environment variable and starts a process of its own session; then
    its grading process dies without closing anything. Student B, graded next on the same slot, finds none of
    it, and cannot read the warm worker's memory."""
    leaver = make_submission(tmp_path / "a", append={"lib/mlp/fully_conn.py": _LEAVE_EVERYTHING})
    client = WarmClient(warm_worker.connect(), warm_worker.address)
    process = WorkerProcess(leaver, load_rubric().worker, warm=client)
    assert process.start() is None and process.warm is not None
    client.connection.close()  # its grading process is gone, as when killed at the batch's deadline
    seen = _spied(tmp_path, warm_worker)
    bound = [Path(path) for path in (*interpreter_paths(), warm_worker.scratch.resolve())]
    in_tmp = sorted(path.name for path in bound if path.parent == Path("/tmp"))  # mount points, in every view
    assert seen["tmp"] == in_tmp and seen["var_tmp"] == seen["shm"] == [], seen
    assert seen["home"] == ["lib"], seen
    assert not seen["numpy_left"] and seen["dot"] == "2.0" and not seen["env_left"], seen
    assert seen["ipc"] == [[], [], []] and not seen["queue"] and not seen["keys"], seen
    assert seen["slot"] == [".root", "work"], seen  # the slot's own folder, bound writable, holds nothing of A
    assert seen["processes"] == sorted([1, seen["me"]]), seen  # the warm worker and B's worker, nothing else
    assert not seen["zygote_memory"] and not seen["zygote_environment"] and seen["own_environment"], seen
    assert sorted(os.listdir(warm_worker.address.work)) == ["submission"]  # A's lib/ is gone too


def test_a_warm_worker_grades_as_a_worker_started_afresh(tmp_path, warm_worker):
    """The reference and a submission whose convolution hangs: the same scores and feedback either way
    (the hung worker is killed through the warm worker, and the next one forked fresh)."""
    hangs = make_submission(tmp_path / "in" / "hangs", [(LAYERS, "output_shape = self.get_output_size(img.shape)",
                                                  "output_shape = self.get_output_size(img.shape)\n"
                                                  "        while img.shape[0] > 0:\n            pass")])
    for name, folder in (("reference", REFERENCE), ("hangs", hangs)):
        afresh, _ = grade_submission(folder, tmp_path / name / "afresh", limits=quick_limits())
        warm = WarmClient(warm_worker.connect(), warm_worker.address)
        warmed, _ = grade_submission(folder, tmp_path / name / "warm", limits=quick_limits(), warm=warm)
        warm.connection.close()
        assert [(item.item.id, item.score) for item in warmed.items] == \
            [(item.item.id, item.score) for item in afresh.items], name
        assert (tmp_path / name / "warm" / "feedback.md").read_text() == \
            (tmp_path / name / "afresh" / "feedback.md").read_text(), name
    scores = {item.item.id: item.score for item in warmed.items}
    assert scores["conv_forward"] == 0 and scores["pool_forward"] == 5, scores  # the hang cost its item only


def test_when_the_warm_worker_is_gone_workers_start_afresh(warm_worker):
    client = WarmClient(warm_worker.connect(), warm_worker.address)
    process = WorkerProcess(REFERENCE, load_rubric().worker, warm=client)
    assert process.warm is not None
    os.killpg(warm_worker.address.pid, signal.SIGKILL)
    warm_worker.process.wait()
    with process:
        assert process.start() is None
        assert process.warm is None and process.mode == "namespace"  # a worker afresh, confined as ever
    assert not warm_worker.alive()

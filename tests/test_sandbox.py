"""The worker boundary: what student code can see and do, and what crosses back."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from conftest import FIXTURES, REFERENCE, need_mode
from submissions import LAYERS, grade, make_submission, quick_limits

from autograder.sandbox import protocol
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.sandbox.parent import WorkerProcess

SPY = '''
import os
def _probe(action):
    try:
        return repr(action())[:60]
    except Exception as exc:
        return type(exc).__name__
print("SPY uid", os.getuid())
print("SPY fixtures", _probe(lambda: os.listdir(FIXTURES)))
print("SPY manifest", _probe(lambda: open(os.path.join(FIXTURES, "manifest.json")).read(20)))
print("SPY reference", _probe(lambda: open(os.path.join(REFERENCE, "lib", "cnn", "layer_utils.py")).read(20)))
print("SPY git", _probe(lambda: os.listdir(GIT)))
print("SPY overlays", _probe(lambda: os.listdir(OVERLAYS)))
print("SPY write-out", _probe(lambda: open(os.path.join(OUT, "results.json"), "w").write("{}")))
print("SPY grader", _probe(lambda: os.kill(GRADER, 0)))
print("SPY processes", _probe(lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit())))
'''


def test_student_code_cannot_reach_fixtures_reference_or_results(tmp_path):
    need_mode("user")  # as a student (not root) there is nothing to drop to, and nothing secret to read
    out = tmp_path / "out"
    out.mkdir()
    spy = SPY.replace("FIXTURES", repr(str(FIXTURES))).replace("REFERENCE", repr(str(REFERENCE))) \
        .replace("GIT", repr(str(SECRET_PATHS[2]))).replace("OVERLAYS", repr(str(SECRET_PATHS[3]))) \
        .replace("OUT", repr(str(out))).replace("GRADER", str(os.getpid()))
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", append={LAYERS: spy}), tmp_path)
    lines = dict(line.split(" ", 2)[1:] for line in result.printed.splitlines() if line.startswith("SPY"))
    assert lines["uid"] != "0"
    # Unreadable, or not there at all (when the repository sits under a folder the worker
    # cannot enter, only the interpreter's subtrees are mounted back).
    for secret in ("fixtures", "manifest", "reference", "git", "overlays", "write-out"):
        assert lines[secret] in ("PermissionError", "FileNotFoundError"), (secret, lines[secret])
    assert lines["grader"] in ("PermissionError", "ProcessLookupError")  # not its to signal, or not even there
    if result.metadata["sandbox"] == "namespace":  # its own PID namespace: itself and nothing else
        assert lines["processes"] == "[1]"
    assert result.score == 25  # and the spying cost nothing else
    assert result.metadata["sandbox"] in ("namespace", "user")


def test_worker_never_unpickles():
    """Object arrays cannot be sent at all; the receiving side loads with allow_pickle=False."""
    with pytest.raises(ValueError):
        protocol.array_bytes(np.array([object()], dtype=object))
    read_end, write_end = os.pipe()
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    blob = pickled.getvalue()
    header = b'{"arrays": ["x"], "sizes": [%d]}' % len(blob)
    os.write(write_end, len(header).to_bytes(4, "big") + header + len(blob).to_bytes(4, "big") + blob)
    with pytest.raises(protocol.ProtocolError, match="not a plain .npy array"):
        protocol.receive(read_end)
    os.close(read_end)
    os.close(write_end)


def _hangs_on_big_batches(tmp_path):
    """A submission whose output size hangs for a batch over 30 images, and the layer's arguments."""
    sub = make_submission(tmp_path / "sub", append={LAYERS: (
        "_original = ConvLayer2D.get_output_size\n"
        "def _slow_for_big(self, size):\n"
        "    while size[0] > 30:\n        pass\n"
        "    return _original(self, size)\n"
        "ConvLayer2D.get_output_size = _slow_for_big\n")})
    return sub, {"input_channels": 3, "kernel_size": 3, "number_filters": 2, "stride": 1, "padding": 0}


def test_a_fresh_worker_serves_the_case_after_a_timeout(tmp_path):
    sub, args = _hangs_on_big_batches(tmp_path)
    with WorkerProcess(sub, quick_limits(1.0)) as worker:
        from autograder.outcomes import CheckFailed, TimedOut
        with pytest.raises(CheckFailed) as failure:
            worker.call("output_size", dict(args, input_size=[32, 8, 8, 3]))
        assert isinstance(failure.value.outcome, TimedOut)
        answer = worker.call("output_size", dict(args, input_size=[2, 8, 8, 3]))
        assert answer.value("size")["items"] == [2, 6, 6, 2]
        assert worker.restarts == 1


def test_a_request_begun_now_is_collected_later_with_the_same_deadline_and_outcomes(tmp_path):
    """`begin` (the student's forward while the trusted one runs): its answer is `call`'s, a hang is a time-out
    when collected, after which a fresh worker serves the next request."""
    sub, args = _hangs_on_big_batches(tmp_path)
    from autograder.outcomes import CheckFailed, TimedOut
    with WorkerProcess(sub, quick_limits(1.0)) as worker:
        collect = worker.begin("output_size", dict(args, input_size=[2, 8, 8, 3]))
        assert collect().value("size")["items"] == [2, 6, 6, 2]
        collect = worker.begin("output_size", dict(args, input_size=[32, 8, 8, 3]))
        with pytest.raises(CheckFailed) as failure:
            collect()
        assert isinstance(failure.value.outcome, TimedOut) and worker.restarts == 1
        assert worker.call("output_size", dict(args, input_size=[3, 8, 8, 3])).value("size")["items"] == [3, 6, 6, 2]


def test_a_folder_nested_past_the_recursion_limit_goes_with_its_worker(tmp_path):
    """Student code nests 1,500 folders in its scratch folder, the innermost locked: shutil.rmtree would raise
    RecursionError (no ignore_errors catches it) and fault the grade; the worker's folder goes all the same."""
    sub = make_submission(tmp_path / "sub", append={LAYERS: (
        "import os as _os\n"
        "_here = _os.getcwd()\n"
        "_os.chdir(_os.path.expanduser('~'))\n"
        "for _ in range(1500):\n    _os.mkdir('d')\n    _os.chdir('d')\n"
        "_os.chmod('.', 0)\n"
        "_os.chdir(_here)\n")})
    worker = WorkerProcess(sub, quick_limits())
    with worker:
        assert worker.start() is None
    assert not worker.scratch.exists()


def test_a_symbolic_link_in_a_folder_submission_does_not_copy_the_fixtures(tmp_path):
    """A folder (not a zip: zips with links are refused) may link to the fixtures; the copy keeps the link,
    whose target the worker cannot read, instead of copying the expected values in as root."""
    need_mode("user")
    sub = make_submission(tmp_path / "sub")
    (sub / "lib" / "cnn" / "stolen.json").symlink_to(FIXTURES / "manifest.json")
    spy = ("import os\n_here = os.path.dirname(__file__)\ntry:\n    open(os.path.join(_here, 'stolen.json')).read(10)\n"
           "    print('SPY stolen read')\nexcept OSError as exc:\n    print('SPY stolen', type(exc).__name__)\n")
    scores, result, out_dir = grade(make_submission(tmp_path / "sub2", append={LAYERS: spy}, source=sub), tmp_path)
    assert "SPY stolen read" not in result.printed
    assert "SPY stolen" in result.printed and result.score == 25

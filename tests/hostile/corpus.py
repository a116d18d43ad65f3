"""The hostile corpus: submissions that attack the grader or are broken on purpose, each with what
it must get.

A case builds its submission into a folder (a copy of the reference with code planted, or a zip)
and says what the grade must be:
- `expect`: items whose every case must end with one of the given outcome labels;
- `full`: items that must keep full marks (the attack does not spill over);
- `at_most`: the total the submission may reach (the attack gains nothing);
- `check`: anything more, given the scores, the result and the output folder.
Every case, whatever it says, must also give a complete result (every item scored, with a reason),
change nothing of the harness, leave no process behind and stay within its limits
(`test_corpus.py`).
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conftest import REFERENCE
from submissions import CODE_ITEMS, LAYERS, MODELS, make_submission

from autograder import REPO_ROOT

NOTEBOOK_ITEMS = ["training", "filters", "inline_answer"]
ALL_POINTS = 25  # the code items' total; the reference's notebook has no validation run to credit

CONV_FORWARD = "        output_shape = self.get_output_size(img.shape)\n"
CONV_BACKWARD = '''        if self.meta is None:
            raise ValueError("No forward function called before for this module!")
'''
POOL_FORWARD = "        output = windows.max(axis=(4, 5))\n"


@dataclass
class Case:
    """One hostile submission and what it must get."""

    name: str
    group: str  # "worker", "tamper" or "packaging"
    build: Callable[[Path], Path]
    expect: dict[str, set[str]] = field(default_factory=dict)
    full: list[str] = field(default_factory=list)
    at_most: float = ALL_POINTS
    check: Callable | None = None
    limits: dict = field(default_factory=dict)
    # Destructive outside a sandbox (it deletes, overwrites or kills what its user may): run only when
    # the worker is confined to another user, never in a student's self-check set-up.
    confined_only: bool = False


def _inject(anchor: str, code: str) -> Callable[[Path], Path]:
    """Plant `code` (indented for a method body) right after `anchor` in layer_utils.py."""
    body = "".join(f"        {line}\n" for line in code.strip("\n").splitlines())
    return lambda folder: make_submission(folder, [(LAYERS, anchor, anchor + body)])


def _append(code: str, file: str = LAYERS) -> Callable[[Path], Path]:
    return lambda folder: make_submission(folder, append={file: code})


def _replace_layers(text: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        make_submission(folder)
        path = folder / LAYERS
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return folder
    return build


def _messages(scores, item: str) -> str:
    return " | ".join(case.outcome.message() for case in scores[item].cases)


def _printed(result) -> dict[str, str]:
    """Lines the planted code printed as `SPY key value`."""
    return dict(line.split(" ", 2)[1:] for line in result.printed.splitlines()
                if line.startswith("SPY ") and line.count(" ") >= 2)


# ---------------------------------------------------------------------------------------------- worker
WORKER = [
    Case("endless loop in forward", "worker", _inject(CONV_FORWARD, "while True:\n    pass"),
         expect={"conv_forward": {"timed out"}, "conv_backward": {"timed out"}},
         full=["output_size", "pool_forward", "pool_backward"], at_most=15),
    Case("endless loop in backward", "worker", _inject(CONV_BACKWARD, "while True:\n    pass"),
         expect={"conv_backward": {"timed out"}}, full=["conv_forward", "pool_forward", "pool_backward"]),
    Case("endless loop at import", "worker", _append("while True:\n    pass\n"),
         expect={item: {"exception"} for item in CODE_ITEMS}, at_most=0,
         check=lambda scores, result, out: "importing your lib/ took over" in _messages(scores, "conv_forward")),
    Case("endless loop in __del__", "worker",
         _append("class _Stubborn:\n    def __del__(self):\n        while True:\n            pass\n"
                 "_keep = _Stubborn()\n"), full=CODE_ITEMS),
    Case("os._exit in forward", "worker", _inject(CONV_FORWARD, "import os\nos._exit(0)"),
         expect={"conv_forward": {"process exited"}}, full=["pool_forward", "pool_backward", "output_size"]),
    Case("SystemExit in backward", "worker", _inject(CONV_BACKWARD, "raise SystemExit(0)"),
         expect={"conv_backward": {"exception"}}, full=["conv_forward", "pool_forward"],
         check=lambda scores, result, out: "SystemExit" in _messages(scores, "conv_backward")),
    Case("KeyboardInterrupt in pool forward", "worker", _inject(POOL_FORWARD, "raise KeyboardInterrupt"),
         expect={"pool_forward": {"exception"}}, full=["conv_forward", "conv_backward"],
         check=lambda scores, result, out: "KeyboardInterrupt" in _messages(scores, "pool_forward")),
    Case("infinite recursion", "worker",
         _inject(CONV_FORWARD, "def _down(n):\n    return _down(n + 1)\n_down(0)"),
         expect={"conv_forward": {"exception"}}, full=["pool_forward", "pool_backward"],
         check=lambda scores, result, out: "RecursionError" in _messages(scores, "conv_forward")),
    Case("segfault through ctypes", "worker", _inject(POOL_FORWARD, "import ctypes\nctypes.string_at(0)"),
         expect={"pool_forward": {"process exited"}}, full=["conv_forward", "conv_backward", "output_size"],
         check=lambda scores, result, out: "SIGSEGV" in _messages(scores, "pool_forward")),
    Case("allocation grown slowly", "worker",
         _inject(CONV_FORWARD, "import numpy\n_hoard = []\nwhile True:\n"
                               "    _hoard.append(numpy.ones(16 << 20))"),
         expect={"conv_forward": {"out of memory"}}, full=["pool_forward", "pool_backward", "output_size"],
         limits={"call_timeout": 20, "memory_mb": 1024}),
    Case("forked child that lingers", "worker",
         _append("import os, time\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        time.sleep(0.05)\n"),
         full=CODE_ITEMS),
    Case("spawned process that lingers", "worker",
         _append("import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\n"), full=CODE_ITEMS),
    Case("thread that keeps running", "worker",
         _append("import threading\ndef _spin():\n    while True:\n        pass\n"
                 "threading.Thread(target=_spin, daemon=False).start()\n"), full=CODE_ITEMS),
    Case("stdout flood in every forward", "worker",
         _inject(CONV_FORWARD, "import sys\nsys.stdout.write('spam ' * 400000)"), full=CODE_ITEMS,
         check=lambda scores, result, out: result.printed_bytes > 10 << 20
         and (out / "results.json").stat().st_size < 150_000),
    Case("stderr flood at import", "worker",
         _append("import sys\nfor _ in range(40):\n    sys.stderr.write('warning ' * 200000)\n"), full=CODE_ITEMS,
         check=lambda scores, result, out: (out / "feedback.md").stat().st_size < 150_000),
    Case("writing a huge file", "worker",
         _inject(CONV_FORWARD, "with open('big.bin', 'wb') as _f:\n    _f.write(bytes(64 << 20))"),
         expect={"conv_forward": {"exception", "process exited"}}, full=["pool_forward", "pool_backward"],
         check=lambda scores, result, out: "File too large" in _messages(scores, "conv_forward")
         or "SIGXFSZ" in _messages(scores, "conv_forward")),
    Case("reading /proc and the environment", "worker",
         _append("import os\nprint('SPY pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
                 "print('SPY env', sorted(os.environ))\n"
                 "print('SPY cmdline1', open('/proc/1/cmdline', 'rb').read().count(b'grade'))\n"),
         full=CODE_ITEMS,
         check=lambda scores, result, out: _sees_only_itself(_printed(result))),
    Case("reaching the network", "worker",
         _append("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 443), timeout=2).close()\n"
                 "    print('SPY network reached')\nexcept OSError as exc:\n"
                 "    print('SPY network', type(exc).__name__)\n"), full=CODE_ITEMS,
         check=lambda scores, result, out: result.metadata["sandbox"] != "namespace"
         or _printed(result)["network"] != "reached"),
    Case("changing the working directory", "worker",
         _append("import os\nos.chdir('/')\n_f = ConvLayer2D.forward\n"
                 "def _forward(self, img):\n    os.chdir('/usr')\n    return _f(self, img)\n"
                 "ConvLayer2D.forward = _forward\n"), full=CODE_ITEMS),
    Case("monkeypatched numpy", "worker",
         lambda folder: make_submission(
             folder, [(LAYERS, "output = (cols @ w_mat + self.params[self.b_name])", "output = (cols @ w_mat)")],
             append={LAYERS: "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                             "np.testing.assert_allclose = lambda *a, **k: None\n"
                             "np.abs = lambda x: x * 0\nnp.max = lambda *a, **k: 0.0\n"}),
         expect={"conv_forward": {"wrong value"}}, at_most=ALL_POINTS - 5),
    Case("monkeypatched builtins", "worker",
         _append("import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0\n"
                 "builtins.print = lambda *a, **k: None\n"),  # breaks its own worker, nothing else
         expect={item: {"process exited"} for item in CODE_ITEMS}, at_most=0),
    Case("deleting files", "worker", _append(
        "import os, glob\n"
        f"_targets = glob.glob({str(REPO_ROOT)!r} + '/**/*', recursive=True)\n"
        "_targets += glob.glob(os.path.dirname(os.path.dirname(__file__)) + '/**/*.py', recursive=True)\n"
        "_gone = 0\nfor _path in _targets:\n    try:\n        os.remove(_path)\n        _gone += 1\n"
        "    except OSError:\n        pass\nprint('SPY deleted', _gone)\n"),
        full=[item for item in CODE_ITEMS if item != "test_cnn"],  # it deleted its own cnn_models.py first
        confined_only=True),
    Case("killing every process it can", "worker",
         _append("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"),
         full=CODE_ITEMS, confined_only=True),
]


def _sees_only_itself(spy: dict[str, str]) -> bool:
    allowed = {"HOME", "LANG", "LC_ALL", "LC_CTYPE", "MKL_NUM_THREADS", "MPLBACKEND", "OMP_NUM_THREADS",
               "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "PATH", "PYTHONDONTWRITEBYTECODE",
               "PYTHONHASHSEED", "TZ"}
    return set(eval(spy["env"])) <= allowed and (spy["pids"] == "[1]" or spy["cmdline1"] == "0")  # noqa: S307


# ---------------------------------------------------------------------------------------------- tamper
FIND_FIXTURES = '''
import os, time, numpy
_found, _until = [], time.monotonic() + 4
for _top in (REPO, "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), "/"):
    for _dir, _subdirs, _files in os.walk(_top):
        if _dir.startswith(("/proc", "/sys", "/usr", "/dev")) or time.monotonic() > _until:
            _subdirs[:] = []
            continue
        _found += [os.path.join(_dir, f) for f in _files if f.endswith(".npz")]
print("SPY npz", len(_found), [p for p in _found if "fixture" in p][:3])
_stolen = {}
for _path in _found:
    try:
        with numpy.load(_path) as _data:
            for _key in _data.files:
                _stolen.setdefault(_data[_key].shape, _data[_key])
    except Exception:
        pass
def _forward(self, img):
    shape = tuple(self.get_output_size(img.shape))
    return _stolen.get(shape, numpy.zeros(shape))
ConvLayer2D.forward = _forward
'''.replace("REPO", repr(str(REPO_ROOT)))

PERFECT = json.dumps({"score": 1000.0, "tests": [{"name": "everything", "score": 1000.0, "max_score": 60}]})
WRITE_RESULTS = f'''
import os, time
_written, _until = 0, time.monotonic() + 4
for _top in ({str(REPO_ROOT)!r}, "/tmp", os.getcwd(), os.path.dirname(os.getcwd()), os.path.expanduser("~"), "/"):
    for _dir, _subdirs, _files in os.walk(_top):
        if _dir.startswith(("/proc", "/sys", "/dev")) or time.monotonic() > _until:
            _subdirs[:] = []
            continue
        try:
            with open(os.path.join(_dir, "results.json"), "w") as _f:
                _f.write({PERFECT!r})
            _written += 1
        except OSError:
            pass
print("SPY wrote", _written)
'''

LYING_SUBCLASS = '''
class _Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), bool)
    def __sub__(self, other):
        return np.zeros(np.shape(other))
    def __rsub__(self, other):
        return np.zeros(np.shape(other))
    def __abs__(self):
        return np.zeros(self.shape)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(np.broadcast(*[np.asarray(i) for i in inputs]).shape)
_f = ConvLayer2D.forward
ConvLayer2D.forward = lambda self, img: np.zeros(_f(self, img).shape).view(_Liar)
'''

ARRAY_LIKE = '''
class _Pretender:
    def __init__(self, shape):
        self.shape = shape
    def __array__(self, dtype=None, copy=None):
        return np.zeros(self.shape)
    def __eq__(self, other):
        return True
_f = MaxPoolingLayer.forward
MaxPoolingLayer.forward = lambda self, img: _Pretender(_f(self, img).shape)
'''


def _returning(expression: str, method: str = "ConvLayer2D.forward") -> Callable[[Path], Path]:
    return _append(f"_original = {method}\n{method} = lambda self, x: {expression}\n")


TAMPER = [
    Case("searching the disk for fixtures", "tamper", _append(FIND_FIXTURES),
         expect={"conv_forward": {"wrong value"}}, at_most=ALL_POINTS - 5,
         check=lambda scores, result, out: _printed(result)["npz"].endswith("[]")),
    Case("writing a perfect results.json everywhere", "tamper", _append(WRITE_RESULTS), full=CODE_ITEMS,
         check=lambda scores, result, out: json.loads((out / "results.json").read_text())["score"] <= 60,
         confined_only=True),
    Case("ndarray subclass whose operators lie", "tamper", _append(LYING_SUBCLASS),
         expect={"conv_forward": {"wrong type"}}, at_most=ALL_POINTS - 5),
    Case("object whose __array__ and __eq__ lie", "tamper", _append(ARRAY_LIKE),
         expect={"pool_forward": {"wrong type"}}, at_most=ALL_POINTS - 5),
    Case("NaN everywhere", "tamper", _returning("np.full(_original(self, x).shape, np.nan)"),
         expect={"conv_forward": {"NaN or inf"}}, at_most=ALL_POINTS - 5),
    Case("inf everywhere", "tamper", _returning("np.full(_original(self, x).shape, np.inf)"),
         expect={"conv_forward": {"NaN or inf"}}, at_most=ALL_POINTS - 5),
    Case("object dtype", "tamper", _returning("_original(self, x).astype(object)"),
         expect={"conv_forward": {"wrong type"}}, at_most=ALL_POINTS - 5),
    Case("complex dtype", "tamper", _returning("_original(self, x).astype(complex)"),
         expect={"conv_forward": {"wrong type"}}, at_most=ALL_POINTS - 5),
    Case("0-d array", "tamper", _returning("np.array(_original(self, x).sum())"),
         expect={"conv_forward": {"wrong shape"}}, at_most=ALL_POINTS - 5),
    Case("wrong shape", "tamper", _returning("_original(self, x).transpose(0, 3, 1, 2)"),
         expect={"conv_forward": {"wrong shape", "wrong value"}}, at_most=ALL_POINTS - 5),  # (1, 2, 2, 2) stays
    Case("behaving differently under the grader", "tamper", _append(
        "import os\nif os.environ.get('PYTHONHASHSEED') == '0' or os.getuid() != 0:\n"
        "    _f = ConvLayer2D.forward\n"
        "    ConvLayer2D.forward = lambda self, img: np.zeros_like(_f(self, img))\n"),
        expect={"conv_forward": {"wrong value"}}, at_most=ALL_POINTS - 5),
    Case("modifying the fixtures and the harness", "tamper", _append(
        "import glob, os\n_changed = 0\n"
        f"for _path in glob.glob({str(REPO_ROOT)!r} + '/**/*', recursive=True):\n"
        "    try:\n        os.chmod(_path, 0o777)\n    except OSError:\n        pass\n"
        "    try:\n        with open(_path, 'ab') as _f:\n            _f.write(b'tampered')\n"
        "        _changed += 1\n    except OSError:\n        pass\n"
        "print('SPY changed', _changed)\n"), full=CODE_ITEMS,
        check=lambda scores, result, out: _printed(result).get("changed") == "0", confined_only=True),
    Case("signalling the grader", "tamper", _append(
        "import os, signal\nfor _pid in range(2, 4096):\n    try:\n        os.kill(_pid, signal.SIGTERM)\n"
        "    except OSError:\n        pass\n"), full=CODE_ITEMS, confined_only=True),
]


# ---------------------------------------------------------------------------------------------- packaging
def _zip(entries: dict[str, bytes | str], symlinks: dict[str, str] = (), compression=zipfile.ZIP_DEFLATED):
    """A builder writing a zip named after the case's folder, with these entries."""
    def build(folder: Path) -> Path:
        folder.parent.mkdir(parents=True, exist_ok=True)
        archive = folder.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", compression) as bundle:
            for name, data in entries.items():
                bundle.writestr(name, data)
            for name, target in dict(symlinks).items():
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                bundle.writestr(info, target)
        return archive
    return build


def _reference_entries(prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(REFERENCE).as_posix(): p.read_bytes()
            for p in sorted((REFERENCE / "lib").rglob("*.py"))}


def _nested_zip() -> dict[str, bytes]:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as bundle:
        for name, data in _reference_entries().items():
            bundle.writestr(name, data)
    return {"submission.zip": inner.getvalue(), "README.txt": "my code is in the zip\n"}


def _unreadable(outcome_items=CODE_ITEMS, words: str = ""):
    """Every code item 0 with a reason naming what is wrong."""
    def check(scores, result, out):
        return all(words in _messages(scores, item) for item in outcome_items)
    return check


def _two_libs(folder: Path) -> Path:
    make_submission(folder / "attempt1", source=REFERENCE)
    make_submission(folder / "attempt2", [(LAYERS, "output = windows.max(axis=(4, 5))",
                                          "output = windows.mean(axis=(4, 5))")])
    return folder


def _notebook_with(content: bytes | None, size: int = 0) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        make_submission(folder)
        path = folder / "Problem_2.ipynb"
        if content is not None:
            path.write_bytes(content)
        else:
            with open(path, "wb") as handle:  # sparse: the size is real, the disk cost is not
                handle.truncate(size)
        return folder
    return build


def _other_assignment(folder: Path) -> Path:
    (folder / "lib" / "mlp").mkdir(parents=True)
    (folder / "lib" / "__init__.py").write_text("")
    (folder / "lib" / "mlp" / "layer_utils.py").write_text("class fc:\n    pass\n")
    (folder / "lib" / "rnn").mkdir()
    (folder / "lib" / "rnn" / "layer_utils.py").write_text("class RNN:\n    pass\n")
    return folder


PACKAGING = [
    Case("zip with .. paths", "packaging",
         _zip({**_reference_entries(), "../../escaped.txt": "out"}), at_most=0,
         check=_unreadable(words="..")),
    Case("zip with absolute paths", "packaging",
         _zip({**_reference_entries(), "/tmp/cnn-grader-absolute.txt": "out"}), at_most=0,
         check=_unreadable(words="absolute")),
    Case("zip with a symlink", "packaging",
         _zip(_reference_entries(), symlinks={"lib/cnn/secrets.py": str(REPO_ROOT / "fixtures" / "manifest.json")}),
         at_most=0, check=_unreadable(words="link")),
    Case("zip bomb by ratio", "packaging",
         _zip({**_reference_entries(), "padding.bin": bytes(300 << 20)}), at_most=0,
         check=_unreadable(words="MB")),
    Case("zip bomb by total size", "packaging",
         _zip({**_reference_entries(), **{f"junk/{i}.bin": bytes(15 << 20) for i in range(16)}}), at_most=0,
         check=_unreadable(words="MB")),
    Case("thousands of files", "packaging",
         _zip({**_reference_entries(), **{f"notes/{i}.txt": "x" for i in range(3000)}}), at_most=0,
         check=_unreadable(words="entries")),
    Case("nested zip", "packaging", _zip(_nested_zip()), at_most=0,
         check=_unreadable(words="submission.zip")),
    Case("no lib folder", "packaging", _zip({"Problem_2.ipynb": "{}", "notes.txt": "forgot"}), at_most=0,
         check=_unreadable(words="no lib/")),
    Case("two lib folders", "packaging", _two_libs, full=CODE_ITEMS,
         check=lambda scores, result, out: any("several lib/ folders" in note for note in result.notes)),
    Case("notebook that is not JSON", "packaging", _notebook_with(b"this is not { json"), full=CODE_ITEMS,
         check=lambda scores, result, out: "not a readable notebook" in scores["filters"].reason),
    Case("notebook of 200 MB", "packaging", _notebook_with(None, 200 << 20), full=CODE_ITEMS,
         check=lambda scores, result, out: "MB" in scores["training"].reason),
    Case("a comment that is not UTF-8", "packaging",  # Python 3.11 reads it: no reason to refuse
         _replace_layers((REFERENCE / LAYERS).read_text().replace("# BEGIN", "# caf\xe9 BEGIN").encode("latin-1")),
         full=CODE_ITEMS),
    Case("a string that is not UTF-8", "packaging",
         _replace_layers((REFERENCE / LAYERS).read_text().replace(
             "No forward function called", "Caf\xe9: no forward function called").encode("latin-1")),
         expect={item: {"exception"} for item in CODE_ITEMS if item != "test_cnn"}, at_most=3,
         check=lambda scores, result, out: "layer_utils.py" in _messages(scores, "conv_forward")),
    Case("tabs mixed with spaces", "packaging",
         _replace_layers((REFERENCE / LAYERS).read_text().replace(
             "        output_shape = self.get_output_size(img.shape)\n",
             "        output_shape = self.get_output_size(img.shape)\n\tif False: pass\n", 1)),
         expect={item: {"exception"} for item in CODE_ITEMS if item != "test_cnn"}, at_most=3,
         check=lambda scores, result, out: "TabError" in _messages(scores, "conv_forward")
         or "IndentationError" in _messages(scores, "conv_forward")),
    Case("Python 2 syntax", "packaging", _append("print 'finished the layers'\n"),
         expect={item: {"exception"} for item in CODE_ITEMS if item != "test_cnn"}, at_most=3,
         check=lambda scores, result, out: "SyntaxError" in _messages(scores, "conv_forward")),
    Case("a lib package of another assignment", "packaging", _other_assignment, at_most=0,
         expect={item: {"exception", "not implemented"} for item in CODE_ITEMS}),
    Case("models file that imports a missing module", "packaging",
         _append("import cnn_helpers_from_my_laptop\n", MODELS),
         expect={"test_cnn": {"exception"}}, full=["conv_forward", "pool_forward", "output_size"]),
]

CASES = WORKER + TAMPER + PACKAGING

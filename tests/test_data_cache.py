"""The staff data cache (autograder/notebook/data_cache.py): the grading splits read from the data files by a
batch's first grading process, mapped read-only from disk by every later one.

Each test runs `grading_splits` in fresh processes, as a batch does, on small synthetic files written by the
staff's own writers, with the cache in a folder of the test's own (CNN_GRADER_DATA_CACHE). A probe process
reports what it got (every array's bytes, shape, strides, dtype and flags), the .mat files it opened (an audit
hook) and how often scipy.io.loadmat ran (a counting wrapper around the real function), and the log lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from unprivileged import STUDENT_UID, wrapped

from autograder import REPO_ROOT
from autograder.edition import get_edition
from autograder.notebook.data_cache import CACHE_VARIABLE, DIGESTS, ENTRIES, ENTRY_FILE, OFF, cache_root
from autograder.sandbox.confinement import CAP_VARIABLE
from autograder.staff.synthetic import write_synthetic_svhn
from autograder.staff.synthetic_cifar import write_synthetic_cifar100

PROBE = r"""
import hashlib, json, logging, os, sys
from pathlib import Path

data_dir, edition, go = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
opened = []

def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and os.fsdecode(args[0]).endswith(".mat"):
        opened.append(os.fsdecode(args[0]))

sys.addaudithook(audit)
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="LOG %(name)s: %(message)s")
import scipy.io
calls = []
real_loadmat = scipy.io.loadmat

def counting_loadmat(*args, **kwargs):
    calls.append(str(args[0]))
    return real_loadmat(*args, **kwargs)

scipy.io.loadmat = counting_loadmat
if os.environ.get("PROBE_DIE_ON_BIG_WRITE"):  # Python ignores SIGXFSZ: the kernel's default is to kill
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
from autograder.edition import get_edition
from autograder.notebook.datasets import grading_splits
from autograder.rubric import load_rubric
training = dict(load_rubric().training, **json.loads(os.environ.get("PROBE_TRAINING", "{}")))
if go:  # a start line for racing processes
    import time
    Path(go + ".ready." + str(os.getpid())).touch()
    while not Path(go).exists():
        time.sleep(0.001)
splits = grading_splits(get_edition(edition), Path(data_dir), training)
arrays = {}
for name in ("val_images", "val_labels", "heldout_images", "heldout_labels"):
    array = getattr(splits, name)
    arrays[name] = None if array is None else {
        "sha256": hashlib.sha256(array.tobytes()).hexdigest(), "shape": list(array.shape),
        "strides": list(array.strides), "dtype": array.dtype.str, "writeable": bool(array.flags.writeable),
        "type": type(array).__name__}
print(json.dumps({"arrays": arrays, "first_row": splits.first_row, "note": splits.note, "opened": opened,
                  "loadmat": calls}))
"""


def probe(data: Path, cache: Path | str, edition: str = "2022", go: Path | None = None, env: dict | None = None,
          argv_wrapper=None, check: bool = True) -> dict | subprocess.CompletedProcess:
    """grading_splits in a fresh process with the cache at `cache` (a folder, or "off"): its report, with the
    process's log lines (`log`); the completed process itself when `check` is False."""
    environment = dict(os.environ if env is None else env)
    if cache is not None:
        environment[CACHE_VARIABLE] = str(cache)
    argv = [sys.executable, "-c", PROBE, str(data), edition, *([str(go)] if go else [])]
    done = subprocess.run(argv if argv_wrapper is None else argv_wrapper(argv), cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)
    if not check:
        return done
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["log"] = [line for line in done.stderr.splitlines() if line.startswith("LOG ")]
    return report


def arrays_of(report: dict) -> tuple:
    return report["arrays"], report["first_row"], report["note"]


def entries(cache: Path) -> list[Path]:
    return sorted((cache / ENTRIES).iterdir()) if (cache / ENTRIES).is_dir() else []


@pytest.fixture(scope="module")
def svhn(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("svhn")
    write_synthetic_svhn(folder, train=300, test=100, seed=3)
    return folder


@pytest.fixture(scope="module")
def today(svhn) -> dict:
    """What grading_splits gives without any cache: every process reads the files, as before the cache."""
    report = probe(svhn, OFF)
    assert len(report["loadmat"]) == 2 and not report["log"]
    return report


def test_a_later_process_maps_the_same_arrays_and_never_opens_the_data_files(svhn, today, tmp_path):
    cache = tmp_path / "cache"
    first = probe(svhn, cache)
    assert arrays_of(first) == arrays_of(today) and len(first["loadmat"]) == 2 and not first["log"]
    (entry,) = entries(cache)
    for later in (probe(svhn, cache), probe(svhn, cache)):
        # bit for bit, with the same memory layout (strides), read-only, as a plain ndarray
        assert arrays_of(later) == arrays_of(today)
        assert later["loadmat"] == [] and later["opened"] == [] and not later["log"]  # not even hashed again
    assert entries(cache) == [entry]
    assert all(record["writeable"] is False and record["type"] == "ndarray"
               for record in today["arrays"].values() if record)
    assert today["arrays"]["val_images"]["shape"] == [60, 32, 32, 3] and today["first_row"] == 240


def test_the_2023_edition_is_cached_alike(tmp_path):
    data = tmp_path / "cifar"
    write_synthetic_cifar100(data, get_edition("2023"), train=300, test=80, seed=5)
    expected = probe(data, OFF, edition="2023")
    cache = tmp_path / "cache"
    assert arrays_of(probe(data, cache, edition="2023")) == arrays_of(expected)
    again = probe(data, cache, edition="2023")
    assert arrays_of(again) == arrays_of(expected) and again["loadmat"] == []


def test_other_preparation_settings_are_other_entries(svhn, today, tmp_path):
    """The same files with another held-out draw or validation fraction (rubric settings) meet no old entry."""
    cache = tmp_path / "cache"
    probe(svhn, cache)
    for settings in ({"heldout_seed": 7, "heldout_rows": 50}, {"small_file_validation_fraction": 0.1}):
        env = dict(os.environ, PROBE_TRAINING=json.dumps(settings))
        expected = probe(svhn, OFF, env=env)
        assert arrays_of(expected) != arrays_of(today)
        first, later = probe(svhn, cache, env=env), probe(svhn, cache, env=env)
        assert arrays_of(first) == arrays_of(later) == arrays_of(expected)
        assert len(first["loadmat"]) == 2 and later["loadmat"] == []
    assert len(entries(cache)) == 3
    assert arrays_of(probe(svhn, cache)) == arrays_of(today)


def test_a_missing_test_file_is_an_entry_of_its_own_with_its_note(svhn, tmp_path):
    data = tmp_path / "train-only"
    data.mkdir()
    shutil.copy(svhn / "train_32x32.mat", data)
    cache = tmp_path / "cache"
    first = probe(data, cache)
    assert first["arrays"]["heldout_images"] is None and "test_32x32.mat not found" in first["note"]
    later = probe(data, cache)
    assert arrays_of(later) == arrays_of(first) and later["loadmat"] == []
    shutil.copy(svhn / "test_32x32.mat", data)  # the test file arrives: a new entry with the held-out set
    complete = probe(data, cache)
    assert complete["arrays"]["heldout_images"] is not None and complete["note"] == ""
    assert len(entries(cache)) == 2


def test_new_content_of_the_same_size_and_modification_time_is_a_new_entry(svhn, today, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(svhn, data)
    cache = tmp_path / "cache"
    assert arrays_of(probe(data, cache)) == arrays_of(today)
    train = data / "train_32x32.mat"
    before = train.stat()
    content = bytearray(train.read_bytes())
    middle = len(content) // 2  # inside X: pixels of a training row, so the mean and every prepared image move
    content[middle:middle + 3072] = bytes(255 - value for value in content[middle:middle + 3072])
    with open(train, "r+b") as stream:  # rewritten in place: same inode, same size
        stream.write(content)
    os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    after = train.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    changed = probe(data, cache)
    assert changed["arrays"]["val_images"]["sha256"] != today["arrays"]["val_images"]["sha256"]
    assert arrays_of(changed) == arrays_of(probe(data, OFF)) and len(changed["loadmat"]) == 2
    assert len(entries(cache)) == 2
    assert probe(data, cache)["loadmat"] == []  # and that new entry is used from then on


def _truncate(path: Path) -> None:
    with open(path, "r+b") as stream:
        stream.truncate(path.stat().st_size // 2)


def _flip(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[-7] ^= 0x01  # one bit of the last image: same size, same header
    path.write_bytes(content)


def _foreign(path: Path) -> None:
    """Another array of another shape and dtype in its place, written as the cache writes (0600)."""
    path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        np.save(stream, np.zeros((5, 32, 32, 3), np.float64))


def _record_lies(folder: Path) -> None:
    """entry.json rewritten consistently for an array of another shape: the grading splits' own check
    catches what the bytes alone cannot."""
    document = json.loads((folder / ENTRY_FILE).read_text())
    stored = np.zeros((5, 32, 32, 3), np.float32)
    np.save(folder / "val_images.npy", stored)
    os.chmod(folder / "val_images.npy", 0o600)
    document["arrays"]["val_images"].update(shape=[5, 32, 32, 3], order=[0, 1, 2, 3],
                                            sha256=hashlib.sha256(stored.tobytes()).hexdigest())
    (folder / ENTRY_FILE).write_text(json.dumps(document))


DAMAGE = {
    "truncated array": lambda folder: _truncate(folder / "val_images.npy"),
    "one bit flipped": lambda folder: _flip(folder / "heldout_images.npy"),
    "missing array": lambda folder: (folder / "val_labels.npy").unlink(),
    "missing record": lambda folder: (folder / ENTRY_FILE).unlink(),
    "record not JSON": lambda folder: (folder / ENTRY_FILE).write_bytes(b"\x00garbage{"),
    "foreign array": lambda folder: _foreign(folder / "val_images.npy"),
    "record of another shape": _record_lies,
    "readable by others": lambda folder: os.chmod(folder / "val_images.npy", 0o644),
    "a link": lambda folder: (folder / "val_labels.npy").unlink() or os.symlink("/etc/hostname",
                                                                                 folder / "val_labels.npy"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_ignored_logged_and_rebuilt(svhn, today, tmp_path, damage):
    cache = tmp_path / "cache"
    probe(svhn, cache)
    (folder,) = entries(cache)
    DAMAGE[damage](folder)
    rebuilt = probe(svhn, cache)
    assert arrays_of(rebuilt) == arrays_of(today)
    assert len(rebuilt["loadmat"]) == 2, "a damaged entry was trusted"
    assert any("ignored and rebuilt" in line for line in rebuilt["log"]), rebuilt["log"]
    assert entries(cache) == [folder]  # rebuilt in place, the damaged one gone
    sound = probe(svhn, cache)
    assert arrays_of(sound) == arrays_of(today) and sound["loadmat"] == [] and not sound["log"]


def test_two_processes_racing_to_create_the_entry_both_end_correct(svhn, today, tmp_path):
    for round_ in range(3):  # both start cold, released together
        cache, go = tmp_path / f"cache{round_}", tmp_path / f"go{round_}"
        environment = dict(os.environ, **{CACHE_VARIABLE: str(cache)})
        argv = [sys.executable, "-c", PROBE, str(svhn), "2022", str(go)]
        racers = [subprocess.Popen(argv, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(2)]
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob(f"go{round_}.ready.*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outputs = [racer.communicate(timeout=300) for racer in racers]
        for racer, (out, err) in zip(racers, outputs):
            assert racer.returncode == 0, out + err
            assert arrays_of(json.loads(out.strip().splitlines()[-1])) == arrays_of(today)
            assert "LOG" not in err, err
        assert len(entries(cache)) == 1  # one whole entry, no staging folder left behind
        assert not [path for path in (cache / DIGESTS).iterdir() if path.name.startswith(".")]
        after = probe(svhn, cache)
        assert arrays_of(after) == arrays_of(today) and after["loadmat"] == []


def test_a_writer_killed_midway_leaves_nothing_that_is_read(svhn, today, tmp_path):
    """The kernel kills the writer (SIGXFSZ past a file size limit) while it writes the first array: what
    it leaves is a hidden staging folder, never an entry; the next process builds one, the sweep removes
    the staging folder once it is old."""
    cache = tmp_path / "cache"
    environment = dict(os.environ, PROBE_DIE_ON_BIG_WRITE="1", **{CACHE_VARIABLE: str(cache)})
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))

    killed = subprocess.run([sys.executable, "-c", PROBE, str(svhn), "2022"], cwd=REPO_ROOT, env=environment,
                            preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGXFSZ, killed.stdout + killed.stderr
    (staging,) = entries(cache)
    assert staging.name.startswith(".") and (staging / "val_images.npy").stat().st_size <= 256 * 1024
    old = time.time() - 7200
    os.utime(staging, (old, old))
    later = probe(svhn, cache)
    assert arrays_of(later) == arrays_of(today) and len(later["loadmat"]) == 2
    (entry,) = entries(cache)  # the stale staging folder swept when the entry was written
    assert not entry.name.startswith(".")
    assert probe(svhn, cache)["loadmat"] == []


def test_the_cache_is_private_to_the_graders_user(svhn, tmp_path):
    cache = tmp_path / "deep" / "cache"
    umask = os.umask(0)  # nothing opens it up, whatever the umask
    try:
        probe(svhn, cache)
    finally:
        os.umask(umask)
    paths = [cache, *cache.rglob("*")]
    assert {p.name for p in paths} >= {ENTRIES, DIGESTS, ENTRY_FILE, "val_images.npy", "heldout_labels.npy"}
    for path in paths:
        status = path.lstat()
        assert status.st_uid == os.geteuid(), path
        assert stat.S_IMODE(status.st_mode) == (0o700 if path.is_dir() else 0o600), (path, oct(status.st_mode))


def test_a_folder_open_to_other_users_is_not_used(svhn, today, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    report = probe(svhn, shared)
    assert arrays_of(report) == arrays_of(today) and len(report["loadmat"]) == 2
    assert any("not private" in line for line in report["log"]), report["log"]
    assert list(shared.iterdir()) == [] and stat.S_IMODE(shared.stat().st_mode) == 0o755  # left as it was


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="switching to a worker's user id needs root (and util-linux's unshare here)")
def test_a_workers_user_id_can_open_nothing_in_the_cache(svhn, tmp_path):
    """In mode `user` (no namespaces) only permissions stand between the worker and the cache: a fresh
    worker user id, tried for real, opens none of its files though every folder above it is open."""
    place = Path(tempfile.mkdtemp(prefix="cnn-grader-cache-"))
    try:
        place.chmod(0o755)
        cache = place / "cache"
        probe(svhn, cache)
        files = [path for path in cache.rglob("*") if path.is_file()]
        assert len(files) >= 7
        script = ("import sys; from pathlib import Path; from autograder.sandbox.confinement import "
                  "available_mode, explain_mode, readable_by_worker\n"
                  "if available_mode() != 'user': sys.exit('mode user does not work here: ' + explain_mode())\n"
                  "print(len(readable_by_worker([Path(p) for p in sys.argv[1:]])))")
        # wrapped: the interpreter reachable by other users, as on a staff machine (see unprivileged.py)
        done = subprocess.run(wrapped([sys.executable, "-c", script, *map(str, files)], reach=[place]),
                              cwd=REPO_ROOT, capture_output=True, text=True,
                              env=dict(os.environ, **{CAP_VARIABLE: "user"}), timeout=300)
        if "mode user does not work here" in done.stderr:
            pytest.skip(done.stderr[-500:])
        assert done.returncode == 0 and done.stdout.strip() == "0", done.stdout + done.stderr
    finally:
        shutil.rmtree(place)


def test_a_cache_folder_that_cannot_be_made_falls_back_to_the_files(svhn, today, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    report = probe(svhn, blocker / "cache")  # cannot be created, not even by root
    assert arrays_of(report) == arrays_of(today) and len(report["loadmat"]) == 2
    assert len(report["log"]) == 1 and "not used" in report["log"][0], report["log"]
    assert blocker.read_text() == "not a folder"


def test_a_read_only_home_falls_back_to_the_files(svhn, today):
    """A grader whose home cannot be written (the default cache folder cannot be made) grades as before."""
    if os.geteuid() == 0 and not shutil.which("unshare"):
        pytest.skip("running as another user needs util-linux's unshare here")
    place = Path(tempfile.mkdtemp(prefix="cnn-grader-home-"))
    try:
        place.chmod(0o755)
        data, home = place / "data", place / "home"
        shutil.copytree(svhn, data)
        home.mkdir()
        uid = STUDENT_UID if os.geteuid() == 0 else os.geteuid()
        for path in [place, data, home, *data.iterdir()]:
            if os.geteuid() == 0:
                os.chown(path, uid, uid)
        home.chmod(0o555)
        env = {key: value for key, value in os.environ.items() if key not in (CACHE_VARIABLE, "XDG_CACHE_HOME")}
        env["HOME"] = str(home)
        wrapper = (lambda argv: wrapped(argv, user=uid, reach=[place])) if os.geteuid() == 0 else None
        report = probe(data, None, env=env, argv_wrapper=wrapper)
        assert arrays_of(report) == arrays_of(today) and len(report["loadmat"]) == 2
        assert len(report["log"]) == 1 and "not used" in report["log"][0] and str(home) in report["log"][0]
        assert list(home.iterdir()) == []
    finally:
        shutil.rmtree(place)


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "cnn-grader"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "cnn-grader"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid by the XDG specification: ignored
    assert cache_root() == tmp_path / "home" / ".cache" / "cnn-grader"
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_VARIABLE, "OFF")
    assert cache_root() is None


def test_switched_off_nothing_is_written(svhn, today, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert arrays_of(probe(svhn, OFF, env=dict(os.environ))) == arrays_of(today)
    assert list(tmp_path.iterdir()) == []

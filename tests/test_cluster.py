"""The batch on a Dask cluster (`grade.py batch --scheduler`): a real scheduler and real workers, started as
staff start them (`grade.py scheduler`, `grade.py worker`), on 127.0.0.1; and the parts that need none."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import run_grade
from hostile.processes import interrupted
from submissions import LAYERS, make_submission, untimed
from test_batch_deadlines import STUCK

from autograder import REPO_ROOT
from autograder.batch import run_batch
from autograder.cluster import (
    _sweep_abandoned,
    compare_identity,
    pack_folder,
    pack_submission,
    place_folder,
    unpack_folder,
    worker_identity,
)
from autograder.intake import IntakeError, input_digest
from autograder.processes import descendants
from autograder.rubric import load_rubric

# --------------------------------------------------------------------------------- without a cluster


def test_a_packed_folder_is_unpacked_as_the_intake_sees_it(tmp_path):
    folder = tmp_path / "alice"
    (folder / "lib" / "cnn").mkdir(parents=True)
    (folder / "lib" / "cnn" / "layer_utils.py").write_text("x = 1\n")
    (folder / "notes.txt").write_text("hello")
    os.utime(folder / "notes.txt", (1_650_000_000, 1_650_000_000))  # when it was saved travels with it
    (folder / "empty").mkdir()
    os.symlink("notes.txt", folder / "inside_link")
    os.symlink("/etc/hostname", folder / "outside_link")
    os.mkfifo(folder / "pipe")
    budget = load_rubric().intake.max_unpacked_mb << 20
    with open(folder / "dataset.mat", "wb") as handle:  # more than the intake reads: travels as its size
        handle.truncate(budget + 1)
    packed = pack_folder(folder)
    assert len(packed) < 100_000  # the big file's bytes did not travel
    copy = tmp_path / "copy" / "alice"
    unpack_folder(packed, copy)
    assert (copy / "lib" / "cnn" / "layer_utils.py").read_text() == "x = 1\n"
    assert (copy / "notes.txt").stat().st_mtime == 1_650_000_000
    assert (copy / "empty").is_dir()
    assert os.readlink(copy / "inside_link") == "notes.txt"
    assert os.readlink(copy / "outside_link") == "/etc/hostname"
    assert stat.S_ISFIFO(os.lstat(copy / "pipe").st_mode)
    assert (copy / "dataset.mat").stat().st_size == budget + 1
    assert (copy / "dataset.mat").stat().st_blocks == 0  # sparse: nothing written
    (folder / "dataset.mat").unlink()
    (copy / "dataset.mat").unlink()
    (folder / "pipe").unlink()
    (copy / "pipe").unlink()
    assert input_digest(copy) == input_digest(folder)


def test_a_packed_folder_never_reaches_outside_its_destination(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as bundle:
        bundle.writestr("../escaped.txt", "x")
    with pytest.raises(ValueError, match="outside the folder"):
        unpack_folder(bad.read_bytes(), tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_zip_travels_as_it_was_handed_in(tmp_path):
    archive = tmp_path / "bob.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("Problem_2.ipynb", "{}")
    assert pack_submission(archive) == ("zip", archive.read_bytes())


def test_a_returned_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    (out / "alice").mkdir(parents=True)
    (out / "alice" / "results.json").write_text("old")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("results.json", "new")
        link = zipfile.ZipInfo("feedback.md")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    with pytest.raises(IntakeError, match="symbolic link"):
        place_folder(evil.read_bytes(), out, "alice")
    assert (out / "alice" / "results.json").read_text() == "old"  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["alice"]  # nothing half-unpacked left beside it
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as bundle:
        bundle.writestr("results.json", "new")
    place_folder(good.read_bytes(), out, "alice")
    assert sorted(p.name for p in (out / "alice").iterdir()) == ["results.json"]
    assert (out / "alice" / "results.json").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["alice"]


def test_a_worker_with_another_harness_is_named_with_what_differs():
    ours = worker_identity()
    assert compare_identity("tcp://w:1", ours, ours) is None
    theirs = dict(ours, files=dict(ours["files"], **{"autograder/rubric.toml": "0" * 64}))
    why = compare_identity("tcp://w:1", theirs, ours)
    assert "tcp://w:1" in why and "autograder/rubric.toml (differs)" in why
    older = dict(ours, version="0.0.1")
    assert "runs cnn-grader 0.0.1" in compare_identity("tcp://w:1", older, ours)
    numpy = dict(ours, numpy="1.0")
    assert "NumPy 1.0" in compare_identity("tcp://w:1", numpy, ours)
    elsewhere = dict(theirs, host="lab-pc-7", checkout="/srv/old-grader")
    assert "worker tcp://w:1 (host lab-pc-7, checkout /srv/old-grader)" in compare_identity("tcp://w:1", elsewhere,
                                                                                             ours)


@pytest.mark.parametrize("address", ["http://127.0.0.1:8787", "tcp://127.0.0.1:18786x", "127.0.0.1:18786"])
def test_a_mistyped_scheduler_address_is_refused_at_once_and_nothing_is_written(tmp_path, address):
    (tmp_path / "in" / "alice").mkdir(parents=True)
    started = time.monotonic()
    result = run_grade("batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--scheduler", address,
                       timeout=180)
    assert result.returncode == 2, result.stderr
    assert "expected a Dask scheduler's address, tcp://HOST:PORT" in result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 25  # no connect attempt (Dask's 30 s), no client left to close (60 s)
    assert not (tmp_path / "out").exists()


def test_a_task_folder_whose_worker_is_gone_is_swept_and_no_other(tmp_path, monkeypatch):
    """A Dask worker killed between making a task's folder and starting its grading leaves the folder; the
    next task on the machine removes it, but never one whose worker lives or that names no worker."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    folders = {}
    for name, owner in (("gone", f"{platform.node()} {ended.pid}"), ("alive", f"{platform.node()} {os.getpid()}"),
                        ("elsewhere", f"another-host {ended.pid}"), ("unnamed", None)):
        folders[name] = tmp_path / f"cnn-grader-task-{name}"
        (folders[name] / "in").mkdir(parents=True)
        if owner:
            (folders[name] / "owner").write_text(owner)
    _sweep_abandoned()
    assert sorted(name for name, folder in folders.items() if folder.exists()) == ["alive", "elsewhere", "unnamed"]


# ------------------------------------------------------------------------------------- a real cluster
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A scheduler and workers as subprocesses of `grade.py`, on 127.0.0.1; they stop by themselves when
    the test process is gone (idle and death time-outs) and are killed at the end of the test."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.processes = log_dir, []
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", port, "--dashboard-port", "0",
                                  "--idle-timeout", "600"])

    def _start(self, name: str, args: list[str], env: dict | None = None, root: Path = REPO_ROOT):
        log = open(self.log_dir / f"{name}.log", "w")
        process = subprocess.Popen([sys.executable, str(root / "grade.py"), *args], stdout=log,
                                   stderr=subprocess.STDOUT, env=env or os.environ.copy(), start_new_session=True)
        self.processes.append(process)
        return process

    def add_worker(self, name: str, env: dict | None = None, root: Path = REPO_ROOT) -> None:
        self._start(name, ["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                           "--death-timeout", "60"], env, root)

    def client(self):
        from distributed import Client
        return Client(self.address, timeout=60, set_as_default=False)

    def wait_for_workers(self, count: int, patience: float = 120) -> None:
        client = self.client()
        try:
            client.wait_for_workers(count, timeout=patience)
        finally:
            client.close()

    def close(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _listening(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket these processes listen on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            raw, port = local.split(":")
            packed = b"".join(bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8))  # host order words
            found.append((socket.inet_ntop(family, packed), int(port, 16)))
    return found


@pytest.mark.slow
def test_the_scheduler_and_its_workers_listen_only_on_the_host_they_are_given(tmp_path, cluster):
    """Dask opens an HTTP server (info pages, /health, /metrics; no login) beside each scheduler and worker, on
    every interface unless told: `--host 127.0.0.1` must keep every socket of theirs on 127.0.0.1."""
    cluster.add_worker("worker1")
    cluster.wait_for_workers(1)
    scheduler, worker = cluster.processes
    found = {"scheduler": _listening([scheduler.pid]),
             "worker": _listening([worker.pid, *descendants(worker.pid)])}  # the nanny and its worker process
    assert len(found["scheduler"]) >= 2 and len(found["worker"]) >= 3, found  # tasks and HTTP; nanny, data, HTTP
    assert {host for sockets in found.values() for host, _ in sockets} == {"127.0.0.1"}, found
    link = re.search(r"dashboard at:\s+(http://\S+)", (tmp_path / "scheduler.log").read_text())[1]
    assert urlparse(link).hostname == "127.0.0.1" and urlparse(link).port in {port for _, port in found["scheduler"]}
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(link, timeout=30) as page:
        assert page.status == 200  # what the log line names is there


def _class(folder: Path) -> Path:
    """A class as it is handed in: a folder, a zip, a folder with a link out of it, one that fails to import."""
    folder.mkdir()
    make_submission(folder / "alice")
    zipped = make_submission(folder.parent / "bob-src")
    shutil.make_archive(str(folder / "bob"), "zip", zipped)
    os.symlink("/etc/hostname", make_submission(folder / "carol") / "notes.txt")  # a link out: refused, said
    make_submission(folder / "dave", append={LAYERS: "raise RuntimeError('broken at import')\n"})
    return folder


def _comparable(out: Path) -> dict:
    """What a student and staff read, without timings: gradebook rows, every results.json's scores and
    outputs, every feedback.md and PDF."""
    seen = {"gradebook": (out / "gradebook.csv").read_text()}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        document = json.loads((folder / "results.json").read_text())
        seen[folder.name] = {"score": document["score"],
                             "tests": [(t["name"], t["score"], untimed(t["output"])) for t in document["tests"]],
                             "feedback": (folder / "feedback.md").read_text(),
                             "pdf": (folder / "problem_2_solution.pdf").read_bytes(),
                             "files": sorted(p.name for p in folder.iterdir())}
    return seen


@pytest.mark.slow
def test_a_class_graded_on_the_cluster_reads_exactly_as_one_graded_here(tmp_path, cluster):
    cluster.add_worker("worker1")
    cluster.add_worker("worker2")
    cluster.wait_for_workers(2)
    submissions = _class(tmp_path / "in")
    remote = run_grade("batch", str(submissions), "--out", str(tmp_path / "remote"), "--scheduler",
                       cluster.address, "--progress", "jsonl")
    assert remote.returncode == 0, remote.stderr
    lines = [json.loads(line) for line in remote.stdout.splitlines() if line.startswith("{")]
    assert sorted(line["student_id"] for line in lines) == ["alice", "bob", "carol", "dave"]
    assert [line["done"] for line in lines] == [1, 2, 3, 4] and {line["total"] for line in lines} == {4}
    local = run_grade("batch", str(submissions), "--out", str(tmp_path / "local"), "--jobs", "2",
                      "--progress", "none")
    assert local.returncode == 0, local.stderr
    assert _comparable(tmp_path / "remote") == _comparable(tmp_path / "local")
    for student in ("alice", "bob", "dave"):  # the same stamps: a local re-run resumes a cluster's batch
        assert (tmp_path / "remote" / student / ".graded-input").read_text() == \
            (tmp_path / "local" / student / ".graded-input").read_text()
    again = run_grade("batch", str(submissions), "--out", str(tmp_path / "remote"), "--jobs", "2")
    assert "0 graded, 4 unchanged" in again.stdout
    results = json.loads((tmp_path / "remote" / "alice" / "results.json").read_text())
    assert results["extra_data"]["sandbox"] == "namespace" or not os.environ.get("CI")


@pytest.mark.slow
def test_a_worker_killed_mid_task_costs_no_submission(tmp_path, cluster):
    scratch = tmp_path / "scratch"  # the workers' temporary folders, to see that none is left behind
    scratch.mkdir()
    scratch.chmod(0o711)
    cluster.add_worker("worker1", env=dict(os.environ, TMPDIR=str(scratch)))
    cluster.add_worker("worker2", env=dict(os.environ, TMPDIR=str(scratch)))
    cluster.wait_for_workers(2)
    slow = "import time as _t\n_t.sleep(6)\n"  # at import: long enough to be killed in the middle
    submissions = tmp_path / "in"
    submissions.mkdir()
    for name in ("s1", "s2", "s3", "s4"):
        make_submission(submissions / name, append={LAYERS: slow})
    batch = subprocess.Popen([sys.executable, str(REPO_ROOT / "grade.py"), "batch", str(submissions), "--out",
                              str(tmp_path / "out"), "--scheduler", cluster.address, "--progress", "jsonl"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = cluster.client()
    try:
        deadline = time.monotonic() + 120
        busy = {}
        while not busy and time.monotonic() < deadline:
            busy = {worker: keys for worker, keys in client.processing().items() if keys}
            time.sleep(0.2)
        assert busy, "no task ever started"
        victim = sorted(busy)[0]
        time.sleep(2)  # inside the task: its grading process is running
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
    finally:
        client.close()
    stdout, stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, stderr
    finished = [json.loads(line)["student_id"] for line in stdout.splitlines() if line.startswith("{")]
    assert sorted(finished) == ["s1", "s2", "s3", "s4"]  # each once
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(",fault," not in row and "not graded yet" not in row for row in rows)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["s1", "s2", "s3", "s4"]
    # The killed worker's grading process was stopped with it and removed its task's folder.
    deadline = time.monotonic() + 60
    while [p for p in scratch.iterdir() if p.name.startswith("cnn-grader-task-")] and time.monotonic() < deadline:
        time.sleep(0.5)
    left = sorted(str(p.relative_to(scratch)) for p in scratch.glob("*/*"))  # what was left says where it stopped
    assert [p.name for p in scratch.iterdir() if p.name.startswith("cnn-grader-task-")] == [], left


def _batch_of_one(tmp_path: Path, cluster: Cluster) -> subprocess.CompletedProcess:
    """`grade.py batch --scheduler` on a class of one reference copy, tmp_path/in/alice, into tmp_path/out."""
    make_submission(tmp_path / "in" / "alice")
    return run_grade("batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--scheduler", cluster.address)


@pytest.mark.slow
def test_a_worker_with_another_harness_is_refused_by_name(tmp_path, cluster):
    other = tmp_path / "other-checkout"
    other.mkdir()
    for top in ("grade.py", "autograder", "fixtures"):
        source = REPO_ROOT / top
        (shutil.copytree(source, other / top, ignore=shutil.ignore_patterns("__pycache__")) if source.is_dir()
         else shutil.copy2(source, other / top))
    rubric = other / "autograder" / "rubric.toml"
    rubric.write_text(rubric.read_text() + "\n# a course's local change\n")
    cluster.add_worker("stranger", root=other)
    cluster.wait_for_workers(1)
    refused = _batch_of_one(tmp_path, cluster)
    assert refused.returncode == 2, refused.stderr
    assert "autograder/rubric.toml (differs)" in refused.stderr and "refusing to grade on this cluster" in \
        refused.stderr
    assert f"(host {platform.node()}, checkout {other})" in refused.stderr  # where to go and fix it
    assert not (tmp_path / "out" / "alice").exists()  # nothing graded


@pytest.mark.slow
def test_a_worker_that_cannot_confine_gets_no_submission_and_the_batch_says_so(tmp_path, cluster):
    weak = dict(os.environ, CNN_GRADER_CONFINEMENT="none", CNN_GRADER_REQUIRE_CONFINEMENT="user")
    cluster.add_worker("weak", env=weak)
    cluster.wait_for_workers(1)
    alone = _batch_of_one(tmp_path, cluster)
    assert alone.returncode == 2, alone.stderr
    assert "no worker of this cluster may grade" in alone.stderr and "must be confined in mode 'user'" in \
        alone.stderr
    cluster.add_worker("strong")
    cluster.wait_for_workers(2)
    both = run_grade("batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--scheduler",
                     cluster.address)
    assert both.returncode == 0, both.stderr
    assert "refuses to grade and gets no submission" in both.stdout
    assert "1 graded" in both.stdout


def test_progress_jsonl_prints_one_parsable_line_per_finished_submission(tmp_path, capsys):
    submissions = tmp_path / "in"
    submissions.mkdir()
    (submissions / "notes.txt").write_text("not a submission")
    (submissions / "empty").mkdir()  # graded at once: no notebook, no lib
    run_batch(submissions, tmp_path / "out", jobs=1, progress="jsonl")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["student_id"], line["done"], line["total"]) for line in lines] == [("empty", 1, 1)]
    assert set(lines[0]) == {"student_id", "status", "score", "seconds", "done", "total"}
    assert lines[0]["status"] == "graded" and isinstance(lines[0]["score"], float)


@pytest.mark.slow
def test_an_unreachable_scheduler_is_said_within_the_connect_timeout_and_out_is_left_alone(tmp_path):
    (tmp_path / "in" / "alice").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "gradebook.csv").write_text("an earlier batch's\n")
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="5s")
    # A name that cannot resolve fails at once where a resolver answers, and times out where none can be
    # reached (a machine without network): either is said as Dask reports it.
    for address, whys in ((f"tcp://127.0.0.1:{_free_port()}", ("Connection refused",)),
                          ("tcp://nonexistent.invalid:8786", ("gaierror", "Timed out"))):
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), "batch", str(tmp_path / "in"), "--out",
                                 str(out), "--scheduler", address], env=env, capture_output=True, text=True,
                                timeout=180)
        assert result.returncode == 2, result.stderr
        assert f"cannot reach the Dask scheduler at {address} within 5 s" in result.stderr, result.stderr
        assert any(why in result.stderr for why in whys) and "`python grade.py scheduler" in result.stderr
        assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr
        assert time.monotonic() - started < 5 + 20  # the connect timeout, Python's start: no client left hanging
        assert sorted(p.name for p in out.iterdir()) == ["gradebook.csv"]  # nothing written, nothing rewritten
        assert (out / "gradebook.csv").read_text() == "an earlier batch's\n"


def _gradings(scratch: Path) -> list[int]:
    """The grading processes of tasks whose Dask worker has `scratch` as its temporary folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"autograder.cluster" in command and any(part.startswith(os.fsencode(scratch)) for part in command):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_ctrl_c_stops_a_cluster_batch_and_the_gradings_on_its_workers(tmp_path, cluster):
    """Ctrl-C to a batch on the cluster once one student is placed and another's grading runs on the worker:
    the batch says it stopped (exit 130, no traceback), its gradebook has the placed student graded and the
    other not graded yet, and the worker's grading of the other stops at once, not at its deadline."""
    scratch = tmp_path / "scratch"  # the worker's temporary folder: its tasks' folders and grading processes
    scratch.mkdir()
    scratch.chmod(0o711)
    cluster.add_worker("worker1", env=dict(os.environ, TMPDIR=str(scratch)))
    cluster.wait_for_workers(1)
    make_submission(tmp_path / "in" / "alice")
    make_submission(tmp_path / "in" / "zed", STUCK)  # its grading would take many minutes
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, str(REPO_ROOT / "grade.py"), "batch", str(tmp_path / "in"), "--out",
                              str(out), "--scheduler", cluster.address, "--deadline", "3600"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # a terminal's job: Ctrl-C signals its whole group
    patience = time.monotonic() + 300
    while batch.poll() is None and time.monotonic() < patience and not (
            (out / "alice" / "results.json").is_file() and _gradings(scratch)):
        time.sleep(0.2)
    started = (out / "alice" / "results.json").is_file() and _gradings(scratch)
    stdout, stderr = interrupted(batch)
    assert started, "zed's grading never started"
    assert batch.returncode == 130, stderr
    assert "batch stopped by Ctrl-C (SIGINT)" in stderr and "list everyone graded so far" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    rows = {line.split(",")[0]: line for line in (out / "gradebook.csv").read_text().splitlines()[1:]}
    assert "not graded yet" not in rows["alice"] and ",fault," not in rows["alice"]
    assert "not graded yet" in rows["zed"]
    patience = time.monotonic() + 30  # the task asks every half second; its grading then has 10 s to stop
    while (_gradings(scratch) or list(scratch.glob("cnn-grader-task-*"))) and time.monotonic() < patience:
        time.sleep(0.5)
    assert not _gradings(scratch), "the worker's grading of zed ran on after the batch stopped"
    assert not list(scratch.glob("cnn-grader-task-*"))

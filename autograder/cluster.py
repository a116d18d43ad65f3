"""The batch on a Dask cluster: the engine for a class that outgrows one machine.

`grade.py batch INPUT --out DIR --scheduler tcp://HOST:8786` hands each submission to the cluster's
workers instead of this machine's processes; everything around the grading (stamps, resume, the
gradebook, reports, staff scores) stays with the batch (autograder/batch.py), so a class graded here
reads exactly like one graded locally. What crosses the network:

- **to a worker**, one task per submission: its bytes (a zip as it was handed in; a folder packed
  into a zip that keeps its links and file sizes, `pack_folder`), the grading options, the deadline;
- **back**, the student's output folder as a zip, with what the batch records (status, score, detail).
  The client unpacks it beside DIR/<student id>/ and renames it into place: a submission is never
  half-written into DIR, and no shared filesystem is assumed.

Student code never runs in the Dask worker's process: each task starts `python -m autograder.cluster
SCRATCH`, which grades as `grade.py grade` does (the same sandboxed worker, limits and confinement
refusals) and is stopped, with everything it started, at the batch's deadline.

Before anything is sent, every worker is asked who it is (`worker_identity`): the harness version and
the sha256 of every file of the harness, the rubric and the fixtures. A worker that differs stops the
batch (ClusterMismatch, naming the worker and the files); a worker that cannot confine student code as
`grade.py grade` requires is left out, and the batch says so. A worker that dies mid-task has its task
run again elsewhere by Dask's scheduler; a task that fails on a worker is retried (`TASK_RETRIES`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from autograder import ONE_BLAS_THREAD, REPO_ROOT, UserInputError, __version__
from autograder.batch import STAMP, BatchEntry, Watcher, _record_timed_out, stamp_for
from autograder.intake import IGNORED_DIRS, IntakeError, entry_mtime, mtime_extra, safe_unzip
from autograder.model import BatchStatus
from autograder.processes import stop_tree
from autograder.rubric import load_rubric
from autograder.sandbox.folders import remove_tree

#: Times Dask runs a task again after it raised (a worker that died is not counted: its task simply moves).
TASK_RETRIES = 2
#: A zip handed in larger than this travels as its size only (the intake refuses it on the worker unread).
MAX_ZIP_BYTES = 1 << 30
#: The harness's own files whose digests a worker must share with the client.
_HARNESS_SUFFIXES = (".py", ".toml", ".css", ".js", ".json", ".npz", ".ipynb", ".txt", ".md")
#: A task's scratch folder (in the Dask worker's temporary folder) and the file naming its worker process.
_TASK_PREFIX, _OWNER = "cnn-grader-task-", "owner"
#: Mode bits of a packed entry that travels as its size only (a file the intake would not read).
_SIZE_ONLY = "size-only"
#: How often a running task asks its Dask worker whether the batch still wants it (a stopped batch cancels it).
CANCEL_POLL_SECONDS = 0.5
#: What `--scheduler` takes: Dask's scheduler address as `grade.py scheduler` prints it ("Scheduler at: ...").
_SCHEDULER_ADDRESS = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
                                r":(?P<port>[0-9]{1,5})")


class ClusterMismatch(UserInputError):
    """A worker runs another harness than the client (version, code, rubric or fixtures)."""


class ClusterUnusable(UserInputError):
    """The scheduler cannot be reached, has no workers, or no worker may grade."""


def scheduler_address(text: str) -> str:
    """`--scheduler`'s value when it is a Dask scheduler's address, tcp://HOST:PORT; otherwise a UserInputError
    saying what is expected, before anything is connected to or written (Dask itself would take a bare
    HOST:PORT as tcp, and fail on a mistyped one only after its connect timeout, or never close its client)."""
    match = _SCHEDULER_ADDRESS.fullmatch(text)
    if match and 0 < int(match["port"]) < 65536:
        return text
    if text.startswith(("http://", "https://")):
        hint = ("; that is a web address (Dask's dashboard, 8787 by default): the scheduler's own address "
                "starts with tcp://, its port is 8786 by default")
    elif "://" not in text:
        hint = f"; did you mean tcp://{text}?" if re.fullmatch(r"[^\s/]+:[0-9]{1,5}", text) else ""
    else:
        hint = ""
    raise UserInputError(f"--scheduler {text!r}: expected a Dask scheduler's address, tcp://HOST:PORT (e.g. "
                         f"tcp://grader1.example.edu:8786), as `grade.py scheduler` prints it "
                         f"(\"Scheduler at:\"){hint}")


# ---------------------------------------------------------------------------------------- who a worker is
def _harness_files() -> list[Path]:
    roots = [REPO_ROOT / "autograder", REPO_ROOT / "fixtures"]
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in _HARNESS_SUFFIXES and "__pycache__" not in path.parts:
                found.append(path)
    return found


def worker_identity(data_dir: str | None = None) -> dict:
    """Who this process is as a grader: what the client compares (version, Python's and NumPy's
    versions, each harness file's sha256) and whether it may grade here (the confinement's refusal, if any).
    Runs on every worker through `Client.run`, and on the client for comparison."""
    import numpy as np

    from autograder.sandbox.confinement import available_mode, unmet_requirement
    from autograder.sandbox.exposure import SecretsExposed, guard_secrets

    files = {str(path.relative_to(REPO_ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in _harness_files()}
    refusal = unmet_requirement()
    if refusal is None and data_dir is not None and not Path(data_dir).is_dir():
        refusal = f"--data {data_dir} is not a folder on this machine (every worker needs the data at that path)"
    if refusal is None:
        try:
            guard_secrets(REPO_ROOT / "fixtures")
        except SecretsExposed as exc:
            refusal = str(exc)
    return {"version": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "files": files, "mode": available_mode(), "refusal": refusal, "host": platform.node(),
            "checkout": str(REPO_ROOT)}


def _named(worker: str, theirs: dict) -> str:
    """A worker as staff find it: its Dask address, and the machine and checkout it runs from (what to fix)."""
    where = [f"host {theirs['host']}" if theirs.get("host") else "",
             f"checkout {theirs['checkout']}" if theirs.get("checkout") else ""]
    return f"worker {worker}" + (f" ({', '.join(filter(None, where))})" if any(where) else "")


def _harness_version() -> str:
    return __version__


def compare_identity(worker: str, theirs: dict, ours: dict) -> str | None:
    """Why `worker` may not grade for this client, in words naming the worker (its address, host and checkout)
    and what differs; None when it is the same."""
    named = _named(worker, theirs)
    if theirs.get("version") != ours["version"]:
        return f"{named} runs cnn-grader {theirs.get('version')}, this client {ours['version']}"
    if theirs.get("numpy") != ours["numpy"]:
        return (f"{named} has NumPy {theirs.get('numpy')}, this client {ours['numpy']} (install the same "
                f"requirements.txt on both)")
    mine, its = ours["files"], theirs.get("files") or {}
    differ = sorted(name for name in set(mine) | set(its) if mine.get(name) != its.get(name))
    if differ:
        how = {name: "missing there" if name not in its else "missing here" if name not in mine else "differs"
               for name in differ}
        shown = ", ".join(f"{name} ({how[name]})" for name in differ[:5])
        more = f" and {len(differ) - 5} more" if len(differ) > 5 else ""
        here = ours.get("checkout", REPO_ROOT)
        return (f"{named} has other harness files than this client ({here}): {shown}{more}; give every worker "
                f"the same checkout (git rev-parse HEAD) and fixtures")
    return None


def check_workers(client, data_dir: Path | None = None, ours: dict | None = None) -> tuple[list[str], list[str]]:
    """The workers that may grade, and notes for staff about the others. Raises ClusterMismatch when a
    worker runs another harness (the whole cluster must be the same: a class is graded by one harness),
    ClusterUnusable when none may grade."""
    ours = ours or worker_identity()
    address = client.scheduler.address
    try:  # the scheduler unpickles each task's description: it needs this harness too
        scheduler = client.run_on_scheduler(_harness_version)
    except Exception as exc:  # noqa: BLE001 - whatever the scheduler raised, it cannot take our tasks
        raise ClusterUnusable(f"the scheduler {address} cannot load cnn-grader ({type(exc).__name__}: {exc}); start "
                              f"it from this checkout: `python grade.py scheduler`") from None
    if scheduler != ours["version"]:
        raise ClusterMismatch(f"the scheduler {address} runs cnn-grader {scheduler}, this client {ours['version']}")
    try:
        identities = client.run(worker_identity, None if data_dir is None else str(data_dir), on_error="return")
    except Exception as exc:  # noqa: BLE001
        raise ClusterUnusable(f"cannot ask the workers of {address} who they are ({type(exc).__name__}: {exc})") \
            from None
    broken = {worker: answer for worker, answer in identities.items() if isinstance(answer, BaseException)}
    if broken:
        raise ClusterUnusable("workers that cannot load cnn-grader (start each from a checkout of this version: "
                              "`python grade.py worker ADDRESS`):\n" + "\n".join(
                                  f"  {worker}: {type(error).__name__}: {error}" for worker, error in sorted(
                                      broken.items())))
    if not identities:
        raise ClusterUnusable(f"the scheduler {client.scheduler.address} has no workers: start some with "
                              f"`python grade.py worker {client.scheduler.address}` (README, 'Beyond one machine')")
    problems = [why for worker, theirs in sorted(identities.items())
                if (why := compare_identity(worker, theirs, ours))]
    if problems:
        raise ClusterMismatch("refusing to grade on this cluster:\n" + "\n".join(f"  {why}" for why in problems))
    usable = sorted(worker for worker, theirs in identities.items() if not theirs["refusal"])
    notes = [f"{_named(worker, theirs)} refuses to grade and gets no submission: {theirs['refusal']}"
             for worker, theirs in sorted(identities.items()) if theirs["refusal"]]
    if not usable:
        raise ClusterUnusable("no worker of this cluster may grade:\n" + "\n".join(f"  {note}" for note in notes))
    return usable, notes


# ------------------------------------------------------------------------------------- packing a folder
def pack_folder(folder: Path) -> bytes:
    """A submitted folder as a zip the worker unpacks into the same folder, as the intake sees it: every
    file under its relative name with its contents, links as links, named pipes as pipes (the intake refuses
    those, with its own reasons, on the worker as here). The files the intake copies come smallest first
    within [intake]'s budget; beyond it a file travels as its size only and becomes a sparse file of that
    size, which the intake leaves out by its size alone, as it would here, without a byte of it crossing the
    network. Entries past [intake] max_folder_entries are not packed: the intake refuses the folder anyway."""
    limits = load_rubric().intake
    entries: list[tuple[str, os.stat_result]] = []
    pending = [""]
    while pending and len(entries) <= limits.max_folder_entries:
        relative = pending.pop()
        try:
            listed = sorted(os.scandir(folder / relative if relative else folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in listed:
            name = f"{relative}/{entry.name}" if relative else entry.name
            info = entry.stat(follow_symlinks=False)
            entries.append((name, info))
            if stat.S_ISDIR(info.st_mode) and entry.name not in IGNORED_DIRS:
                pending.append(name)
    budget, count = limits.max_unpacked_mb << 20, 0
    with_contents = set()
    for name, info in sorted((e for e in entries if stat.S_ISREG(e[1].st_mode)), key=lambda e: (e[1].st_size, e[0])):
        if count < limits.max_files and info.st_size <= budget:
            with_contents.add(name)
            budget -= info.st_size
            count += 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, info in sorted(entries[:limits.max_folder_entries + 1]):
            mode = info.st_mode
            record = zipfile.ZipInfo(name + ("/" if stat.S_ISDIR(mode) else ""), date_time=(2022, 1, 1, 0, 0, 0))
            record.external_attr = (mode & 0xFFFF) << 16
            record.extra = mtime_extra(info.st_mtime)  # the PDF says when the notebook was saved: then, not now
            if stat.S_ISREG(mode) and name in with_contents:
                try:
                    data = (folder / name).read_bytes()
                except OSError:
                    continue
            elif stat.S_ISREG(mode):
                record.comment, data = _SIZE_ONLY.encode(), str(info.st_size).encode()
            elif stat.S_ISLNK(mode):
                data = os.fsencode(os.readlink(folder / name))
            elif stat.S_ISDIR(mode) or stat.S_ISFIFO(mode):
                data = b""
            else:  # sockets, devices: nothing a submission holds (the intake would refuse them)
                continue
            bundle.writestr(record, data)
    return buffer.getvalue()


def unpack_folder(data: bytes, destination: Path) -> None:
    """Recreate on the worker the folder `pack_folder` packed (links, pipes and sparse files included)."""
    destination.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        for record in bundle.infolist():
            parts = PurePosixPath(record.filename).parts
            if not parts or record.filename.startswith("/") or ".." in parts:
                raise ValueError(f"packed entry {record.filename!r} points outside the folder")
            target = destination.joinpath(*parts)
            mode = record.external_attr >> 16
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISDIR(mode) or record.filename.endswith("/"):
                target.mkdir(exist_ok=True)
            elif stat.S_ISLNK(mode):
                os.symlink(os.fsdecode(bundle.read(record)), target)
            elif stat.S_ISFIFO(mode):
                os.mkfifo(target)
            elif record.comment == _SIZE_ONLY.encode():
                with open(target, "wb") as handle:
                    handle.truncate(int(bundle.read(record)))
            else:
                target.write_bytes(bundle.read(record))
                target.chmod(stat.S_IMODE(mode) or 0o644)
                os.utime(target, (entry_mtime(record),) * 2)


def pack_submission(source: Path) -> tuple[str, bytes]:
    """("zip" or "folder", the bytes a worker grades): a zip as it was handed in, a folder packed."""
    if source.is_dir():
        return "folder", pack_folder(source)
    size = source.stat().st_size
    if size > MAX_ZIP_BYTES:
        return "size-only", str(size).encode()
    return "zip", source.read_bytes()


# ------------------------------------------------------------------------------------------ one task
@dataclass
class Task:
    """One submission as a worker receives it."""

    student_id: str
    name: str  # the file or folder name it was handed in under (its student id comes from it)
    kind: str  # "zip", "folder" or "size-only"
    data: bytes
    options: dict
    deadline: float
    grace: float


@dataclass
class TaskAnswer:
    """What a worker sends back: what the batch records, and the student's output folder, zipped."""

    status: str
    score: float | None
    detail: str
    seconds: float
    folder: bytes
    worker: str = ""
    stamped: bool = False  # graded to the end: the client stamps the folder (a re-run skips it)


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                bundle.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _cancelled() -> Callable[[], bool]:
    """Whether the batch no longer wants the task this thread runs: a stopped batch cancels its futures (and a
    client that vanished has them released), and the Dask worker then marks the running task cancelled, but
    cannot stop the thread that runs it. Read from the worker's own state; outside a Dask task, never."""
    try:
        from distributed import get_worker
        worker = get_worker()
        key = worker.get_current_task()
    except (ImportError, ValueError, KeyError):
        return lambda: False

    def cancelled() -> bool:
        state = worker.state.tasks.get(key)  # one dict look-up and one attribute: safe beside the event loop
        return state is None or state.state in ("cancelled", "released", "forgotten")
    return cancelled


def _wait(process: subprocess.Popen, deadline: float, cancelled: Callable[[], bool]) -> str:
    """Wait for the grading process: "exited", "deadline" (it ran past `deadline` seconds) or "cancelled" (the
    batch gave up the task), asking at most every CANCEL_POLL_SECONDS."""
    end = time.monotonic() + deadline
    while True:
        try:
            process.wait(timeout=max(0.0, min(CANCEL_POLL_SECONDS, end - time.monotonic())))
            return "exited"
        except subprocess.TimeoutExpired:
            if cancelled():
                return "cancelled"
            if time.monotonic() >= end:
                return "deadline"


def grade_task(task: Task) -> TaskAnswer:
    """Runs in a Dask worker: unpack the submission into a scratch folder, grade it in a process of its own
    (stopped, with everything it started, at the deadline, or as soon as the batch cancels the task), and
    return its output folder. Never raises for the student's sake; what it raises is ours (Dask retries it,
    then the batch records a fault)."""
    started = time.monotonic()
    cancelled = _cancelled()
    _sweep_abandoned()
    scratch = Path(tempfile.mkdtemp(prefix=_TASK_PREFIX))
    try:
        scratch.chmod(0o711)  # the confined worker's user passes through to its own folder
        (scratch / _OWNER).write_text(f"{platform.node()} {os.getpid()}", encoding="utf-8")
        inbox, out = scratch / "in", scratch / "out"
        inbox.mkdir()
        source = inbox / task.name
        if task.kind == "folder":
            unpack_folder(task.data, source)
        elif task.kind == "size-only":
            with open(source, "wb") as handle:
                handle.truncate(int(task.data))
        else:
            source.write_bytes(task.data)
        options = dict(task.options, hidden=[inbox.resolve(), out.resolve()])
        (scratch / "task.pickle").write_bytes(pickle.dumps((source, out / task.student_id, options)))
        (scratch / "tmp").mkdir()
        process = subprocess.Popen([sys.executable, "-m", "autograder.cluster", str(scratch), str(os.getpid())],
                                   cwd=REPO_ROOT,
                                   # one core a task (its worker on another): one task per Dask thread, one per core
                                   env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), **ONE_BLAS_THREAD),
                                   start_new_session=True,
                                   stdin=subprocess.DEVNULL, preexec_fn=_stop_with_parent)
        ended = _wait(process, task.deadline, cancelled)
        if ended != "exited":
            stop_tree(process.pid, task.grace, lambda: process.poll() is not None)
            process.wait()
            seconds = time.monotonic() - started
            if ended == "cancelled":  # nobody reads this answer: the batch stopped, the row stays not graded yet
                return TaskAnswer(BatchStatus.NOT_GRADED_YET.value, None, "cancelled by the batch", seconds, b"",
                                  _worker_name())
            _record_timed_out(out, task.student_id, task.deadline, seconds, task.options.get("public_only", False))
            return TaskAnswer(BatchStatus.TIMED_OUT.value, 0.0, f"timed out: grading took over {task.deadline:g} s",
                              seconds, _zip_folder(out / task.student_id), _worker_name())
        answer = scratch / "answer.json"
        if answer.is_file():
            status, score, detail, stamped = json.loads(answer.read_text(encoding="utf-8"))
        else:
            status, score, detail, stamped = (BatchStatus.HARNESS_FAULT.value, None, "the grading process on the "
                                              f"worker died (exit code {process.returncode})", False)
        folder = out / task.student_id
        return TaskAnswer(status, score, detail, time.monotonic() - started,
                          _zip_folder(folder) if folder.is_dir() else b"", _worker_name(), stamped)
    finally:
        remove_tree(scratch)


def _stop_with_parent() -> None:
    """In the grading process before it runs: SIGTERM when the Dask worker that started it dies (Linux's
    PR_SET_PDEATHSIG), so that a killed worker leaves no grading behind; elsewhere, nothing. SIGTERM is
    ignored until `_grade_here` can handle it: a worker killed while the grading process still starts up
    would otherwise end it before it can remove its folder (`_grade_here` then sees its parent gone)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal(signal.SIGTERM, ctypes.c_void_p(1))  # 1: SIG_IGN, kept across exec
        libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _sweep_abandoned() -> None:
    """Remove the task folders of this machine whose Dask worker is gone: one killed between making its
    folder and starting the grading process leaves it behind, and nobody else would remove it."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_TASK_PREFIX}*"):
        try:
            host, pid = (folder / _OWNER).read_text(encoding="utf-8").split()
            if host != platform.node() or _alive(int(pid)):
                continue
        except (OSError, ValueError):
            continue  # not ours to judge: no readable owner
        remove_tree(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return platform.node()


def _grade_here(scratch: Path, parent: int) -> int:
    """The grading process a task starts (`python -m autograder.cluster SCRATCH WORKER_PID`): grade as the
    local batch's process does, and leave (status, score, detail) in SCRATCH/answer.json."""
    from autograder.batch import _grade_one, _stop_cleanly

    signal.signal(signal.SIGTERM, _stop_cleanly)  # ignored until here (_stop_with_parent)
    try:
        if os.getppid() != parent:
            raise SystemExit("the Dask worker that started this grading died before it began")
        os.environ["TMPDIR"] = tempfile.tempdir = str(scratch / "tmp")
        source, out_dir, options = pickle.loads((scratch / "task.pickle").read_bytes())
        status, score, detail = _grade_one(source, out_dir, options)
    finally:
        if os.getppid() != parent:  # the Dask worker died (its task runs elsewhere): nobody will remove this
            remove_tree(scratch)
    stamped = (out_dir / STAMP).is_file()  # the client stamps (from the submission as it was handed in) if so
    (out_dir / STAMP).unlink(missing_ok=True)
    (scratch / "answer.json").write_text(json.dumps([str(status), score, detail, stamped]), encoding="utf-8")
    return 0


# ------------------------------------------------------------------------------------------ the engine
class ClusterEngine:
    """The batch's engine on a Dask cluster (`run_batch(..., engine=ClusterEngine(address))`). The address is
    checked at once (`scheduler_address`); `prepare` connects and checks the workers, which `run_batch` asks
    for before anything in OUT is written; `close` lets the cluster go."""

    def __init__(self, address: str, connect_timeout: float | None = None):
        self.address = scheduler_address(address)
        self.connect_timeout = connect_timeout
        self.client = None
        self.usable: list[str] = []
        self.notes: list[str] = []

    def describe(self) -> str:
        return f"the Dask cluster at {self.address}"

    def _timeout(self) -> float:
        """Seconds to wait for the scheduler: the one given, else Dask's `distributed.comm.timeouts.connect`
        (30 s; DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s sets it)."""
        if self.connect_timeout is not None:
            return float(self.connect_timeout)
        import dask
        from dask.utils import parse_timedelta
        return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))

    def _connect(self):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - requirements.txt pins it
            raise ClusterUnusable(f"--scheduler needs dask.distributed ({exc}): pip install -r requirements.txt") \
                from None
        timeout = self._timeout()
        try:
            return Client(self.address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            # Dask retries until its timeout and then says only that: why it could not connect (refused, a
            # name not resolved) is the error it gave up on
            why = f"{type(exc.__cause__).__name__}: {exc.__cause__}" if exc.__cause__ else f"{type(exc).__name__}"
            raise ClusterUnusable(f"cannot reach the Dask scheduler at {self.address} within {timeout:g} s ({why}; "
                                  f"Dask: {exc}); start one there with `python grade.py scheduler --host HOST --port "
                                  f"PORT` (README, 'Beyond one machine')") from None

    def prepare(self, options: dict) -> None:
        """Connect to the scheduler and check every worker (`check_workers`): what cannot work stops the batch
        here, before anything in OUT is written or rewritten. The notes on workers left out come with
        `grade_all`'s."""
        if self.client is not None:
            return
        client = self._connect()
        try:
            self.usable, self.notes = check_workers(client, options.get("data_dir"))
        except BaseException:
            client.close()
            raise
        self.client = client

    def close(self) -> None:
        """Let the cluster go (the client's connection); again, nothing."""
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def grade_all(self, todo: list[BatchEntry], out_dir: Path, options: dict, deadline: float, grace: float,
                  watcher: Watcher) -> list[str]:
        """Grade `todo` on the cluster's workers into OUT, each as it comes back. Returns notes for staff
        (workers left out). Submissions still on the cluster when the batch is stopped are cancelled there
        (their gradings stopped: `grade_task`) and stay not graded yet."""
        sent: dict = {}
        try:
            self.prepare(options)
            client, usable = self.client, self.usable
            shipped = {key: value for key, value in options.items() if key != "hidden"}
            threads = sum(count for worker, count in client.nthreads().items() if worker in usable)
            window = max(4, 2 * threads)  # in flight at once: the scheduler holds each task's bytes until it ends
            pending = list(todo)
            while pending or sent:
                while pending and len(sent) < window:
                    entry = pending.pop(0)
                    try:
                        kind, data = pack_submission(entry.source)
                    except OSError as exc:  # unreadable here: no worker could do better
                        entry.status, entry.detail = BatchStatus.HARNESS_FAULT, f"cannot read {entry.source}: {exc}"
                        watcher.finished([entry])
                        continue
                    task = Task(entry.student_id, entry.source.name, kind, data, shipped, deadline, grace)
                    future = client.submit(grade_task, task, key=f"grade-{entry.student_id}-{os.urandom(4).hex()}",
                                           workers=usable, allow_other_workers=False, retries=TASK_RETRIES,
                                           pure=False)
                    sent[future] = entry
                time.sleep(0.25)  # futures of a client that is not the default one: polled, not waited on
                done = []
                for future in [future for future in sent if future.done()]:
                    entry = sent.pop(future)
                    self._record(entry, future, out_dir, options)
                    done.append(entry)
                    future.release()  # the scheduler forgets its result (the folder's bytes)
                watcher.finished(done)
            return self.notes
        finally:
            if sent and self.client is not None:  # stopped early: what is still out there is cancelled
                self.client.cancel(list(sent), force=True)
            self.close()

    def _record(self, entry: BatchEntry, future, out_dir: Path, options: dict) -> None:
        """Put one finished task's folder in place and record how it went."""
        try:
            answer: TaskAnswer = future.result()
        except Exception as exc:  # noqa: BLE001 - the task failed on every try: ours, not the student's
            entry.status, entry.detail = BatchStatus.HARNESS_FAULT, f"on the cluster: {type(exc).__name__}: {exc}"
            _write_fault(out_dir / entry.student_id, entry.detail)
            return
        entry.status, entry.score, entry.detail = BatchStatus(answer.status), answer.score, answer.detail
        entry.seconds = answer.seconds
        try:
            place_folder(answer.folder, out_dir, entry.student_id)
        except (IntakeError, OSError, zipfile.BadZipFile) as exc:
            entry.status, entry.score = BatchStatus.HARNESS_FAULT, None
            entry.detail = f"the folder worker {answer.worker} sent back is unusable: {exc}"
            _write_fault(out_dir / entry.student_id, entry.detail)
            return
        if answer.stamped:
            stamp = stamp_for(entry.source, options)
            (out_dir / entry.student_id / STAMP).write_text(stamp, encoding="utf-8")


def _write_fault(folder: Path, detail: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "harness_fault.txt").write_text(detail + "\n", encoding="utf-8")
    except OSError:
        pass


def place_folder(data: bytes, out_dir: Path, student_id: str) -> None:
    """Unpack a worker's zip of one student's folder beside OUT/<student id> and rename it into place:
    readers of OUT see the old folder, the new one, or for an instant none, never half of one. The zip is
    unpacked as hostile input (the intake's bounds; no links, nothing outside the folder)."""
    limits = load_rubric().intake
    incoming = Path(tempfile.mkdtemp(prefix=f".incoming-{student_id}-", dir=out_dir))
    try:
        archive = incoming / "folder.zip"
        archive.write_bytes(data)
        unpacked = incoming / student_id
        unpacked.mkdir()
        if data:
            safe_unzip(archive, unpacked, 4 * (limits.max_unpacked_mb << 20), 4 * limits.max_files)
        target = out_dir / student_id
        old = incoming / "old"
        if target.exists():
            target.rename(old)
        unpacked.rename(target)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_grade_here(Path(sys.argv[1]), int(sys.argv[2])))

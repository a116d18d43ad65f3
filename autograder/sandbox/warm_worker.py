"""The grader's side of the warm worker (zygote.py): a confined process per pool slot that forks workers.

A worker started afresh spends most of its start importing Python, NumPy and scipy.io, the same for every
student. The local batch (batch.LocalEngine) instead keeps one `WarmWorker` per pool slot: a process
started exactly as a worker is (the same `namespace` confinement, a user id of the slot's own, the same
limits and environment) that has loaded them once. Each submission's grading process gets a connection
to its slot's warm worker (`connect`, a `WarmClient` on its side) and asks it for a fresh worker whenever
it would start one (parent.py `WorkerProcess`); the lib/ it grades is put into the slot's work folder,
the one folder of the host the warm worker sees. Between submissions the warm worker kills every process
the last one left and empties every folder a worker can write (zygote.py), so what one student's code did
is invisible to the next.

Only in mode `namespace`: there the warm worker is the first process of its own PID namespace and the
only writable folders of its view are its own, so "every process and file the last submission left" is
exactly known. In a weaker mode, or when the warm worker is gone or does not answer, a worker is started
afresh as before: the warm worker only ever saves time.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from autograder.rubric import WorkerLimits
from autograder.sandbox.confinement import available_mode, confinement_for, worker_environment
from autograder.sandbox.folders import remove_tree
from autograder.sandbox.worker_code import worker_code
from autograder.sandbox.zygote import KEYCTL

_BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[3]); "
              "from autograder.sandbox.zygote import main; main(sys.argv[1:])")
_MESSAGE = 65536
#: Seconds the grader waits for the warm worker's answer to `kill` or `fork` before it gives up on it.
_ANSWER_SECONDS = 10.0


class WarmWorkerGone(RuntimeError):
    """The warm worker did not answer as it should: the caller starts its worker afresh instead."""


@dataclass(frozen=True)
class SlotAddress:
    """What a grading process needs besides its connection: where to put the lib/, whose it must be, and
    which process to kill if the warm worker stops answering (the `unshare` above it: its namespace goes)."""

    work: str
    ids: tuple[int, int]
    pid: int


def warm_workers_possible() -> bool:
    """Whether a warm worker can isolate submissions here: only in mode `namespace` (see the module), and where
    it can empty the slot user's keyrings (zygote.KEYCTL)."""
    return available_mode() == "namespace" and platform.machine() in KEYCTL


class WarmWorker:
    """One pool slot's warm worker, owned by the batch: started, connected to each submission, stopped."""

    def __init__(self, limits: WorkerLimits, hidden: Sequence[Path]):
        self.limits, self.hidden = limits, list(hidden)
        self.process: subprocess.Popen | None = None
        self.scratch: Path | None = None
        self.control: socket.socket | None = None
        self.address: SlotAddress | None = None

    def start(self) -> None:
        """Start the warm worker (it loads NumPy and the worker's modules while the first grading starts)."""
        self.scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-worker-"))
        work = self.scratch / "work"
        work.mkdir()
        confinement = confinement_for(self.scratch, self.hidden, self.limits.memory_mb, self.limits.cpu_seconds,
                                      self.limits.file_size_mb, self.limits.max_processes)
        if confinement.mode != "namespace":
            raise WarmWorkerGone(f"confinement {confinement.mode!r}: a warm worker needs 'namespace'")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                confinement.command([sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(theirs.fileno()), str(work),
                                     str(worker_code())]),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
                env=worker_environment(work),
                pass_fds=(theirs.fileno(),), start_new_session=True, preexec_fn=confinement)
        finally:
            theirs.close()
        self.control = ours
        self.address = SlotAddress(str(work), confinement.ids, self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connect(self) -> socket.socket:
        """A new connection for one submission's grading process (pass it to that process); the warm worker
        ends the last submission's connection, and everything it left, before it answers this one."""
        if not self.alive() or self.control is None:
            raise WarmWorkerGone("the warm worker is not running")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self.control, [b"client"], [theirs.fileno()])
        except OSError as exc:
            ours.close()
            raise WarmWorkerGone(f"the warm worker took no connection: {exc}") from None
        finally:
            theirs.close()
        return ours

    def close(self) -> None:
        """Stop it (its namespace, with anything left in it, goes with it) and remove its folder."""
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process = None
        if self.scratch is not None:
            remove_tree(self.scratch)
            self.scratch = None


class WarmClient:
    """A grading process's connection to its slot's warm worker: fresh workers on request."""

    def __init__(self, connection: socket.socket, address: SlotAddress):
        self.connection, self.address = connection, address
        self.usable = True

    def _ask(self, request: dict, fds: Sequence[int] = (), seconds: float = _ANSWER_SECONDS) -> dict:
        if not self.usable:
            raise WarmWorkerGone("the warm worker was given up on")
        try:
            self.connection.settimeout(seconds)
            if request:
                socket.send_fds(self.connection, [json.dumps(request).encode()], list(fds))
            message = self.connection.recv(_MESSAGE)
            if not message:
                raise WarmWorkerGone("the warm worker closed the connection")
            reply = json.loads(message)
        except (OSError, ValueError) as exc:  # socket.timeout is an OSError
            self.give_up()
            raise WarmWorkerGone(f"the warm worker did not answer: {type(exc).__name__}: {exc}") from None
        if not isinstance(reply, dict) or "error" in reply:
            self.give_up()
            raise WarmWorkerGone(f"the warm worker refused: {reply!r}")
        return reply

    def ready(self, seconds: float) -> None:
        """Wait for the warm worker to have ended the last submission (its processes, its files)."""
        reply = self._ask({}, seconds=seconds)
        if reply.get("ready") is not True:
            self.give_up()
            raise WarmWorkerGone(f"the warm worker said {reply!r} where it should be ready")

    def place(self, lib: Path) -> Path:
        """Copy `lib/` into the slot's work folder, owned by the slot's user; the submission's root there."""
        root = Path(self.address.work) / "submission"
        shutil.copytree(lib, root / "lib", symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for path in [root, *root.rglob("*")]:
            os.chown(path, *self.address.ids, follow_symlinks=False)
        return root

    def fork(self, request_read: int, answer_write: int, output_write: int, root: Path,
             environment: dict[str, str]) -> "WarmProcess":
        """A fresh worker on these pipes, rooted at `root` (from `place`)."""
        reply = self._ask({"op": "fork", "root": str(root), "env": environment},
                          fds=(request_read, answer_write, output_write))
        return WarmProcess(self, int(reply["pid"]))

    def kill_all(self) -> None:
        """Every process of this submission, killed; when the warm worker does not answer, it goes too."""
        try:
            self._ask({"op": "kill"})
        except WarmWorkerGone:
            self.give_up()

    def wait(self, pid: int, timeout: float) -> int | None:
        """The worker's wait status (it is killed after `timeout` seconds); None when that cannot be known."""
        try:
            return self._ask({"op": "wait", "pid": pid, "timeout": timeout}, seconds=timeout + _ANSWER_SECONDS
                             ).get("status")
        except WarmWorkerGone:
            return None

    def give_up(self) -> None:
        """Stop using the warm worker, and kill it with everything in its namespace (the batch starts another)."""
        self.usable = False
        try:
            os.killpg(self.address.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.connection.close()


class WarmProcess:
    """A worker forked by the warm worker, with the part of `subprocess.Popen` parent.py uses."""

    def __init__(self, client: WarmClient, pid: int):
        self.client, self.pid = client, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code as Popen gives it (negative: the signal), -9 when that cannot be known."""
        if self.returncode is None:
            status = self.client.wait(self.pid, timeout if timeout is not None else 5.0)
            self.returncode = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        self.client.kill_all()



class WarmSlots:
    """The batch's warm workers, one per pool slot: each started when first needed, and again when gone."""

    def __init__(self, count: int, limits: WorkerLimits, hidden: Sequence[Path]):
        """`limits`: the workers' (the warm worker's own limits are theirs); `hidden`: what no worker may see."""
        self.workers: list[WarmWorker | None] = [None] * count
        self.limits, self.hidden = limits, list(hidden)
        self.enabled = limits.warm_workers and warm_workers_possible()

    def connect(self, slot: int) -> tuple[socket.socket, SlotAddress] | None:
        """A connection to `slot`'s warm worker for the submission about to be graded there; None: its
        workers start afresh (warm workers are off, cannot run here, or this one would not start)."""
        if not self.enabled:
            return None
        worker = self.workers[slot]
        if worker is not None and not worker.alive():
            worker.close()
            worker = self.workers[slot] = None
        if worker is None:
            worker = WarmWorker(self.limits, self.hidden)
            try:
                worker.start()
            except (OSError, ValueError, WarmWorkerGone):
                worker.close()
                self.enabled = False  # it will not start here: every worker of the batch starts afresh
                return None
            self.workers[slot] = worker
        try:
            return worker.connect(), worker.address
        except WarmWorkerGone:
            worker.close()
            self.workers[slot] = None
            return None

    def close(self) -> None:
        for worker in self.workers:
            if worker is not None:
                worker.close()
        self.workers = [None] * len(self.workers)

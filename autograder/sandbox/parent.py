"""The grader's side of the worker: start it confined, call it with a deadline, restart it.

`WorkerProcess` runs the worker (sandbox/worker.py) as a separate Python process in a scratch
copy of the submission's `lib/`, confined as confinement.py finds possible on this machine (a
private mount, PID and network namespace with a user id of its own; else a user id of its own;
else, when the grader is not root, the same user), always with limits on address space, CPU
time, file size and processes, in its own session, killed whole on a timeout, with a scrubbed
environment; stdout and stderr are drained by a thread that keeps only the first `output_kb`.
A call that times out or kills the worker ends its case with that outcome and the next call
gets a fresh worker. If the student's `lib/` cannot even be imported, that failure is
remembered and returned for every later call instead of retrying.

The worker is started from a copy of its own modules (worker_code.py), never from the harness
package. Its replies are bounded from their headers ([worker] max_reply_parts, max_reply_mb: a
larger one is refused unread and the worker stopped), and its deaths are counted: an exit, a
signal, a garbled or refused reply each end a worker, and after [worker] exits_per_submission of
them no worker is started again (the plugin caps them per item, as it caps time-outs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from autograder.outcomes import (
    CheckFailed,
    NotRestarted,
    Outcome,
    OutOfMemory,
    ProcessExited,
    ReplyRefused,
    StudentException,
    TimedOut,
)
from autograder.rubric import WorkerLimits
from autograder.sandbox import protocol
from autograder.sandbox.confinement import Confinement, confinement_for, worker_environment
from autograder.sandbox.folders import remove_tree
from autograder.sandbox.warm_worker import WarmClient, WarmProcess, WarmWorkerGone
from autograder.sandbox.worker_code import worker_code

_BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[4]); "
              "from autograder.sandbox.worker import main; main(sys.argv[1:])")


#: The worker's limits are the rubric's [worker] table itself (one definition, validated when loaded).
Limits = WorkerLimits


@dataclass
class Answer:
    """One reply: the header's extra fields, and each returned value as an array or a description."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def value(self, name: str) -> np.ndarray | dict[str, Any]:
        description = self.header.get("values", {}).get(name, {"kind": "missing"})
        if description.get("kind") == "array" and name in self.arrays:
            return self.arrays[name]
        return description


class _OutputTap(threading.Thread):
    """Drains the worker's stdout and stderr, keeping the first `limit` bytes and a count."""

    def __init__(self, fd: int, limit: int):
        super().__init__(daemon=True)
        self.fd, self.limit = fd, limit
        self.head = bytearray()
        self.total = 0

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            if len(self.head) < self.limit:
                self.head += chunk[: self.limit - len(self.head)]
        os.close(self.fd)


#: The lib/ modules every edition's notebook imports, in its order; `lib_modules` adds the edition's loader.
_HANDOUT_MODULES = ("lib.mlp.fully_conn", "lib.mlp.layer_utils", "lib.mlp.train", "lib.cnn.layer_utils",
                    "lib.cnn.cnn_models", "lib.grad_check", "lib.optim")


def lib_modules(loader_module: str) -> list[str]:
    """The modules a worker imports for an edition whose handout's loader is `loader_module` (lib.mlp.datasets
    in 2022, lib.datasets in 2023): only modules that handout had, so that no student reads that importing
    another year's loader failed."""
    return [*_HANDOUT_MODULES[:2], loader_module, *_HANDOUT_MODULES[2:]]


class WorkerFault(RuntimeError):
    """A bug of ours inside the worker (not the student's code): graded as a harness fault."""


class WorkerProcess:
    """A confined process that answers requests about one submission's `lib/`."""

    def __init__(self, submission_root: Path, limits: Limits, hidden: list[Path] = (),
                 modules: Sequence[str] | None = None, warm: WarmClient | None = None):
        """`hidden`: folders the worker must not see (fixtures, reference, outputs). `modules`: the lib/
        modules the worker imports at start, in the notebook's order (`lib_modules(edition's loader)`);
        None: the worker's default, the 2022 handout's. Sent as data: the worker cannot read editions.
        `warm`: a batch slot's warm worker, which forks each worker (warm_worker.py); when it is not
        ready, or stops answering, workers are started afresh."""
        self.limits = limits
        self.modules = list(modules) if modules is not None else None
        self.submission_root, self.hidden = Path(submission_root), list(hidden)
        self.scratch: Path | None = None
        self.confinement: Confinement | None = None
        self.warm: WarmClient | None = None
        self.mode, self.confinement_notes = "namespace", ()  # a warm worker's; a worker afresh says its own
        if warm is not None:
            try:
                warm.ready(limits.start_timeout)
                self.root = warm.place(self.submission_root / "lib")
                self.warm = warm
            except (WarmWorkerGone, OSError):
                warm.give_up()
        if self.warm is None:
            self._prepare_afresh()
        self.process: subprocess.Popen | WarmProcess | None = None
        self.tap: _OutputTap | None = None
        self.taps: list[_OutputTap] = []
        self.start_failure: Outcome | None = None
        self.import_errors: dict[str, Any] = {}
        self.restarts = 0
        self.exits = 0  # workers that ended on their own (exit, signal, garbled or refused reply)
        self.last_exit = ""  # how the last of them ended, in words
        self.start_seconds = 0.0
        self.bounds = protocol.Bounds(limits.max_reply_parts, limits.max_reply_mb * 1024 * 1024)

    # ------------------------------------------------------------------ lifecycle
    def _prepare_afresh(self) -> None:
        """A scratch folder of this worker's own, with a copy of the lib/, handed to a fresh user id."""
        self.warm = None
        self.scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-worker-"))
        self.root = self.scratch / "submission"
        shutil.copytree(self.submission_root / "lib", self.root / "lib",
                        symlinks=True,  # links stay links: their targets stay hidden
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self.confinement = confinement_for(
            self.scratch, self.hidden, self.limits.memory_mb, self.limits.cpu_seconds, self.limits.file_size_mb,
            self.limits.max_processes)
        self.mode, self.confinement_notes = self.confinement.mode, self.confinement.notes

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        output_read, output_write = os.pipe()
        try:
            if self.warm is not None:
                try:
                    self.process = self.warm.fork(request_read, answer_write, output_write, self.root,
                                                  worker_environment(self.root))
                except WarmWorkerGone:
                    self._prepare_afresh()  # a root of its own: the environment follows it
            if self.warm is None:
                self.process = subprocess.Popen(
                    self.confinement.command([sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(request_read),
                                              str(answer_write), str(self.root), str(worker_code())]),
                    stdin=subprocess.DEVNULL, stdout=output_write, stderr=output_write, cwd=self.root,
                    env=worker_environment(self.root), pass_fds=(request_read, answer_write),
                    start_new_session=True, preexec_fn=self.confinement)
        finally:
            for fd in (request_read, answer_write, output_write):
                os.close(fd)
        self.requests, self.answers = request_write, answer_read
        os.set_blocking(self.requests, False)
        os.set_blocking(self.answers, False)
        self.tap = _OutputTap(output_read, self.limits.output_kb * 1024)
        self.tap.start()
        self.taps.append(self.tap)

    def _kill(self) -> None:
        if self.process is None:
            return
        if isinstance(self.process, WarmProcess):
            self.process.kill()  # every process of the submission in the warm worker's namespace
        else:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()
        for fd in (self.requests, self.answers):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process = None

    def _exit_outcome(self) -> Outcome:
        """Why the worker is gone, as an outcome."""
        code = self.process.wait() if self.process else None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGXCPU:
                return ProcessExited(f"killed by {name}: CPU time limit of {self.limits.cpu_seconds} s")
            if -code == signal.SIGXFSZ:
                return ProcessExited(f"killed by {name}: wrote a file over {self.limits.file_size_mb} MB")
            return ProcessExited(f"killed by signal {name}")
        return ProcessExited(f"exit status {code}")

    def _ensure_started(self) -> None:
        if self.start_failure is not None:
            raise CheckFailed(self.start_failure)
        if self.process is not None:
            return
        if self.exits >= self.limits.exits_per_submission:
            raise CheckFailed(NotRestarted(self.exits, self.last_exit))
        self._start()
        try:
            header, _ = self._exchange("start", {} if self.modules is None else {"modules": self.modules}, {},
                                       self.limits.start_timeout)
        except CheckFailed as failure:
            outcome = failure.outcome
            if isinstance(outcome, ProcessExited):
                outcome = ProcessExited(f"while importing your lib/: {outcome.detail}")
            elif isinstance(outcome, TimedOut):
                outcome = StudentException("TimeoutError",
                                           f"importing your lib/ took over {self.limits.start_timeout:g} s")
            self.start_failure = outcome
            raise CheckFailed(outcome) from None
        self.import_errors = header.get("import_errors", {})

    def start(self) -> Outcome | None:
        """Start the worker and import the student's lib/ now; the failure, if any, as an outcome.

        Calls start the worker themselves when needed; starting it first keeps the import's
        time out of the first case's and makes an import failure known up front.
        """
        started = time.monotonic()
        try:
            self._ensure_started()
        except CheckFailed as failure:
            return failure.outcome
        finally:
            self.start_seconds = time.monotonic() - started
        return None

    def close(self) -> None:
        """Stop the worker and delete its scratch folder."""
        if self.process is not None:
            try:
                protocol.send(self.requests, {"op": "stop"}, deadline=time.monotonic() + 1)
                self.process.wait(timeout=2)
            except (OSError, TimeoutError, subprocess.TimeoutExpired, EOFError):
                pass
            self._kill()
        for tap in self.taps:  # the whole process group is gone: its last output is on the way to EOF
            tap.join(timeout=2)
        if self.scratch is not None:  # a warm worker's folder is emptied by the warm worker itself
            remove_tree(self.scratch)

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def _exchange(self, op: str, args: dict[str, Any], arrays: dict[str, np.ndarray], timeout: float):
        deadline = time.monotonic() + timeout
        self._send(op, args, arrays, deadline, timeout)
        return self._receive(op, deadline, timeout)

    def _send(self, op: str, args: dict[str, Any], arrays: dict[str, np.ndarray], deadline: float,
              timeout: float) -> None:
        self._transfer(lambda: protocol.send(self.requests, {"op": op, "args": args}, arrays, deadline=deadline),
                       timeout)

    def _receive(self, op: str, deadline: float, timeout: float):
        header, answer_arrays = self._transfer(
            lambda: protocol.receive(self.answers, deadline=deadline, bounds=self.bounds), timeout)
        if not header.get("ok"):
            if header.get("harness_fault"):
                raise WorkerFault(f"the worker's {op!r} op: {header['harness_fault']}")
            error = header.get("error") or {}
            if error.get("type") == "MemoryError":
                raise CheckFailed(OutOfMemory(self.limits.memory_mb))
            raise CheckFailed(StudentException(str(error.get("type", "Exception")), str(error.get("message", "")),
                                               tuple(str(frame) for frame in error.get("traceback", []))))
        return header, answer_arrays

    def _transfer(self, step: Callable[[], Any], timeout: float) -> Any:
        """One half of an exchange; every way it can fail ends as CheckFailed with its outcome."""
        try:
            return step()
        except TimeoutError:
            self._kill()
            self.restarts += 1
            raise CheckFailed(TimedOut(timeout)) from None
        except (EOFError, BrokenPipeError, ConnectionError):
            outcome = self._exit_outcome()
            raise CheckFailed(self._lost(outcome, outcome.detail)) from None
        except protocol.MessageTooLarge as exc:
            detail = (f"it announced {exc.parts} parts and {exc.size / 2**20:.0f} MB, over the limit of "
                      f"{self.limits.max_reply_parts} parts and {self.limits.max_reply_mb} MB per reply; did your "
                      "code replace the worker's functions or write to its answer pipe?")
            raise CheckFailed(self._lost(ReplyRefused(detail), "a reply over the size limit")) from None
        except protocol.ProtocolError as exc:
            raise CheckFailed(self._lost(ProcessExited(f"the worker's answer was garbled ({exc}); did your code "
                                                       "write to a file descriptor it does not own?"),
                                         "a garbled reply")) from None

    def _lost(self, outcome: Outcome, how: str) -> Outcome:
        """The worker ended on its own (or must be stopped): stop it, count it, and return `outcome`."""
        self._kill()
        self.restarts += 1
        self.exits += 1
        self.last_exit = how
        return outcome

    def begin(self, op: str, args: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None,
              timeout: float | None = None) -> Callable[[], Answer]:
        """Send one request now and return what collects its answer, so that the grader can compute meanwhile
        (the worker is another process: both cores work). The deadline runs from now, as `call`'s does; a
        failure ends as CheckFailed, when sending or when collecting. Collect before the next request."""
        self._ensure_started()
        timeout = timeout or self.limits.call_timeout
        deadline = time.monotonic() + timeout
        self._send(op, args or {}, arrays or {}, deadline, timeout)
        return lambda: Answer(*self._receive(op, deadline, timeout))

    def call(self, op: str, args: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None,
             timeout: float | None = None) -> Answer:
        """Run one request; any failure ends as CheckFailed carrying the outcome."""
        return self.begin(op, args, arrays, timeout)()

    # ------------------------------------------------------------------ what it printed
    def printed(self) -> tuple[str, int]:
        """The first `output_kb` of everything the student's code printed, and the total bytes.

        While the worker runs, output it has flushed may still be in the pipe; after `close` it is all here.
        """
        head = b"".join(bytes(tap.head) for tap in self.taps)[: self.limits.output_kb * 1024]
        return head.decode("utf-8", "replace"), sum(tap.total for tap in self.taps)

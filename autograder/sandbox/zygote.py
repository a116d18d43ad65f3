"""A warm worker: one confined process per pool slot that forks a fresh worker for each request.

It is started exactly as a worker is (parent.py: the same `namespace` confinement, user id, limits and
environment), but holds nothing of a student's: only the interpreter, NumPy, scipy.io (which every
handout's loader imports) and the worker's own modules, loaded once. The grader (warm_worker.py) hands it
one connection per submission. On it:

- `fork` (with the request, answer and output pipes): a child of this process becomes the worker
  (worker.main), in a session of its own, with the submission's environment and a reseeded NumPy;
- `kill`: every other process in this PID namespace is killed (the worker, whatever it started);
- `wait`: how a worker ended, as a wait status.

When a connection ends (the submission's grading process is done or gone), nothing of it may reach the
next: every other process in the namespace is killed, every System V IPC object of its IPC namespace is
removed, the slot user's kernel keyrings are emptied (POSIX message queues cannot be made: confinement.py
sets RLIMIT_MSGQUEUE to 0), and every folder a worker can write (the slot's folder, bound writable, and
its work folder, /tmp, /var/tmp, /dev/shm, /run/lock: nothing else in this view is writable) is emptied.
The memory of the next worker is a fresh fork of this process, in which no student code ever ran; this
process is not dumpable, so its children cannot trace it or read its memory, and as the namespace's first
process it ignores every signal they may send it. It runs only as that first process: only there is
"every other process" exactly the submission's. Only the standard library, NumPy and the worker's modules
are imported here, as in the worker.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import socket
import sys
import time

from autograder.sandbox.folders import remove_tree

_PR_SET_DUMPABLE = 4
#: Folders of the worker's view where it may write, besides the slot's work folder (confinement.py).
_WRITABLE = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")
_MESSAGE = 65536
_HIGH_FD = 100


def _dumpable(value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, value, 0, 0, 0)


def _send(client: socket.socket, reply: dict) -> None:
    client.send(json.dumps(reply).encode())


_IPC_RMID = 0
#: System V IPC objects, as /proc lists them (the id is the second column) and how each is removed.
_IPC_TABLES = (("/proc/sysvipc/shm", "shmctl"), ("/proc/sysvipc/msg", "msgctl"), ("/proc/sysvipc/sem", "semctl"))


def _remove_ipc() -> None:
    """Every System V shared memory segment, message queue and semaphore set of this IPC namespace (the
    slot's own): a submission's, which would otherwise outlive it for the next to attach to."""
    libc = ctypes.CDLL(None, use_errno=True)
    for table, remove in _IPC_TABLES:
        try:
            with open(table, encoding="ascii", errors="replace") as rows:
                ids = [int(row.split()[1]) for row in list(rows)[1:] if len(row.split()) > 1]
        except (OSError, ValueError):
            continue
        for number in ids:
            if remove == "semctl":
                libc.semctl(number, 0, _IPC_RMID)
            else:
                getattr(libc, remove)(number, _IPC_RMID, None)


#: The keyctl system call's number where the warm worker may run (glibc has no wrapper for it); elsewhere
#: warm_worker.py starts no warm worker.
KEYCTL = {"x86_64": 250, "aarch64": 219}
_KEYCTL_CLEAR, _USER_KEYRING, _USER_SESSION_KEYRING = 7, -4, -5


def _clear_keyrings() -> None:
    """Empty the slot user's kernel keyrings (its own and its default session's): a key added there would
    outlive its process, for the next submission run by the same user to read."""
    number = KEYCTL.get(platform.machine())
    if number is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for keyring in (_USER_KEYRING, _USER_SESSION_KEYRING):
        libc.syscall(number, _KEYCTL_CLEAR, keyring)


def _mount_points() -> set[str]:
    """Where something is mounted in this view (the bound folders: never emptied, never entered)."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as table:
        return {line.split()[4].replace("\\040", " ") for line in table if len(line.split()) > 4}


def _empty(folder: str, mounts: set[str], keep: tuple[str, ...] = ()) -> None:
    """Remove everything inside `folder` but `keep` and the mount points (and the folders on the way to them)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if path in mounts or name in keep:
            continue
        if os.path.isdir(path) and not os.path.islink(path) and any(mount.startswith(path + "/") for mount in mounts):
            try:
                os.chmod(path, 0o700)
            except OSError:
                pass
            _empty(path, mounts)
        else:
            remove_tree(path)


class Zygote:
    """The loop: one connection (submission) at a time, each ended by killing and emptying what it left."""

    def __init__(self, control: socket.socket, work: str, code_dir: str):
        self.control, self.work, self.code_dir = control, work, code_dir
        self.ended: dict[int, int] = {}  # pid -> wait status, for the workers this process forked

    def run(self) -> None:
        while True:
            message, fds, _, _ = socket.recv_fds(self.control, _MESSAGE, 1)
            if not message:
                return  # the grader is gone
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                continue
            client = socket.socket(fileno=fds[0])
            self._reset()
            try:
                _send(client, {"ready": True, "pid": os.getpid()})
                self._serve(client)
            except OSError:
                pass
            finally:
                client.close()
                self._reset()

    def _reset(self) -> None:
        """Nothing of the last submission survives: its processes, its files."""
        self._kill_others()
        _remove_ipc()
        _clear_keyrings()
        mounts = _mount_points()
        # The slot's folder is bound writable into this view: all of it but the view's root and the work folder
        # (emptied next) is the last submission's.
        _empty(os.path.dirname(self.work), mounts, keep=(".root", os.path.basename(self.work)))
        for folder in (self.work, *_WRITABLE):
            _empty(folder, mounts)
        self.ended.clear()

    def _kill_others(self) -> None:
        try:
            os.kill(-1, signal.SIGKILL)  # every process of this namespace but its first (this one)
        except ProcessLookupError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            self.ended[pid] = status

    def _serve(self, client: socket.socket) -> None:
        while True:
            message, fds, _, _ = socket.recv_fds(client, _MESSAGE, 3)
            if not message:
                for fd in fds:
                    os.close(fd)
                return
            try:
                request = json.loads(message)
                op = request.get("op")
                if op == "fork" and len(fds) == 3:
                    reply = {"pid": self._fork(fds, request)}
                elif op == "kill":
                    self._kill_others()
                    reply = {"killed": True}
                elif op == "wait":
                    reply = {"status": self._wait(int(request["pid"]), float(request.get("timeout", 5)))}
                else:
                    reply = {"error": f"no op {op!r} with {len(fds)} descriptor(s)"}
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                for fd in fds:
                    os.close(fd)
            _send(client, reply)

    def _wait(self, pid: int, timeout: float) -> int | None:
        """The worker's wait status; one still running after `timeout` seconds is killed first."""
        end = time.monotonic() + timeout
        while pid not in self.ended:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return self.ended.get(pid)
            if done:
                self.ended[pid] = status
                break
            if time.monotonic() > end:
                self._kill_others()
                break
            time.sleep(0.01)
        return self.ended.get(pid)

    def _fork(self, fds: list[int], request: dict) -> int:
        root, environment = str(request["root"]), dict(request["env"])
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        try:  # the child: it becomes the worker, and never returns here
            self._become_worker(fds, root, environment)
        finally:
            os._exit(70)

    def _become_worker(self, fds: list[int], root: str, environment: dict) -> None:
        os.setsid()
        _dumpable(1)  # its own /proc entries are its own again, as in a worker started afresh
        signal.signal(signal.SIGINT, signal.default_int_handler)
        request_fd, answer_fd, output_fd = (os.dup2(fd, _HIGH_FD + index) for index, fd in enumerate(fds))
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(request_fd, 3)
        os.dup2(answer_fd, 4)
        for fd in [int(name) for name in os.listdir("/proc/self/fd")]:  # the control and client connections,
            if fd > 4:                                                    # the copies above
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.environ.clear()
        os.environ.update(environment)
        import numpy

        numpy.random.seed()  # as a fresh interpreter would draw it (the random module reseeds itself at fork)
        from autograder.sandbox.worker import main as worker_main

        worker_main(["3", "4", root, self.code_dir])


def main(argv: list[str]) -> None:
    """Entry point: `CONTROL_FD WORK CODE_DIR`, started by warm_worker.py from CODE_DIR (worker_code.py)."""
    if os.getpid() != 1:
        sys.exit("the warm worker runs only as the first process of its PID namespace (confinement `namespace`)")
    control_fd, work, code_dir = int(argv[0]), argv[1], argv[2]
    _dumpable(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import scipy.io  # noqa: F401 - every handout's loader imports it: paid once per slot
    except ImportError:
        pass
    import autograder.sandbox.worker  # noqa: F401 - and with it NumPy, the protocol and the probes

    sys.path[:] = [entry for entry in sys.path if entry != code_dir]
    os.chdir(work)
    Zygote(socket.socket(fileno=control_fd), work, code_dir).run()
    os._exit(0)

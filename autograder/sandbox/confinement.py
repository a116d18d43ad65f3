"""How the worker process is confined: its view of the file system, its user, its limits.

Three modes, the strongest that works on this machine is chosen once per process (probe):

- `namespace` (grader runs as root with CAP_SYS_ADMIN): the worker gets a private mount
  namespace whose root is a fresh tmpfs holding only what it needs, bound in at the same
  paths: the system folders (/usr, /lib*, /bin, /sbin, /etc, /sys) and the interpreter, the
  virtual environment and the harness code, read-only; /dev; its own scratch folder; and
  fresh empty /tmp, /var/tmp, /dev/shm and /run/lock. Nothing else of the machine exists in
  that view: no fixtures, no reference, no other checkout, no other student's files, and
  nothing the worker writes outside its scratch folder outlives it. The command is then
  started through util-linux's `unshare` in a new PID namespace with its own /proc (the worker
  is its process 1: when it dies, the kernel kills every process it left, `setsid()` or not,
  and no other process is visible), a new network namespace (no network at all: only a
  loopback device that is down) and a new IPC namespace (System V shared memory, queues and
  semaphores of its own, gone with it), and through `setpriv`, which switches to a user id of the
  worker's own (WORKER_IDS) with no capabilities and no new privileges.
- `user` (root, but no namespaces, as in a plain container): the worker switches to a user id
  of its own; hidden paths are protected by their permissions only (a full grade is refused
  while they are readable by other users: exposure.py).
- `none` (the grader is not root, as in a student's self-check): same user; there is nothing
  secret to hide in a handout, which holds public fixtures only (a full grade with hidden
  fixtures is refused: exposure.py).

Resource limits apply in every mode. Each probe keeps the reason it failed (the failing step's
own words), so that a weaker mode than expected can be explained (`grade.py sandbox`), and
`readable_by_worker` tells which files the worker's user could read, for the refusal to grade
with exposed fixtures (exposure.py).
"""

from __future__ import annotations

import ctypes
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from autograder import REPO_ROOT
from autograder.sandbox.worker_code import worker_code

#: Each worker runs as a user id of its own, drawn from this range, where no account exists: the
#: process limit, signals and /proc are then per worker, so a fork bomb in one student's code
#: cannot starve the worker of another student graded at the same time (`batch --jobs`).
WORKER_IDS = (1_000_000, 2_000_000_000)
#: Environment variables passed through to student code; everything else is dropped.
PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "TZ")
#: Never visible to student code: the expected values, the solution, the history holding both, and the later
#: editions' solutions (their overlays on reference_solution/, see staff/overlays.py).
SECRET_PATHS = (REPO_ROOT / "fixtures", REPO_ROOT / "reference_solution", REPO_ROOT / ".git",
                REPO_ROOT / "edition_overlays")
#: What the worker's root holds of the machine, read-only (symbolic links, as /bin is on merged-/usr
#: systems, are copied as links).
SYSTEM_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/sys")
#: Folders every user may write to; fresh and empty in the worker's root.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/run/lock")
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_UNSHARE, _SETPRIV = "/usr/bin/unshare", "/usr/bin/setpriv"
#: The modes, weakest first.
MODES = ("none", "user", "namespace")
#: Caps the mode ("user" or "none"): to see how the grader behaves without namespaces, as the tests do.
#: It never raises the mode above what works.
CAP_VARIABLE = "CNN_GRADER_CONFINEMENT"
#: Set by CI: the tests and `grade.py sandbox` fail, with the probes' reasons, when the mode here is weaker.
REQUIRE_VARIABLE = "CNN_GRADER_REQUIRE_CONFINEMENT"
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded in the parent: nothing to load after fork


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(_LIBC.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount {target}")


def scrubbed_environment(home: Path, **extra: str) -> dict[str, str]:
    """The environment student code runs with: a few passed-through settings, one BLAS thread,
    a fixed hash seed, HOME in its scratch folder, plus the caller's `extra`."""
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env.update(PATH="/usr/bin:/bin", HOME=str(home), PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **extra)
    return env


def worker_environment(home: Path) -> dict[str, str]:
    """A worker's environment (and a warm worker's, which forks workers): scrubbed, no GUI for matplotlib."""
    return scrubbed_environment(home, MKL_NUM_THREADS="1", MPLBACKEND="Agg")


def interpreter_paths() -> list[Path]:
    """What the worker's interpreter must be able to read: Python, the venv, and the worker's own code
    (a copy of its modules alone: never the harness package, see worker_code.py)."""
    return sorted({Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.prefix, worker_code())})


def interpreter_links() -> list[tuple[str, str]]:
    """Symbolic links on the way to the interpreter as it is started (`sys.executable`, `sys.prefix`),
    as (link, target): a virtual environment reached through a link (`.venv -> /elsewhere/venv`) must
    be started by that path, which tells Python where its environment is, so the worker's root holds
    the same links to the folders bound in."""
    links = {}
    for start in (sys.executable, sys.prefix):
        path = Path(os.path.abspath(start))
        for ancestor in [*reversed(path.parents), path]:
            if os.path.islink(ancestor) and str(ancestor) not in links:
                links[str(ancestor)] = os.readlink(ancestor)
    return sorted(links.items())


@dataclass(frozen=True)
class Confinement:
    """Everything the child needs to confine itself between fork and exec, and what to exec."""

    mode: str  # "namespace", "user" or "none"
    rlimits: tuple[tuple[int, int], ...] = ()
    hidden: tuple[str, ...] = ()
    root: str = ""  # an empty folder where the worker's root is assembled (in its scratch folder)
    readable: tuple[str, ...] = ()  # bound read-only: the interpreter, the venv, the harness code
    writable: tuple[str, ...] = ()  # bound read-write: the scratch folder
    links: tuple[tuple[str, str], ...] = ()  # (path, target): links on the way to the interpreter
    ids: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` as it must be started: in namespace mode through `unshare` (a PID namespace of
        its own, a fresh /proc, no network, its own System V IPC) and `setpriv` (the worker's own user id)."""
        if self.mode != "namespace":
            return list(argv)
        uid, gid = self.ids
        return [_UNSHARE, "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc",
                _SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--", *argv]

    def __call__(self) -> None:
        """The preexec function: runs in the child after fork, before exec; raises on failure, after
        writing why to the child's stderr (subprocess keeps only "Exception occurred in preexec_fn")."""
        try:
            if self.mode == "namespace":
                self._private_view()  # the user switch follows in `command`, after the PID namespace
            elif self.ids is not None:
                os.setgroups([])
                os.setgid(self.ids[1])
                os.setuid(self.ids[0])
            for which, value in self.rlimits:
                resource.setrlimit(which, (value, value))
        except BaseException as exc:
            os.write(2, f"confining the process ({self.mode}) failed: {type(exc).__name__}: {exc}\n".encode())
            raise

    def _private_view(self) -> None:
        _check(_LIBC.unshare(_CLONE_NEWNS), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        root = self.root
        _mount("tmpfs", root, "tmpfs", _MS_NOSUID, "mode=0755,size=64m")
        inside = lambda path: root + path  # noqa: E731 - every path is absolute
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                os.symlink(os.readlink(path), inside(path))
            elif os.path.isdir(path):
                self._bind(path, inside(path), read_only=True)
        os.makedirs(inside("/dev"))
        _mount("/dev", inside("/dev"), None, _MS_BIND | _MS_REC)
        _mount("tmpfs", inside("/dev/shm"), "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=64m")
        os.makedirs(inside("/proc"))  # `unshare --mount-proc` mounts the new PID namespace's /proc here
        for path in SHARED_WRITABLE:
            os.makedirs(inside(path), exist_ok=True)
            os.chmod(inside(path), 0o1777)
        for path in self.readable:
            self._bind(path, inside(path), read_only=True)
        for path in self.writable:  # not recursive: the scratch folder holds this root's own mount
            self._bind(path, inside(path), read_only=False, recursive=False)
        for path, target in self.links:  # where a bound folder holds the link, the link is already there
            if not os.path.lexists(inside(path)):
                os.makedirs(os.path.dirname(inside(path)), mode=0o755, exist_ok=True)
                os.symlink(target, inside(path))
        for path in self.hidden:  # only what a bound folder itself holds (a self-check's fixtures, say)
            if os.path.isdir(inside(path)):
                _mount("tmpfs", inside(path), "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                       "mode=000,size=4k")
        workdir = os.getcwd()  # set before this function runs; outside the new root until changed
        os.chroot(root)
        os.chdir(workdir)

    @staticmethod
    def _bind(source: str, target: str, read_only: bool, recursive: bool = True) -> None:
        os.makedirs(target, mode=0o755, exist_ok=True)
        _mount(source, target, None, _MS_BIND | (_MS_REC if recursive else 0))
        if read_only:
            _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID)


def _rlimits(memory_mb: int, cpu_seconds: int, file_size_mb: int, max_processes: int, dropping: bool):
    mb = 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory_mb * mb), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_size_mb * mb), (resource.RLIMIT_CORE, 0)]
    if hasattr(resource, "RLIMIT_MSGQUEUE"):  # no POSIX message queue: one would outlive its process
        limits.append((resource.RLIMIT_MSGQUEUE, 0))
    if dropping:  # RLIMIT_NPROC counts per user: meaningful for the worker's own user id only
        limits.append((resource.RLIMIT_NPROC, max_processes))
    return tuple(limits)


def _unprivileged_ids() -> tuple[int, int]:
    """A fresh user and group id (the same number) for one worker."""
    low, high = WORKER_IDS
    number = low + secrets.randbelow(high - low)
    return number, number


class ConfinementError(ValueError):
    """A confinement setting that makes no sense, or a check of the worker's view that could not run."""


@dataclass(frozen=True)
class Probe:
    """Whether a mode worked on this machine and, when it did not, why, in the failing step's words."""

    mode: str
    works: bool
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        """One line for people: `namespace: works (0.16 s)` or `user: fails: <why>`."""
        timing = f" ({self.seconds:.2f} s)" if self.seconds else ""
        return f"{self.mode}: works{timing}" if self.works else f"{self.mode}: fails{timing}: {self.detail}"


def _mode_named(name: str, variable: str) -> str:
    if name not in MODES:
        raise ConfinementError(f"{variable}={name!r}: expected one of {', '.join(MODES)}")
    return name


def _tail(data: bytes, limit: int = 1500) -> str:
    text = data.decode("utf-8", "replace").strip()
    return ("…" + text[-limit:]) if len(text) > limit else text


def _probe(confinement: Confinement) -> Probe:
    """Can a process confined this way start Python and import numpy? If not, the reason."""
    started = time.monotonic()

    def outcome(works: bool, detail: str = "") -> Probe:
        return Probe(confinement.mode, works, detail, time.monotonic() - started)

    if confinement.mode == "namespace":
        missing = [tool for tool in (_UNSHARE, _SETPRIV) if not os.access(tool, os.X_OK)]
        if missing:
            return outcome(False, f"{' and '.join(missing)} not found (Debian: apt-get install util-linux)")
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: it survives a failed start
        try:
            result = subprocess.run(confinement.command([sys.executable, "-I", "-c", "import numpy"]),
                                    preexec_fn=confinement, stdout=subprocess.DEVNULL, stderr=errors, timeout=60,
                                    cwd="/")
        except subprocess.TimeoutExpired:
            return outcome(False, "the probe did not finish within 60 s")
        except (OSError, subprocess.SubprocessError) as exc:
            errors.seek(0)
            return outcome(False, _tail(errors.read()) or f"{type(exc).__name__}: {exc}")
        if result.returncode == 0:
            return outcome(True)
        errors.seek(0)
        said = _tail(errors.read())
        return outcome(False, f"`python -c 'import numpy'` confined this way exited with status {result.returncode}"
                              + (f": {said}" if said else ""))


def mode_cap() -> str:
    """The strongest mode allowed by CAP_VARIABLE (default: namespace, no cap)."""
    return _mode_named(os.environ.get(CAP_VARIABLE) or "namespace", CAP_VARIABLE)


def probes() -> tuple[Probe, ...]:
    """Each mode, strongest first, as tried here up to the first that works; probed once per process and
    cap (a process forked from a warm one, see autograder/warm.py, reuses its probes when its cap is the same)."""
    return _probes(mode_cap(), os.geteuid())


@lru_cache(maxsize=None)
def _probes(cap: str, euid: int) -> tuple[Probe, ...]:
    results = [Probe(mode, False, f"{CAP_VARIABLE}={cap} allows {cap} at most")
               for mode in MODES[:MODES.index(cap):-1]]
    if euid != 0:
        reason = f"the grader is not root (user id {euid}): the worker runs as the grader's own user"
        results += [Probe(mode, False, reason) for mode in MODES[MODES.index(cap):0:-1]]
        return (*results, Probe("none", True))
    if cap == "namespace":
        with tempfile.TemporaryDirectory(prefix="cnn-grader-probe-") as folder:
            results.append(_probe(Confinement("namespace", root=folder, readable=tuple(map(str, interpreter_paths())),
                                              links=tuple(interpreter_links()), ids=_unprivileged_ids())))
        if results[-1].works:
            return tuple(results)
    if cap != "none":
        results.append(_probe(Confinement("user", ids=_unprivileged_ids())))
        if results[-1].works:
            return tuple(results)
    return (*results, Probe("none", True))


def available_mode() -> str:
    """The strongest mode that works here (at most CAP_VARIABLE's); probed once per process."""
    return next(probe.mode for probe in probes() if probe.works)


def explain_mode() -> str:
    """Why the mode is what it is: one line per mode tried."""
    return "\n".join(probe.line() for probe in probes())


def unmet_requirement(required: str | None = None) -> str | None:
    """When the mode here is weaker than `required` (default: REQUIRE_VARIABLE, if set), why; else None."""
    required = required if required is not None else os.environ.get(REQUIRE_VARIABLE, "")
    if not required:
        return None
    _mode_named(required, REQUIRE_VARIABLE)
    mode = available_mode()
    if MODES.index(mode) >= MODES.index(required):
        return None
    return (f"the worker must be confined in mode {required!r} ({REQUIRE_VARIABLE}), but only {mode!r} works here:\n"
            + explain_mode())


def _real_path(path: Path, folders: dict[str, str]) -> str:
    """The real path of `path`; `folders` keeps each folder's real path, so that the hundreds of fixtures of
    one folder resolve their folder once."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in folders:
        folders[folder] = os.path.realpath(folder)
    return os.path.realpath(os.path.join(folders[folder], os.path.basename(path)))


def _inside(real: str, folders: Sequence[str]) -> bool:
    return any(real == folder or real.startswith(folder.rstrip("/") + "/") for folder in folders)


_TRY_OPEN = """import os, sys
for path in sys.stdin.buffer.read().split(b"\\0"):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        continue
    sys.stdout.buffer.write(path + b"\\0")
"""


def readable_by_worker(files: Sequence[Path]) -> list[Path]:
    """Which of `files` the worker's user could read, in the mode used here.

    `namespace`: those under the folders bound into its view (the interpreter, the venv, the
    harness code); nothing else exists there. `user`: tried for real, by a process switched to a
    fresh worker user id that opens each file (permission bits, ACLs and whatever else the kernel
    checks all count). `none`: the worker is the grader's own user, so whatever this process can read.
    """
    mode = available_mode()
    if mode == "namespace":
        bound, folders = [str(path) for path in interpreter_paths()], {}
        return [path for path in files if _inside(_real_path(path, folders), bound)]
    if mode == "none":
        return [path for path in files if os.access(path, os.R_OK)]
    try:
        result = subprocess.run([sys.executable, "-I", "-S", "-c", _TRY_OPEN],
                                input=b"\0".join(os.fsencode(path) for path in files),
                                preexec_fn=Confinement("user", ids=_unprivileged_ids()), capture_output=True,
                                timeout=120, cwd="/", env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfinementError(f"could not test what the worker's user can read: {type(exc).__name__}: {exc}") from None
    if result.returncode != 0:
        raise ConfinementError(f"could not test what the worker's user can read: exit status {result.returncode}: "
                               f"{_tail(result.stderr)}")
    opened = set(result.stdout.split(b"\0"))
    return [path for path in files if os.fsencode(path) in opened]


def confinement_for(scratch: Path, hidden: list[Path], memory_mb: int, cpu_seconds: int, file_size_mb: int,
                    max_processes: int) -> Confinement:
    """The confinement for one worker whose files live in `scratch` (handed to its user here)."""
    mode = available_mode()
    rlimits = _rlimits(memory_mb, cpu_seconds, file_size_mb, max_processes, dropping=mode != "none")
    if mode == "none":
        notes = ("running as root, but the worker could not be confined: student code could read the fixtures",) \
            if os.geteuid() == 0 else ()
        return Confinement("none", rlimits, notes=notes)
    ids = _unprivileged_ids()
    for path in [scratch, *scratch.rglob("*")]:
        os.chown(path, *ids, follow_symlinks=False)
    if mode == "user":
        return Confinement("user", rlimits, ids=ids)
    # Hidden paths are only covered where a bound folder holds them; one that holds the interpreter or
    # the harness cannot be (the worker could not start): that is a self-check, with nothing secret.
    # The harness package too, should a bound folder hold it (a venv with the grader installed into it).
    needed = interpreter_paths()
    hidden_paths = tuple(sorted({os.path.realpath(p) for p in [*hidden, REPO_ROOT / "autograder"]
                                 if not any(n == Path(os.path.realpath(p)) or Path(os.path.realpath(p)) in n.parents
                                            for n in needed)}))
    root = scratch / ".root"
    root.mkdir()
    return Confinement("namespace", rlimits, hidden_paths, str(root), tuple(map(str, needed)),
                       (str(scratch.resolve()),), tuple(interpreter_links()), ids)

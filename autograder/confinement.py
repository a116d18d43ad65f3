"""How the worker process is confined: its view of the file system, its user, its limits.

Three modes, the strongest that works on this machine is chosen once per process (probe):

- `namespace` (grader runs as root with CAP_SYS_ADMIN): the worker gets a private mount
  namespace in which every hidden path (fixtures, reference solution, output folder) is covered
  by an empty tmpfs that no one can read. Directories an unprivileged user could not traverse on
  the way to the interpreter (a Python installed under /root, say) are replaced by a traversable
  tmpfs holding only the subtrees the interpreter needs, and the shared writable folders (/tmp,
  /var/tmp, /dev/shm, /run/lock) by fresh empty ones holding only the worker's own scratch
  folder: nothing the worker writes outside its scratch folder outlives it, and nothing another
  process left there is visible. The command is then started through util-linux's `unshare`
  in a new PID namespace with its own /proc (the worker is its process 1: when it dies, the
  kernel kills every process it left, `setsid()` or not, and no other process is visible) and a
  new network namespace (no network at all: only a loopback device that is down), and through
  `setpriv`, which switches to a user id of the worker's own (WORKER_IDS) with no capabilities
  and no new privileges.
- `user` (root, but no namespaces, as in a plain container): the worker switches to a user id
  of its own; hidden paths are protected by their permissions only.
- `none` (the grader is not root, as in a student's self-check): same user; there is nothing
  secret to hide in a handout, which holds public fixtures only.

Resource limits apply in every mode.
"""

from __future__ import annotations

import ctypes
import os
import resource
import secrets
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT

#: Each worker runs as a user id of its own, drawn from this range, where no account exists: the
#: process limit, signals and /proc are then per worker, so a fork bomb in one student's code
#: cannot starve the worker of another student graded at the same time (`batch --jobs`).
WORKER_IDS = (1_000_000, 2_000_000_000)
#: Environment variables passed through to student code; everything else is dropped.
PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "TZ")
#: Never visible to student code: the expected values, the solution, the history holding both.
SECRET_PATHS = (REPO_ROOT / "fixtures", REPO_ROOT / "reference_solution", REPO_ROOT / ".git")
#: Folders every user may write to; replaced by fresh empty ones in the namespace.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 4096, 8192, 16384, 1 << 18
_UNSHARE, _SETPRIV = "/usr/bin/unshare", "/usr/bin/setpriv"
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


def interpreter_paths() -> list[Path]:
    """What the worker's interpreter must be able to read: Python, the venv, the harness code."""
    return sorted({Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.prefix, REPO_ROOT / "autograder")})


def _others_can_traverse(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXOTH)


def blocked_ancestors(needed: list[Path]) -> dict[Path, list[Path]]:
    """Outermost directories others cannot traverse, each with the needed paths beneath it."""
    blocked: dict[Path, list[Path]] = {}
    for path in needed:
        for ancestor in reversed(path.parents):
            if ancestor != Path("/") and not _others_can_traverse(ancestor):
                blocked.setdefault(ancestor, []).append(path)
                break
    return blocked


@dataclass(frozen=True)
class Confinement:
    """Everything the child needs to confine itself between fork and exec, and what to exec."""

    mode: str  # "namespace", "user" or "none"
    rlimits: tuple[tuple[int, int], ...] = ()
    hidden: tuple[str, ...] = ()
    staging: str = ""
    # (folder, mode of its replacement, paths beneath it that stay visible): blocked ancestors of the
    # interpreter, then the shared writable folders.
    replaced: tuple[tuple[str, int, tuple[str, ...]], ...] = ()
    ids: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` as it must be started: in namespace mode through `unshare` (a PID namespace of
        its own, a fresh /proc, no network) and `setpriv` (the worker's own user id)."""
        if self.mode != "namespace":
            return list(argv)
        uid, gid = self.ids
        return [_UNSHARE, "--pid", "--fork", "--kill-child", "--mount-proc", "--net",
                _SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--", *argv]

    def __call__(self) -> None:
        """The preexec function: runs in the child after fork, before exec; raises on failure."""
        if self.mode == "namespace":
            self._private_view()  # the user switch follows in `command`, after the PID namespace
        elif self.ids is not None:
            os.setgroups([])
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])
        for which, value in self.rlimits:
            resource.setrlimit(which, (value, value))

    def _private_view(self) -> None:
        _check(_LIBC.unshare(_CLONE_NEWNS), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        for index, (folder, mode, keep) in enumerate(self.replaced):
            if not os.path.isdir(folder):
                continue
            # A fresh tmpfs is filled in a staging folder, each kept path bound at its own place,
            # then moved over the folder in one step.
            fresh = os.path.join(self.staging, str(index))
            _mount("tmpfs", fresh, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode={mode:o},size=64m")
            for path in keep:
                inside = os.path.join(fresh, os.path.relpath(path, folder))
                os.makedirs(inside, mode=0o755, exist_ok=True)
                _mount(path, inside, None, _MS_BIND)
            _mount(fresh, folder, None, _MS_MOVE)
        for path in self.hidden:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "mode=000,size=4k")


def _rlimits(memory_mb: int, cpu_seconds: int, file_size_mb: int, max_processes: int, dropping: bool):
    mb = 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory_mb * mb), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_size_mb * mb), (resource.RLIMIT_CORE, 0)]
    if dropping:  # RLIMIT_NPROC counts per user: meaningful for the worker's own user id only
        limits.append((resource.RLIMIT_NPROC, max_processes))
    return tuple(limits)


def _replacement_plan(scratch: Path) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    """What is replaced in the namespace, and what stays visible beneath: the interpreter's blocked
    ancestors (mode 0755), then the shared writable folders (mode 1777) keeping the interpreter,
    the harness and the scratch folder where they lie beneath one."""
    needed = interpreter_paths()
    plan = [(str(a), 0o755, tuple(str(p) for p in paths)) for a, paths in blocked_ancestors(needed).items()]
    keep = [Path(os.path.realpath(p)) for p in [*needed, scratch]]
    for folder in SHARED_WRITABLE:
        real = Path(os.path.realpath(folder))
        if real.is_dir() and not any(real == Path(a) or Path(a) in real.parents for a, _, _ in plan):
            plan.append((str(real), 0o1777, tuple(str(p) for p in keep if real in p.parents)))
    return tuple(plan)


def _staging(folder: Path, plan) -> str:
    """Empty directories where the replacements are filled before they are moved in place."""
    for index in range(len(plan)):
        (folder / str(index)).mkdir(parents=True, exist_ok=True)
    return str(folder)


def _unprivileged_ids() -> tuple[int, int]:
    """A fresh user and group id (the same number) for one worker."""
    low, high = WORKER_IDS
    number = low + secrets.randbelow(high - low)
    return number, number


def _probe(confinement: Confinement) -> bool:
    """Can a process confined this way start Python and import numpy?"""
    if confinement.mode == "namespace" and not (os.access(_UNSHARE, os.X_OK) and os.access(_SETPRIV, os.X_OK)):
        return False
    try:
        result = subprocess.run(confinement.command([sys.executable, "-I", "-c", "import numpy"]),
                                preexec_fn=confinement, capture_output=True, timeout=60, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


@lru_cache(maxsize=None)
def available_mode() -> str:
    """The strongest mode that works here; probed once per process."""
    if os.geteuid() != 0:
        return "none"
    with tempfile.TemporaryDirectory(prefix="cnn-grader-probe-") as folder:
        plan = _replacement_plan(Path(folder))  # the staging folder must outlive the replacement of /tmp
        if _probe(Confinement("namespace", staging=_staging(Path(folder), plan), replaced=plan,
                              ids=_unprivileged_ids())):
            return "namespace"
    if _probe(Confinement("user", ids=_unprivileged_ids())):
        return "user"
    return "none"


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
    plan = _replacement_plan(scratch)
    # A folder holding the interpreter or the harness cannot be hidden (the worker could not start):
    # that happens in a student's self-check, where the grader lives inside the submission.
    needed = interpreter_paths()
    hidden_paths = tuple(sorted({os.path.realpath(p) for p in hidden
                                 if not any(n == Path(os.path.realpath(p)) or Path(os.path.realpath(p)) in n.parents
                                            for n in needed)}))
    return Confinement("namespace", rlimits, hidden_paths, _staging(scratch / ".stage", plan), plan, ids)

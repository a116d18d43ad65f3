"""How the worker process is confined: its view of the file system, its user, its limits.

Three modes, the strongest that works on this machine is chosen once per process (probe):

- `namespace` (grader runs as root with CAP_SYS_ADMIN): the worker gets a private mount
  namespace in which every hidden path (fixtures, reference solution, output folder) is covered
  by an empty tmpfs that nobody can read, then drops to an unprivileged user. Directories that
  user could not traverse on the way to the interpreter (a Python installed under /root, say)
  are replaced by a traversable tmpfs holding only the subtrees the interpreter needs.
- `user` (root, but no namespaces, as in a plain container): the worker drops to the
  unprivileged user; hidden paths are protected by their permissions only.
- `none` (the grader is not root, as in a student's self-check): same user; there is nothing
  secret to hide in a handout, which holds public fixtures only.

Resource limits apply in every mode.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT

UNPRIVILEGED_USER = "nobody"
#: Environment variables passed through to student code; everything else is dropped.
PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "TZ")
#: Never visible to student code: the expected values, the solution, the history holding both.
SECRET_PATHS = (REPO_ROOT / "fixtures", REPO_ROOT / "reference_solution", REPO_ROOT / ".git")
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 4096, 8192, 16384, 1 << 18
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
    """Everything the child needs to confine itself between fork and exec."""

    mode: str  # "namespace", "user" or "none"
    rlimits: tuple[tuple[int, int], ...] = ()
    hidden: tuple[str, ...] = ()
    staging: str = ""
    reopen: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (blocked ancestor, needed paths beneath)
    ids: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __call__(self) -> None:
        """The preexec function: runs in the child after fork, before exec; raises on failure."""
        if self.mode == "namespace":
            self._private_view()
        if self.ids is not None:
            os.setgroups([])
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])
        for which, value in self.rlimits:
            resource.setrlimit(which, (value, value))

    def _private_view(self) -> None:
        _check(_LIBC.unshare(_CLONE_NEWNS), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        count = 0
        for ancestor, needed in self.reopen:
            stages = []
            for path in needed:
                stage = os.path.join(self.staging, str(count))
                count += 1
                _mount(path, stage, None, _MS_BIND | _MS_REC)
                stages.append((stage, path))
            _mount("tmpfs", ancestor, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=64k")
            for stage, path in stages:
                os.makedirs(path, mode=0o755, exist_ok=True)
                _mount(stage, path, None, _MS_MOVE)
        for path in self.hidden:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "mode=000,size=4k")


def _rlimits(memory_mb: int, cpu_seconds: int, file_size_mb: int, max_processes: int, dropping: bool):
    mb = 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory_mb * mb), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_size_mb * mb), (resource.RLIMIT_CORE, 0)]
    if dropping:  # RLIMIT_NPROC counts per user: only meaningful for the dedicated unprivileged user
        limits.append((resource.RLIMIT_NPROC, max_processes))
    return tuple(limits)


def _reopen_plan() -> tuple[tuple[str, tuple[str, ...]], ...]:
    needed = interpreter_paths()
    return tuple((str(a), tuple(str(p) for p in paths)) for a, paths in blocked_ancestors(needed).items())


def _staging(folder: Path, reopen) -> str:
    """Empty directories where needed subtrees are parked while their ancestor is replaced."""
    for index in range(sum(len(paths) for _, paths in reopen)):
        (folder / str(index)).mkdir(parents=True, exist_ok=True)
    return str(folder)


def _unprivileged_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return entry.pw_uid, entry.pw_gid


def _probe(confinement: Confinement) -> bool:
    """Can a process confined this way start Python and import numpy?"""
    try:
        result = subprocess.run([sys.executable, "-I", "-c", "import numpy"], preexec_fn=confinement,
                                capture_output=True, timeout=60, cwd="/")
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


@lru_cache(maxsize=None)
def available_mode() -> str:
    """The strongest mode that works here; probed once per process."""
    if os.geteuid() != 0:
        return "none"
    reopen = _reopen_plan()
    with tempfile.TemporaryDirectory(prefix="cnn-grader-probe-") as folder:
        if _probe(Confinement("namespace", staging=_staging(Path(folder), reopen), reopen=reopen,
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
    reopen = _reopen_plan()
    # A folder holding the interpreter or the harness cannot be hidden (the worker could not start):
    # that happens in a student's self-check, where the grader lives inside the submission.
    needed = interpreter_paths()
    hidden_paths = tuple(sorted({os.path.realpath(p) for p in hidden
                                 if not any(n == Path(os.path.realpath(p)) or Path(os.path.realpath(p)) in n.parents
                                            for n in needed)}))
    return Confinement("namespace", rlimits, hidden_paths, _staging(scratch / ".stage", reopen), reopen, ids)

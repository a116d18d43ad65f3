"""The worker's own code, copied apart from the harness: all of the grader that student code can import.

The worker imports a student's `lib/`, and student code imported there can import whatever the
worker's view holds: with the whole harness package in it, a blank template could borrow the
grader's trusted forward (notebook/trusted_eval.py) and its central differences (numerics.py) and
pass the layer items. So the worker is started from a copy of only its own modules (worker.py,
probe.py, protocol.py, zygote.py, the warm worker that forks it, and folders.py, under stub `autograder` and
`autograder.sandbox` packages that hold nothing), written once per grading process into a read-only
folder of its own, and that folder, not the harness, is what the worker's view holds (confinement.py
binds it in `namespace` mode; in `user` mode it is the only harness folder on the worker's path). The
headless kernels get the same folder: the log replay imports the worker's compatibility shims from it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

#: The worker's modules (autograder/sandbox/), the only harness code its view holds. What they
#: import of the harness must be among them (tests/test_layout.py checks it).
MODULES = ("worker.py", "probe.py", "protocol.py", "zygote.py", "folders.py")
_HERE = Path(__file__).resolve().parent
_STUBS = {
    "autograder/__init__.py": '"""The worker\'s copy of the grader: only autograder.sandbox\'s worker modules."""\n',
    "autograder/sandbox/__init__.py": '"""The worker\'s own modules and the warm worker\'s (see MODULES)."""\n',
}
_made: dict[int, Path] = {}  # by the id of the process that made it: a forked process reuses its parent's


def _remove(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def worker_code() -> Path:
    """The folder holding the worker's copy of `autograder` (put it first on the worker's path).

    Made at the first call of each process (forked processes reuse their parent's), readable by
    every user (a worker runs as a user id of its own) and writable by none; removed when the
    process that made it exits.
    """
    for made in _made.values():
        if (made / "autograder" / "sandbox" / "worker.py").is_file():
            return made
    folder = Path(tempfile.mkdtemp(prefix="cnn-grader-worker-code-"))
    files = {**_STUBS, **{f"autograder/sandbox/{name}": (_HERE / name).read_text() for name in MODULES}}
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o444)
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        path.chmod(0o555)
    folder.chmod(0o555)
    _made[os.getpid()] = folder
    creator = os.getpid()
    atexit.register(lambda: os.getpid() == creator and _remove(folder))
    return folder

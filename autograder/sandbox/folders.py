"""Removing a folder that student code could write into: at any depth, whatever it locked.

Student code can nest folders past Python's recursion limit (shutil.rmtree recurses, and so does os.walk,
on Python 3.11: RecursionError, which no `ignore_errors` catches) and make folders unreadable to their owner.
Every scratch folder a worker, a kernel or a warm worker wrote is removed here: by shutil.rmtree when it can,
else by coreutils' `chmod -R` and `rm -rf`, which walk a tree of any depth without recursion. Both the
grader and the warm worker (zygote.py) use it, so it is among the worker's own modules (worker_code.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from typing import Iterator


def remove_tree(path: str | os.PathLike) -> None:
    """Remove `path` and everything under it; whatever cannot be removed stays, without an error (a scratch
    folder: a leftover costs disk, never a grade)."""
    path = os.fspath(path)
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:  # nested deeper than Python's recursion: coreutils walk it
        pass
    if not os.path.lexists(path):
        return
    for command in (["chmod", "-R", "u+rwx", "--", path], ["rm", "-rf", "--", path]):
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300, check=False)
        except (OSError, subprocess.SubprocessError):
            return


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[str]:
    """tempfile.TemporaryDirectory for a folder student code writes into (a kernel's): removed by
    `remove_tree`, so that a tree nested past the recursion limit is removed too, and never raises."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        remove_tree(folder)

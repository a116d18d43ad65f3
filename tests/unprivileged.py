"""Run a command as the grader would run elsewhere: where mode `user` can work, or as a user who is not root.

The tests' Python may live under a folder that other users cannot enter (pyenv's under a home
folder of mode 0700): a process switched to another user id could not start it, so mode `user`
would fail its probe and a grader that is not root could not run at all. `wrapped` fixes that for
one command, as root and without changing anything on disk: the command runs in a private mount
namespace (util-linux's `unshare`) in which each such folder is a fresh tmpfs holding only what
must be reached, bound back at the same path; with `user`, `setpriv` then switches to that user
id before the command starts.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path
from typing import Sequence

from autograder import REPO_ROOT
from autograder.sandbox.confinement import interpreter_paths

#: An unprivileged user id for a grader that is not root (no account needs to exist).
STUDENT_UID = 4242


def _blocked_top(path: Path) -> Path | None:
    """The highest folder above `path` that other users cannot enter, if any."""
    for ancestor in reversed(path.parents):  # from / down
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def wrapped(argv: Sequence[str], user: int | None = None, reach: Sequence[Path] = ()) -> list[str]:
    """`argv` as a command in which the interpreter, the repository and `reach` are reachable by every
    user; run as `user` when given."""
    needed = sorted({Path(os.path.realpath(p)) for p in (*interpreter_paths(), REPO_ROOT, *reach)})
    plan: dict[Path, list[Path]] = {}
    for path in needed:
        top = _blocked_top(path)
        if top is not None:
            plan.setdefault(top, []).append(path)
    script = ["set -e", "stage=$(mktemp -d)"]
    for number, (top, paths) in enumerate(plan.items()):
        staged = [f'"$stage/{number}-{index}"' for index in range(len(paths))]
        for path, stage in zip(paths, staged):
            script += [f"mkdir {stage}", f"mount --bind {shlex.quote(str(path))} {stage}"]
        script.append(f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(top))}")
        for path, stage in zip(paths, staged):
            script += [f"mkdir -p {shlex.quote(str(path))}", f"mount --bind {stage} {shlex.quote(str(path))}",
                       f"umount {stage}"]
    script += ['rm -r "$stage"', 'exec "$@"']
    switch = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(script), "sh",
            *switch, *argv]

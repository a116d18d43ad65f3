"""Stopping a process and everything it started, wherever that went.

A batch's grading process starts a worker (its own session, in namespace mode its own PID namespace)
and maybe a notebook kernel (confined the same way): killing the grading process's group would leave
them running, and once their parent is dead nothing links them to it any more. So the tree is watched
while it is still whole: the root is asked to stop (SIGTERM: it kills its worker and removes its scratch
folders itself) while its descendants, found by walking /proc's parent links, are noted; after a grace
period the descendants left are frozen (SIGSTOP: a frozen process cannot fork) and everything seen,
root included, is killed. A process is identified by its pid and start time, so a pid reused meanwhile
is never signalled.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, or None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), int(fields[19])  # ppid, starttime (fields 4 and 22 of stat)


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of `root` (children, theirs, ...): pid -> start time."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def _signal(pid: int, started: int, number: int) -> None:
    """Send `number` to the process `pid` if it is still the one that started at `started`."""
    stat = _stat(pid)
    if stat is None or stat[1] != started:
        return
    try:
        os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def freeze_descendants(root: int, rounds: int = 20) -> dict[int, int]:
    """SIGSTOP every descendant of `root`, again until no new one appears (one may fork between a walk
    and its stop); returns them all (pid -> start time)."""
    frozen: dict[int, int] = {}
    for _ in range(rounds):
        new = {pid: started for pid, started in descendants(root).items() if pid not in frozen}
        if not new:
            break
        for pid, started in new.items():
            _signal(pid, started, signal.SIGSTOP)
        frozen.update(new)
    return frozen


def stop_tree(root: int, grace: float, exited) -> None:
    """Stop process `root` and everything it started. It is asked first (SIGTERM: it kills its worker and
    removes its scratch folders itself) and given `grace` seconds for `exited()` to be true, while its
    descendants are watched (a worker it restarts meanwhile is seen too); then every descendant left is
    frozen, and the root and every descendant ever seen are killed (SIGKILL reaches a frozen process)."""
    seen = descendants(root)
    root_stat = _stat(root)
    if root_stat is not None:
        _signal(root, root_stat[1], signal.SIGTERM)
        end = time.monotonic() + grace
        while not exited() and time.monotonic() < end:
            seen.update(descendants(root))
            time.sleep(0.05)
        seen.update(freeze_descendants(root))
        _signal(root, root_stat[1], signal.SIGKILL)
    for pid, started in seen.items():
        _signal(pid, started, signal.SIGKILL)

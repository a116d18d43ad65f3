"""Finding processes that outlived the grading they were started for."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

_WORKER_FOLDERS = ("cnn-grader-worker-", "cnn-grader-run-", "cnn-grader-execute-")  # sandbox.py, execute.py


def survivors() -> list[tuple[int, str]]:
    """Processes started for a grading that has finished: their HOME is a worker's scratch folder
    that no longer exists (the grader deletes it after stopping the worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        homes = [item[5:].decode(errors="replace") for item in environ if item.startswith(b"HOME=")]
        if homes and any(folder in homes[0] for folder in _WORKER_FOLDERS) and not Path(homes[0]).exists():
            found.append((int(entry.name), homes[0]))
    return found


def no_survivors(patience: float = 10.0) -> list:
    """Survivors, after giving the kernel a moment to finish tearing a namespace down."""
    deadline = time.monotonic() + patience
    while (left := survivors()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def interrupted(batch: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C to `batch` (a process group of its own, as a terminal's job), then its stdout and stderr; killed
    whole if it does not end within two minutes, so that a failing test leaves nothing behind."""
    try:
        os.killpg(batch.pid, signal.SIGINT)
        return batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()

"""The headless kernel (`--execute`) runs student code too, and is held to the worker's rules."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import harness_digest, need_mode
from processes import no_survivors
from submissions import make_submission

from autograder.grading import grade_submission
from autograder.sandbox.confinement import SHARED_WRITABLE, SYSTEM_PATHS, interpreter_paths
from autograder.staff.synthetic import write_synthetic_svhn

pytestmark = pytest.mark.slow

ATTACK = '''
import os, socket, subprocess
subprocess.Popen(["sleep", "600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    import time
    while True:
        time.sleep(0.1)
try:
    socket.create_connection(("1.1.1.1", 443), timeout=2).close()
    print("NETWORK reached")
except OSError as exc:
    print("NETWORK", type(exc).__name__)
print("PROCESSES", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
print("ROOT", sorted(os.listdir("/")))
'''


def test_a_kernel_that_leaves_processes_behind_leaves_none(tmp_path):
    need_mode("namespace")  # the grader as root with mount namespaces
    data = tmp_path / "svhn"
    write_synthetic_svhn(data, train=2600, test=100, seed=7)
    sub = make_submission(tmp_path / "sub")
    notebook = nbformat.read(str(sub / "Problem_2.ipynb"), as_version=4)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(ATTACK))
    notebook.cells.insert(3, nbformat.v4.new_code_cell("import os\nos._exit(0)"))  # end the run here
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    before = harness_digest()

    result, out_dir = grade_submission(sub, tmp_path / "out", data_dir=data, execute=True, quick=True)

    assert json.loads((out_dir / "results.json").read_text())["score"] == 25  # the code items, untouched
    executed = nbformat.read(str(out_dir / "executed_Problem_2.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[2].get("outputs", []))
    assert "NETWORK" in printed and "NETWORK reached" not in printed
    processes = eval(printed.split("PROCESSES ")[1].splitlines()[0])  # noqa: S307 - our own cell's output
    assert 1 in processes and len(processes) < 10  # the kernel's own namespace: itself and its children
    root = set(eval(printed.split("ROOT ")[1].splitlines()[0]))  # noqa: S307
    allowed = {Path(p).parts[1] for p in (*SYSTEM_PATHS, *SHARED_WRITABLE, *map(str, interpreter_paths()))}
    assert root <= allowed | {"dev", "proc"}  # an allow-list: no /home, /opt, /mnt, /srv …
    assert no_survivors() == []
    assert harness_digest() == before

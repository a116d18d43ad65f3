"""One stuck submission never hides the class: each has a wall-clock deadline in `grade.py batch`, past
which its grading process, worker and kernel are stopped (autograder/processes.py) and it is recorded
as timed out; the gradebook, class report and grading sheet are written while the batch runs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REFERENCE
from hostile.processes import interrupted, no_survivors
from submissions import LAYERS, make_submission

from autograder import REPO_ROOT
from autograder.batch import BatchEntry, BatchStopped, _stop_batch, run_batch, timed_out_result, write_gradebook
from autograder.grading import grade_submission
from autograder.model import BatchStatus
from autograder.processes import descendants, stop_tree
from autograder.reports.results import write_reports

#: A lib whose import takes 20 s and whose layers never return: every case times out and every restart
#: of the worker imports it again, so grading it takes many minutes.
STUCK = [(LAYERS, "import numpy as np\n", "import numpy as np\nimport time\ntime.sleep(20)\n"),
         (LAYERS, "    def forward(self, img):\n", "    def forward(self, img):\n        time.sleep(1000)\n")]
DEADLINE = 90  # the honest submission takes about 10 s on 2 cores; room for a loaded machine


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stop_tree_kills_a_process_that_ignores_sigterm_and_everything_it_started():
    """The root ignores SIGTERM and starts a child in a session of its own, which starts its own child:
    after the grace period all three are gone."""
    script = ("import os, signal, subprocess, sys, time\n"
              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "subprocess.Popen([sys.executable, '-c', 'import subprocess, sys, time; "
              "subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(600)\"]); time.sleep(600)'], "
              "start_new_session=True)\n"
              "print('ready', flush=True)\n"
              "time.sleep(600)\n")
    root = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while len(descendants(root.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        tree = descendants(root.pid)
        assert len(tree) == 2
        stop_tree(root.pid, 1.0, lambda: root.poll() is not None)
        root.wait(timeout=30)
        assert root.returncode == -signal.SIGKILL  # SIGTERM was ignored: killed after the grace period
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in tree)
    finally:
        for pid in [root.pid, *descendants(root.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_timed_out_student_is_a_fault_and_one_not_graded_yet_has_an_empty_row(tmp_path):
    out = tmp_path / "out"
    write_reports(timed_out_result("0002", 90, 91.5), out / "0002")
    entries = [BatchEntry("0002", Path("0002.zip"), BatchStatus.TIMED_OUT),
               BatchEntry("0003", Path("0003"), BatchStatus.NOT_GRADED_YET)]
    rows = {row["student_id"]: row for row in csv.DictReader(write_gradebook(out, entries).open(newline=""))}
    assert rows["0002"]["status"] == "fault" and rows["0002"]["flags"] == "grading timed out (90 s)"
    assert float(rows["0002"]["total"]) == 0
    assert rows["0003"]["status"] == "not graded yet" and rows["0003"]["flags"] == "" and rows["0003"]["total"] == ""
    document = json.loads((out / "0002" / "results.json").read_text())
    assert {test["extra_data"]["reason_code"] for test in document["tests"]} == {"timed_out"}
    assert all("timed out: grading took over 90 s" in test["output"] for test in document["tests"])


def _rows(out: Path) -> dict[str, dict]:
    try:
        with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
            return {row["student_id"]: row for row in csv.DictReader(handle)}
    except FileNotFoundError:
        return {}


@pytest.fixture
def classroom(tmp_path) -> Path:
    """An honest submission (0001) and a stuck one (0002)."""
    folder = tmp_path / "submissions"
    make_submission(folder / "0001", source=REFERENCE)
    make_submission(folder / "0002", STUCK, source=REFERENCE)
    return folder


@pytest.fixture
def scratch():
    """The batch's TMPDIR: whatever is left in it after the batch leaked."""
    folder = Path(tempfile.mkdtemp(prefix="cnn-grader-test-tmp-"))
    folder.chmod(0o1777)  # like /tmp: the confined worker's user makes its folders here too
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _batch(folder: Path, out: Path, scratch: Path, deadline: float, **popen) -> subprocess.Popen:
    command = [sys.executable, str(REPO_ROOT / "grade.py"), "batch", str(folder), "--out", str(out),
               "--jobs", "2", "--deadline", str(deadline)]
    return subprocess.Popen(command, cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, TMPDIR=str(scratch)), **popen)


def _gradebook_while_running(batch: subprocess.Popen, out: Path) -> dict[str, dict]:
    """The gradebook as it is when it first shows 0001 graded while the batch still runs ({} if never)."""
    while batch.poll() is None:
        rows = _rows(out)
        if rows.get("0001", {}).get("status") in ("complete", "pending staff") and batch.poll() is None:
            assert (out / "class_report.html").is_file() and (out / "manual_grading.html").is_file()
            return rows
        time.sleep(0.5)
    return {}


def _nothing_left(scratch: Path) -> None:
    ours = [found for found in no_survivors() if found[1].startswith(str(scratch))]  # others' tests run too
    assert not ours, f"processes of the stopped grading survived: {ours}"
    assert not list(scratch.iterdir()), f"left in TMPDIR: {sorted(p.name for p in scratch.iterdir())}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_stuck_submission_times_out_and_the_class_is_reported_while_it_runs(tmp_path, classroom, scratch):
    out = tmp_path / "graded"
    batch = _batch(classroom, out, scratch, DEADLINE)
    try:
        seen_while_running = _gradebook_while_running(batch, out)
        stdout, stderr = batch.communicate(timeout=600)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == 0, stdout + stderr
    # While the stuck one still ran, the honest one was already in the gradebook, graded.
    assert seen_while_running, "the gradebook never showed the honest submission while the batch ran"
    assert float(seen_while_running["0001"]["total"]) == 25
    assert seen_while_running["0002"]["status"] == "not graded yet"

    rows = _rows(out)
    assert float(rows["0001"]["total"]) == 25 and rows["0001"]["status"] == "pending staff"  # the answer
    assert rows["0002"]["status"] == "fault" and float(rows["0002"]["total"]) == 0
    assert f"grading timed out ({DEADLINE} s)" in rows["0002"]["flags"]
    assert "1 graded" in stdout and "1 timed out" in stdout
    assert f"timed out: 0002 (0002): timed out: grading took over {DEADLINE} s" in stderr
    results = json.loads((out / "0002" / "results.json").read_text())
    assert results["score"] == 0 and {t["extra_data"]["reason_code"] for t in results["tests"]} == {"timed_out"}
    assert not (out / "0002" / ".graded-input").exists()  # not stamped: the next run tries again
    report = (out / "class_report.md").read_text()
    assert "0001" in report and "0002" in report and "grading timed out" in report
    assert "0002" in (out / "manual_grading.html").read_text()
    _nothing_left(scratch)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_batch_stopped_midway_leaves_the_reports_of_everyone_graded_so_far(tmp_path, classroom, scratch):
    """SIGTERM to the batch once the honest submission is graded: the batch stops the stuck one's grading
    (nothing of it survives), and its reports list the honest one graded and the stuck one not graded yet."""
    out = tmp_path / "graded"
    batch = _batch(classroom, out, scratch, 3600)
    try:
        assert _gradebook_while_running(batch, out), "the gradebook never showed the honest submission"
        batch.send_signal(signal.SIGTERM)
        stdout, stderr = batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == 143, stdout + stderr
    assert "list everyone graded so far" in stderr
    rows = _rows(out)
    assert rows["0001"]["status"] == "pending staff" and float(rows["0001"]["total"]) == 25  # the answer
    assert rows["0002"]["status"] == "not graded yet" and rows["0002"]["total"] == ""
    assert "0001" in (out / "class_report.md").read_text()
    _nothing_left(scratch)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ctrl_c_stops_the_batch_as_sigterm_does(tmp_path, classroom, scratch):
    """Ctrl-C at the terminal (SIGINT to the batch's whole process group, its grading processes included) once
    the honest submission is graded: the batch says it stopped (exit 130, no traceback from it or from a
    grading process), stops the stuck one's grading, and its reports list the honest one graded."""
    out = tmp_path / "graded"
    batch = _batch(classroom, out, scratch, 3600, start_new_session=True)  # a terminal's job: a group of its own
    shown = _gradebook_while_running(batch, out)
    stdout, stderr = interrupted(batch)
    assert shown, "the gradebook never showed the honest submission"
    assert batch.returncode == 130, stdout + stderr
    assert "batch stopped by Ctrl-C (SIGINT)" in stderr and "list everyone graded so far" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    rows = _rows(out)
    assert rows["0001"]["status"] == "pending staff" and float(rows["0001"]["total"]) == 25
    assert rows["0002"]["status"] == "not graded yet" and rows["0002"]["total"] == ""
    _nothing_left(scratch)


class _StoppedAfterOne:
    """An engine whose first submission is graded and placed, and the batch then stopped before the reports'
    next turn (a signal between the two: the batch's loop notices it only at its next wait)."""

    def grade_all(self, todo, out_dir, options, deadline, grace, watcher):
        entry = todo[0]
        result, _ = grade_submission(entry.source, out_dir / entry.student_id, **options)
        entry.status, entry.score = "graded", result.score
        _stop_batch(signal.SIGINT, None)  # as the handler the batch installs does on Ctrl-C
        watcher.finished([entry])
        raise AssertionError("the batch went on after it was stopped")


def test_a_stopped_batch_reports_every_folder_placed_before_the_stop(tmp_path):
    for name in ("ann", "bob"):
        (tmp_path / "in" / name).mkdir(parents=True)  # graded at once: no notebook, no lib
    with pytest.raises(BatchStopped) as stopped:
        run_batch(tmp_path / "in", tmp_path / "out", engine=_StoppedAfterOne(), progress="none")
    assert stopped.value.signum == signal.SIGINT and "Ctrl-C" in str(stopped.value)
    rows = _rows(tmp_path / "out")
    assert rows["ann"]["status"] in ("complete", "pending staff"), rows["ann"]  # placed: graded, not "not yet"
    assert rows["bob"]["status"] == "not graded yet"

"""Grading a whole class: one process per submission, resumable, never stopped by one student.

INPUT holds submission folders and/or zips named by student id, as the course collects them.
Each is graded by `grade_submission` in a process of its own (at most `jobs` at a time) into
OUT/<student id>/. A stamp there records what was graded (the input's sha256, the harness version and
the baseline's digest), so a re-run skips submissions that did not change (`force` regrades them). A
fault of the harness in one submission is written into that student's folder and the batch goes on.

One stuck submission never hides the class: each has a wall-clock deadline ([deadlines] of the rubric,
or `deadline`), past which its grading process, worker and kernel are stopped (autograder/processes.py)
and a complete results.json says so (every item 0, reason code timed_out; not stamped, so the next run
tries again). OUT/gradebook.csv, the class report (class_report.html, .md), OUT/similarity.json and the
staff's grading sheet (manual_grading.html) are rebuilt from every student's results.json as the batch
goes (at most every [deadlines] report_interval_seconds, each file written atomically) and at its end,
so a batch stopped midway leaves reports of everyone graded so far; the staff's scores of
OUT/manual_merges.jsonl are set again in each new result as it comes (autograder/reports/manual.py).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from autograder import REPO_ROOT, __version__
from autograder.baseline import Baseline, default_baseline
from autograder.edition import Edition
from autograder.intake import input_digest, student_id_for
from autograder.model import BatchStatus, GradeResult, ItemScore, ItemStatus, ReasonCode, RowStatus, graded_tests
from autograder.notebook.items import NOTEBOOK_IMAGE, RENDERED_IMAGE
from autograder.notebook.pdf_check import DIFFERENT, NOT_FOUND, UNSURE
from autograder.processes import stop_tree
from autograder.progress import Progress
from autograder.reports.class_files import GRADEBOOK, check_class_files, is_reserved
from autograder.reports.class_report import build_class_report, edition_label, edition_of
from autograder.reports.manual import MERGE_LOG, reapply_staff_scores
from autograder.reports.manual_sheet import build_manual_sheet
from autograder.reports.results import write_atomically, write_reports
from autograder.reports.similarity import FINGERPRINT, PAIRS, flags_by_student, read_pairs, similar_pairs, write_pairs
from autograder.rubric import all_extra_items, load_rubric
from autograder.sandbox.confinement import SECRET_PATHS
from autograder.sandbox.exposure import guard_secrets
from autograder.sandbox.folders import remove_tree
from autograder.sandbox.warm_worker import SlotAddress, WarmClient, WarmSlots

STAMP = ".graded-input"


@dataclass
class BatchEntry:
    """One submission of the batch and what happened to it."""

    student_id: str
    source: Path
    status: BatchStatus = BatchStatus.NOT_GRADED_YET
    score: float | None = None
    seconds: float = 0.0
    detail: str = ""


def discover(input_dir: Path) -> tuple[list[BatchEntry], list[str]]:
    """Every submission in INPUT; a repeated student id gets a suffix and a note. So does an id that is the
    name of one of OUT's own files (`class_files.is_reserved`: `gradebook.csv`, `manual_merges.jsonl`, ...,
    in any case), as if that file were its first holder: `manual_merges.jsonl-2`. Its folder would otherwise
    take the file's place and break the reports or every later merge."""
    entries, notes, seen = [], [], {}
    for path in sorted(input_dir.iterdir()):
        if path.name.startswith(".") or path.name == "__MACOSX":
            continue
        if not (path.is_dir() or path.suffix.lower() == ".zip"):
            notes.append(f"{path.name}: not a folder or a .zip, ignored")
            continue
        student_id = student_id_for(path)
        reserved = is_reserved(student_id)
        count = seen.get(student_id, 1 if reserved else 0) + 1
        seen[student_id] = count
        if reserved:
            notes.append(f"{path.name}: student id {student_id} is the name of a file the batch writes in its OUT "
                         f"folder; graded as {student_id}-{count}")
            student_id = f"{student_id}-{count}"
        elif count > 1:
            notes.append(f"{path.name}: student id {student_id} appears {count} times; graded as {student_id}-{count}")
            student_id = f"{student_id}-{count}"
        entries.append(BatchEntry(student_id, path))
    return entries, notes


def stamp_for(source: Path, options: dict) -> str:
    """The stamp of `source` graded with the batch's `options`: the one place both engines take it from."""
    return _stamp(source, options["baseline"], options.get("edition"), options.get("release", False))


def _stamp(source: Path, baseline: Baseline, edition: Edition | None = None, release: bool = False) -> str:
    """What a grade depends on besides the code: the submission, the baseline, the edition staff gave
    (none: detected) and whether feedback.md is released, so that grading again with another --edition
    regrades, and so does `--release` after the due date (every feedback.md is then rewritten)."""
    given = f" edition={edition.name}" if edition is not None else ""
    released = " released" if release else ""
    return f"{input_digest(source)} {__version__} {baseline.digest}{given}{released}"


def _grade_one(source: Path, out_dir: Path, options: dict) -> tuple[BatchStatus, float | None, str]:
    """Runs in a pool process: grade, stamp, and report (status, score, detail); never raises."""
    if threading.current_thread() is threading.main_thread():  # a Ctrl-C at the terminal reaches this process
        signal.signal(signal.SIGINT, _leave_to_the_batch)  # too; the batch stops it with SIGTERM if it stops
    from autograder.grading import HarnessError, grade_submission  # imported in the pool process

    try:
        result, _ = grade_submission(source, out_dir, write_fingerprint=True, **options)
        status, score, detail = BatchStatus.GRADED, result.score, ""
    except HarnessError as exc:  # results.json was written, with the fault in it
        status, score, detail = BatchStatus.HARNESS_FAULT, None, str(exc)
    except Exception:  # noqa: BLE001 - anything at all: record it for this student, go on
        trace = traceback.format_exc()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "harness_fault.txt").write_text(trace, encoding="utf-8")
        except OSError:  # the folder itself is the problem; the trace still reaches the gradebook
            pass
        return BatchStatus.HARNESS_FAULT, None, trace.strip().splitlines()[-1]
    stamp = stamp_for(source, options)
    (out_dir / STAMP).write_text(stamp, encoding="utf-8")
    return status, score, detail


def _leave_to_the_batch(signum, frame) -> None:
    """SIGINT in a grading process: nothing. A Ctrl-C reaches every process of the terminal's group; the batch
    (which gets it too) decides, and stops its grading processes with SIGTERM. A handler, not SIG_IGN: what this
    process starts with exec (the worker, a kernel) gets SIGINT's usual meaning back."""


def _stop_cleanly(signum, frame) -> None:
    """SIGTERM in a grading process: unwind (SystemExit passes every `except Exception`), so that its
    `with` and `finally` blocks kill its worker and kernel and remove their scratch folders."""
    raise SystemExit(f"stopped by signal {signum}: the batch's deadline for this submission passed")


def _grade_in_process(source: Path, out_dir: Path, options: dict, scratch: Path, answer: Connection,
                      environment: dict[str, str], warm: tuple[socket.socket, SlotAddress] | None = None) -> None:
    """The body of one submission's grading process: grade, then send (status, score, detail) back.
    Its temporary folders (the unpacked submission, the worker's, the kernel's) go into `scratch`, which
    the batch removes however the process ended. It runs with the batch's `environment` (the fork server
    it came from kept the one it started with). `warm`: its connection to the slot's warm worker, which
    forks its workers; when this process ends, so does the connection, and the warm worker clears the slot."""
    signal.signal(signal.SIGTERM, _stop_cleanly)
    os.environ.clear()
    os.environ.update(environment)
    os.environ["TMPDIR"] = tempfile.tempdir = str(scratch)
    if warm is not None:
        options = dict(options, warm=WarmClient(*warm))
    answer.send(_grade_one(source, out_dir, options))
    answer.close()


def timed_out_result(student_id: str, deadline: float, seconds: float, public_only: bool = False) -> GradeResult:
    """A complete result for a submission whose grading passed the batch's deadline: every rubric item 0,
    not graded, reason code timed_out, and the reason said to the student."""
    reason = f"timed out: grading took over {deadline:g} s"
    items = [ItemScore(item, 0.0, (), ItemStatus.NOT_GRADED, f"0: {reason}", code=ReasonCode.TIMED_OUT)
             for item in load_rubric().items]
    note = (f"{reason}: grading this submission was stopped at the batch's deadline and nothing of it was "
            f"scored; staff are told (the gradebook flags it) and will look at it")
    metadata = {"harness_version": __version__, "reason_code": str(ReasonCode.TIMED_OUT),
                "batch_deadline_seconds": deadline}
    return GradeResult(student_id, items, seconds, public_only, [note], metadata=metadata)


def _record_timed_out(out_dir: Path, student_id: str, deadline: float, seconds: float, public_only: bool) -> None:
    """Write the timed-out result into the student's folder; what an earlier grading left there that would
    contradict it (the stamp, the fingerprint, the filter images) goes."""
    folder = out_dir / student_id
    for name in (STAMP, FINGERPRINT, NOTEBOOK_IMAGE, RENDERED_IMAGE):
        (folder / name).unlink(missing_ok=True)
    write_reports(timed_out_result(student_id, deadline, seconds, public_only), folder)


def batch_deadline(options: dict, deadline: float | None = None) -> float:
    """Seconds one submission may take: `deadline` when given, else the rubric's for this kind of run."""
    if deadline is not None:
        return float(deadline)
    limits = load_rubric().deadlines
    return float(limits.execute_submission_seconds if options.get("execute") else limits.submission_seconds)


@dataclass
class _Running:
    """One submission being graded in its own process."""

    entry: BatchEntry
    process: multiprocessing.process.BaseProcess
    answers: Connection
    started: float
    scratch: Path
    slot: int = 0  # which pool slot (and warm worker) it uses


def _finished(run: _Running, out_dir: Path, deadline: float, grace: float, public_only: bool) -> bool:
    """Whether `run` is over, recording how it ended in its entry: its answer, its death, or its deadline
    (then its process tree is stopped and the timed-out result written)."""
    entry, elapsed = run.entry, time.monotonic() - run.started
    if run.answers.poll():
        try:
            entry.status, entry.score, entry.detail = run.answers.recv()
        except (EOFError, OSError) as exc:
            entry.status, entry.detail = BatchStatus.HARNESS_FAULT, f"the grading process died: {exc}"
    elif not run.process.is_alive():
        entry.status = BatchStatus.HARNESS_FAULT
        entry.detail = f"the grading process died (exit code {run.process.exitcode})"
    elif elapsed > deadline:
        stop_tree(run.process.pid, grace, lambda: not run.process.is_alive())
        _record_timed_out(out_dir, entry.student_id, deadline, elapsed, public_only)
        entry.status, entry.score = BatchStatus.TIMED_OUT, 0.0
        entry.detail = f"timed out: grading took over {deadline:g} s"
    else:
        return False
    run.process.join()
    run.answers.close()
    remove_tree(run.scratch)  # whatever a stopped process could not remove itself
    entry.seconds = elapsed
    return True


class _Reports:
    """The batch's class-wide files, rebuilt while it runs (at most every `interval` seconds once a
    submission finished) and at its end; staff scores set again in each new result as it comes."""

    def __init__(self, out_dir: Path, entries: list[BatchEntry], interval: float):
        self.out_dir, self.entries, self.interval, self.base_interval = out_dir, entries, interval, interval
        self.written, self.stale = 0.0, False
        self.restored: list[str] = []
        self.staff_notes: list[str] = []
        self.earlier: list[str] = []

    def finished(self, student_ids: list[str]) -> None:
        """These students' results are new: set staff scores again in them, and rebuild soon."""
        graded = [s for s in student_ids if (self.out_dir / s / "results.json").is_file()]
        restored, notes, earlier = reapply_staff_scores(self.out_dir, graded)  # every run: heals a crash before it
        self.restored += [s for s in restored if s not in self.restored]
        self.staff_notes += [n for n in notes if n not in self.staff_notes]
        self.earlier += [s for s in earlier if s not in self.earlier]
        self.stale = True

    def write(self, force: bool = False) -> None:
        """Rebuild the gradebook, similarity, class report and sheet when due (or `force`). For a large class
        a rebuild takes seconds: the next waits at least four times as long as this one took, so that the
        batch spends at most a fifth of its time on reports."""
        if not force and not (self.stale and time.monotonic() - self.written >= self.interval):
            return
        began = time.monotonic()
        compare_submissions(self.out_dir, self.entries)
        write_gradebook(self.out_dir, self.entries)
        build_class_report(self.out_dir)
        build_manual_sheet(self.out_dir)
        self.written, self.stale = time.monotonic(), False
        self.interval = max(self.base_interval, 4 * (self.written - began))


class BatchStopped(Exception):
    """The batch itself was asked to stop (SIGTERM, or SIGINT: Ctrl-C): what was graded is reported, the rest is
    not graded yet. `signum`: the signal."""

    def __init__(self, signum: int):
        self.signum = signum
        how = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
        super().__init__(f"stopped by {how}")


_stop_signals: list[int] = []
#: The signals that stop a batch as it grades: SIGTERM, and SIGINT (Ctrl-C) the same way.
_STOPS = (signal.SIGTERM, signal.SIGINT)


def _stop_batch(signum, frame) -> None:
    """Remember the signal; the batch's loop stops at its next turn (at most half a second later). Raising
    here instead would raise inside whatever runs at that instant: inside a C extension's call (matplotlib
    drawing the class report's histogram) the exception came out as that call's TypeError, a harness fault."""
    _stop_signals.append(signum)


def _stop_if_asked() -> None:
    if _stop_signals:
        raise BatchStopped(_stop_signals[0])


class Watcher:
    """What an engine tells the batch as it goes: submissions finished (their staff scores set again, the
    progress shown, the reports rebuilt when due), and that it is still waiting (the reports may be due;
    a SIGTERM to the batch stops it here, as BatchStopped)."""

    def __init__(self, reports: _Reports, progress: Progress):
        self.reports, self.progress = reports, progress

    def finished(self, done: list[BatchEntry]) -> None:
        """These submissions are over, their folders complete in OUT."""
        if done:
            self.reports.finished([entry.student_id for entry in done])
            for entry in done:
                self.progress.finished(entry)
        self.tick()

    def tick(self) -> None:
        """The engine waits: rebuild the reports when due; stop when the batch was asked to."""
        _stop_if_asked()
        self.reports.write()

    def stopped(self) -> None:
        """The engine stopped early with submissions still running: the reports say who was graded."""
        self.reports.write(force=True)


def warm_context() -> multiprocessing.context.BaseContext:
    """Where grading processes come from: forks of a server that has the harness loaded (autograder/warm.py),
    each fresh from that state, so a submission pays for its own grading and not for starting Python."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["autograder.warm"])
    return context


class LocalEngine:
    """The batch on this machine: one process per submission (forked from a warm server), at most `jobs` at a
    time."""

    def __init__(self, jobs: int = 2):
        self.jobs = max(1, jobs)

    def describe(self) -> str:
        return f"{self.jobs} process(es) on this machine"

    def grade_all(self, todo: list[BatchEntry], out_dir: Path, options: dict, deadline: float, grace: float,
                  watcher: Watcher) -> list[str]:
        """Grade `todo` into OUT, each stopped at `deadline`. However this ends (a Ctrl-C, a SIGTERM to the
        batch), no grading process outlives it. Returns notes for staff (none here)."""
        context = warm_context()
        pending, running = list(todo), []
        public_only = options.get("public_only", False)
        limits = options.get("limits") or load_rubric().worker
        slots = WarmSlots(self.jobs, limits, [*SECRET_PATHS, Path(options.get("fixtures_dir", REPO_ROOT / "fixtures")),
                                              *options.get("hidden", ())])
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    entry = pending.pop(0)
                    slot = min(set(range(self.jobs)) - {run.slot for run in running})
                    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-batch-"))
                    scratch.chmod(0o711)  # the confined worker's user passes through to its own folder
                    answers, answer = context.Pipe(duplex=False)
                    warm = slots.connect(slot)
                    process = context.Process(target=_grade_in_process, name=f"grading {entry.student_id}",
                                              args=(entry.source, out_dir / entry.student_id, options, scratch,
                                                    answer, dict(os.environ), warm))
                    running.append(_Running(entry, process, answers, time.monotonic(), scratch, slot))
                    process.start()
                    answer.close()
                    if warm is not None:
                        warm[0].close()  # the grading process has its own copy
                wait([run.answers for run in running] + [run.process.sentinel for run in running], timeout=0.5)
                done = [run for run in running if _finished(run, out_dir, deadline, grace, public_only)]
                for run in done:
                    running.remove(run)
                watcher.finished([run.entry for run in done])
        finally:
            for run in running:  # the batch was stopped: so are they (their entries stay not graded yet)
                if run.process.pid is not None:
                    stop_tree(run.process.pid, grace, lambda run=run: not run.process.is_alive())
                    run.process.join()
                remove_tree(run.scratch)
            slots.close()
            if running:
                watcher.stopped()
        return []


def _run_engine(engine, todo: list[BatchEntry], out_dir: Path, options: dict, deadline: float, grace: float,
                watcher: Watcher) -> list[str]:
    """The engine's run, with a SIGTERM or SIGINT (Ctrl-C) to the batch turned into BatchStopped at the engine's
    next wait; the reports are then rebuilt, so that every folder placed so far reads as graded."""
    main = threading.current_thread() is threading.main_thread()
    _stop_signals.clear()
    previous = {number: signal.signal(number, _stop_batch) for number in _STOPS} if main else {}
    try:
        notes = engine.grade_all(todo, out_dir, options, deadline, grace, watcher)
        _stop_if_asked()
        return notes
    except BatchStopped:
        if watcher.reports.stale:  # finished since the reports were last written (the stop came before their turn)
            watcher.stopped()
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def compare_submissions(out_dir: Path, entries: list[BatchEntry]) -> Path:
    """OUT/similarity.json: the batch's near-identical pairs, ranked, from every fingerprint."""
    prints = {}
    for entry in entries:
        path = out_dir / entry.student_id / FINGERPRINT
        if path.is_file():
            prints[entry.student_id] = json.loads(path.read_text(encoding="utf-8"))
    path = out_dir / PAIRS
    write_pairs(path, similar_pairs(prints, load_rubric().similarity))
    return path


def run_batch(input_dir: Path, out_dir: Path, jobs: int = 2, force: bool = False, progress: bool | str = True,
              baseline: Baseline | None = None, deadline: float | None = None, engine=None,
              **options) -> tuple[list[BatchEntry], list[str]]:
    """Grade every submission of INPUT into OUT, writing OUT/gradebook.csv and the class's reports as it
    goes. `baseline`: the handout the class received (default: our student template); a submission graded
    against another is regraded. `deadline`: seconds one submission may take (default: the rubric's
    [deadlines], longer with `execute`); past it the submission is recorded as timed out. `engine`: where
    the submissions are graded (default: `LocalEngine(jobs)`, this machine; `cluster.ClusterEngine`, a Dask
    cluster); everything else (stamps, resume, reports, staff scores) is the batch's, the same for both.
    `progress`: "bar" (or True), "jsonl" (one JSON line per submission on stdout: each unchanged one at once,
    status "unchanged", then each graded one as it finishes) or "none" (False).

    Raises SecretsExposed up front, before anything is graded or written, where the worker could read
    the hidden fixtures: one error for the class, not one harness fault per student (a cluster's workers
    are checked by its engine instead: student code never runs here); and UserInputError, naming the
    path, where one of OUT's own files is a folder (`class_files.check_class_files`).
    """
    engine = engine or LocalEngine(jobs)
    if isinstance(engine, LocalEngine):
        guard_secrets(options.get("fixtures_dir", REPO_ROOT / "fixtures"), options.get("public_only", False))
    check_class_files(out_dir)  # before anything is graded: a folder where a report goes would fail it later
    entries, notes = discover(input_dir)
    baseline = baseline or default_baseline()
    options = dict(options, hidden=[input_dir.resolve(), out_dir.resolve()], baseline=baseline)
    if hasattr(engine, "prepare"):  # a cluster: reached and its workers checked before anything in OUT is written
        engine.prepare(options)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for entry in entries:
        stamp = out_dir / entry.student_id / STAMP
        if not force and stamp.is_file() and stamp.read_text(encoding="utf-8") == stamp_for(entry.source, options):
            entry.status, entry.score = BatchStatus.UNCHANGED, _previous_score(out_dir / entry.student_id)
        else:
            todo.append(entry)
    limits = load_rubric().deadlines
    seconds = batch_deadline(options, deadline)
    reports = _Reports(out_dir, entries, limits.report_interval_seconds)
    reports.finished([entry.student_id for entry in entries if entry.status == BatchStatus.UNCHANGED])
    reports.write(force=True)  # everyone, before anything is graded: the rows "not graded yet" say so
    with Progress(progress, len(entries), [entry for entry in entries if entry.status == BatchStatus.UNCHANGED]) \
            as shown:
        notes += _run_engine(engine, todo, out_dir, options, seconds, limits.kill_grace_seconds,
                             Watcher(reports, shown))
    restored, staff_notes, earlier = reports.restored, reports.staff_notes, reports.earlier
    if restored:
        notes.append(f"staff scores from {MERGE_LOG} set again in the new results of {len(restored)} student(s): "
                     + ", ".join(sorted(restored)))
    notes += staff_notes
    if earlier:
        notes.append(f"staff scores given for an earlier submission of {len(earlier)} student(s) who resubmitted "
                     f"since (flagged \"set by staff for an earlier submission\"; grade them again on the "
                     f"grading sheet and merge): " + ", ".join(earlier))
    reports.write(force=True)
    return entries, notes


def _previous_score(folder: Path) -> float | None:
    """The score an unchanged submission's results.json holds (what its progress line says), or None."""
    try:
        score = json.loads((folder / "results.json").read_text(encoding="utf-8"))["score"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(score) if isinstance(score, (int, float)) else None


def _flags(document: dict) -> list[str]:
    """The gradebook's flags of one student's results. An item set by staff keeps none of the grader's
    doubts about it (the filters' "provisional", the training's accuracy flags, its timeouts): its flag
    is "<item> set by staff" (computed items), or "<item> set by staff for an earlier submission"
    when the student resubmitted since the merge (any item: staff are to grade it again)."""
    flags = []
    every = [t for t in graded_tests(document) if t.get("tags")]  # an item with components has several
    staff = {t["tags"][0]: t["extra_data"]["staff"] for t in every
             if isinstance((t.get("extra_data") or {}).get("staff"), dict)}
    own = [t for t in every if t["tags"][0] not in staff]  # the items whose grader's flags still count
    tests = {t["tags"][0]: t for t in own}
    codes = {case.get("reason_code") for t in own for case in t.get("extra_data", {}).get("cases", [])}
    codes |= {t.get("extra_data", {}).get("reason_code") for t in own}
    deadline = document.get("extra_data", {}).get("batch_deadline_seconds")
    if deadline is not None:  # the whole grading stopped at the batch's deadline (every item's code is timed_out)
        flags.append(f"grading timed out ({deadline:g} s)")
    elif ReasonCode.TIMED_OUT in codes:
        flags.append("timed out")
    if document.get("extra_data", {}).get("intake_error"):
        flags.append("unreadable submission")
    if ReasonCode.NOTEBOOK_UNREADABLE in codes:  # its items scored 0 unread; gone once staff set every one of them
        flags.append("unreadable notebook")
    if edition_of(document).get("contradiction"):  # given edition vs the files: staff check which handout it was
        flags.append("edition contradiction")
    if document.get("extra_data", {}).get("data_missing"):  # staff's --data had no files of this edition
        flags.append("no data for this edition")
    training = tests.get("training", {}).get("extra_data", {})
    if isinstance(training.get("flags"), list):  # the training item names its own flags
        flags += [str(flag) for flag in training["flags"]]
    else:
        if training.get("accuracy_source") in ("verified", "reported"):  # results from before the items' flags
            flags.append("accuracy verified" if training["accuracy_source"] == "verified" else "accuracy reported")
        if training.get("mismatch"):
            flags.append("accuracy mismatch")
        if training.get("architecture_violation"):
            flags.append("architecture violation")
    for item_id in ("filters", "inline_answer"):  # the flags these items name themselves ("filters provisional",
        # "filters do not match weights", "filters need staff review", "image too large", "answer cut")
        named = tests.get(item_id, {}).get("extra_data", {}).get("flags")
        flags += [str(flag) for flag in named if str(flag) not in flags] if isinstance(named, list) else []
    pdf_tests = [t for t in own if t["tags"][0] == "pdf_consistency"]
    if any(_pdf_mismatch(t) for t in pdf_tests):
        flags.append("PDF mismatch")
    elif any(_pdf_not_compared(t) for t in pdf_tests):  # no accusation: staff look at the PDF themselves
        flags.append("PDF not compared")
    if ReasonCode.HARNESS_FAULT in codes or document.get("extra_data", {}).get("harness_fault"):
        flags.append("harness fault")
    kinds = {item.id: item.kind for item in (*load_rubric().items, *all_extra_items())}
    for item_id, test in tests.items():  # staff's part: what is still theirs to grade
        if test.get("extra_data", {}).get("grading") == "pending" and not (
                item_id == "training" and "accuracy pending" in flags):
            flags.append(f"{item_id} pending staff")
    for item_id, record in staff.items():  # and what they set
        if record.get("earlier_submission"):
            flags.append(f"{item_id} set by staff for an earlier submission")
        elif kinds.get(item_id) != "manual":
            flags.append(f"{item_id} set by staff")
    return sorted(set(flags), key=flags.index)


def _pdf_mismatch(test: dict) -> bool:
    """A PDF check that found another figure than the notebook's (not one it could not tell, one with no image,
    or a PDF it could not read). Results from before the three outcomes said "mismatched"."""
    sections = (test.get("extra_data") or {}).get("sections")
    return isinstance(sections, dict) and any(state in (DIFFERENT, "mismatched") for state in sections.values())


def _pdf_not_compared(test: dict) -> bool:
    """A PDF check that could not say whether the PDF shows the notebook's figures: a section it could not tell,
    a PDF without any image, a PDF it could not read or did not finish reading. Neutral words, never "mismatch"."""
    extra = test.get("extra_data") or {}
    sections = extra.get("sections")
    return bool(extra.get("problem")) or (isinstance(sections, dict) and any(
        state in (UNSURE, NOT_FOUND) for state in sections.values()))


#: A gradebook's `status` read back as what the batch did (`refresh_reports`): this version's words and
#: the previous version's ("graded", "unchanged", "pending", ...). A "fault" is a harness fault when its flags
#: say so, else the batch's deadline (its results say so again).
_READ_BACK = {RowStatus.COMPLETE: BatchStatus.UNCHANGED, RowStatus.PENDING_STAFF: BatchStatus.UNCHANGED,
              RowStatus.NOT_GRADED_YET: BatchStatus.NOT_GRADED_YET, "pending": BatchStatus.NOT_GRADED_YET,
              **{status.value: status for status in BatchStatus if status != BatchStatus.NOT_GRADED_YET}}


def _read_back(row: dict[str, str]) -> tuple[BatchStatus, str]:
    """What the batch did with a gradebook row's submission, and the fault's detail, from its status and flags."""
    status, flags = row.get("status") or "", row.get("flags") or ""
    fault = next((flag for flag in flags.split("; ") if flag.startswith("harness fault")), "")
    if status == RowStatus.FAULT:
        if fault:
            return BatchStatus.HARNESS_FAULT, fault.removeprefix("harness fault").removeprefix(": ")
        return BatchStatus.TIMED_OUT, flags.removeprefix("grading timed out").removeprefix(": ")
    return _READ_BACK.get(status, BatchStatus.UNCHANGED), flags.removeprefix("harness fault: ")


def refresh_reports(out_dir: Path) -> Path | None:
    """Rebuild gradebook.csv, the class report and the grading sheet from the files on disk (after merge-manual changed
    results.json): each row's submission and what the batch did with it come from the gradebook itself (also one
    written by an earlier version), so nothing is re-graded. None when OUT has no gradebook (results graded one by
    one, not by a batch)."""
    book = out_dir / GRADEBOOK
    if not book.is_file():
        return None
    with open(book, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    entries = []
    for row in rows:
        status, detail = _read_back(row)
        entries.append(BatchEntry(row["student_id"], Path(row.get("source") or row["student_id"]), status,
                                  detail=detail))
    write_gradebook(out_dir, entries)
    build_class_report(out_dir)
    build_manual_sheet(out_dir)  # the merged cards now say so
    return book


def status_counts(book: Path) -> str:
    """How many rows of a gradebook have each status, in words ("1 complete, 2 pending staff"): what a merge
    left for staff to do."""
    with open(book, newline="", encoding="utf-8") as handle:
        counts = Counter(row.get("status") or "" for row in csv.DictReader(handle))
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def _as_text(name: str) -> str:
    """A submission's file name as a spreadsheet shows it: one starting like a formula (=, +, -, @) gets a
    leading apostrophe, so that opening gradebook.csv never runs what a file name says."""
    return f"'{name}" if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def awaits_staff(tests: list[dict]) -> bool:
    """Whether an item's points are not final because staff are still to set or confirm them: pending (the
    inline answer, extra credit, the training under the `pending` policy), provisional (filters without
    weights), in the filters' review band or timed out ("staff will look at it"), or set by staff for an
    earlier submission. A staff score for this submission settles the item, whatever the grader thought."""
    extras = [test.get("extra_data") or {} for test in tests]
    staff = extras[0].get("staff") if extras else None
    if isinstance(staff, dict):
        return bool(staff.get("earlier_submission"))
    return any(extra.get("grading") == ItemStatus.PENDING or extra.get("provisional") is True
               or extra.get("reason_code") in (ReasonCode.FILTERS_UNCERTAIN, ReasonCode.FILTERS_PROVISIONAL)
               or "filters timed out" in (extra.get("flags") or []) for extra in extras)


def row_status(document: dict | None, flags: list[str], done: BatchStatus) -> RowStatus:
    """A gradebook row's status: a fault (the grader's, or the batch's deadline) whatever else; then pending
    staff while an item awaits them; else complete. Without results: not graded yet, or the fault that
    left none."""
    if document is None:
        return RowStatus.NOT_GRADED_YET if done == BatchStatus.NOT_GRADED_YET else RowStatus.FAULT
    if done in (BatchStatus.HARNESS_FAULT, BatchStatus.TIMED_OUT) or any(
            flag == "harness fault" or flag.startswith("grading timed out") for flag in flags):
        return RowStatus.FAULT
    items: dict[str, list[dict]] = {}
    for test in graded_tests(document):  # the release tests hold no item's points
        if test.get("tags"):
            items.setdefault(test["tags"][0], []).append(test)
    return RowStatus.PENDING_STAFF if any(map(awaits_staff, items.values())) else RowStatus.COMPLETE


def write_gradebook(out_dir: Path, entries: list[BatchEntry]) -> Path:
    """gradebook.csv: one row per submission, from its results.json (or its fault). `total` is results.json's
    score, the one the student's feedback shows: every item's points, provisional ones included; `provisional`
    is how much of it may still change (the grader's points on items awaiting staff, blank in their own
    cells). Extra credit (any edition's) has its own column after the items, never in `total`; blank for a
    submission without it. `status` is how final the row is (`RowStatus`), not what this run did."""
    items = [item.id for item in (*load_rubric().items, *all_extra_items())]
    extra_credit = {item.id for item in all_extra_items()}
    path = out_dir / GRADEBOOK
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(["student_id", "total", "provisional", *items, "edition", "status", "flags", "source"])
    similar = flags_by_student(read_pairs(out_dir / PAIRS))
    for entry in sorted(entries, key=lambda e: e.student_id):
        results = out_dir / entry.student_id / "results.json"
        if results.is_file():
            document = json.loads(results.read_text(encoding="utf-8"))
            tests: dict[str, list[dict]] = {}  # an item's tests: one, or one per component (release tests: none)
            for test in graded_tests(document):
                if test.get("tags"):
                    tests.setdefault(test["tags"][0], []).append(test)
            points = {item_id: round(sum(test["score"] for test in each) + 0.0, 2) for item_id, each in tests.items()}
            waiting = {item_id for item_id, each in tests.items() if awaits_staff(each)}
            provisional = round(sum(points[i] for i in waiting if i not in extra_credit) + 0.0, 2)
            flags = _flags(document) + similar.get(entry.student_id, [])
            if entry.status == BatchStatus.HARNESS_FAULT and "harness fault" not in flags:
                flags.append("harness fault")
            cells = ["" if i in waiting else points.get(i, "") for i in items]
            writer.writerow([entry.student_id, document["score"], provisional, *cells, edition_label(document),
                             row_status(document, flags, entry.status), "; ".join(flags),
                             _as_text(entry.source.name)])
        elif entry.status == BatchStatus.NOT_GRADED_YET:  # the batch is running, or was stopped
            writer.writerow([entry.student_id, "", "", *[""] * len(items), "", RowStatus.NOT_GRADED_YET, "",
                             _as_text(entry.source.name)])
        else:
            why = "grading timed out" if entry.status == BatchStatus.TIMED_OUT else "harness fault"
            writer.writerow([entry.student_id, "", "", *[""] * len(items), "", RowStatus.FAULT,
                             f"{why}: {entry.detail}" if entry.detail else why, _as_text(entry.source.name)])
    write_atomically(path, handle.getvalue())
    return path

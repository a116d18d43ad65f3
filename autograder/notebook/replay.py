"""Log replay: does the submitted code print the submitted training log?

Notebooks of the official handout never save their weights, so their training points rest on
what the log says. That log is a claim, but a checkable one: the handout's training cell seeds
NumPy (`np.random.seed(123)`) before building the network, and `train_net` prints
`(Iteration i / n) loss: x` every `show_every` iterations, so the same code on the same data
prints the same first lines. `replay_log` runs the notebook's code cells, top to bottom, up to
and including the training cell, in a headless kernel confined exactly like `--execute`'s, with
the staff's data as `data/` and the notebook's own settings as written; it watches what the
training cell prints and stops the kernel as soon as the first `replay_lines` loss lines of the
log have been printed again, or one disagrees, or `replay_seconds` have passed.

Editions. The rubric handed in is one edition's (`rubric.edition`): its data files are staged where its
loader reads them (`dataset.folder`: data/ for SVHN, data/cifar100/ for CIFAR-100) and its log is read in
its own format (`training.iteration_line`), stream by stream, so that tqdm's progress on stderr (the 2023
train_net wraps its loop in tqdm) never cuts a printed line apart. The notebook's hyperparameters, named as
its edition names them (2023: Adam, batch 10, `regularization=` / `reg_lambda=`), run as written: the
replay changes nothing in the student's cells.

Averaged logs (2023, `logged_loss = "average"`). Each line after the first is the mean of the `show_every`
losses before it; the first is the first batch's loss alone. The handout's show_every is 4000, one whole
epoch at its batch of 10 on 40,000 rows, so its second line (iteration 4001) comes after 4000 training steps
and the epoch's accuracy pass over 50,000 images: measured here with the reference's network given 20
outputs, 51 iterations and 2,000 forward images a second in one process and 12 iterations a second in a
replay kernel beside other work, that is 2 to 6 minutes of the budget for code this fast and far more for
layers written with loops. A smaller show_every would not help: its lines average other spans of losses,
none of them the log's, and the log's second line still needs its 4000 steps. So an averaged log is
compared up to `[training] replay_max_iteration` (1001): a student's own show_every of 500 or less line for
line; a log at the handout's default on its first line only. That first line is the loss before any update,
so it checks the data and their preparation, the seed, the network and its initialisation and the loss,
not the optimiser, its learning rate or the regularisation, and the detail of a reproduced log says so.
Measured on full-size synthetic CIFAR-100 (50,000 + 10,000 images), such a replay (kernel start, loading the
data, the first iteration) ends in 5.4 s.

Trust. The comparison is made here, in the grader, on the stream messages the kernel sends
while the cell runs; nothing the kernel says about itself is believed, and it never sees the
claimed log (its folder holds the submission's `lib/` and Python files, not the notebook). What a
replay can show is that *this code prints these loss lines*: it catches a hand edit of the log's
first `replay_lines` loss lines and a log of another run (another seed, learning rate, network or
data) left under changed code. It compares nothing else: the epochs' `Validation Accuracy` lines,
the figure the training points come from, are printed only after whole epochs of training, far
beyond the few iterations a replay runs, so an accuracy edited by hand in a log whose first loss
lines are intact is reproduced (`NOT_COMPARED` says so in every reproduced detail; the training
item flags points that rest on such an accuracy). Nor can it show that the code which printed the
log also trained: a `train_net` that prints constants reproduces anything. It records, flags and
explains; it never changes points.
"""

from __future__ import annotations

import math
import queue
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import nbformat
from jupyter_core.utils import run_sync

from autograder.edition import Dataset, Training, default_edition
from autograder.notebook.execute import (
    ConfinedKernelManager,
    is_download_cell,
    kernel_environment,
    scratch_copy,
)
from autograder.notebook.reading import NotebookError, extract, log_pattern, log_texts, read_notebook
from autograder.rubric import Rubric, RubricError
from autograder.sandbox.confinement import Confinement, confinement_for
from autograder.sandbox.folders import scratch_folder
from autograder.sandbox.worker_code import worker_code
from autograder.score import ItemScore

Status = Literal["reproduced", "not reproduced", "not replayed"]
Reason = Literal["time", "error", "no log", "no data"]

#: Said with every reproduced log: what the replay leaves unchecked (see the module's docstring).
NOT_COMPARED = ("the log's accuracy lines are not compared (they come only after whole epochs of training), so a "
                "reproduced log does not confirm the reported accuracy")
#: A printed line longer than this is not a loss line; only its tail is kept while it grows.
_MAX_LINE = 4096
#: Removed NumPy names and absent optional modules resolve in the replay as in the worker: real
#: submissions were written for NumPy 1.19 (`np.float`), and the log came from that code. The shims
#: come from the worker's own copy of its modules (worker_code.py), the only harness code in the
#: kernel's view.
_KERNEL_SETUP = """\
import sys as _sys
_sys.path.insert(0, {harness!r})
try:
    import autograder.sandbox.worker as _worker
    _worker.install_numpy_shims()
    _sys.meta_path.append(_worker._OptionalModuleFinder())
    del _worker
finally:
    _sys.path.remove({harness!r})
    for _name in [_n for _n in _sys.modules if _n == "autograder" or _n.startswith("autograder.")]:
        del _sys.modules[_name]
del _sys
"""


@dataclass(frozen=True)
class LossLine:
    """One `(Iteration i / n) loss: x` line: the counters exactly, the loss as printed."""

    iteration: int
    of: int
    text: str  # the loss as printed: its digits say how it was rounded
    label: str = "loss"  # the edition's words before it: "loss" (2022), "Average loss" (2023)

    @property
    def loss(self) -> float:
        return float(self.text)

    @property
    def last_digit(self) -> float:
        """The value of one unit in the last printed digit (0.0001 for "2.3026")."""
        mantissa, _, exponent = self.text.lower().lstrip("+-").partition("e")
        if not mantissa[:1].isdigit() and not mantissa.startswith("."):
            return 0.0  # nan, inf
        decimals = len(mantissa.partition(".")[2])
        return 10.0 ** (int(exponent or 0) - decimals)

    def __str__(self) -> str:
        return f"(Iteration {self.iteration} / {self.of}) {self.label}: {self.text}"


def loss_label(training: Training) -> str:
    """The words the edition's train_net prints before the loss."""
    return "Average loss" if training.logged_loss == "average" else "loss"


def loss_lines(text: str, training: Training | None = None) -> list[LossLine]:
    """Every loss line in printed text, in order, in the edition's format (`training.iteration_line`;
    default: the default edition's). The 2022 pattern reads any words before "loss" and NumPy 2's repr
    of a scalar (`np.float64(2.30...)`), which a replay under NumPy 2 prints where NumPy 1.19 printed
    the number; the 2023 pattern reads "Average loss" only."""
    training = training or default_edition().training
    label = loss_label(training)
    return [LossLine(int(m.group("iteration")), int(m.group("total")), m.group("loss"), label)
            for m in log_pattern(training.iteration_line).finditer(text)]


def relative_difference(a: LossLine, b: LossLine) -> float:
    """|a - b| / max(|a|, |b|), 0 for equal values (nan equals nan here: both printed nan)."""
    x, y = a.loss, b.loss
    if (math.isnan(x) and math.isnan(y)) or x == y:
        return 0.0
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.inf
    return abs(x - y) / max(abs(x), abs(y))


def agree(claimed: LossLine, replayed: LossLine, rtol: float) -> bool:
    """Same iteration, same total, and the losses within `rtol` relative plus one unit of the
    coarser printed digit (two roundings of nearly equal values can differ by one unit)."""
    if (claimed.iteration, claimed.of) != (replayed.iteration, replayed.of):
        return False
    x, y = claimed.loss, replayed.loss
    if math.isnan(x) or math.isnan(y) or not (math.isfinite(x) and math.isfinite(y)):
        return relative_difference(claimed, replayed) == 0.0
    return abs(x - y) <= rtol * max(abs(x), abs(y)) + max(claimed.last_digit, replayed.last_digit)


@dataclass(frozen=True)
class ReplaySettings:
    """The rubric's [training] replay_* keys."""

    seconds: float  # the whole replay: kernel start, the cells before training, training itself
    lines: int  # how many of the log's first loss lines must be printed again
    rtol: float
    max_iteration: int  # an averaged log's lines past this iteration are not replayed (see the docstring)

    @classmethod
    def from_rubric(cls, rubric: Rubric) -> "ReplaySettings":
        """The settings, checked: a typo in the rubric fails here, not as a silent "reproduced"."""
        table = rubric.training
        try:
            settings = cls(float(table["replay_seconds"]), int(table["replay_lines"]), float(table["replay_rtol"]),
                           int(table["replay_max_iteration"]))
        except KeyError as exc:
            raise RubricError(f"rubric: [training] is missing {exc.args[0]!r} (log replay)") from None
        if settings.seconds <= 0 or settings.lines < 1 or not 0 <= settings.rtol < 1 or settings.max_iteration < 1:
            raise RubricError(f"rubric: [training] replay_seconds must be positive, replay_lines and "
                              f"replay_max_iteration at least 1 and replay_rtol in [0, 1); got {settings}")
        return settings


@dataclass(frozen=True)
class Comparison:
    """One line of the log and what the replay printed in its place (None: nothing, yet)."""

    claimed: LossLine
    replayed: LossLine | None
    agrees: bool


@dataclass(frozen=True)
class Replay:
    """How a replay ended: its status, why (for "not replayed"), and the lines it compared."""

    status: Status
    detail: str
    reason: Reason | None = None
    compared: tuple[Comparison, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for feedback."""
        headline = {"reproduced": "log reproduced", "not reproduced": "LOG NOT REPRODUCED by this code",
                    "not replayed": f"log not replayed ({self.reason})"}[self.status]
        return f"{headline}: {self.detail}"

    def as_extra(self) -> dict[str, Any]:
        """For results.json's extra_data of the training item."""
        return {"status": self.status, "reason": self.reason, "detail": self.detail,
                "lines": [{"expected": str(line.claimed), "got": None if line.replayed is None else str(line.replayed),
                           "agrees": line.agrees} for line in self.compared],
                "notes": list(self.notes)}  # no timing: the same submission gives the same results.json


def annotate(score: ItemScore, replay: Replay) -> ItemScore:
    """The training item with the replay recorded in its extra data and explained in its note;
    its points are left as they are."""
    note = f"{score.note}; {replay.summary()}" if score.note else replay.summary()
    flags = list(score.extra.get("flags") or [])
    if replay.status == "not reproduced" and "log not reproduced" not in flags:
        flags.append("log not reproduced")
    return replace(score, note=note, extra={**score.extra, "replay": replay.as_extra(), "flags": flags})


class LogWatch:
    """The replayed training cell's loss lines, compared with the log's as they arrive.

    Fed with the kernel's stream messages as they come (a line may arrive in pieces; stdout and
    stderr separately), so that the kernel can be stopped the moment the verdict is known.
    """

    def __init__(self, claimed: list[LossLine], rtol: float, training: Training | None = None):
        self.claimed, self.rtol, self.training = claimed, rtol, training
        self.replayed: list[LossLine] = []
        self._partial: dict[str, str] = {}

    def feed(self, stream: str, text: str) -> None:
        """Text a stream printed; complete lines are read, the rest waits for its end."""
        *complete, rest = re.split(r"[\r\n]", self._partial.get(stream, "") + text)
        self._partial[stream] = rest[-_MAX_LINE:]
        for line in complete:
            self._read(line)

    def finish(self) -> None:
        """The cell ended: a last line printed without a newline counts too."""
        for stream in list(self._partial):
            self._read(self._partial.pop(stream))

    def _read(self, line: str) -> None:
        if not self.settled:
            self.replayed += loss_lines(line[-_MAX_LINE:], self.training)[:1]

    @property
    def difference(self) -> int | None:
        """Index of the first replayed line that disagrees with the log, if any."""
        for index, (claimed, got) in enumerate(zip(self.claimed, self.replayed)):
            if not agree(claimed, got, self.rtol):
                return index
        return None

    @property
    def settled(self) -> bool:
        """Enough is known: every needed line was printed again, or one disagreed."""
        return len(self.replayed) >= len(self.claimed) or self.difference is not None

    def compared(self) -> tuple[Comparison, ...]:
        """The lines compared, up to the first difference; then the next line the replay still owed."""
        pairs = [Comparison(claimed, got, agree(claimed, got, self.rtol))
                 for claimed, got in zip(self.claimed, self.replayed)]
        if self.difference is not None:
            return tuple(pairs[:self.difference + 1])
        owed = [Comparison(claimed, None, False) for claimed in self.claimed[len(pairs):len(pairs) + 1]]
        return tuple(pairs + owed)


@dataclass
class _Run:
    """What the kernel did: how it stopped, where, and the errors cells raised."""

    stopped: str = "finished"  # "finished", "settled", "time", "died", "start"
    cell: int | None = None  # the notebook index of the cell running when it stopped
    errors: list[tuple[int, str]] = field(default_factory=list)  # (cell index, "Name: value")
    problem: str = ""
    notes: list[str] = field(default_factory=list)


async def _execute(client, manager, source: str, deadline: float, on_stream: Callable[[str, str], None] | None,
                   settled: Callable[[], bool]) -> tuple[str, str | None]:
    """Run one cell; returns how it ended ("idle", "settled", "time", "died") and its error, if any."""
    message_id = client.execute(source, store_history=True, allow_stdin=False, stop_on_error=False)
    error = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "time", error
        try:
            message = await client.get_iopub_msg(timeout=min(remaining, 1.0))
        except queue.Empty:
            if not await manager.is_alive():
                return "died", error
            continue
        if message.get("parent_header", {}).get("msg_id") != message_id:
            continue
        kind, content = message.get("msg_type"), message.get("content", {})
        if kind == "stream" and on_stream is not None:
            on_stream(str(content.get("name", "")), str(content.get("text", "")))
            if settled():
                return "settled", error
        elif kind == "error":
            error = f"{content.get('ename')}: {str(content.get('evalue'))[:300]}"
        elif kind == "status" and content.get("execution_state") == "idle":
            return "idle", error


async def _replay_cells(cells: list[tuple[int, str]], training: int, watch: LogWatch, workdir: Path, scratch: Path,
                        confinement: Confinement, seconds: float) -> _Run:
    """Run `cells` (notebook index, source) in a fresh confined kernel, watching the training cell."""
    run = _Run()
    manager = ConfinedKernelManager(kernel_name="python3", transport="ipc", ip=str(scratch / "kernel"),
                                    connection_file=str(scratch / "kernel.json"))
    manager.owner, manager.confinement = confinement.ids, confinement
    deadline = time.monotonic() + seconds
    client = None
    try:
        try:
            await manager.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"], preexec_fn=confinement,
                                       env=kernel_environment(workdir), cwd=str(workdir))
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
        except (RuntimeError, TimeoutError, OSError) as exc:
            run.stopped, run.problem = "start", f"the kernel could not start: {exc}"
            return run
        ended, error = await _execute(client, manager, _KERNEL_SETUP.format(harness=str(worker_code())), deadline, None,
                                      lambda: False)
        if ended != "idle" or error:
            run.notes.append(f"the compatibility shims (removed NumPy names) could not be installed: {error or ended}")
        for index, source in cells:
            run.cell = index
            watching = index == training
            ended, error = await _execute(client, manager, source, deadline, watch.feed if watching else None,
                                          lambda: watch.settled)
            if error:
                run.errors.append((index, error))
            if ended in ("time", "died", "settled"):
                run.stopped = ended
                return run
        watch.finish()
        return run
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)


def _claimed_log(cell: nbformat.NotebookNode, training: Training) -> list[LossLine]:
    """The training cell's loss lines, read stream by stream (reading.log_texts: tqdm's progress on
    stderr never cuts a stdout line apart)."""
    return [line for text in log_texts(cell) for line in loss_lines(text, training)]


def reachable(claimed: list[LossLine], training: Training, settings: ReplaySettings) -> tuple[list[LossLine], str]:
    """The log's lines a replay compares, and what it leaves out and why ("" when nothing). An averaged
    log's lines after the first are means of `show_every` losses; past `max_iteration` they lie beyond what
    a replay can run (see the module's docstring), so its first lines up to there are compared."""
    wanted = claimed[:settings.lines]
    if training.logged_loss != "average":
        return wanted, ""
    kept: list[LossLine] = []
    for line in wanted:
        if line.iteration > settings.max_iteration:
            break
        kept.append(line)
    said = []
    if len(kept) < len(wanted):
        why = (f"`{wanted[len(kept)]}` averages the losses of the iterations before it and lies beyond the "
               f"{settings.max_iteration} iterations a replay runs")
        if not kept:
            return kept, why
        said.append(f"only {_lines_word(len(kept))} could be compared: the log's next line, {why}")
    if kept and kept[-1].iteration == 1:
        said.append("the first line is the loss of the first batch before any update, so it checks the data and "
                    "their preparation, the seed, the network and its initialisation and the loss, not the "
                    "optimiser, its learning rate or the regularisation")
    return kept, "; ".join(said)


def stage_data(workdir: Path, data_dir: Path, dataset: Dataset) -> None:
    """The staff's data files, copied where the edition's loader reads them (`dataset.folder`, relative to
    the notebook: data/ for SVHN, data/cifar100/ for CIFAR-100); copies, so the kernel cannot change them."""
    target = workdir / dataset.folder
    target.mkdir(parents=True, exist_ok=True)
    for name in dataset.files:
        shutil.copy2(Path(data_dir) / name, target / name)


def cells_to_replay(notebook: nbformat.NotebookNode, training: int) -> list[tuple[int, str]]:
    """The code cells a replay runs, with their notebook index: every one up to and including the
    training cell, in order, except the one that downloads the data (data/ is provided)."""
    return [(index, cell.source) for index, cell in enumerate(notebook.cells[:training + 1])
            if cell.cell_type == "code" and cell.source.strip() and not is_download_cell(cell)]


def _lines_word(count: int) -> str:
    return f"{count} loss line" + ("" if count == 1 else "s")


def _verdict(run: _Run, watch: LogWatch, training: int, settings: ReplaySettings, left_out: str = ""
             ) -> tuple[Status, Reason | None, str]:
    """The status, reason and detail from what the kernel did and what it printed; `left_out` says which
    lines of the log were not compared, and why (`reachable`)."""
    needed = len(watch.claimed)
    difference = watch.difference
    if difference is not None:
        claimed, got = watch.claimed[difference], watch.replayed[difference]
        return ("not reproduced", None,
                f"line {difference + 1} of the log differs: the notebook shows `{claimed}`, the replay printed "
                f"`{got}` (relative difference {relative_difference(claimed, got):.1e}, tolerance {settings.rtol:g})"
                + (f"; the {difference} line(s) before it agreed" if difference else ""))
    agreed = len(watch.replayed)
    if agreed >= needed:
        return ("reproduced", None,
                f"the first {_lines_word(needed)} of the log (iterations "
                f"{', '.join(str(line.iteration) for line in watch.claimed)}) were printed again by this code "
                f"on the staff's data, within a relative {settings.rtol:g}" + (f"; {left_out}" if left_out else "")
                + f"; {NOT_COMPARED}")
    so_far = f"{agreed} of {needed} lines agreed so far" if agreed else "no loss line was printed yet"
    first_error = next((f"cell {index} raised {error}" for index, error in run.errors if index != training), "")
    if run.stopped == "start":
        return "not replayed", "error", run.problem
    if run.stopped == "time":
        where = "in the training cell" if run.cell == training else f"in cell {run.cell}, before the training cell"
        return ("not replayed", "time", f"the budget of {settings.seconds:g} s ran out {where}; {so_far}"
                + (f" ({first_error})" if first_error else ""))
    if run.stopped == "died":
        return ("not replayed", "error",
                f"the kernel died in cell {run.cell} (it crashed, exited, or ran out of memory); {so_far}")
    training_error = next((error for index, error in run.errors if index == training), "")
    if training_error:
        return ("not replayed", "error", f"the training cell raised {training_error}; {so_far}"
                + (f" (before it, {first_error})" if first_error else ""))
    missing = watch.claimed[agreed]
    return ("not reproduced", None,
            f"the training cell finished, but never printed line {agreed + 1} of the log, `{missing}`"
            + (f"; the {agreed} line(s) before it agreed" if agreed else "; it printed no loss line at all")
            + (f" ({first_error})" if first_error else ""))


def replay_log(submission_root: Path, notebook: Path, data_dir: Path | None, rubric: Rubric,
               hidden: Sequence[Path] = ()) -> Replay:
    """Re-run the notebook's cells up to its training cell on `data_dir`'s files of the rubric's edition
    (`rubric.edition`: its data, staged where its loader reads them, and its log's format) and compare the
    first loss lines printed with the notebook's log (see the module's docstring).

    `submission_root`: the folder holding `lib/`; `notebook`: the notebook whose log is checked;
    `hidden`: folders the kernel must not see, as for the worker. Never raises for anything the
    submission does: every way it ends is a `Replay` with a reason.
    """
    started = time.monotonic()
    settings = ReplaySettings.from_rubric(rubric)
    edition = rubric.edition

    def ended(status: Status, detail: str, reason: Reason | None = None, **more) -> Replay:
        return Replay(status, detail, reason, seconds=time.monotonic() - started, **more)

    try:
        cells = read_notebook(Path(notebook))
    except NotebookError as exc:
        return ended("not replayed", str(exc), "no log")
    training = extract(cells, Path(notebook), edition=edition).training_cell
    if training is None:
        return ended("not replayed", "no training cell (one that calls train_net) was found", "no log")
    claimed = _claimed_log(cells.cells[training], edition.training)
    if not claimed:
        return ended("not replayed", f"the training cell (cell {training}) shows no `(Iteration i / n) "
                                     f"{loss_label(edition.training)}: x` line to compare with", "no log")
    claimed, left_out = reachable(claimed, edition.training, settings)
    if not claimed:
        return ended("not replayed", f"the log's first line, {left_out}", "time")
    missing = [name for name in edition.dataset.files if data_dir is None or not (Path(data_dir) / name).is_file()]
    if missing:
        return ended("not replayed", f"the staff's data folder lacks {', '.join(missing)} ({edition.dataset.name})",
                     "no data")
    watch = LogWatch(claimed, settings.rtol, edition.training)
    limits = rubric.execution
    with scratch_folder(prefix="cnn-grader-replay-") as scratch_name:
        scratch = Path(scratch_name)
        try:
            workdir = scratch_copy(Path(submission_root), scratch)
            stage_data(workdir, Path(data_dir), edition.dataset)
        except OSError as exc:  # no lib/, an unreadable file
            return ended("not replayed", f"the submission could not be copied for the kernel: {exc}", "error")
        confinement = confinement_for(scratch, list(hidden), limits["memory_mb"], limits["cpu_seconds"],
                                      limits["file_size_mb"], limits["max_processes"])
        run = run_sync(_replay_cells)(cells_to_replay(cells, training), training, watch, workdir, scratch,
                                      confinement, settings.seconds)
    status, reason, detail = _verdict(run, watch, training, settings, left_out)
    return ended(status, detail, reason, compared=watch.compared(), notes=tuple(run.notes + list(confinement.notes)))

"""Headless notebook execution with nbclient and a real IPython kernel, confined like the worker.

Two uses: `run_unit_checks` runs a notebook's check cells (everything before training, no
data needed) for `grade.py notebook-checks`; `execute_notebook` runs a whole submission for
`grade.py grade --execute`. The kernel runs student code, so it gets what the worker gets: a
scratch copy of the submission, the same confinement (mount namespace hiding the secrets, an
unprivileged user, resource limits), a scrubbed environment. Its outputs are read afterwards
by the trusted side; nothing it returns is trusted.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder.edition import Edition, default_edition, editions
from autograder.notebook.datasets import DataError, count_rows, validation_rows
from autograder.notebook.reading import NotebookError, read_notebook
from autograder.rubric import load_rubric
from autograder.sandbox.confinement import Confinement, confinement_for, scrubbed_environment
from autograder.sandbox.folders import scratch_folder

_HEADING = re.compile(r"^#+\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CellRun:
    """What one executed code cell printed, under the heading of its section."""

    section: str
    text: str
    error: str | None  # "Name: value" of the exception the cell raised, if any


@dataclass
class Execution:
    """How a headless run went, and where its products are."""

    notebook: Path  # the executed copy
    completed: bool
    problem: str = ""  # why it stopped early, in words
    weights: Path | None = None  # the rubric's weights_file written by the run, if any
    notes: list[str] = field(default_factory=list)


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel manager whose connection file the confined kernel can read."""

    owner: tuple[int, int] | None = None

    confinement: Confinement | None = None

    def format_kernel_cmd(self, extra_arguments=None):
        """The kernel's command, started as the confinement says (a PID namespace, the user switch)."""
        command = super().format_kernel_cmd(extra_arguments)
        return self.confinement.command(command) if self.confinement is not None else command

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if self.owner is not None:
            os.chown(self.connection_file, *self.owner)


def kernel_environment(home: Path) -> dict[str, str]:
    """The kernel's environment: the worker's scrubbed one, with inline plots and IPython's files in `home`."""
    return scrubbed_environment(home, MPLBACKEND="module://matplotlib_inline.backend_inline",
                                MPLCONFIGDIR=str(home / ".matplotlib"), IPYTHONDIR=str(home / ".ipython"))


def _run(notebook: nbformat.NotebookNode, workdir: Path, scratch: Path, confinement: Confinement,
         timeout: int) -> str:
    """Execute in place; returns "" when every cell ran, else why the run stopped."""
    kernel = ConfinedKernelManager(kernel_name="python3", transport="ipc", ip=str(scratch / "kernel"),
                                    connection_file=str(scratch / "kernel.json"))
    kernel.owner, kernel.confinement = confinement.ids, confinement
    client = NotebookClient(notebook, km=kernel, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute(preexec_fn=confinement, env=kernel_environment(workdir), cwd=str(workdir))
        return ""
    except CellTimeoutError:
        return f"a cell ran longer than {timeout} s; the run was stopped there"
    except DeadKernelError:
        return "the kernel died (it crashed, exited, or ran out of memory); the run stopped there"
    except RuntimeError as exc:  # the kernel never started
        return f"the kernel could not start: {exc}"
    finally:
        if kernel.has_kernel:
            run_sync(kernel.shutdown_kernel)(now=True)


def _section_of(cells, index: int) -> str:
    section = "(top)"
    for cell in cells[:index]:
        if cell.cell_type == "markdown":
            headings = _HEADING.findall(cell.source)
            if headings:
                section = headings[-1]
    return section


def _calls_loader(cell: nbformat.NotebookNode, edition: Edition) -> bool:
    """Whether a code cell calls the edition's data loader (and does not define it)."""
    name = edition.dataset.loader_function
    return cell.cell_type == "code" and f"{name}(" in cell.source and f"def {name}" not in cell.source


def _is_data_cell(cell: nbformat.NotebookNode) -> bool:
    tags = cell.metadata.get("tags", [])
    return "download-data" in tags or "get_datasets.sh" in cell.source or \
        any(f"{edition.dataset.loader_function}(" in cell.source for edition in editions())


def _starts_training(cell: nbformat.NotebookNode) -> bool:
    if "training-run" in cell.metadata.get("tags", []):
        return True
    return cell.cell_type == "markdown" and "Training the Network" in cell.source


def unit_check_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, nbformat.NotebookNode]]:
    """The code cells to run before training, each with the heading of its section."""
    selected = []
    for index, cell in enumerate(notebook.cells):
        if _starts_training(cell):
            break
        if cell.cell_type == "code" and cell.source.strip() and not _is_data_cell(cell):
            selected.append((_section_of(notebook.cells, index), cell))
    return selected


def _cell_text(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    parts, error = [], None
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            error = f"{output.ename}: {output.evalue}"
    return "".join(parts), error


def scratch_copy(folder: Path, scratch: Path) -> Path:
    """The submission's lib/ and top-level Python files, copied for the kernel (never its notebook)."""
    workdir = scratch / "submission"
    shutil.copytree(folder / "lib", workdir / "lib", symlinks=True,  # never follow a link as root
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in folder.iterdir():
        if path.is_file() and path.suffix == ".py" and not path.is_symlink():
            shutil.copy2(path, workdir / path.name)
    return workdir


def run_unit_checks(folder: Path, notebook_name: str | None = None, timeout: float | None = None,
                    hidden: list[Path] = ()) -> list[CellRun]:
    """Execute the notebook's unit-check cells against the folder's own lib/ (default: the rubric's
    notebook, cell time-out and limits, [execution] check_cells_*)."""
    limits = load_rubric().execution
    notebook_name = notebook_name or load_rubric().assignment.notebook
    timeout = timeout or limits.check_cells_timeout
    source = read_notebook(folder / notebook_name)  # NotebookError (a UserInputError) when it is none
    selected = unit_check_cells(source)
    with scratch_folder(prefix="cnn-grader-run-") as scratch:
        workdir = scratch_copy(folder, Path(scratch))
        confinement = confinement_for(Path(scratch), list(hidden), limits.check_cells_memory_mb,
                                      limits.check_cells_cpu_seconds, limits.check_cells_file_size_mb,
                                      limits.max_processes)
        notebook = nbformat.v4.new_notebook(cells=[cell for _, cell in selected], metadata=source.metadata)
        _run(notebook, workdir, Path(scratch), confinement, timeout)
    return [CellRun(section, *_cell_text(cell)) for (section, _), cell in zip(selected, notebook.cells)]


def is_download_cell(cell: nbformat.NotebookNode) -> bool:
    """The cell that runs get_datasets.sh (it needs the network): skipped, data/ is provided instead."""
    return cell.cell_type == "code" and ("download-data" in cell.metadata.get("tags", [])
                                         or "get_datasets.sh" in cell.source)


def provide_data(workdir: Path, data_dir: Path | None, edition: Edition | None = None) -> None:
    """The edition's data folder (`[dataset] folder`: data/ for 2022, data/cifar100/ for 2023) in the
    kernel's folder, holding copies of the edition's files found in `data_dir`; data/ exists either way."""
    edition = edition or default_edition()
    target = workdir / edition.dataset.folder
    (workdir / "data").mkdir(exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    for name in edition.dataset.files:
        if data_dir is not None and (Path(data_dir) / name).is_file():
            shutil.copy2(Path(data_dir) / name, target / name)


def quick_settings(quick: dict[str, float], data_dir: Path | None, training_rows: int,
                   edition: Edition | None = None) -> tuple[dict[str, float], int | None, str]:
    """The --quick overrides for a run on `data_dir`: the rubric's quick values, with NUM_TRAINING and
    NUM_VALIDATION set to the split the grader verifies on (so the log's validation accuracy is measured
    on the grader's rows, prepared with the grader's statistics), and how many training rows to keep
    (None, and why, when the data file cannot say how many rows it has)."""
    edition = edition or default_edition()
    settings = dict(quick)
    try:
        path = Path(data_dir) / edition.dataset.train_file if data_dir is not None else None
        total = count_rows(path, edition.dataset) if path is not None else None
    except DataError as exc:
        return settings, None, f"--quick: the grader's split is unknown ({exc}); the notebook's split was kept"
    if total is None:
        return settings, None, "--quick: no --data, so the notebook's split was kept"
    first, count = validation_rows(total, edition, load_rubric().training)
    settings.update(NUM_TRAINING=first, NUM_VALIDATION=count)
    return settings, min(int(training_rows), first), ""


def _split_cell(edition: Edition, first: int, count: int, parameters: bool) -> nbformat.NotebookNode:
    """A cell that makes the edition's loader read the grader's split whatever its call asks for (the 2023
    handout calls `CIFAR100_data('data/cifar100/')` with its defaults, 40,000 + 10,000 rows, which a
    smaller file does not hold). With `parameters`, it is also the run's injected parameters cell (the
    notebook has none), so that the grader reads the split the log was measured on."""
    name = edition.dataset.loader_function
    cell = nbformat.v4.new_code_cell("\n".join([
        f"# Injected by the grader (--quick): {name} reads the grader's split of the data file (training",
        "# rows first, then the validation rows the grader verifies on), whatever the call below asks for.",
        f"NUM_TRAINING = {first}",
        f"NUM_VALIDATION = {count}",
        "def _grader_split(loader):",
        "    import functools, inspect",
        "    names = inspect.signature(loader).parameters",
        "    if 'num_training' not in names or 'num_validation' not in names:",
        "        print('grader: --quick could not set the split: the loader takes no num_training/num_validation')",
        "        return loader",
        "    @functools.wraps(loader)",
        "    def call(*args, **kwargs):",
        "        bound = inspect.signature(loader).bind_partial(*args, **kwargs)",
        "        bound.arguments.update(num_training=NUM_TRAINING, num_validation=NUM_VALIDATION)",
        "        return loader(*bound.args, **bound.kwargs)",
        "    return call",
        "try:",
        f"    {name} = _grader_split({name})",
        "except Exception as _exc:  # no such loader here: the run keeps the notebook's split",
        "    print('grader: --quick could not set the split:', type(_exc).__name__, _exc)",
    ]))
    cell.metadata["tags"] = ["injected-split"] + (["injected-parameters"] if parameters else [])
    return cell


def _trim_cell(rows: int) -> nbformat.NotebookNode:
    """Keep the first `rows` training rows of the handout's `data` dict (validation rows and the mean
    subtracted from every image stay the grader's split's); says so if `data` is not that dict."""
    cell = nbformat.v4.new_code_cell("\n".join([
        f"# Injected by the grader (--quick): train on the first {rows} training rows only; the validation",
        "# rows are the grader's split, prepared with the statistics of all the rows before them.",
        "try:",
        f"    data['data_train'], data['labels_train'] = data['data_train'][:{rows}], data['labels_train'][:{rows}]",
        "except Exception as _exc:  # not the handout's data dict: the run trains on every row",
        "    print('grader: --quick could not shorten the training rows:', type(_exc).__name__, _exc)",
    ]))
    cell.metadata["tags"] = ["injected-quick-rows"]
    return cell


def _prepare(notebook: nbformat.NotebookNode, quick: dict[str, float] | None, keep_rows: int | None = None,
             edition: Edition | None = None) -> list[str]:
    """Skip the download cell; with `quick`, inject overrides after the parameters cell, (when the call
    that loads the data does not read NUM_TRAINING, as in the 2023 handout) a cell making the loader read
    the grader's split, and (with `keep_rows`) a cell cutting the training rows after that call."""
    edition = edition or default_edition()
    notes = []
    for cell in notebook.cells:
        if is_download_cell(cell):
            cell.source = "# skipped by the grader: get_datasets.sh (data/ is provided)"
            notes.append("the download cell was skipped; data/ was provided by the grader")
    if quick:
        index = next((i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])), None)
        if index is None:
            notes.append("--quick: the notebook has no cell tagged 'parameters', so its training settings "
                         "could not be shortened; it ran as written")
            notes += _inject_split(notebook, quick, keep_rows, edition, -1, parameters=True)
        else:
            lines = ["# Injected by the grader (--quick): a short smoke run on the grader's split."]
            lines += [f"{name} = {int(value) if float(value).is_integer() else value}" for name, value in quick.items()]
            injected = nbformat.v4.new_code_cell("\n".join(lines))
            injected.metadata["tags"] = ["injected-parameters"]
            notebook.cells.insert(index + 1, injected)
            notes.append("--quick: " + ", ".join(lines[1:]))
            notes += _inject_split(notebook, quick, keep_rows, edition, index + 1, parameters=False)
    return notes


def _inject_split(notebook: nbformat.NotebookNode, quick: dict[str, float], keep_rows: int | None,
                  edition: Edition, after: int, parameters: bool) -> list[str]:
    """Around the first cell after the one at `after` (-1: anywhere) that calls the edition's loader: when
    that call does not read NUM_TRAINING (the 2023 handout's `CIFAR100_data('data/cifar100/')`), the split
    cell before it; and the cell keeping `keep_rows` training rows after it. `parameters`: the notebook has
    no parameters cell, so the split cell stands for it (and a call reading NUM_TRAINING is left alone:
    the run keeps the notebook's own values, as it always did)."""
    name = edition.dataset.loader_function
    notes: list[str] = []
    loads = next((i for i, c in enumerate(notebook.cells) if i > after and _calls_loader(c, edition)), None)
    if loads is None:
        if keep_rows is not None and not parameters:
            notes.append(f"--quick: no cell calls {name}(...) after the parameters cell; every training "
                         "row was trained on")
        return notes
    reads_parameters = "NUM_TRAINING" in notebook.cells[loads].source
    if parameters and reads_parameters:
        return notes
    if "NUM_TRAINING" in quick and "NUM_VALIDATION" in quick and not reads_parameters:
        first, count = int(quick["NUM_TRAINING"]), int(quick["NUM_VALIDATION"])
        notebook.cells.insert(loads, _split_cell(edition, first, count, parameters))
        loads += 1
        notes.append(f"--quick: {name} reads the grader's split (NUM_TRAINING = {first}, NUM_VALIDATION = {count})")
    if keep_rows is not None:
        notebook.cells.insert(loads + 1, _trim_cell(keep_rows))
        notes.append(f"--quick: training on the first {keep_rows} training rows")
    return notes


def execute_notebook(folder: Path, notebook_path: Path, data_dir: Path, out_dir: Path, limits: dict,
                     quick: dict[str, float] | None = None, hidden: list[Path] = (),
                     edition: Edition | None = None) -> Execution:
    """Run the notebook headless in a scratch copy of `folder` (the submission root) with the `edition`'s
    files from `data_dir` where its loader reads them (default: the default edition); the executed copy
    and the edition's weights file, if the run saved it, are written to `out_dir`. The notebook is read as
    grading reads it (reading.py: only what has the notebook format's types); one that is no notebook at
    all is not run, and the run's `problem` says why."""
    edition = edition or default_edition()
    try:
        notebook = read_notebook(Path(notebook_path))
    except NotebookError as exc:
        return Execution(Path(notebook_path), False, f"not run: {exc}")
    notebook_name = notebook_path.name
    keep_rows, split_note = None, ""
    if quick:
        quick, keep_rows, split_note = quick_settings(quick, data_dir, limits["quick_training_rows"], edition)
    notes = _prepare(notebook, quick, keep_rows, edition) + ([split_note] if split_note else [])
    out_dir.mkdir(parents=True, exist_ok=True)
    with scratch_folder(prefix="cnn-grader-execute-") as scratch_name:
        scratch = Path(scratch_name)
        workdir = scratch_copy(folder, scratch)
        provide_data(workdir, data_dir, edition)
        confinement = confinement_for(scratch, list(hidden), limits["memory_mb"], limits["cpu_seconds"],
                                      limits["file_size_mb"], limits["max_processes"])
        timeout = int(limits["quick_cell_timeout"] if quick else limits["cell_timeout"])
        problem = _run(notebook, workdir, scratch, confinement, timeout)
        executed = out_dir / f"executed_{notebook_name}"
        nbformat.write(notebook, str(executed))
        weights = None
        saved = workdir / edition.training.weights_file
        if saved.is_file() and not saved.is_symlink():
            weights = out_dir / f"executed_{saved.name}"
            shutil.copyfile(saved, weights)
    return Execution(executed, not problem, problem, weights, notes + list(confinement.notes))

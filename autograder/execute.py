"""Headless notebook execution with nbclient and a real IPython kernel.

For now this runs a notebook's unit-check cells: everything before the training section,
except the cells that download or load SVHN, so it needs no data and takes seconds. The
kernel runs in a scratch copy of the assignment folder, so nothing it writes reaches the
original.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

_HEADING = re.compile(r"^#+\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CellRun:
    """What one executed code cell printed, under the heading of its section."""

    section: str
    text: str
    error: str | None  # "Name: value" of the exception the cell raised, if any


def _is_data_cell(cell: nbformat.NotebookNode) -> bool:
    tags = cell.metadata.get("tags", [])
    return "download-data" in tags or "get_datasets.sh" in cell.source or "SVHN_data(" in cell.source


def _starts_training(cell: nbformat.NotebookNode) -> bool:
    if "training-run" in cell.metadata.get("tags", []):
        return True
    return cell.cell_type == "markdown" and "Training the Network" in cell.source


def unit_check_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, nbformat.NotebookNode]]:
    """The code cells to run before training, each with the heading of its section."""
    selected = []
    section = "(top)"
    for cell in notebook.cells:
        if _starts_training(cell):
            break
        if cell.cell_type == "markdown":
            headings = _HEADING.findall(cell.source)
            if headings:
                section = headings[-1]
        elif cell.cell_type == "code" and cell.source.strip() and not _is_data_cell(cell):
            selected.append((section, cell))
    return selected


def _cell_text(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    parts, error = [], None
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            error = f"{output.ename}: {output.evalue}"
    return "".join(parts), error


def run_unit_checks(folder: Path, notebook_name: str = "Problem_2.ipynb", timeout: int = 120) -> list[CellRun]:
    """Execute the notebook's unit-check cells against the folder's own lib/."""
    source = nbformat.read(folder / notebook_name, as_version=4)
    selected = unit_check_cells(source)
    with tempfile.TemporaryDirectory(prefix="cnn-grader-run-") as scratch:
        workdir = Path(scratch)
        shutil.copytree(folder / "lib", workdir / "lib")
        notebook = nbformat.v4.new_notebook(cells=[cell for _, cell in selected], metadata=source.metadata)
        # IPC sockets inside the scratch folder: local only, and no TCP warning from the kernel.
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / ".kernel"))
        client = NotebookClient(notebook, km=kernel, timeout=timeout, allow_errors=True,
                                resources={"metadata": {"path": str(workdir)}})
        try:
            client.execute()
        finally:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
    return [CellRun(section, *_cell_text(cell)) for (section, _), cell in zip(selected, notebook.cells)]

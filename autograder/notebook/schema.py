"""A notebook checked against the notebook format, and reduced to what can be read safely.

A notebook is the student's JSON: any field can hold anything (a cell whose `source` is a number,
outputs that are not a list, an output without `output_type`, image data that is a number). Grading
code that trusts the format would crash on it, and a crash is not the student's fault to explain.
`checked` validates the parsed JSON with nbformat's own validator (the format's JSON schema), and
builds a clean format-4 notebook holding only what has the right type: a field of the wrong type is
read as empty (or dropped), with a problem that names the cell (its index and type) and what is
wrong, for the student. Problems the schema finds that no rule below describes are named too, with
where they are. Nothing here executes or decodes anything.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.v4.nbbase import random_cell_id
from nbformat.validator import iter_validate

_OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")
_CELL_TYPES = ("code", "markdown", "raw")
#: At most this many problems are named; the rest are counted.
MAX_PROBLEMS = 8


def _what(value: Any) -> str:
    """How a JSON value of the wrong type is named to the student."""
    names = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
             dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _text(value: Any) -> str | None:
    """A multiline string as the format allows it (a string, or a list of strings), joined; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


class _Reader:
    """Builds the clean notebook and records each problem once, with where it is."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def text(self, where: str, owner: dict, key: str, default: str = "") -> str:
        if key not in owner:
            return default
        value = _text(owner[key])
        if value is None:
            self.problem(where, f"`{key}` is {_what(owner[key])}, not text; read as empty")
            return default
        return value

    def mapping(self, where: str, owner: dict, key: str) -> dict:
        value = owner.get(key, {})
        if not isinstance(value, dict):
            self.problem(where, f"`{key}` is {_what(value)}, not a mapping; ignored")
            return {}
        return value

    def output(self, where: str, output: Any) -> dict | None:
        if not isinstance(output, dict):
            self.problem(where, f"is {_what(output)}, not an output; left out")
            return None
        kind = output.get("output_type")
        if kind not in _OUTPUT_TYPES:
            said = "has no `output_type`" if kind is None else f"has the unknown output_type {str(kind)[:40]!r}"
            self.problem(where, f"{said}; left out")
            return None
        if kind == "stream":
            name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
            return {"output_type": kind, "name": name, "text": self.text(where, output, "text")}
        if kind == "error":
            traceback = output.get("traceback", [])
            if not (isinstance(traceback, list) and all(isinstance(line, str) for line in traceback)):
                self.problem(where, f"`traceback` is {_what(traceback)}, not a list of lines; ignored")
                traceback = []
            return {"output_type": kind, "ename": str(output.get("ename", ""))[:1000],
                    "evalue": str(output.get("evalue", ""))[:1000], "traceback": traceback}
        data = {}
        for mime, value in self.mapping(where, output, "data").items():
            text = _text(value)
            if text is not None:
                data[str(mime)] = text
            elif isinstance(value, dict) and str(mime).endswith("json"):
                data[str(mime)] = value
            else:
                self.problem(where, f"its {str(mime)[:60]} data is {_what(value)}, not text; left out")
        clean = {"output_type": kind, "data": data, "metadata": self.mapping(where, output, "metadata")}
        if kind == "execute_result":
            clean["execution_count"] = self.count(where, output)
        return clean

    def count(self, where: str, owner: dict) -> int | None:
        value = owner.get("execution_count")
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        self.problem(where, f"`execution_count` is {_what(value)} ({str(value)[:20]}), not a count; ignored")
        return None

    def cell(self, index: int, cell: Any) -> dict | None:
        if not isinstance(cell, dict):
            self.problem(f"cell {index} (not a cell)", f"is {_what(cell)}, not a cell; left out")
            return None
        kind = cell.get("cell_type")
        where = (f"cell {index} ({kind})" if kind in _CELL_TYPES else f"cell {index} (no cell_type)" if kind is None
                 else f"cell {index} (type {str(kind)[:40]!r})")
        if kind not in _CELL_TYPES:
            self.problem(where, "not a code, markdown or raw cell; read as a raw cell")
            kind = "raw"
        metadata = self.mapping(where, cell, "metadata")
        tags = metadata.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
            self.problem(where, f"its metadata `tags` is {_what(tags)}, not a list of names (text); ignored")
            metadata = {**metadata, "tags": []}
        if "source" not in cell:
            self.problem(where, "has no `source`; read as empty")
        clean: dict[str, Any] = {"cell_type": kind, "metadata": metadata, "source": self.text(where, cell, "source")}
        if kind != "code":
            return clean
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list):
            self.problem(where, f"`outputs` is {_what(outputs)}, not a list; its outputs were not read")
            outputs = []
        clean["outputs"] = [kept for number, output in enumerate(outputs)
                            if (kept := self.output(f"{where}, output {number}", output)) is not None]
        clean["execution_count"] = self.count(where, cell)
        return clean


def _schema_problems(data: Any, minor: int) -> list[str]:
    """What nbformat's validator finds, each as "at cells/3/outputs/0: message"."""
    found = []
    try:
        for error in iter_validate(data, version=4, version_minor=minor):
            path = "/".join(str(part) for part in getattr(error, "absolute_path", error.path)) or "the top level"
            found.append(f"at {path}: {str(error.message)[:160]}")
            if len(found) >= MAX_PROBLEMS:
                break
    except Exception as exc:  # noqa: BLE001 - the validator on a malformed document: say so, read on
        found.append(f"the notebook format's validator could not check it ({type(exc).__name__})")
    return found


def _covered(schema_problem: str, problems: list[str]) -> bool:
    """Whether a validator's problem is one the reader already named (same cell, or the top level)."""
    parts = schema_problem.split(":", 1)[0].removeprefix("at ").split("/")
    if parts[0] == "cells" and len(parts) > 1 and parts[1].isdigit():
        return any(problem.startswith(f"cell {parts[1]} ") or problem.startswith(f"cell {parts[1]}:")
                   for problem in problems)
    return any(problem.startswith("the notebook") for problem in problems)


def checked(data: Any) -> tuple[nbformat.NotebookNode, list[str]]:
    """A format-4 notebook built from parsed notebook JSON, keeping only what has the format's types,
    and the problems found (each naming the cell, index and type, and what is wrong)."""
    reader = _Reader()
    if not isinstance(data, dict):
        reader.problem("the notebook", f"is {_what(data)}, not a notebook; nothing in it was read")
        return nbformat.v4.new_notebook(), reader.problems
    metadata = reader.mapping("the notebook", data, "metadata")
    cells = data.get("cells")
    if not isinstance(cells, list):
        said = "has no `cells`" if cells is None else f"has `cells` that is {_what(cells)}, not a list"
        reader.problem("the notebook", f"{said}; no cell was read")
        cells = []
    clean = [kept for index, cell in enumerate(cells) if (kept := reader.cell(index, cell)) is not None]
    minor = data.get("nbformat_minor")
    minor = minor if isinstance(minor, int) and 0 <= minor <= 5 else 5
    problems = reader.problems
    problems += [problem for problem in _schema_problems(data, minor) if not _covered(problem, problems)
                 and "'id' is a required property" not in problem]  # Jupyter adds ids; older tools did not
    notebook = nbformat.v4.new_notebook(metadata=metadata)
    notebook.cells = [_new_cell(cell) for cell in clean]
    return notebook, problems


def _new_cell(cell: dict) -> nbformat.NotebookNode:
    """A format-4 cell holding the clean fields, with a fresh id (format 4.5 requires one); not validated
    again (nbformat's cell constructors raise on what the schema still refuses, a repeated tag say)."""
    return nbformat.from_dict({"id": random_cell_id(), **cell})

"""Schema-invalid notebooks: the official layout (tests/notebooks.py) with one field of the wrong type.

Each variant is (name, the cell it spoils or None for the whole notebook, a function that spoils the
notebook's JSON in place). The official layout's cells: 9 the training run, 11 the curves, 13 the
filter visualisation, 15 the answer (see `official_notebook`).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import nbformat
from notebooks import official_notebook

TRAINING, CURVES, FILTERS, ANSWER = 9, 11, 13, 15


def _set(cell: int | None, *path: Any, value: Any) -> Callable[[dict], None]:
    """Set notebook[cells][cell][path...] (or notebook[path...] when cell is None) to `value`."""
    def spoil(book: dict) -> None:
        target = book if cell is None else book["cells"][cell]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return spoil


def _drop(cell: int | None, *path: Any) -> Callable[[dict], None]:
    def spoil(book: dict) -> None:
        target = book if cell is None else book["cells"][cell]
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return spoil


def _insert_cell(value: Any) -> Callable[[dict], None]:
    def spoil(book: dict) -> None:
        book["cells"].insert(3, value)
    return spoil


VARIANTS: list[tuple[str, int | None, Callable[[dict], None]]] = [
    ("source-number", TRAINING, _set(TRAINING, "source", value=5)),
    ("source-dict", ANSWER, _set(ANSWER, "source", value={"text": "edges"})),
    ("source-list-with-number", FILTERS, _set(FILTERS, "source", value=["im_array = w\n", 3])),
    ("source-null", CURVES, _set(CURVES, "source", value=None)),
    ("source-missing", 4, _drop(4, "source")),
    ("outputs-dict", TRAINING, _set(TRAINING, "outputs", value={"text": "Validation Accuracy: 0.9"})),
    ("outputs-string", CURVES, _set(CURVES, "outputs", value="a figure")),
    ("output-without-type", TRAINING, _drop(TRAINING, "outputs", 0, "output_type")),
    ("output-unknown-type", CURVES, _set(CURVES, "outputs", 0, "output_type", value="picture")),
    ("output-a-number", FILTERS, _set(FILTERS, "outputs", value=[7])),
    ("data-value-number", FILTERS, _set(FILTERS, "outputs", 0, "data", "image/png", value=12345)),
    ("data-a-list", CURVES, _set(CURVES, "outputs", 0, "data", value=["image/png"])),
    ("data-nested-lists", FILTERS, _set(FILTERS, "outputs", 0, "data", "image/png", value=[["iVBORw0KGgo="]])),
    ("data-text-plain-dict", CURVES, _set(CURVES, "outputs", 0, "data", "text/plain", value={"a": 1})),
    ("output-metadata-list", CURVES, _set(CURVES, "outputs", 0, "metadata", value=[1, 2])),
    ("stream-text-dict", TRAINING, _set(TRAINING, "outputs", 0, "text", value={"line": "Epoch 1"})),
    ("stream-text-number", TRAINING, _set(TRAINING, "outputs", 0, "text", value=0.95)),
    ("stream-text-nested-lists", TRAINING, _set(TRAINING, "outputs", 0, "text", value=[["(Epoch 1 / 1)"]])),
    ("execution-count-string", TRAINING, _set(TRAINING, "execution_count", value="seven")),
    ("execution-count-negative", FILTERS, _set(FILTERS, "execution_count", value=-3)),
    ("cell-metadata-list", FILTERS, _set(FILTERS, "metadata", value=["tags"])),
    ("tags-a-string", FILTERS, _set(FILTERS, "metadata", value={"tags": "filter-visualization"})),
    ("tags-numbers", TRAINING, _set(TRAINING, "metadata", value={"tags": [1, 2]})),
    ("cell-type-unknown", ANSWER, _set(ANSWER, "cell_type", value="answer")),
    ("cell-type-missing", 4, _drop(4, "cell_type")),
    ("cell-a-string", 3, _insert_cell("print('a cell that is a string')")),
    ("cell-null", 3, _insert_cell(None)),
    ("error-output-malformed", 6, _set(6, "outputs", value=[{"output_type": "error", "ename": 3, "evalue": None,
                                                             "traceback": "boom"}])),
    ("cells-missing", None, _drop(None, "cells")),
    ("cells-a-dict", None, _set(None, "cells", value={"0": {"cell_type": "code"}})),
    ("metadata-a-list", None, _set(None, "metadata", value=["kernelspec"])),
    ("nbformat-minor-string", None, _set(None, "nbformat_minor", value="five")),
]


def invalid_notebook(spoil: Callable[[dict], None]) -> str:
    """The official notebook's JSON text with one spoiling applied."""
    book = json.loads(nbformat.writes(official_notebook()))
    spoil(book)
    return json.dumps(book)

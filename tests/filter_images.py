"""Filter images planted beside a graded results.json as grading writes them (OUT/<id>/filters_notebook.png,
filters_from_weights.png and the filters test's extra_data), for the grading sheet's fast tests, which
need every combination (no weights, no image, a given match) without grading each one; the browser test
grades real submissions instead."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from autograder.reports.manual_sheet import NOTEBOOK_IMAGE, RENDERED_IMAGE


def filter_grid(seed: int, count: int = 16, kernel: int = 3, scale: int = 14) -> Image.Image:
    """A real PNG-able image of `count` colour filters in a grid, as a notebook's filter cell shows them."""
    rng = np.random.default_rng(seed)
    columns = 8
    rows = -(-count // columns)
    cell = kernel * scale + 4
    canvas = np.full((rows * cell + 4, columns * cell + 4, 3), 255, np.uint8)
    for index in range(count):
        weights = rng.normal(size=(kernel, kernel, 3))
        weights = (weights - weights.min()) / (np.ptp(weights) or 1.0)
        tile = np.kron((weights * 255).astype(np.uint8), np.ones((scale, scale, 1), np.uint8))
        top, left = 4 + (index // columns) * cell, 4 + (index % columns) * cell
        canvas[top:top + kernel * scale, left:left + kernel * scale] = tile
    return Image.fromarray(canvas)


def plant_filters(student_dir: Path, notebook: bool = True, rendered: bool = True, match: float | None = 0.93,
                  shown: int | None = 16, provisional: bool = True, seed: int = 0) -> None:
    """Write the images asked for and record them in the filters test's extra_data (the contract)."""
    if notebook:
        filter_grid(seed).save(student_dir / NOTEBOOK_IMAGE)
    if rendered:
        filter_grid(seed).resize((200, 60)).save(student_dir / RENDERED_IMAGE)
    results = student_dir / "results.json"
    document = json.loads(results.read_text(encoding="utf-8"))
    for test in document["tests"]:
        if test.get("tags") == ["filters"]:
            test.setdefault("extra_data", {}).update(
                notebook_image=NOTEBOOK_IMAGE if notebook else None,
                rendered_image=RENDERED_IMAGE if rendered else None,
                match=match if rendered else None, shown=shown if rendered else None, provisional=provisional)
    results.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

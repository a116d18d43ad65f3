"""Build test submissions by planting changes into a copy of the reference solution."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from conftest import REFERENCE

from autograder.grading import grade_submission
from autograder.model import graded_tests
from autograder.rubric import load_rubric
from autograder.sandbox.parent import Limits

LAYERS = "lib/cnn/layer_utils.py"
MODELS = "lib/cnn/cnn_models.py"
CODE_ITEMS = [item.id for item in load_rubric().code_items()]
#: Tests in a results.json: one per item, or per component of an item that has several.
RESULT_TESTS = sum(max(1, len(item.components)) for item in load_rubric().items)


def item_tags(document: dict) -> list[str]:
    """The rubric items of a results.json in order, each once (an item's components share its tag; the
    0-point release tests, the hidden cases in full and the staff's notes, are no item's)."""
    tags = [test["tags"][0] for test in graded_tests(document)]
    return [tag for index, tag in enumerate(tags) if tag not in tags[:index]]


def untimed(output: str) -> str:
    """A test's output without the lines that say how long something took (the staff's notes carry the
    worker's start time): two gradings of one submission differ only there."""
    return "\n".join(line for line in output.splitlines() if not line.startswith("worker start seconds:"))


def make_submission(folder: Path, changes: list[tuple[str, str, str]] = (), append: dict[str, str] | None = None,
                    source: Path = REFERENCE) -> Path:
    """A copy of `source` with each (file, old, new) replacement made and text appended.

    Every `old` must occur in its file, so a change to the reference breaks the test loudly
    instead of silently testing nothing.
    """
    shutil.copytree(source, folder, symlinks=True, ignore=shutil.ignore_patterns("data", "*.npz", "__pycache__"))
    for relative, old, new in changes:
        path = folder / relative
        text = path.read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        path.write_text(text.replace(old, new))
    for relative, text in (append or {}).items():
        path = folder / relative
        path.write_text(path.read_text() + "\n" + text)
    return folder


def quick_limits(call_timeout: float = 1.5, **overrides) -> Limits:
    """The rubric's worker limits with a short time-out, so hangs cost the tests little."""
    return replace(load_rubric().worker, call_timeout=call_timeout, **overrides)


def grade(folder: Path, tmp_path: Path, **kwargs):
    """Grade and return {item id: ItemScore}, the result and the output folder."""
    result, out_dir = grade_submission(folder, tmp_path / "out", **kwargs)
    return {item.item.id: item for item in result.items}, result, out_dir

"""The baseline: the handout students received, which defines what is not the student's.

Grading separates a student's work from the assignment's in two places: the inline answer
(the handout's prompts and following sections are not the answer) and the similarity check
(the handed-out skeleton and prompts are nobody's). Both ask the same handout, the baseline:
our `student_template/` by default, or, with `--baseline`, the handout the class really
received (the official one, or an earlier edition), as a folder or a zip.

Two things are taken from it and kept, so a batch can hand them to its grading processes:
- `text`: every paragraph and every line of its Problem 2 notebook, as `notebook.plain` text;
- `code`: every normalised line of its `lib/cnn` (`similarity.baseline_lines`).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT, UserInputError
from autograder.intake import IntakeError, find_root, safe_unzip
from autograder.notebook.reading import NotebookError, choose_notebook, read_notebook, text_units
from autograder.rubric import load_rubric

#: The handout we give out; absent inside the handout and the Gradescope bundle themselves.
DEFAULT_BASELINE = REPO_ROOT / "student_template"


class BaselineError(UserInputError):
    """The baseline cannot be used; the message names the path and what is wrong."""


@dataclass(frozen=True)
class Baseline:
    """What the handout says and holds, normalised for comparison."""

    label: str  # where it came from, for the reports
    text: frozenset[str]  # paragraphs and lines of its notebook (`notebook.plain` form)
    code: frozenset[str]  # lines of its lib/cnn (`similarity` normal forms)

    @property
    def digest(self) -> str:
        """sha256 of what the baseline contributes (the same for a folder and its zip): a batch
        regrades when it changes, since answers and fingerprints depend on it."""
        digest = hashlib.sha256()
        for kind, units in (("text", self.text), ("code", self.code)):
            for unit in sorted(units):
                digest.update(f"{kind}\0{unit}\0".encode())
        return digest.hexdigest()


def _from_folder(folder: Path, label: str, shown: str) -> Baseline:
    try:
        root, _ = find_root(folder, shown)
    except IntakeError as exc:
        raise BaselineError(f"baseline {exc}") from None
    from autograder.reports.similarity import baseline_lines  # a staff tool: the student handout has no baseline folder
    code = baseline_lines(root / "lib" / "cnn")
    if not code:
        raise BaselineError(f"baseline {shown}: no lib/cnn/*.py with code in it; a handout holds the layer skeletons")
    notebook, _ = choose_notebook(root)
    if notebook is None:
        raise BaselineError(f"baseline {shown}: no .ipynb notebook; "
                            f"a handout holds {load_rubric().assignment.notebook}")
    try:
        text = text_units(read_notebook(notebook))
    except NotebookError as exc:
        raise BaselineError(f"baseline {shown}: {exc}") from None
    return Baseline(label, text, code)


def load_baseline(path: Path) -> Baseline:
    """The baseline in a folder or a zip (the folder holding `lib/` is found as for submissions);
    BaselineError naming `path` when it is missing, not a folder or zip, or holds no handout."""
    path = Path(path)
    if not path.exists():
        raise BaselineError(f"baseline {path}: no such file or folder")
    if path.is_dir():
        return _from_folder(path, str(path), str(path))
    if path.suffix.lower() != ".zip":
        raise BaselineError(f"baseline {path}: not a folder or a .zip file")
    intake = load_rubric().intake
    with tempfile.TemporaryDirectory(prefix="cnn-grader-baseline-") as scratch:
        try:
            safe_unzip(path, Path(scratch), intake["max_unpacked_mb"] << 20, intake["max_files"])
        except IntakeError as exc:
            raise BaselineError(f"baseline {path}: {exc}") from None
        return _from_folder(Path(scratch), str(path), str(path))


@lru_cache(maxsize=1)
def default_baseline() -> Baseline:
    """Our student template; an empty baseline where it is not shipped (a student's handout)."""
    if not DEFAULT_BASELINE.is_dir():
        return Baseline("none", frozenset(), frozenset())
    return replace(load_baseline(DEFAULT_BASELINE), label="student_template (default)")

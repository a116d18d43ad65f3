"""The student handout: the template, the grader, the public fixtures, a README; nothing secret.

`build_handout` writes a zip that unpacks into an assignment folder: the student template at
the top (lib/, the notebook, the scripts), `grade.py` and the harness (for `grade.py check`
and `grade.py pdf`), `fixtures/` with the public cases only and a manifest that lists only
them, the pinned requirements, and a README for students. `leaks` proves what the tests
check: no hidden fixture, no line of any solution region, nothing else.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import nbformat

from autograder import REPO_ROOT
from autograder.staff.regions import find_regions
from autograder.staff.reproducible_zip import write_zip
from autograder.rubric import Rubric, load_rubric

#: Harness files that are staff-only: the demo plants bugs into reference code; the trusted forward
#: is a working convolution and max-pooling, part of what students write.
_STAFF_ONLY = {"autograder/demo.py", "autograder/notebook/trusted_eval.py"}

STUDENT_README = """# Problem 2: Incorporating CNNs

Everything you need is in this folder: the assignment (`lib/`, `Problem_2.ipynb`), and the grader the
course staff use (`grade.py`, `autograder/`), with the public test cases in `fixtures/`.

## Set up (Python 3.11)

    python3 -m venv .venv
    .venv/bin/pip install -r requirements.txt

## Work

Fill in the TODO regions of `lib/cnn/layer_utils.py` and `lib/cnn/cnn_models.py`, then run the notebook
(`jupyter notebook Problem_2.ipynb`). Its first cells download SVHN into `data/` with `get_datasets.sh`.

## Check your code

    .venv/bin/python grade.py check

runs your `lib/` on the notebook's public cases, exactly as staff run them, and prints a table. It does
not run the hidden cases, verify your accuracy or read your answer: those happen when staff grade.

## How the code is graded

{grading}

## Make the PDF

After running the notebook and saving it with its outputs:

    .venv/bin/python grade.py pdf --student YOUR_ID

writes `problem_2_solution.pdf` beside the notebook: the training curves, the filters, your answer.

## Submit

Run `sh collectSubmission.sh`, rename `assignment1.zip` to `<your student id>.zip` and upload it.
"""


def student_readme(rubric: Rubric) -> str:
    """The student README, with what the hidden cases contain and the part weights read from the rubric."""
    def parts(item_id: str) -> str:
        return ", ".join(f"{c.id} {c.points:g}" for c in rubric.item(item_id).components) + \
            f" of {rubric.item(item_id).points:g} points"
    bullets = [
        "**Points come from hidden cases.** The notebook's public cases print their expected answers, so they "
        "earn no points by themselves; they are run and shown (by `grade.py check` and in your feedback) so you "
        f"can check your work. Staff also test {rubric.hidden_cases_text()}. Test your layers on such inputs "
        "before you submit.",
        f"**Partial credit by part.** ConvLayer2D.backward scores dimg, dW and db separately "
        f"({parts('conv_backward')}), and TestCNN its layers, initialisation, scores, loss and gradients "
        f"({parts('test_cnn')}): a bug in one part does not cost the parts that are right. Within a part, each "
        "hidden case earns an equal share.",
        "**Feedback that points at the bug.** When some cases fail and others pass, and the failing ones are "
        "exactly those with one attribute (padding 0, a non-square input, more than one image or channel, a "
        "kernel larger than 1x1, a stride > 1, a stride that does not divide the input, overlapping pool "
        "windows), your feedback says so.",
    ]
    grading = "\n".join(textwrap.fill(text, 105, initial_indent="- ", subsequent_indent="  ") for text in bullets)
    return STUDENT_README.format(grading=grading)


def _public_manifest(manifest: dict) -> dict:
    public = dict(manifest, cases=[c for c in manifest["cases"] if c["visibility"] == "public"])
    public.pop("seed", None)  # the hidden cases' seed stays with staff
    return public


def handout_files(template: Path = REPO_ROOT / "student_template", fixtures: Path = REPO_ROOT / "fixtures"
                  ) -> dict[str, bytes]:
    """Every file of the handout by its path inside the zip."""
    files: dict[str, bytes] = {}
    for path in sorted(template.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(template).as_posix()] = path.read_bytes()
    for path in sorted((REPO_ROOT / "autograder").rglob("*")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and relative not in _STAFF_ONLY:
            files[relative] = path.read_bytes()
    for name in ("grade.py", "requirements.txt"):
        files[name] = (REPO_ROOT / name).read_bytes()
    manifest = json.loads((fixtures / "manifest.json").read_text(encoding="utf-8"))
    public = _public_manifest(manifest)
    for case in public["cases"]:
        files[f"fixtures/{case['file']}"] = (fixtures / case["file"]).read_bytes()
    files["fixtures/manifest.json"] = (json.dumps(public, indent=1, sort_keys=True) + "\n").encode()
    files["README.md"] = student_readme(load_rubric()).encode()
    return files


def build_handout(destination: Path) -> list[str]:
    """Write the handout zip; returns its entries."""
    files = handout_files()
    return write_zip(destination, {name: (data, 0o755 if name.endswith(".sh") or name == "grade.py" else 0o644)
                                   for name, data in files.items()})


def solution_lines(reference: Path = REPO_ROOT / "reference_solution",
                   template: Path = REPO_ROOT / "student_template") -> set[str]:
    """Every substantial line of a solution region that the template does not show anyway, stripped.

    (`leaky_relu(name="relu1"),` is in the reference's network and in the given Problem-1 code.)"""
    lines = set()
    for path in reference.rglob("*"):
        if path.suffix == ".py":
            regions = find_regions(path.read_text(encoding="utf-8"), "python", str(path))
        elif path.suffix == ".ipynb":
            notebook = nbformat.read(str(path), as_version=4)
            regions = [r for cell in notebook.cells
                       for r in find_regions(cell.source, "python" if cell.cell_type == "code" else "markdown")]
        else:
            continue
        lines |= {line.strip() for region in regions for line in region.solution if len(line.strip()) > 15}
    public = "\n".join(p.read_text(encoding="utf-8") for p in template.rglob("*") if p.is_file() and p.suffix in (".py", ".ipynb"))
    return {line for line in lines if line not in public}


def leaks(archive: Path) -> list[str]:
    """Everything in the handout that must not be there; empty when it is clean."""
    problems = []
    secret = solution_lines()
    allowed_top = set(handout_files(REPO_ROOT / "student_template", REPO_ROOT / "fixtures"))
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            if name not in allowed_top:
                problems.append(f"{name}: not part of the template or the self-check tools")
            if name.startswith("fixtures/hidden") or "reference_solution" in name:
                problems.append(f"{name}: a hidden fixture or reference file")
            text = bundle.read(name).decode("utf-8", "replace")
            problems += [f"{name}: holds the solution line {line!r}" for line in secret if line in text]
            if name == "fixtures/manifest.json":
                manifest = json.loads(text)
                if "seed" in manifest or any(c["visibility"] != "public" for c in manifest["cases"]):
                    problems.append("fixtures/manifest.json: names hidden cases or their seed")
    return problems

"""The student handout: what students need and nothing else; nothing secret.

`build_handout` writes a zip that unpacks into an assignment folder: the student template at
the top (lib/, the notebook, the scripts), `grade.py` with the harness modules that the student
commands (`check`, `pdf`) import, `fixtures/` with the public cases only and a manifest that lists
only them, the pinned requirements (and the optional Jupyter ones), and a README for students.
Staff tools (batch, class report, Gradescope, this builder, similarity, manual merge, template
and fixture generation, the demo) stay out; `grade.py` says so when a student runs one. `leaks`
proves what the tests check: no hidden fixture, no line of any solution region, nothing else.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import zipfile
from pathlib import Path

import nbformat

from autograder import REPO_ROOT
from autograder.edition import Edition, default_edition
from autograder.rubric import Rubric, load_rubric
from autograder.staff.overlays import REFERENCE, TEMPLATE, edition_folder
from autograder.staff.regions import find_regions
from autograder.staff.reproducible_zip import write_zip

PACKAGE = "autograder"

#: Where the student commands start: the command line, the worker process that `check` starts by
#: module name (and the warm worker, whose module worker_code.py copies beside it), and the grading
#: checks, which pytest collects from their folder by path.
STUDENT_ENTRY_POINTS = ("autograder/cli.py", "autograder/sandbox/worker.py", "autograder/sandbox/zygote.py",
                        "autograder/checks")

#: The requirements files students install, at the top of the handout.
REQUIREMENTS = ("requirements.txt", "requirements-notebook.txt")

#: Harness files that must never ship, whatever imports them: the demo plants bugs into reference code;
#: the trusted forward is a working convolution and max-pooling, part of what students write. (Grading
#: imports the trusted forward only inside the functions that use it, and does without it here.)
NEVER_SHIPPED = {"autograder/demo.py", "autograder/notebook/trusted_eval.py"}

STUDENT_README = """# Problem 2: Incorporating CNNs

Everything you need is in this folder: the assignment (`lib/`, `Problem_2.ipynb`), and the grader the
course staff use (`grade.py`, `autograder/`), with the public test cases in `fixtures/`.

## Set up (Python 3.10 or newer)

    python3 -m venv .venv
    .venv/bin/pip install -r requirements.txt

That is all the grader needs. To open and run the notebook in Jupyter as well:

    .venv/bin/pip install -r requirements-notebook.txt

## Work

Fill in the TODO regions of `lib/cnn/layer_utils.py` and `lib/cnn/cnn_models.py`, then run the notebook
(`.venv/bin/jupyter notebook Problem_2.ipynb`, or in any Jupyter whose kernel runs this `.venv`'s Python).
{data}

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


def data_paragraph(edition: Edition, has_download_script: bool) -> str:
    """How the edition's data gets into the assignment folder, in its own words: by the handout's
    download script when it has one (2022: get_datasets.sh), else by hand (2023 had no script)."""
    dataset = edition.dataset
    if has_download_script:
        return f"Its first cells download {dataset.name} into `{dataset.folder}/` with `get_datasets.sh`."
    files = ", ".join(f"`{name}`" for name in dataset.files)
    return textwrap.fill(f"There is no download script: download {dataset.name} ({files}, the Matlab version) by "
                         f"hand from the link the course gives, into `{dataset.folder}/`, before you run the "
                         "notebook.", 110)


def student_readme(rubric: Rubric, edition: Edition | None = None, has_download_script: bool = True) -> str:
    """The student README, with what the hidden cases contain and the part weights read from the rubric,
    and how to get the edition's data."""
    edition = edition or default_edition()
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
    return STUDENT_README.format(grading=grading, data=data_paragraph(edition, has_download_script))


def _public_manifest(manifest: dict) -> dict:
    public = dict(manifest, cases=[c for c in manifest["cases"] if c["visibility"] == "public"])
    public.pop("seed", None)  # the hidden cases' seed stays with staff
    return public


def _module_file(package_root: Path, dotted: str) -> Path | None:
    """The file of module `dotted` (autograder.x.y) under package_root's parent, if it is one of ours."""
    if dotted != PACKAGE and not dotted.startswith(PACKAGE + "."):
        return None
    path = package_root.parent.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_time_imports(path: Path, package_root: Path) -> set[str]:
    """Modules of ours that `path` imports when it is imported: statements outside function bodies.

    An import inside a function runs only when that function does; that is how the staff commands
    and a batch's similarity fingerprint load their modules, so that the handout can leave them out."""
    module = ".".join(path.relative_to(package_root.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"), str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from autograder import protocol`
        pending.extend(ast.iter_child_nodes(node))
    return {name for name in found if _module_file(package_root, name) is not None}


def student_modules(package_root: Path = REPO_ROOT / PACKAGE) -> list[str]:
    """The harness's Python files that the student commands need, relative to the repository root:
    the entry points and everything they import at import time, with each package's __init__."""
    pending = []
    for entry in STUDENT_ENTRY_POINTS:
        path = package_root.parent / entry
        pending += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    needed: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in needed or "__pycache__" in path.parts:
            continue
        needed.add(path)
        for parent in path.relative_to(package_root).parents:  # importing a.b.c imports a and a.b first
            init = package_root / parent / "__init__.py"
            if init.is_file():
                pending.append(init)
        pending += [_module_file(package_root, name) for name in _import_time_imports(path, package_root)]
    modules = sorted(path.relative_to(package_root.parent).as_posix() for path in needed)
    forbidden = sorted(set(modules) & NEVER_SHIPPED)
    if forbidden:  # a module-level import pulled it in: fail the build rather than ship it or a broken grader
        raise RuntimeError(f"the student commands import {', '.join(forbidden)} at import time, which the handout must "
                           "not hold; import it inside the function that needs it, and do without it in the handout")
    return modules


def _ships_with(asset: Path, files: dict[str, bytes]) -> bool:
    """A module's own asset (class_report.css beside class_report.py) ships only with its module: the
    staff's reports stay out of the handout, and their style with them. Other data (the rubric, the
    editions, pytest.ini) belongs to no one module and always ships."""
    owner = asset.with_suffix(".py")
    return not owner.is_file() or owner.relative_to(REPO_ROOT).as_posix() in files


RUBRIC = f"{PACKAGE}/rubric.toml"
_HELDOUT_SEED = re.compile(rb"^heldout_seed = \d+[^\n]*", re.MULTILINE)


def student_rubric(text: bytes) -> bytes:
    """The rubric without the staff's held-out seed: with it a student could compute which test images
    the held-out check draws and fit those too. The handout never runs that check (the trusted forward
    stays with staff), so 0 stands in; the Gradescope bundle, which students never see, keeps the seed."""
    replaced, count = _HELDOUT_SEED.subn(b"heldout_seed = 0  # the staff's seed is not in the handout", text)
    if count != 1:
        raise ValueError(f"{RUBRIC}: expected one 'heldout_seed = N' line, found {count}")
    return replaced


def handout_files(template: Path | None = None, fixtures: Path = REPO_ROOT / "fixtures",
                  edition: Edition | None = None) -> dict[str, bytes]:
    """Every file of the handout of `edition` (default: the default edition) by its path inside the zip;
    `template` replaces the edition's template folder."""
    edition = edition or default_edition()
    template = template if template is not None else edition_folder(TEMPLATE, edition)
    files: dict[str, bytes] = {}
    for path in sorted(template.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(template).as_posix()] = path.read_bytes()
    for relative in student_modules():
        files[relative] = (REPO_ROOT / relative).read_bytes()
    for path in sorted((REPO_ROOT / PACKAGE).rglob("*")):  # the harness's data: the rubric, pytest.ini
        if path.is_file() and path.suffix not in (".py", ".pyc") and _ships_with(path, files):
            files[path.relative_to(REPO_ROOT).as_posix()] = path.read_bytes()
    files[RUBRIC] = student_rubric(files[RUBRIC])
    for name in ("grade.py", *REQUIREMENTS):
        files[name] = (REPO_ROOT / name).read_bytes()
    manifest = json.loads((fixtures / "manifest.json").read_text(encoding="utf-8"))
    public = _public_manifest(manifest)
    for case in public["cases"]:
        files[f"fixtures/{case['file']}"] = (fixtures / case["file"]).read_bytes()
    files["fixtures/manifest.json"] = (json.dumps(public, indent=1, sort_keys=True) + "\n").encode()
    files["README.md"] = student_readme(load_rubric().with_edition(edition), edition,
                                        (template / "get_datasets.sh").is_file()).encode()
    return files


def build_handout(destination: Path, edition: Edition | None = None) -> list[str]:
    """Write the handout zip of `edition` (default: the default edition); returns its entries."""
    files = handout_files(edition=edition)
    return write_zip(destination, {name: (data, 0o755 if name.endswith(".sh") or name == "grade.py" else 0o644)
                                   for name, data in files.items()})


def solution_lines(reference: Path = REPO_ROOT / REFERENCE, template: Path = REPO_ROOT / TEMPLATE) -> set[str]:
    """Every substantial line of a solution region of `reference` that `template` does not show anyway, stripped.

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
    public = "\n".join(p.read_text(encoding="utf-8") for p in template.rglob("*")
                       if p.is_file() and p.suffix in (".py", ".ipynb"))
    return {line for line in lines if line not in public}


def leaks(archive: Path, edition: Edition | None = None) -> list[str]:
    """Everything in the handout of `edition` (default: the default edition) that must not be there; empty
    when it is clean. The solution lines are those of every edition's reference that this edition's template
    does not show: the 2023 handout holds no line of the 2022 solution either."""
    from autograder.edition import editions
    from autograder.staff.overlays import has_reference
    problems = []
    edition = edition or default_edition()
    template = edition_folder(TEMPLATE, edition)
    secret = set().union(*(solution_lines(edition_folder(REFERENCE, each), template)
                           for each in editions() if has_reference(each)))
    staff_seed = load_rubric().training.heldout_seed
    allowed_top = set(handout_files(fixtures=REPO_ROOT / "fixtures", edition=edition))
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            if name not in allowed_top:
                problems.append(f"{name}: not part of the template or the student commands' tools")
            if name.startswith("fixtures/hidden") or "reference_solution" in name or "edition_overlays" in name:
                problems.append(f"{name}: a hidden fixture or reference file")
            text = bundle.read(name).decode("utf-8", "replace")
            problems += [f"{name}: holds the solution line {line!r}" for line in secret if line in text]
            if name == RUBRIC and f"heldout_seed = {staff_seed}\n" in text.replace("  #", "\n#"):
                problems.append(f"{RUBRIC}: holds the staff's held-out seed")
            if name == "fixtures/manifest.json":
                manifest = json.loads(text)
                if "seed" in manifest or any(c["visibility"] != "public" for c in manifest["cases"]):
                    problems.append("fixtures/manifest.json: names hidden cases or their seed")
    return problems

"""The student handout, as students use it: unzipped, a fresh environment from its own requirements,
`grade.py check` and `grade.py pdf` run with nothing of ours. It holds what students need and nothing
else: no secret, no staff tool.

The environments are built once per session (tests/venvs.py): the runtime one from the handout's
requirements.txt alone (which is the repository's; also the test that the requirements are complete),
and one from the handout's optional requirements-notebook.txt.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
import pytest
from conftest import FIXTURES, REFERENCE, TEMPLATE, run_grade
from nbformat.v4 import new_code_cell, new_notebook
from notebooks import official_notebook
from pypdf import PdfReader
from venvs import built_once, clean_environment, installed, make_venv, pins, python_or_skip, run

from autograder import REPO_ROOT
from autograder.edition import EDITIONS_DIR, get_edition
from autograder.rubric import load_rubric
from autograder.staff import overlays
from autograder.staff.handout import leaks, student_modules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # the first test to need an environment builds it

#: Staff tools, which must not be in the handout.
STAFF_MODULES = ("batch", "class_report", "demo", "gradescope", "handout", "manual", "regions", "reproducible_zip",
                 "similarity", "synthetic", "template", "trusted_eval")
STAFF_COMMANDS = (["batch", "in", "--out", "out"], ["handout"], ["gradescope"], ["merge-manual", "s.csv", "graded"],
                  ["template"], ["data", "--synthetic", "--out", "data"])
STUDENT_PYTHON = "3.11"


@pytest.fixture(scope="session")
def handout(tmp_path_factory) -> Path:
    """The folder holding handout.zip, as `grade.py handout` wrote it, and assignment/, it unzipped."""
    def build(folder: Path) -> dict:
        done = run_grade("handout", "-o", str(folder / "handout.zip"))
        assert done.returncode == 0, done.stdout + done.stderr
        with zipfile.ZipFile(folder / "handout.zip") as bundle:
            bundle.extractall(folder / "assignment")
        return {}
    return built_once(tmp_path_factory, "handout", build)


@pytest.fixture(scope="session")
def handout_2023(tmp_path_factory) -> Path:
    """As `handout`, for `grade.py handout --edition 2023`."""
    def build(folder: Path) -> dict:
        done = run_grade("handout", "--edition", "2023", "-o", str(folder / "handout.zip"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "for the edition 2023-cifar100" in done.stdout
        with zipfile.ZipFile(folder / "handout.zip") as bundle:
            bundle.extractall(folder / "assignment")
        return {}
    return built_once(tmp_path_factory, "handout-2023", build)


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory, handout) -> Path:
    """A fresh environment from the handout's requirements.txt alone, as its README says (the file is the
    repository's: the first test checks that)."""
    python = python_or_skip(STUDENT_PYTHON)
    requirements = handout / "assignment" / "requirements.txt"
    folder = built_once(tmp_path_factory, f"runtime-{STUDENT_PYTHON}",
                        lambda folder: make_venv(python, folder / "venv", [requirements]))
    return folder / "venv"


@pytest.fixture(scope="session")
def notebook_venv(tmp_path_factory, handout) -> Path:
    """A fresh environment from the handout's requirements-notebook.txt, as its README says."""
    python = python_or_skip(STUDENT_PYTHON)
    requirements = handout / "assignment" / "requirements-notebook.txt"
    folder = built_once(tmp_path_factory, f"notebook-{STUDENT_PYTHON}",
                        lambda folder: make_venv(python, folder / "venv", [requirements]))
    return folder / "venv"


@pytest.fixture
def assignment(handout, tmp_path) -> Path:
    """A student's own copy of the unpacked handout."""
    return Path(shutil.copytree(handout / "assignment", tmp_path / "assignment"))


def student(venv: Path, folder: Path, *args: str, check: bool = False):
    """`python grade.py ARGS` in the assignment folder with the environment's Python and a clean environment."""
    return run([venv / "bin" / "python", "grade.py", *args], env=clean_environment(folder.parent / "home"),
               cwd=folder, check=check)


def test_the_handout_holds_what_students_need_and_nothing_else(handout):
    with zipfile.ZipFile(handout / "handout.zip") as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("fixtures/manifest.json"))
    template = {p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    public = {f"fixtures/{case['file']}" for case in manifest["cases"]}
    data = {"autograder/rubric.toml", "autograder/checks/pytest.ini",
            *(f"autograder/editions/{path.name}" for path in EDITIONS_DIR.glob("*.toml"))}
    tops = {"grade.py", "requirements.txt", "requirements-notebook.txt", "README.md", "fixtures/manifest.json"}
    assert names == template | set(student_modules()) | data | tops | public
    shipped_modules = {PurePosixPath(name).stem for name in names if name.startswith("autograder/")}
    assert not shipped_modules & set(STAFF_MODULES)  # wherever in the package a staff tool lives
    assert "autograder/reports/class_report.css" not in names  # a staff report's style stays with it
    assert {"autograder/cli.py", "autograder/grading.py", "autograder/notebook/pdf.py", "autograder/sandbox/worker.py",
            "autograder/checks/plugin.py", "lib/cnn/layer_utils.py", "Problem_2.ipynb"} <= names
    assert not any(name.startswith(("fixtures/hidden", "tests/", "reference_solution/")) for name in names)
    assert "seed" not in manifest and {c["visibility"] for c in manifest["cases"]} == {"public"}
    every_public = json.loads((FIXTURES / "manifest.json").read_text())["cases"]
    assert len(public) == sum(1 for case in every_public if case["visibility"] == "public")
    assert leaks(handout / "handout.zip") == []
    shipped = handout / "assignment" / "autograder" / "rubric.toml"  # the staff's held-out seed stays with staff
    assert load_rubric(shipped).training.heldout_seed == 0 != load_rubric().training.heldout_seed
    assert (handout / "assignment" / "requirements.txt").read_bytes() == (REPO_ROOT / "requirements.txt").read_bytes()


def test_the_handout_is_rebuilt_byte_for_byte(handout, tmp_path):
    """Staff can tell whether the handout students have is the one this commit builds."""
    again = tmp_path / "again.zip"
    assert run_grade("handout", "-o", str(again)).returncode == 0
    assert again.read_bytes() == (handout / "handout.zip").read_bytes()
    with zipfile.ZipFile(again) as bundle:
        modes = {info.filename: info.external_attr >> 16 for info in bundle.infolist()}
    assert modes["grade.py"] == 0o755 and modes["lib/cnn/layer_utils.py"] == 0o644


def test_the_leak_check_catches_a_solution_line_a_hidden_fixture_and_a_staff_tool(handout, tmp_path):
    bad = tmp_path / "bad.zip"
    shutil.copy(handout / "handout.zip", bad)
    with zipfile.ZipFile(bad, "a") as bundle:
        bundle.write(REFERENCE / "lib" / "cnn" / "layer_utils.py", "notes/solution.py")
        bundle.writestr("fixtures/hidden/conv_forward/hidden_00.npz", b"x")
        bundle.write(REPO_ROOT / "autograder" / "batch.py", "autograder/batch.py")
    staff_rubric = tmp_path / "staff.zip"  # the handout, its rubric swapped for the staff's own
    with zipfile.ZipFile(bad) as source, zipfile.ZipFile(staff_rubric, "w") as target:
        for info in source.infolist():
            target.writestr(info, (REPO_ROOT / "autograder" / "rubric.toml").read_bytes()
                            if info.filename == "autograder/rubric.toml" else source.read(info))
    assert "autograder/rubric.toml: holds the staff's held-out seed" in leaks(staff_rubric)
    problems = leaks(bad)
    assert not any("held-out seed" in p for p in problems)
    assert any("notes/solution.py: holds the solution line" in p for p in problems)
    assert any("fixtures/hidden/conv_forward/hidden_00.npz: a hidden fixture" in p for p in problems)
    assert any(p.startswith("autograder/batch.py: not part of") for p in problems)


def test_the_runtime_requirements_are_complete_and_pinned(runtime_venv, tmp_path):
    """requirements.txt alone: exactly its pins for this Python are installed, and every module of the
    harness imports (a user command reaches each: the grader, the staff tools, the demo, the checks)."""
    python = runtime_venv / "bin" / "python"
    expected = pins(REPO_ROOT / "requirements.txt", python, tmp_path)
    assert installed(python, tmp_path) == expected
    modules = sorted(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
                     for p in (REPO_ROOT / "autograder").rglob("*.py") if p.name != "__init__.py")
    assert {"autograder.cli", "autograder.batch", "autograder.demo", "autograder.checks.plugin"} <= set(modules)
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    done = run([python, "-c", script, *modules], env=clean_environment(tmp_path), cwd=REPO_ROOT)
    assert done.stdout.strip() == "ok"


def test_check_on_the_template_then_on_a_correct_lib(runtime_venv, assignment):
    before = student(runtime_venv, assignment, "check")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "public cases only" in before.stdout and "Not checked here: the hidden cases" in before.stdout
    assert ("conv_forward" in before.stdout
            and "not implemented" in (assignment / "self_check" / "feedback.md").read_text())
    hidden = load_rubric().hidden_cases_text()  # what staff also test, read from the rubric, said twice
    assert hidden in " ".join(before.stdout.split()) and "padding 0–2" in hidden and "non-square" in hidden
    assert hidden in " ".join((assignment / "README.md").read_text(encoding="utf-8").split())
    for name in ("layer_utils.py", "cnn_models.py"):  # the student finishes the TODOs
        shutil.copy(REFERENCE / "lib" / "cnn" / name, assignment / "lib" / "cnn" / name)
    after = student(runtime_venv, assignment, "check")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "All public cases pass." in after.stdout
    assert "no points claimed" in after.stdout  # the public cases are shown, not paid
    results = json.loads((assignment / "self_check" / "results.json").read_text())
    assert results["extra_data"]["public_only"] is True and results["score"] == 0
    code = [test for test in results["tests"] if test["extra_data"].get("grading") == "self-check"]
    assert code and all(test["score"] == 0 and test["status"] == "passed" for test in code)


def test_pdf_from_an_executed_notebook(runtime_venv, assignment):
    nbformat.write(official_notebook(answer="Mostly **oriented edges** and colour blobs."),
                   str(assignment / "Problem_2.ipynb"))
    done = student(runtime_venv, assignment, "pdf", "--student", "4916525888")
    assert done.returncode == 0, done.stdout + done.stderr
    reader = PdfReader(str(assignment / "problem_2_solution.pdf"))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert "4916525888" in text and "oriented edges" in text
    assert len([image for page in reader.pages for image in page.images]) == 2  # the curves and the filters


def test_check_and_pdf_import_exactly_the_harness_modules_in_the_handout(runtime_venv, assignment):
    """What the handout ships of the harness is what `check` and `pdf` load, with what the worker process
    that `check` starts loads (`python -c 'from autograder.sandbox.worker import main'`, as sandbox.py starts it),
    and the warm worker's module, which worker_code.py copies beside the worker's."""
    nbformat.write(official_notebook(), str(assignment / "executed.ipynb"))
    report = ("import json, sys\n"
              "from pathlib import Path\n"
              "here = Path.cwd().resolve()\n"
              "files = {Path(m.__file__).resolve() for m in list(sys.modules.values()) "
              "if getattr(m, '__file__', None)}\n"
              "print(json.dumps(sorted(f.relative_to(here).as_posix() for f in files\n"
              "                        if f.is_relative_to(here / 'autograder'))))\n")
    loaded = set()
    for start in ("from autograder.cli import main\nmain(['check']); main(['pdf', 'executed.ipynb'])\n",
                  "from autograder.sandbox.worker import main\n", "from autograder.sandbox.zygote import main\n"):
        done = run([runtime_venv / "bin" / "python", "-c", start + report],
                   env=clean_environment(assignment.parent / "home"), cwd=assignment)
        loaded |= set(json.loads(done.stdout.strip().splitlines()[-1]))
    shipped = {p.relative_to(assignment).as_posix() for p in (assignment / "autograder").rglob("*.py")}
    assert "autograder/grading.py" in loaded and "autograder/sandbox/worker.py" in loaded
    assert shipped == loaded


def test_staff_commands_say_they_are_not_in_the_handout(runtime_venv, assignment):
    assert student(runtime_venv, assignment, "--help").returncode == 0
    for command in STAFF_COMMANDS:
        done = student(runtime_venv, assignment, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "is a course-staff command and is not part of the student handout" in done.stderr, command
        assert "Traceback" not in done.stderr


def test_the_notebook_requirements_run_the_notebook_in_jupyter(notebook_venv, assignment):
    """The README's optional line: Jupyter Notebook installs, and its kernel runs this environment's Python
    with the assignment's lib/ importable."""
    venv = notebook_venv
    expected = pins(assignment / "requirements-notebook.txt", venv / "bin" / "python", assignment.parent)
    assert installed(venv / "bin" / "python", assignment.parent) == expected
    env = clean_environment(assignment.parent / "home")
    version = run([venv / "bin" / "jupyter", "notebook", "--version"], env=env, cwd=assignment)
    assert version.stdout.strip() == expected["notebook"]
    probe = new_notebook(cells=[new_code_cell("import sys\nfrom lib.cnn.layer_utils import ConvLayer2D\n"
                                              "print(sys.prefix, ConvLayer2D.__name__)")],
                         metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(probe, str(assignment / "probe.ipynb"))
    run([venv / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute", "probe.ipynb",
         "--output", "probe_run.ipynb"], env=env, cwd=assignment, timeout=300)
    executed = nbformat.read(str(assignment / "probe_run.ipynb"), as_version=4)
    printed = "".join(output.get("text", "") for output in executed.cells[0].outputs)
    assert printed.split() == [str(venv), "ConvLayer2D"]


def test_the_2023_handout_holds_the_2023_template_the_same_grader_and_no_download_script(handout_2023, handout,
                                                                                           tmp_path):
    edition = get_edition("2023")
    with zipfile.ZipFile(handout_2023 / "handout.zip") as bundle, \
            zipfile.ZipFile(handout / "handout.zip") as bundle_2022:
        names = set(bundle.namelist())
        # The grader, its fixtures and requirements are the same in both: only the template and README differ.
        for name in names - set(overlays.composed_files(overlays.TEMPLATE, edition)) - {"README.md"}:
            assert bundle.read(name) == bundle_2022.read(name), name
        names_2022 = set(bundle_2022.namelist())
    template = set(overlays.composed_files(overlays.TEMPLATE, edition))
    assert names == names_2022 - {"lib/mlp/datasets.py", "get_datasets.sh"} | template
    assert {"lib/datasets.py", "lib/cnn/layer_utils.py", "Problem_2.ipynb"} <= names
    assert "lib/mlp/datasets.py" not in names and "get_datasets.sh" not in names
    assert not any(name.startswith("edition_overlays/") for name in names)
    assert leaks(handout_2023 / "handout.zip", edition) == []
    # A 2022 solution line in the 2023 handout is a leak too.
    bad = tmp_path / "bad.zip"
    shutil.copy(handout_2023 / "handout.zip", bad)
    with zipfile.ZipFile(bad, "a") as bundle:
        bundle.write(REFERENCE / "lib" / "cnn" / "cnn_models.py", "notes/solution.py")
    assert any("notes/solution.py: holds the solution line" in p for p in leaks(bad, edition))
    readme = (handout_2023 / "assignment" / "README.md").read_text(encoding="utf-8")
    assert "There is no download script" in readme and "`data/cifar100/`" in readme and "CIFAR-100" in readme
    assert "get_datasets.sh" not in readme and "SVHN" not in readme
    again = tmp_path / "again.zip"
    assert run_grade("handout", "--edition", "2023", "-o", str(again)).returncode == 0
    assert again.read_bytes() == (handout_2023 / "handout.zip").read_bytes()


def test_check_in_the_2023_handout_on_its_template_then_on_a_correct_lib(runtime_venv, handout_2023, tmp_path):
    """The 2023 handout's grader, from a fresh environment: the template fails its public cases, the 2023
    reference's layers pass them."""
    assignment = Path(shutil.copytree(handout_2023 / "assignment", tmp_path / "assignment"))
    before = student(runtime_venv, assignment, "check")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "not implemented" in (assignment / "self_check" / "feedback.md").read_text()
    reference = overlays.edition_folder(overlays.REFERENCE, get_edition("2023"))
    for name in ("layer_utils.py", "cnn_models.py"):
        shutil.copy(reference / "lib" / "cnn" / name, assignment / "lib" / "cnn" / name)
    after = student(runtime_venv, assignment, "check")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "All public cases pass." in after.stdout
    results = json.loads((assignment / "self_check" / "results.json").read_text())
    assert results["extra_data"]["edition"]["name"] == "2023-cifar100"
    feedback = (assignment / "self_check" / "feedback.md").read_text()
    assert "lib.mlp.datasets" not in feedback and "svhn" not in feedback.lower()

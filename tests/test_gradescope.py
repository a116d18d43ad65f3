"""The Gradescope bundle, as Gradescope uses it: `setup.sh` then `run_autograder`, from a clean start.

Each of Gradescope's base images is stood for by its Python (Ubuntu 22.04: 3.10, 24.04: 3.12), put
first on an otherwise system-only PATH as `python3`; `setup.sh` builds its own environment with it,
and `run_autograder` runs with nothing of ours but AUTOGRADER_ROOT. One root per Python is set up
once per test session and graded into one submission at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from submissions import CODE_ITEMS, LAYERS, make_submission
from venvs import (
    SYSTEM_PATH,
    built_once,
    clean_environment,
    folder_megabytes,
    install_environment,
    installed,
    locked,
    pins,
    python_or_skip,
    run,
)

from autograder import REPO_ROOT
from autograder.edition import get_edition
from autograder.grading import grade_submission
from autograder.model import graded_tests
from autograder.staff import overlays

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # the first test of a Python installs it

GRADESCOPE_PYTHONS = ("3.10", "3.12")  # the base images Ubuntu 22.04 and 24.04
BUGGY = [(LAYERS, "self.grads[self.b_name] = dout.sum(axis=0)", "self.grads[self.b_name] = dout.mean(axis=0)")]


def unpack_bundle(root: Path, *options: str) -> None:
    """An /autograder lookalike at `root`: the bundle that `grade.py gradescope [OPTIONS]` wrote, unpacked
    into source/."""
    archive = root / "autograder.zip"
    done = run_grade("gradescope", "-o", str(archive), *options)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert {"setup.sh", "run_autograder", "grade.py", "requirements.txt", "fixtures/manifest.json"} <= set(names)
        assert any(name.startswith("fixtures/hidden/") for name in names)
        assert (bundle.getinfo("run_autograder").external_attr >> 16) & stat.S_IXUSR
        bundle.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):  # zipfile does not restore modes; Gradescope does
        os.chmod(root / "source" / script, 0o755)


def image_path(python: str) -> str:
    """A PATH on which `python3` is `python`'s and the rest is the system's, as on the base image: the
    interpreter's own folder first (a link to it elsewhere would be what the venv points at, a path
    that the worker's confined view of the machine does not hold)."""
    folder = Path(python).parent
    assert (folder / "python3").is_file(), f"{folder} has no python3 beside {python}"
    return f"{folder}:{SYSTEM_PATH}"


def setup(root: Path, python: str) -> dict:
    """Run setup.sh as Gradescope does when it builds the image; what it took."""
    started = time.monotonic()
    env = install_environment(AUTOGRADER_ROOT=str(root), PATH=image_path(python))
    done = run(["bash", root / "source" / "setup.sh"], env=env, timeout=1800)
    return {"python": python, "install_seconds": round(time.monotonic() - started, 1),
            "megabytes": folder_megabytes(root / "source" / ".venv"), "setup_output": done.stdout[-500:]}


@pytest.fixture(scope="session", params=GRADESCOPE_PYTHONS, ids=lambda v: f"python{v}")
def gradescope_root(request, tmp_path_factory) -> tuple[Path, str]:
    """(an AUTOGRADER_ROOT whose setup.sh ran with that Python, the version)."""
    version = request.param
    python = python_or_skip(version)

    def build(root: Path) -> dict:
        unpack_bundle(root)
        return setup(root, python)

    return built_once(tmp_path_factory, f"gradescope-{version}", build), version


@pytest.fixture(scope="session")
def gradescope_root_2023(tmp_path_factory) -> Path:
    """An AUTOGRADER_ROOT of the bundle built with `--edition 2023`, set up with the oldest image's Python
    (the harness and its requirements are those of the other bundle: only run_autograder differs)."""
    python = python_or_skip(GRADESCOPE_PYTHONS[0])

    def build(root: Path) -> dict:
        unpack_bundle(root, "--edition", "2023")
        return setup(root, python)

    return built_once(tmp_path_factory, "gradescope-2023", build)


def run_autograder(root: Path) -> dict:
    """run_autograder with AUTOGRADER_ROOT and nothing else of ours; the results.json it left."""
    env = clean_environment(root / "home", AUTOGRADER_ROOT=str(root))
    done = run(["bash", root / "source" / "run_autograder"], env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def grade_in(root: Path, submission: Path | None) -> dict:
    """Put `submission` where Gradescope puts it (or none at all) and run the autograder."""
    for stale in ("submission", "results"):
        shutil.rmtree(root / stale, ignore_errors=True)
    if submission is not None:
        shutil.copytree(submission, root / "submission")
    return run_autograder(root)


def outcomes(document: dict) -> dict[tuple[str, str, str], tuple[bool, str]]:
    """{(item, component, case): (passed, outcome)} of a results.json."""
    return {(test["tags"][0], case.get("component", ""), case["case"]): (case["passed"], case["outcome"])
            for test in graded_tests(document) for case in test["extra_data"]["cases"]}


def test_setup_installs_exactly_the_pins_for_its_python(gradescope_root):
    root, version = gradescope_root
    venv_python = root / "source" / ".venv" / "bin" / "python"
    assert run([venv_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
               env=clean_environment(root / "home")).stdout.strip() == version
    expected = pins(root / "source" / "requirements.txt", venv_python, root / "home")
    assert installed(venv_python, root / "home") == expected  # nothing unpinned came along, nothing missing
    assert "pytest" in expected  # the checks run through pytest at grading time
    assert not os.stat(root / "source" / "fixtures").st_mode & 0o077  # the expected values: root only
    assert not os.stat(root / "source" / "autograder").st_mode & 0o077  # the harness code: root only
    assert not os.stat(root / "source" / "autograder" / "notebook" / "trusted_eval.py").st_mode & 0o077


def test_every_module_imports_with_only_the_bundles_requirements(gradescope_root):
    root, _ = gradescope_root
    modules = sorted(".".join(p.relative_to(root / "source").with_suffix("").parts)
                     for p in (root / "source" / "autograder").rglob("*.py") if p.name != "__init__.py")
    assert "autograder.batch" in modules and "autograder.checks.plugin" in modules
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    done = run([root / "source" / ".venv" / "bin" / "python", "-c", script, *modules],
               env=clean_environment(root / "home"), cwd=root / "source")
    assert done.stdout.strip() == "ok"


def test_the_bundle_grades_as_the_developers_grader_does(gradescope_root, tmp_path):
    """A correct submission, the template and one with a bug: real scores, and the same outcomes, case
    by case, as grading here (another Python, another NumPy: the tolerances absorb it)."""
    root, version = gradescope_root
    buggy = make_submission(tmp_path / "buggy", BUGGY)
    correct = tmp_path / "correct"
    shutil.copytree(REFERENCE, correct, ignore=shutil.ignore_patterns("data", "*.npz", "__pycache__"))
    with locked(root.with_name(root.name + ".grading.lock")):
        bundle = {name: grade_in(root, folder) for name, folder in
                  (("correct", correct), ("template", TEMPLATE), ("buggy", buggy))}
    assert all(document["extra_data"]["python"].startswith(version + ".") for document in bundle.values())

    correct_doc = bundle["correct"]
    assert correct_doc["score"] == 25
    hidden = {(test["tags"][0], case["case"]) for test in graded_tests(correct_doc)
              for case in test["extra_data"]["cases"] if case["visibility"] == "hidden"}
    assert len(hidden) == 35 and all(passed for passed, _ in outcomes(correct_doc).values())
    template_doc = bundle["template"]
    assert template_doc["score"] == 0
    code = {key: value for key, value in outcomes(template_doc).items() if key[0] in CODE_ITEMS}
    assert code and set(code.values()) == {(False, "not implemented")}
    buggy_scores = {tag: sum(test["score"] for test in bundle["buggy"]["tests"] if test["tags"][0] == tag)
                    for tag in CODE_ITEMS}
    assert buggy_scores["conv_backward"] < 5 and buggy_scores["conv_forward"] == 5

    for document in bundle.values():  # the release rules (rubric.toml [release]) travel with the bundle
        assert (document["visibility"], document["stdout_visibility"]) == ("visible", "hidden")
        assert {test["visibility"] for test in document["tests"] if test["tags"][0] == "hidden_case_details"} == \
            {"after_due_date"}
    details = next(t for t in bundle["buggy"]["tests"] if t["tags"] == ["hidden_case_details", "conv_backward"])
    shown = [t for t in bundle["buggy"]["tests"] if t["visibility"] == "visible"]
    assert "input (" in details["output"] and not any("input (2, 5, 10, 2)" in json.dumps(t) for t in shown)
    for name, folder in (("correct", correct), ("template", TEMPLATE), ("buggy", buggy)):
        here, _ = grade_submission(folder, tmp_path / "here" / name)
        here_doc = json.loads((tmp_path / "here" / name / "results.json").read_text())
        assert outcomes(bundle[name]) == outcomes(here_doc), name
        assert bundle[name]["score"] == pytest.approx(here.score, abs=1e-9)
        for theirs, ours in zip(bundle[name]["tests"], here_doc["tests"]):
            assert theirs["score"] == pytest.approx(ours["score"], abs=1e-9), (name, ours["name"])


def test_the_2023_bundle_grades_every_submission_as_2023(gradescope_root_2023, tmp_path):
    """`grade.py gradescope --edition 2023`: the 2023 reference earns every code point and the 2023 template
    none, both graded as the 2023 edition, as `grade --edition 2023` grades them here; a 2022 submission in
    that assignment is graded as 2023 too, and flagged."""
    root = gradescope_root_2023
    edition = get_edition("2023")
    assert f"run('$ROOT', '{edition.name}')" in (root / "source" / "run_autograder").read_text()
    correct = tmp_path / "correct"
    shutil.copytree(overlays.edition_folder(overlays.REFERENCE, edition), correct)
    template = overlays.edition_folder(overlays.TEMPLATE, edition)
    with locked(root.with_name(root.name + ".grading.lock")):
        bundle = {name: grade_in(root, folder) for name, folder in
                  (("correct", correct), ("template", template), ("2022", REFERENCE))}
    for name, document in bundle.items():
        assert document["extra_data"]["edition"]["name"] == edition.name, (name, document["output"][-2000:])
        assert document["extra_data"]["edition"]["how"] == "given"
    assert bundle["correct"]["score"] == 25 and all(passed for passed, _ in outcomes(bundle["correct"]).values())
    assert bundle["template"]["score"] == 0
    assert bundle["2022"]["extra_data"]["edition"]["contradiction"]
    for name, folder in (("correct", correct), ("template", template)):
        grade_submission(folder, tmp_path / "here" / name, edition=edition)
        here_doc = json.loads((tmp_path / "here" / name / "results.json").read_text())
        assert outcomes(bundle[name]) == outcomes(here_doc), name


def test_a_missing_submission_still_leaves_a_result(gradescope_root):
    root, _ = gradescope_root
    with locked(root.with_name(root.name + ".grading.lock")):
        results = grade_in(root, None)
    assert results["score"] == 0 and "no such file or folder" in results["output"]


def test_a_grader_that_cannot_start_still_leaves_a_result(tmp_path):
    unpack_bundle(tmp_path)  # setup.sh never ran: no environment to start the grader with
    results = run_autograder(tmp_path)
    assert results["score"] == 0 and "could not start" in results["output"]


def test_setup_refuses_a_python_older_than_3_10_and_says_which_image_to_pick(tmp_path):
    python = python_or_skip("3.9")
    unpack_bundle(tmp_path)
    env = clean_environment(tmp_path / "home", AUTOGRADER_ROOT=str(tmp_path), PATH=image_path(python))
    done = run(["bash", tmp_path / "source" / "setup.sh"], env=env, check=False)
    assert done.returncode == 1
    assert "needs Python 3.10 or newer" in done.stderr and "Python 3.9" in done.stderr
    assert "Ubuntu 22.04" in done.stderr and not (tmp_path / "source" / ".venv").exists()


@pytest.mark.parametrize("version, glibc", [("3.10", 35), ("3.12", 39)], ids=["ubuntu22.04", "ubuntu24.04"])
def test_every_pin_has_a_wheel_for_the_images_glibc(version, glibc, tmp_path):
    """The setup on the image installs wheels only, nothing built from source: each pinned release has one
    for that Ubuntu's C library (this machine's may be newer), as pip itself resolves it."""
    python = python_or_skip(version)
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(5, glibc + 1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    done = run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--only-binary=:all:",
                *[part for platform in platforms for part in ("--platform", platform)], "--target", tmp_path / "t",
                "--report", tmp_path / "report.json", "-r", REPO_ROOT / "requirements.txt"],
               env=install_environment(), timeout=900)
    assert done.returncode == 0
    chosen = json.loads((tmp_path / "report.json").read_text())["install"]
    assert {item["metadata"]["name"].lower() for item in chosen} >= {"numpy", "scipy", "pytest"}
    assert all(item["download_info"]["url"].endswith(".whl") for item in chosen)

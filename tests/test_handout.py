"""The student handout: complete for students, clean of secrets, and its self-check works."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder.staff.handout import leaks
from autograder.rubric import load_rubric
from conftest import REFERENCE, run_grade

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    archive = tmp_path_factory.mktemp("handout") / "handout.zip"
    done = run_grade("handout", "-o", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    return archive


def test_the_handout_holds_what_students_need_and_no_secret(handout):
    with zipfile.ZipFile(handout) as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("fixtures/manifest.json"))
    for needed in ("lib/cnn/layer_utils.py", "lib/cnn/cnn_models.py", "Problem_2.ipynb", "grade.py",
                   "autograder/cli.py", "autograder/rubric.toml", "requirements.txt", "README.md"):
        assert needed in names
    assert not any(name.startswith("fixtures/hidden") for name in names)
    assert "autograder/demo.py" not in names and not any(n.startswith(("tests/", "reference_solution/")) for n in names)
    assert "seed" not in manifest and {c["visibility"] for c in manifest["cases"]} == {"public"}
    assert leaks(handout) == []


def test_the_handout_is_rebuilt_byte_for_byte(handout, tmp_path):
    """Staff can tell whether the handout students have is the one this commit builds."""
    again = tmp_path / "again.zip"
    assert run_grade("handout", "-o", str(again)).returncode == 0
    assert again.read_bytes() == handout.read_bytes()
    with zipfile.ZipFile(again) as bundle:
        modes = {info.filename: info.external_attr >> 16 for info in bundle.infolist()}
    assert modes["grade.py"] == 0o755 and modes["lib/cnn/layer_utils.py"] == 0o644


def test_the_leak_check_catches_a_solution_line_and_a_hidden_fixture(handout, tmp_path):
    bad = tmp_path / "bad.zip"
    shutil.copy(handout, bad)
    with zipfile.ZipFile(bad, "a") as bundle:
        bundle.write(REFERENCE / "lib" / "cnn" / "layer_utils.py", "notes/solution.py")
        bundle.writestr("fixtures/hidden/conv_forward/hidden_00.npz", b"x")
    problems = leaks(bad)
    assert any("notes/solution.py: holds the solution line" in p for p in problems)
    assert any("fixtures/hidden/conv_forward/hidden_00.npz: a hidden fixture" in p for p in problems)


def test_the_self_check_in_an_unpacked_handout(handout, tmp_path):
    folder = tmp_path / "assignment"
    with zipfile.ZipFile(handout) as bundle:
        bundle.extractall(folder)
    before = subprocess.run([sys.executable, "grade.py", "check"], cwd=folder, capture_output=True, text=True)
    assert before.returncode == 1
    assert "public cases only" in before.stdout and "Not checked here: the hidden cases" in before.stdout
    hidden = load_rubric().hidden_cases_text()  # what staff also test, read from the rubric, said twice
    assert hidden in " ".join(before.stdout.split()) and "padding 0–2" in hidden and "non-square" in hidden
    assert hidden in " ".join((folder / "README.md").read_text(encoding="utf-8").split())
    for name in ("layer_utils.py", "cnn_models.py"):  # the student finishes the TODOs
        shutil.copy(REFERENCE / "lib" / "cnn" / name, folder / "lib" / "cnn" / name)
    after = subprocess.run([sys.executable, "grade.py", "check"], cwd=folder, capture_output=True, text=True)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "All public cases pass." in after.stdout
    assert "no points claimed" in after.stdout  # the public cases are shown, not paid
    results = json.loads((folder / "self_check" / "results.json").read_text())
    assert results["extra_data"]["public_only"] is True and results["score"] == 0
    code = [test for test in results["tests"] if test["extra_data"].get("grading") == "self-check"]
    assert code and all(test["score"] == 0 and test["status"] == "passed" for test in code)

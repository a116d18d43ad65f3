"""The Gradescope bundle, run end to end in a temporary AUTOGRADER_ROOT."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from conftest import REFERENCE, run_grade

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path):
    """An /autograder lookalike: the bundle unpacked into source/, as Gradescope does."""
    archive = tmp_path / "autograder.zip"
    done = run_grade("gradescope", "-o", str(archive))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert {"setup.sh", "run_autograder", "grade.py", "requirements.txt", "fixtures/manifest.json"} <= set(names)
        assert any(name.startswith("fixtures/hidden/") for name in names)
        assert (bundle.getinfo("run_autograder").external_attr >> 16) & stat.S_IXUSR
        bundle.extractall(tmp_path / "source")
    os.chmod(tmp_path / "source" / "run_autograder", 0o755)
    return tmp_path


def run_autograder(root, python=sys.executable):
    environment = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python)
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], env=environment, capture_output=True,
                          text=True, timeout=300)


def test_a_submission_is_graded_into_results_json(root):
    shutil.copytree(REFERENCE, root / "submission", ignore=shutil.ignore_patterns("data", "*.npz"))
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 25 and len(results["tests"]) >= 9
    hidden = {(t["tags"][0], c["case"]) for t in results["tests"] for c in t.get("extra_data", {}).get("cases", [])
              if c["visibility"] == "hidden"}
    assert len(hidden) == 35  # the bundle grades with the hidden fixtures


def test_a_missing_submission_still_leaves_a_result(root):
    done = run_autograder(root)
    assert done.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "no such file or folder" in results["output"]


def test_a_grader_that_cannot_start_still_leaves_a_result(root):
    done = run_autograder(root, python="/bin/false")
    assert done.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "could not start" in results["output"]

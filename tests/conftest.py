"""Shared pytest fixtures: paths of the bundled folders and the reference imported in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.lib_loader import imported_lib

# The benchmark variants double as independent implementations for the tests.
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

REFERENCE = REPO_ROOT / "reference_solution"
TEMPLATE = REPO_ROOT / "student_template"
FIXTURES = REPO_ROOT / "fixtures"


@pytest.fixture(scope="module")
def ref():
    """The reference solution's modules (see autograder.lib_loader.MODULES)."""
    with imported_lib(REFERENCE) as lib:
        yield lib


def run_grade(*args: str, cwd: Path = REPO_ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python grade.py ARGS` as a real subprocess, as staff and students do."""
    return subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)

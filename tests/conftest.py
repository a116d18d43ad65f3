"""Shared pytest fixtures: paths of the bundled folders and the reference imported in-process."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.notebook.data_cache import CACHE_VARIABLE
from autograder.sandbox.confinement import MODES, REQUIRE_VARIABLE, available_mode, explain_mode, unmet_requirement
from autograder.sandbox.exposure import TRUST_VARIABLE
from autograder.staff.lib_loader import imported_lib

# The suite's own submissions are trusted: it grades them even where the worker could read the hidden
# fixtures (a developer who is not root). The tests of that refusal clear this in their subprocesses.
os.environ.setdefault(TRUST_VARIABLE, "1")

# The staff data cache (autograder/notebook/data_cache.py) of this run: a fresh private folder, never the
# developer's own ~/.cache/cnn-grader, inherited by every grading process the tests start; removed at exit.
_DATA_CACHE, _DATA_CACHE_OWNER = tempfile.mkdtemp(prefix="cnn-grader-test-data-cache-"), os.getpid()
os.environ[CACHE_VARIABLE] = _DATA_CACHE
# only by this process: a child forked from it (without exec) exits through atexit too
atexit.register(lambda: os.getpid() == _DATA_CACHE_OWNER and shutil.rmtree(_DATA_CACHE, ignore_errors=True))

# The benchmark variants double as independent implementations for the tests.
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

REFERENCE = REPO_ROOT / "reference_solution"
TEMPLATE = REPO_ROOT / "student_template"
FIXTURES = REPO_ROOT / "fixtures"


@pytest.fixture(scope="module")
def ref():
    """The reference solution's modules (see autograder.staff.lib_loader.MODULES)."""
    with imported_lib(REFERENCE) as lib:
        yield lib


def run_grade(*args: str, cwd: Path = REPO_ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python grade.py ARGS` as a real subprocess, as staff and students do."""
    return subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


_HARNESS_TREE = ("grade.py", "autograder", "fixtures", "reference_solution", "student_template", "edition_overlays",
                 "benchmarks")


def harness_digest() -> str:
    """One sha256 over the harness's own files (code, fixtures, reference, template), caches aside:
    what no submission, and no test, may change."""
    digest = hashlib.sha256()
    for top in _HARNESS_TREE:
        path = REPO_ROOT / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(file.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
            digest.update(oct(file.stat().st_mode).encode())
    return digest.hexdigest()


@pytest.fixture(scope="session", autouse=True)
def harness_unchanged_by_the_suite():
    """The whole suite, hostile corpus included, must leave the harness's tree as it found it."""
    before = harness_digest()
    yield
    assert harness_digest() == before, "a test or a submission changed the harness's own files"


def need_mode(minimum: str) -> str:
    """The confinement mode here, when at least `minimum`; otherwise the test is skipped, or fails with
    the probes' reasons when REQUIRE_VARIABLE (set by CI) asks for a stronger mode than works here."""
    unmet = unmet_requirement()
    if unmet:
        pytest.fail(unmet)
    mode = available_mode()
    if MODES.index(mode) < MODES.index(minimum):
        pytest.skip(f"needs confinement mode {minimum!r}, this machine has {mode!r} ({REQUIRE_VARIABLE} is not set):\n"
                    + explain_mode())
    return mode


def need_tool(command: str, variable: str, package: str) -> str:
    """The path of a system tool pip cannot install; skipped without it, unless `variable` (CI sets it) is set."""
    found = shutil.which(command)
    if found is None:
        if os.environ.get(variable):
            pytest.fail(f"{variable} is set but `{command}` is not on PATH (Debian: apt-get install {package})")
        pytest.skip(f"`{command}` is not installed (Debian: apt-get install {package}; "
                    f"{variable}=1 makes this a failure)")
    return found

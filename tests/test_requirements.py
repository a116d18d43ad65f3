"""The requirements files, read without installing: every package pinned once per Python, and every
third-party module the harness imports provided by a pinned package. (The slow tests in
test_handout.py and test_gradescope.py install them for real on 3.10, 3.11 and 3.12.)"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder import REPO_ROOT

FILES = ("requirements.txt", "requirements-dev.txt", "requirements-notebook.txt")
PYTHONS = {"3.10": "3.10.12", "3.11": "3.11.7", "3.12": "3.12.3"}  # Ubuntu 22.04's, ours, Ubuntu 24.04's


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a file, its `-r` includes followed."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].split("#")[0].strip() if not line.startswith("#") else ""
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def pinned_for(path: Path, version: str) -> dict[str, str]:
    environment = dict(default_environment(), python_version=version, python_full_version=PYTHONS[version])
    pinned: dict[str, str] = {}
    for requirement in requirements(path):
        if requirement.marker is None or requirement.marker.evaluate(environment):
            name = canonicalize_name(requirement.name)
            assert name not in pinned, f"{path.name}: {name} pinned twice for Python {version}"
            pinned[name] = str(requirement.specifier)
    return pinned


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("version", PYTHONS)
def test_every_package_is_pinned_once_for_each_python(name, version):
    pinned = pinned_for(REPO_ROOT / name, version)
    assert pinned and all(spec.startswith("==") and "," not in spec for spec in pinned.values()), pinned
    for requirement in requirements(REPO_ROOT / name):
        assert requirement.marker is None or "python_version" in str(requirement.marker), requirement


def test_the_runtime_holds_pytest_and_the_dev_file_builds_on_it():
    for version in PYTHONS:
        runtime = pinned_for(REPO_ROOT / "requirements.txt", version)
        assert {"pytest", "pluggy", "iniconfig"} <= set(runtime)  # the checks run through pytest when grading
        assert ("tomli" in runtime) == (version == "3.10")  # tomllib is in the standard library from 3.11
        dev = pinned_for(REPO_ROOT / "requirements-dev.txt", version)
        assert runtime.items() <= dev.items() and {"pytest-xdist", "pytest-timeout"} <= set(dev)
        notebook = pinned_for(REPO_ROOT / "requirements-notebook.txt", version)
        assert runtime.items() <= notebook.items() and "notebook" in notebook


def test_every_third_party_module_the_harness_imports_is_pinned():
    """Imports anywhere in autograder/ (module level or inside a function) must come from a package
    that requirements.txt pins, for some Python (tomli is 3.10's; the others are pinned for all)."""
    distributions = packages_distributions()
    pinned = set().union(*(pinned_for(REPO_ROOT / "requirements.txt", version) for version in PYTHONS))
    missing = {}
    for path in (REPO_ROOT / "autograder").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "autograder":
                    continue
                providers = {canonicalize_name(d) for d in distributions.get(top, [])}
                if top == "tomli" and not providers:
                    providers = {"tomli"}  # not installed on this Python (3.11+), pinned for 3.10
                if not providers & pinned:
                    missing[top] = (f"{path.relative_to(REPO_ROOT)}: "
                                    f"provided by {sorted(providers) or 'nothing installed'}")
    assert not missing, missing

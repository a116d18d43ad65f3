"""The package's layout: imports run one way, from the entry points down to the core.

Each module of `autograder/` belongs to one layer (the longest matching prefix below). A module may
import from its own layer and the layers under it, never from one above: what calls
`grade_submission` (the batch, the staff tools' Gradescope run, the CLI) sits above grading, and
what grading calls (the sandbox, the checks, scoring, the notebook, the reports of one submission)
below it. Every import counts, also one inside a function. A new module must be given a layer here.

No two modules may import each other, directly or through others (an import circle), within a layer
too. Here also every import counts: one inside a function (deferring it is the usual way to hide a
circle) and one under `if TYPE_CHECKING:`. A type-only import is still a dependency on the other
module's vocabulary; the last circle (diagnosis <-> model) was half type-only, and with
`from __future__ import annotations` such an import becomes a runtime one at the first `isinstance`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from autograder import REPO_ROOT as REPO

#: Lowest first.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("autograder", "autograder.rubric", "autograder.numerics", "autograder.attributes",
              "autograder.evidence", "autograder.outcomes", "autograder.model", "autograder.intake",
              "autograder.fixtures", "autograder.deadlines", "autograder.edition")),
    ("sandbox", ("autograder.sandbox",)),
    ("checks", ("autograder.checks",)),
    ("scoring", ("autograder.diagnosis", "autograder.score")),  # the result model (core) sits below what builds it
    ("notebook", ("autograder.notebook",)),
    # the grading sheet reads results only; progress shows the batch's finished submissions
    ("reports", ("autograder.reports", "autograder.reports.manual_sheet", "autograder.progress")),
    ("grading", ("autograder.baseline", "autograder.grading")),
    ("class and staff", ("autograder.batch", "autograder.cluster", "autograder.processes", "autograder.staff",
                         "autograder.warm")),
    ("entry points", ("autograder.cli", "autograder.demo")),
]
#: The only modules that may import pytest: the checks are pytest suites run by the plugin.
PYTEST_ALLOWED = "autograder.checks"


def modules(package: Path) -> dict[str, Path]:
    """Every module under `package` by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import of `name` that names a module in `known`, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append((node.lineno, target if target in known else base))
    return [(line, target) for line, target in found if target in known or target.split(".")[0] == "pytest"]


def layer_of(name: str, layers=LAYERS) -> int | None:
    """The index of the layer whose longest prefix matches `name` (`autograder` itself: only the
    package's `__init__`, so that a new top-level module has no layer until it is given one)."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            inside = name.startswith(prefix + ".") and "." in prefix
            if (name == prefix or inside) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def violations(package: Path, layers=LAYERS) -> list[str]:
    """Every import from a higher layer, and every module without a layer, in words."""
    found = modules(package)
    problems = [f"{name} ({path.name}) has no layer in tests/test_layout.py" for name, path in found.items()
                if layer_of(name, layers) is None]
    for name, path in found.items():
        own = layer_of(name, layers)
        for line, target in imports(name, path, set(found)):
            if target in found and own is not None and (layer_of(target, layers) or 0) > own:
                problems.append(f"{path.relative_to(package.parent)}:{line}: {name} ({layers[own][0]}) imports "
                                f"{target} ({layers[layer_of(target, layers)][0]}), a higher layer")
    return problems


def pytest_imports(package: Path) -> list[str]:
    """Every module outside the checks that imports pytest."""
    found = modules(package)
    return [f"{path.relative_to(package.parent)}:{line}: {name} imports pytest" for name, path in found.items()
            if not (name == PYTEST_ALLOWED or name.startswith(PYTEST_ALLOWED + "."))
            for line, target in imports(name, path, set(found)) if target.split(".")[0] == "pytest"]


def circles(package: Path) -> list[list[str]]:
    """Every import circle among the package's modules: each strongly connected set of more than one
    module (or a module importing itself), sorted, found with Tarjan's algorithm."""
    found = modules(package)
    edges = {name: sorted({target for _, target in imports(name, path, set(found)) if target in found})
             for name, path in found.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in edges[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1 or name in edges[name]:
                result.append(sorted(group))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return sorted(result)


def test_no_import_circle():
    assert circles(REPO / "autograder") == []


def test_the_circle_check_finds_one_made_of_a_type_only_and_a_deferred_import(tmp_path):
    package = tmp_path / "autograder"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from autograder.diagnosis import Diagnosis\n")
    (package / "diagnosis.py").write_text("def diagnose():\n    from .model import CaseResult\n")
    (package / "score.py").write_text("from autograder import diagnosis, model\n")
    assert circles(package) == [["autograder.diagnosis", "autograder.model"]]


def test_imports_run_from_the_entry_points_down():
    assert violations(REPO / "autograder") == []


def test_only_the_checks_import_pytest():
    assert pytest_imports(REPO / "autograder") == []


def test_the_worker_imports_nothing_of_the_grader():
    """The worker runs beside student code: of the harness it loads only the sandbox's own modules
    (no rubric, no fixtures, no grading), whatever they import in turn."""
    found = modules(REPO / "autograder")
    seen, queue = set(), ["autograder.sandbox.worker"]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        queue += [target for _, target in imports(name, found[name], set(found)) if target in found]
    assert seen <= {"autograder", "autograder.sandbox", "autograder.sandbox.worker", "autograder.sandbox.probe",
                    "autograder.sandbox.protocol"}, sorted(seen)


@pytest.fixture()
def planted(tmp_path: Path) -> Path:
    """A small package with one import pointing up, one pointing down, and pytest where it may not be."""
    package = tmp_path / "autograder"
    for folder in (package, package / "sandbox", package / "checks"):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text("")
    (package / "rubric.py").write_text("import json\n")
    (package / "grading.py").write_text("from autograder.rubric import load\nfrom autograder.sandbox import parent\n")
    (package / "sandbox" / "parent.py").write_text("def f():\n    from ..grading import grade\n")
    (package / "sandbox" / "worker.py").write_text("import pytest\nfrom . import parent\n")
    (package / "checks" / "plugin.py").write_text("import pytest\n")
    (package / "stray.py").write_text("")
    return package


def test_the_layer_check_finds_an_import_pointing_up(planted):
    problems = violations(planted)
    assert any(p.startswith("autograder/sandbox/parent.py:2: autograder.sandbox.parent (sandbox) imports "
                            "autograder.grading (grading)") for p in problems), problems
    assert any("autograder.stray" in p and "no layer" in p for p in problems), problems
    assert len(problems) == 2, problems  # grading -> rubric, grading -> sandbox and worker -> parent point down


def test_the_pytest_check_finds_pytest_outside_the_checks(planted):
    assert pytest_imports(planted) == ["autograder/sandbox/worker.py:1: autograder.sandbox.worker imports pytest"]

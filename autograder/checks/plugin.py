"""The pytest plugin that turns check functions into one scored outcome per case and component.

`run_checks` runs the suites in this folder through pytest's API with a GradingPlugin. The
plugin supplies the fixtures (`worker`, `case`, `rubric`, `part`), parametrises each test over
its rubric item's cases, calls the test itself and records what happened: a return is Passed, a
CheckFailed carries its outcome, an AssertionError in a check is a failed check with its
message, anything else is a harness fault (our bug, reported as such, never the student's).

An item with components (rubric.toml) is judged part by part: the check wraps each part in
`with part("dimg"):`, which records that part's outcome and lets the check go on to the next.
A failure before any part (the worker's call raised, timed out, crashed) ends every part alike.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Iterator

import pytest

from autograder.attributes import Geometry, geometry, sides
from autograder.fixtures import Case
from autograder.model import CaseResult
from autograder.outcomes import (
    CheckFailed,
    HarnessFault,
    NotRunAfterExits,
    NotRunAfterTimeouts,
    Outcome,
    Passed,
    TimedOut,
    WrongStructure,
)
from autograder.rubric import Rubric
from autograder.sandbox.parent import WorkerProcess

CHECKS_DIR = Path(__file__).resolve().parent


def case_geometry(case: Case) -> Geometry | None:
    """A case's shapes (batch, height, width, channels, kernel or pool, stride, padding); None where fixed."""
    shape = case.args.get("input_size") if case.item == "output_size" else \
        (case.arrays["x"].shape if "x" in case.arrays else None)
    return geometry(case.item, case.args, shape)


def case_sides(case: Case) -> tuple[str, ...]:
    """The attribute sides of a case: padding 0 or not, square or not, ..."""
    return sides(case.item, case_geometry(case))


class Parts:
    """Records each component's outcome while a check judges one case, part after part."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}

    @contextlib.contextmanager
    def __call__(self, component: str) -> Iterator[None]:
        try:
            yield
        except CheckFailed as failure:
            self.outcomes[component] = failure.outcome
        except AssertionError as exc:
            self.outcomes[component] = WrongStructure(str(exc) or "a check failed")
        else:
            self.outcomes[component] = Passed()


def _filters(args) -> str:
    count = args["number_filters"]
    return f"{count} filter{'' if count == 1 else 's'}"


def describe_case(case: Case) -> str:
    """A short description of a case's inputs, for feedback."""
    args = case.args
    if case.item == "output_size":
        return (f"input {tuple(args['input_size'])}, kernel {args['kernel_size']}, {_filters(args)}, "
                f"stride {args['stride']}, padding {args['padding']}")
    if case.item.startswith("conv"):
        return (f"input {tuple(case.arrays['x'].shape)}, kernel {args['kernel_size']}, {_filters(args)}, "
                f"stride {args['stride']}, padding {args['padding']}")
    if case.item.startswith("pool"):
        overlap = "overlapping" if args["stride"] < args["pool_size"] else "disjoint"
        return f"input {tuple(case.arrays['x'].shape)}, pool {args['pool_size']}, stride {args['stride']} ({overlap})"
    if case.item == "test_cnn":
        return f"features {tuple(case.arrays['feats'].shape)}, labels {case.arrays['labels'].tolist()}"
    return case.name


class GradingPlugin:
    """Supplies the fixtures to the checks and collects one CaseResult per case."""

    def __init__(self, worker: WorkerProcess, cases: list[Case], rubric: Rubric):
        self._worker = worker
        self._rubric = rubric
        self.cases: dict[str, list[Case]] = {}
        for case in cases:
            self.cases.setdefault(case.item, []).append(case)
        self.results: list[CaseResult] = []
        self.timeouts: dict[str, int] = {}
        self.exits: dict[str, int] = {}  # workers that ended during an item's cases (worker.exits counts them)

    @pytest.fixture
    def worker(self) -> WorkerProcess:
        return self._worker

    @pytest.fixture
    def rubric(self) -> Rubric:
        return self._rubric

    @pytest.fixture
    def part(self) -> Parts:
        return Parts()

    @pytest.fixture
    def item_cases(self) -> dict[str, list[Case]]:
        """Every item's cases, for a fixed check that runs one of them (TestCNN's layers)."""
        return self.cases

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("item")
        if "case" in metafunc.fixturenames and marker is not None:
            cases = self.cases.get(marker.args[0], [])
            metafunc.parametrize("case", cases, ids=[case.name for case in cases])

    def _weight(self, item_id: str, check: str | None, case: Case | None) -> float:
        item = self._rubric.item(item_id)
        if check is not None:
            return 1.0  # a fixed check is its component's only case
        return item.public_weight if case.visibility == "public" else item.hidden_weight

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool:
        marker = pyfuncitem.get_closest_marker("item")
        item_id, check = marker.args[0], marker.kwargs.get("check")
        item = self._rubric.item(item_id)
        components = [check] if check is not None else [c.id for c in item.components if not c.check]
        case = pyfuncitem.funcargs.get("case")
        parts = pyfuncitem.funcargs.get("part")
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        ended: Outcome | None = None  # how the check ended outside any part
        detail = ""
        started = time.monotonic()
        exits_before = self._worker.exits
        if self.timeouts.get(item_id, 0) >= self._worker.limits.timeouts_per_item:
            ended = NotRunAfterTimeouts(self.timeouts[item_id])
        elif self.exits.get(item_id, 0) >= self._worker.limits.exits_per_item:
            ended = NotRunAfterExits(self.exits[item_id], self._worker.last_exit)
        else:
            try:
                detail = pyfuncitem.obj(**arguments) or ""
            except CheckFailed as failure:
                ended = failure.outcome
            except AssertionError as exc:
                ended = WrongStructure(str(exc) or "a check failed")
            except Exception as exc:  # noqa: BLE001 - a bug of ours must not cost the student
                ended = HarnessFault(f"{type(exc).__name__}: {exc}")
        recorded = parts.outcomes if parts is not None else {}
        if isinstance(ended, TimedOut) or any(isinstance(o, TimedOut) for o in recorded.values()):
            self.timeouts[item_id] = self.timeouts.get(item_id, 0) + 1
        if self._worker.exits > exits_before:  # an exit counts as a time-out does
            self.exits[item_id] = self.exits.get(item_id, 0) + self._worker.exits - exits_before
        seconds = round(time.monotonic() - started, 4)
        for component in components:
            outcome = recorded.get(component) or ended
            if outcome is None:
                outcome = Passed(detail) if component in ("", check) else \
                    HarnessFault(f"the check of {item_id} did not judge its part {component!r}")
            if check is not None:
                description = item.component(check).title
            else:
                description = describe_case(case)
            self.results.append(CaseResult(
                item_id, check or case.name, "check" if check else case.visibility,
                self._weight(item_id, check, case), description, outcome, seconds, component,
                case_sides(case) if case is not None else (), case_geometry(case) if case is not None else None))
        return True


def run_checks(worker: WorkerProcess, cases: list[Case], rubric: Rubric) -> list[CaseResult]:
    """Run every check against `worker`; one CaseResult per case, in the rubric's item order."""
    plugin = GradingPlugin(worker, cases, rubric)
    arguments = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR), "-q", "-s",
                 "-p", "no:cacheprovider", "-p", "no:randomly", "--import-mode=importlib",
                 # no garbage collection passes for unraisable exceptions (a third of the run): student code
                 # runs in the worker, never here; and none of the test-suite plugins this venv may hold
                 "-p", "no:unraisableexception", "-p", "no:xdist", "-p", "no:timeout"]
    with contextlib.redirect_stdout(io.StringIO()) as transcript:
        status = pytest.main(arguments, plugins=[plugin])
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not plugin.results:
        raise RuntimeError(f"the grading checks did not run (pytest exit {status}):\n{transcript.getvalue()[-3000:]}")
    return sorted(plugin.results, key=lambda r: result_order(rubric, r))


def result_order(rubric: Rubric, result: CaseResult) -> tuple:
    """Items in the rubric's order; within one, fixed checks, then the public case, then hidden
    cases by name, each case's components in the rubric's order."""
    items = [item.id for item in rubric.items]
    index = items.index(result.item) if result.item in items else len(items)
    components = [c.id for c in rubric.items[index].components] if index < len(items) else []
    part = components.index(result.component) if result.component in components else len(components)
    visibility = {"check": 0, "public": 1}.get(result.visibility, 2)
    return index, visibility, part if visibility == 0 else 0, result.case, part

"""The pytest plugin that turns check functions into one scored outcome per case.

`run_checks` runs the suites in this folder through pytest's API with a GradingPlugin. The
plugin supplies the fixtures (`worker`, `case`, `rubric`), parametrises each test over its
rubric item's cases, calls the test itself and records what happened: a return is Passed, a
CheckFailed carries its outcome, an AssertionError in a check is a failed check with its
message, anything else is a harness fault (our bug, reported as such, never the student's).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.fixtures import Case
from autograder.outcomes import (CheckFailed, HarnessFault, NotRunAfterTimeouts, Outcome, Passed, TimedOut,
                                 WrongStructure)
from autograder.rubric import Rubric
from autograder.sandbox import Worker

CHECKS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CaseResult:
    """One graded case of one rubric item."""

    item: str
    case: str
    visibility: str  # "public" or "hidden"
    weight: float
    description: str
    outcome: Outcome
    seconds: float = 0.0


def describe_case(case: Case) -> str:
    """A short description of a case's inputs, for feedback."""
    args = case.args
    if case.item == "output_size":
        return (f"input {tuple(args['input_size'])}, kernel {args['kernel_size']}, {args['number_filters']} filters, "
                f"stride {args['stride']}, padding {args['padding']}")
    if case.item.startswith("conv"):
        return (f"input {tuple(case.arrays['x'].shape)}, kernel {args['kernel_size']}, {args['number_filters']} "
                f"filters, stride {args['stride']}, padding {args['padding']}")
    if case.item.startswith("pool"):
        overlap = "overlapping" if args["stride"] < args["pool_size"] else "disjoint"
        return f"input {tuple(case.arrays['x'].shape)}, pool {args['pool_size']}, stride {args['stride']} ({overlap})"
    if case.item == "test_cnn":
        return f"features {tuple(case.arrays['feats'].shape)}, labels {case.arrays['labels'].tolist()}"
    return case.name


class GradingPlugin:
    """Supplies the fixtures to the checks and collects one CaseResult per case."""

    def __init__(self, worker: Worker, cases: list[Case], rubric: Rubric, public_only: bool):
        self._worker = worker
        self._rubric = rubric
        self.public_only = public_only
        self.cases: dict[str, list[Case]] = {}
        for case in cases:
            self.cases.setdefault(case.item, []).append(case)
        self.results: list[CaseResult] = []
        self.timeouts: dict[str, int] = {}

    @pytest.fixture
    def worker(self) -> Worker:
        return self._worker

    @pytest.fixture
    def rubric(self) -> Rubric:
        return self._rubric

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("item")
        if "case" in metafunc.fixturenames and marker is not None:
            cases = self.cases.get(marker.args[0], [])
            metafunc.parametrize("case", cases, ids=[case.name for case in cases])

    def _weight(self, item_id: str, check: str | None, case: Case | None) -> float:
        item = self._rubric.item(item_id)
        if check is not None:
            return float(self._rubric.raw.get("checks", {}).get(item_id, {}).get(check, item.public_weight))
        return item.public_weight if case.visibility == "public" else item.hidden_weight

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool:
        marker = pyfuncitem.get_closest_marker("item")
        item_id, check = marker.args[0], marker.kwargs.get("check")
        case = pyfuncitem.funcargs.get("case")
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        outcome: Outcome
        started = time.monotonic()
        if self.timeouts.get(item_id, 0) >= self._worker.limits.timeouts_per_item:
            outcome = NotRunAfterTimeouts(self.timeouts[item_id])
        else:
            try:
                detail = pyfuncitem.obj(**arguments)
                outcome = Passed(detail or "")
            except CheckFailed as failure:
                outcome = failure.outcome
                if isinstance(outcome, TimedOut):
                    self.timeouts[item_id] = self.timeouts.get(item_id, 0) + 1
            except AssertionError as exc:
                outcome = WrongStructure(str(exc) or "a check failed")
            except Exception as exc:  # noqa: BLE001 - a bug of ours must not cost the student
                outcome = HarnessFault(f"{type(exc).__name__}: {exc}")
        self.results.append(CaseResult(
            item_id, check or case.name, "public" if check or case.visibility == "public" else "hidden",
            self._weight(item_id, check, case), describe_case(case) if case is not None else check, outcome,
            round(time.monotonic() - started, 4)))
        return True


def run_checks(worker: Worker, cases: list[Case], rubric: Rubric, public_only: bool = False) -> list[CaseResult]:
    """Run every check against `worker`; one CaseResult per case, in the rubric's item order."""
    plugin = GradingPlugin(worker, cases, rubric, public_only)
    arguments = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR), "-q", "-s",
                 "-p", "no:cacheprovider", "-p", "no:randomly", "--import-mode=importlib"]
    with contextlib.redirect_stdout(io.StringIO()) as transcript:
        status = pytest.main(arguments, plugins=[plugin])
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not plugin.results:
        raise RuntimeError(f"the grading checks did not run (pytest exit {status}):\n{transcript.getvalue()[-3000:]}")
    order = {item.id: index for index, item in enumerate(rubric.items)}
    return sorted(plugin.results, key=lambda r: (order.get(r.item, 99), r.visibility != "public", r.case))

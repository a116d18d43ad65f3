"""Is a backward analytic? Evidence, from behaviour, that it differentiates forward numerically.

The handout ships central differences (lib/grad_check.py), and a `backward` that applies them to
`forward` passes every gradient case within tolerance. Two pieces of evidence, either enough:

- **Probes the parent checks itself.** A gradient that does not depend on some input must not move
  when that input moves: the conv's dimg does not depend on the input, its dW not on the weights, db
  on neither; the pool's dimg depends only on where each window's maximum is. So the case is run again
  with `numerical_probe_offset` (1e8) added to the input (then to the weights), and the pool on an
  input of that offset plus `numerical_probe_spacing` times each element's rank (the same maxima). An
  analytic backward computes the same products of the same numbers and returns, bit for bit, what it
  returned on the case; central differences subtract outputs of size 1e8 that differ by h = 1e-5 times
  a weight, and lose 6.6e-5 to 1 (relative error) to cancellation: 66 times the gradient tolerance
  at least, on every fixture case ([code_checks] in rubric.toml). No worker answer is believed here:
  the expected values are the case's own.
- **What the worker saw.** While backward runs, the worker counts the calls of forward on an input (or
  weights, biases) that differs from the given one in exactly one element (worker.py `_ForwardWatch`):
  central differences make two per element, an analytic backward none. A forged count can only cost
  the student, so it is safe to use.

A component is judged numerical only where its value on the case itself is right (the check asks
only then), so a wrong gradient keeps its own reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.fixtures import Case
from autograder.numerics import rel_error
from autograder.outcomes import CheckFailed, HarnessFault
from autograder.rubric import Rubric
from autograder.sandbox.parent import Answer, WorkerProcess

#: Which array each gradient differentiates, as the worker names them in `perturbed_forwards`.
ROLE = {"dimg": "x", "dw": "w", "db": "b"}
WHAT = {"dimg": "the input", "dw": "the weights", "db": "the biases"}
GRADIENT = {"dimg": "the input gradient", "dw": "the weight gradient", "db": "the bias gradient"}
ROLE_OF = {"x": "dimg", "w": "dw"}


def _moved(value: Any, expected: np.ndarray, tolerance: float) -> float | None:
    """The probe's relative error against the case's own gradient when it is a real array of the
    right size with finite values and beyond `tolerance`; None where it is no evidence."""
    if type(value) is not np.ndarray or value.dtype.kind not in "biuf" or value.size != expected.size:
        return None
    value = value.reshape(expected.shape)
    if not np.all(np.isfinite(value)):
        return None
    error = float(rel_error(value.astype(np.float64), expected))
    return error if error > tolerance else None


def _counted(answer: Answer | None, role: str, minimum: int) -> int:
    counts = answer.header.get("perturbed_forwards") if answer is not None else None
    count = counts.get(role) if isinstance(counts, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= minimum else 0


class BackwardProbe:
    """Evidence for one case, gathered on first need (a student whose gradients are wrong anyway costs
    no extra calls). `evidence(component)` is the sentence saying what was seen, or "" for none."""

    def __init__(self, case: Case, worker: WorkerProcess, rubric: Rubric, answer: Answer):
        self.case, self.worker, self.rubric, self.answer = case, worker, rubric, answer
        self.tolerances, self.checks = rubric.tolerances, rubric.code_checks
        self._probes: dict[str, Answer | None] = {}

    def _probe(self, name: str, op: str, arrays: dict[str, np.ndarray]) -> Answer | None:
        """One probe request; its failure (the student's exception, a time-out) is no evidence."""
        if name not in self._probes:
            try:
                self._probes[name] = self.worker.call(op, self.case.args, arrays)
            except CheckFailed as failure:
                if isinstance(failure.outcome, HarnessFault):
                    raise
                self._probes[name] = None
        return self._probes[name]

    def _conv_probe(self, shifted: str) -> Answer | None:
        arrays = {key: np.array(self.case.arrays[key], dtype=np.float64) for key in ("x", "w", "b", "dout")}
        arrays[shifted] = arrays[shifted] + self.checks.numerical_probe_offset
        return self._probe(f"conv+{shifted}", "conv_backward", arrays)

    def _pool_probe(self) -> Answer | None:
        x = self.case.arrays["x"]
        if np.unique(x).size != x.size:  # ties: the ranks would choose maxima of their own
            return None
        rank = np.argsort(np.argsort(x, axis=None, kind="stable"), kind="stable").reshape(x.shape)
        probe = self.checks.numerical_probe_offset + self.checks.numerical_probe_spacing * rank
        return self._probe("pool", "pool_backward", {"x": probe.astype(np.float64),
                                                     "dout": np.array(self.case.arrays["dout"])})

    def _counts_text(self, role: str, probes: list[Answer | None]) -> str:
        minimum = self.checks.numerical_min_perturbed_forwards
        count = max(_counted(answer, role, minimum) for answer in [self.answer, *probes])
        if not count:
            return ""
        what = {"x": "an input", "w": "weights", "b": "biases"}[role]
        return f"backward ran forward {count} times on {what} differing from the given ones in a single element"

    def evidence(self, component: str) -> str:
        """Why `component` ("dimg", "dw", "db" of the conv; "" for the pool's dimg) looks numerical."""
        offset, tolerance = self.checks.numerical_probe_offset, self.tolerances.gradient
        seen = []
        if self.case.item == "pool_backward":
            probes = [self._pool_probe()]
            error = _moved(probes[0].value("dx"), self.case.arrays["dx"], tolerance) if probes[0] else None
            if error is not None:
                seen.append(f"on an input with the same maxima, every value raised by {offset:g}, the input gradient "
                            f"(which depends only on where the maxima are) moved by relative error {error:.1e}, as "
                            "central differences do when the values are that large; an analytic backward returns "
                            "the same numbers")
            role = "x"
        else:
            role = ROLE[component]
            shifted = {"dimg": ["x"], "dw": ["w"], "db": ["x", "w"]}[component]
            probes = [self._conv_probe(name) for name in shifted]
            name = {"dimg": "dx", "dw": "dw", "db": "db"}[component]
            for moved, answer in zip(shifted, probes):
                error = _moved(answer.value(name), self.case.arrays[name], tolerance) if answer else None
                if error is not None:
                    seen.append(f"with {offset:g} added to every value of {WHAT[ROLE_OF[moved]]} (on which "
                                f"{GRADIENT[component]} does not depend), {GRADIENT[component]} moved by relative "
                                f"error {error:.1e}, as central differences do when the outputs are that large; an "
                                "analytic backward returns the same numbers")
                    break
        counts = self._counts_text(role, probes)
        if counts:
            seen.append(counts)
        return "; ".join(seen)

"""The test fixtures as grading reads them: each case and its arrays, checked against the manifest.

`public/` holds exactly the notebook's cases; `hidden/` holds cases drawn from the rubric's
seed (non-square images, several channels, strides, padding, overlapping and disjoint pools,
batches). Each case is one `.npz` of its inputs and the reference's outputs and analytic
gradients. `manifest.json` describes every case (arguments, each array's shape, dtype and
role, the gradient check's gaps, sha256) so that any grade can be traced to the exact
fixtures it used.

They are computed from the reference solution by autograder/staff/fixture_build.py; this module only reads
them and names what each array is (ROLES), so that grading never imports the generator or a `lib/`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder import UserInputError

MANIFEST = "manifest.json"

#: The notebook's TestCNN case: the seed and scale of its initial weights.
TEST_CNN_INIT_SEED = 1234
TEST_CNN_INIT_STD = 0.02
#: TestCNN's architecture, fixed by the assignment: conv 3x3 (3 -> 3), pool 2, fc (27 -> 5).
TEST_CNN_SHAPES = {"conv_w": (3, 3, 3, 3), "conv_b": (3,), "fc_w": (27, 5), "fc_b": (5,)}
#: ... and its layers' configuration (the interface: ConvLayer2D(3, 3, 3, stride=1, padding=0) and
#: MaxPoolingLayer(2, 2)), by the layers' attribute names; on the notebook's 8x8x3 images.
TEST_CNN_CONFIG = {"conv": {"kernel_size": 3, "stride": 1, "padding": 0}, "pool": {"pool_size": 2, "stride": 2}}
TEST_CNN_PROBE = (1, 8, 8, 3)


def seeded_stream(count: int) -> np.ndarray:
    """The first `count` values `np.random.randn` draws after `np.random.seed(1234)`, the notebook's seeding
    before TestCNN is built (computed here, in the parent, with a generator of its own): the handout's
    layers draw their weights from it, the conv layer's 81 first, then the fc layer's 135."""
    return np.random.RandomState(TEST_CNN_INIT_SEED).randn(count)


#: Every array of every case type and its role, which says how `verify_fixtures` compares it:
#: "input" (drawn or fixed; must be bit-for-bit what the seed draws), "size" and "selection"
#: (integers, and max-pool outputs, which are elements of the input: exact), "forward",
#: "gradient" and "loss" (floating-point sums: within FLOAT_ROLES' tolerance).
ROLES: dict[str, dict[str, str]] = {
    "output_size": {"expected": "size"},
    "conv_forward": {"x": "input", "w": "input", "b": "input", "out": "forward"},
    "conv_backward": {"x": "input", "w": "input", "b": "input", "dout": "input",
                      "dx": "gradient", "dw": "gradient", "db": "gradient"},
    "pool_forward": {"x": "input", "out": "selection"},
    "pool_backward": {"x": "input", "dout": "input", "dx": "gradient"},
    "test_cnn": {"feats": "input", "labels": "input", **{role: "input" for role in TEST_CNN_SHAPES},
                 "scores": "forward", "loss": "loss", **{"d_" + role: "gradient" for role in TEST_CNN_SHAPES}},
}
EXACT_ROLES = ("input", "size", "selection")
#: A floating-point role's grading tolerance in [tolerances] (the loss is graded absolutely).
FLOAT_ROLES = {"forward": "forward", "gradient": "gradient", "loss": "loss_abs"}


class FixtureError(UserInputError, RuntimeError):
    """Fixtures could not be generated or do not match what the reference computes."""


@dataclass
class Case:
    """One graded case: the item it belongs to, its arguments, its arrays, and at generation
    the gap between each analytic gradient and its central difference."""

    item: str
    name: str
    visibility: str  # "public" or "hidden"
    args: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    gaps: dict[str, float] = field(default_factory=dict)

    @property
    def relative_path(self) -> str:
        return f"{self.visibility}/{self.item}/{self.name}.npz"

    def inputs(self) -> dict[str, np.ndarray]:
        """Fresh copies of the input arrays: the reference may perturb what it is given."""
        return {name: np.array(self.arrays[name]) for name, role in ROLES[self.item].items() if role == "input"}



def read_manifest(fixtures: Path) -> dict[str, Any]:
    """The manifest of a fixtures folder, with a clear error when it is missing or broken."""
    path = fixtures / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FixtureError(f"{path}: not found; run `python grade.py fixtures`") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}: not valid JSON ({exc})") from None


def load_case_arrays(fixtures: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of one manifest entry, after checking the file's sha256 (tamper detection of
    the committed files, not a test of reproducibility: another machine computes other bits)."""
    path = fixtures / entry["file"]
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise FixtureError(f"{path}: sha256 differs from the manifest; the fixtures were changed")
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def load_cases(fixtures: Path, public_only: bool = False) -> list[Case]:
    """The cases to grade with, each checked against its manifest hash."""
    cases = []
    for entry in read_manifest(fixtures)["cases"]:
        if public_only and entry["visibility"] != "public":
            continue
        cases.append(Case(entry["item"], entry["name"], entry["visibility"], entry["args"],
                          load_case_arrays(fixtures, entry)))
    return cases


def manifest_digest(fixtures: Path) -> str:
    """sha256 of the manifest: names the exact fixtures a grade was computed with."""
    return hashlib.sha256((fixtures / MANIFEST).read_bytes()).hexdigest()

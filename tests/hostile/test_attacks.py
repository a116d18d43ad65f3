"""Every round-three attack (attacks.py), graded by `grade.py grade` in a real subprocess under
`prlimit --as=3GiB` and a 150 s wall clock, completes with a results file and exit 0, no harness
fault anywhere, and the points and reasons its own check asks for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from attacks import ATTACKS, Attack, Context
from gaming import handout_split, ridge_weights

from autograder import REPO_ROOT
from autograder.staff.synthetic import write_synthetic_svhn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TRAIN_ROWS, TEST_ROWS, VALIDATION_ROWS = 1500, 400, 300  # the rubric's rule for a small file: its last fifth
MEMORY = "3GiB"
WALL_SECONDS = 150


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Context:
    data = tmp_path_factory.mktemp("svhn") / "data"
    write_synthetic_svhn(data, train=TRAIN_ROWS, test=TEST_ROWS, seed=3)
    split = handout_split(data, VALIDATION_ROWS)
    return Context(data, split, ridge_weights(split["data_train"], split["labels_train"]))


def graded(attack: Attack, context: Context, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """Grade the attack as staff do, under the issue's limits; the process, the results and the output folder."""
    submission = attack.build(tmp_path / "submission", context)
    out_dir = tmp_path / "graded"
    args = [arg.replace("{data}", str(context.data)) for arg in attack.args]
    command = [sys.executable, str(REPO_ROOT / "grade.py"), "grade", str(submission), "--out", str(out_dir), *args]
    if shutil.which("prlimit"):
        command = ["prlimit", f"--as={3 << 30}", "--", *command]
    try:
        process = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=WALL_SECONDS)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{attack.name}: grading took over {WALL_SECONDS} s ({exc})")
    results_file = out_dir / "results.json"
    assert results_file.is_file(), \
        f"{attack.name}: no results.json (exit {process.returncode}):\n{process.stderr[-3000:]}"
    return process, json.loads(results_file.read_text()), out_dir


def test_there_is_an_attack_for_each_mechanism():
    assert {attack.mechanism for attack in ATTACKS} >= {"A", "B", "C", "D", "honest"}
    assert len({attack.name for attack in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack(attack: Attack, context: Context, tmp_path: Path):
    process, results, out_dir = graded(attack, context, tmp_path)
    assert process.returncode == 0, f"{attack.name}: exit {process.returncode}:\n{process.stderr[-3000:]}"
    extra = results.get("extra_data", {})
    assert "harness_fault" not in extra, extra.get("harness_fault")
    faults = [test["name"] for test in results["tests"]
              if test.get("extra_data", {}).get("reason_code") == "harness_fault"]
    assert not faults, f"{attack.name}: harness faults in {faults}"
    attack.check(results, out_dir, context)

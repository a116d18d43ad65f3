"""`make demo`: the main job on the bundled material, offline, in about a minute.

1. The template is in sync with the reference and the fixtures are what the reference computes.
2. A small synthetic SVHN is made (the real one cannot be downloaded here).
3. The reference notebook is executed headless in quick mode and graded, its accuracy verified.
4. The untouched template and an example with two typical bugs (built here from the reference,
   so that no near-solution is ever committed) are graded as staff would.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from autograder.cli import DEFAULT_REFERENCE, DEFAULT_TEMPLATE, main

OUTPUT = Path("demo_output")
#: Two typical bugs: the bias gradient averaged instead of summed, and average pooling.
BUGS = [("lib/cnn/layer_utils.py", "self.grads[self.b_name] = dout.sum(axis=0)",
         "self.grads[self.b_name] = dout.mean(axis=0)"),
        ("lib/cnn/layer_utils.py", "output = windows.max(axis=(4, 5))", "output = windows.mean(axis=(4, 5))")]


def make_buggy_example(destination: Path) -> Path:
    """A copy of the reference with BUGS planted; fails loudly if the reference changed under them."""
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(DEFAULT_REFERENCE, destination, ignore=shutil.ignore_patterns("data", "*.npz", "__pycache__"))
    for relative, old, new in BUGS:
        path = destination / relative
        text = path.read_text()
        if old not in text:
            raise RuntimeError(f"demo: {relative} no longer contains {old!r}; update autograder/demo.py")
        path.write_text(text.replace(old, new))
    return destination


def _step(title: str, argv: list[str]) -> int:
    print(f"\n=== {title}\n$ python grade.py {' '.join(argv)}", flush=True)
    return main(argv)


def run_demo() -> int:
    """Run each step; the exit status is non-zero if any step did not behave as expected."""
    failures = 0
    failures += _step("Student template in sync with the reference", ["template", "--check"]) != 0
    failures += _step("Fixtures recomputed from the reference", ["fixtures", "--verify"]) != 0
    data = OUTPUT / "data"
    if not (data / "train_32x32.mat").is_file():
        failures += _step("A small synthetic SVHN", ["data", "--synthetic", "--out", str(data), "--train", "2500",
                                                     "--test", "300"]) != 0
    buggy = make_buggy_example(OUTPUT / "submissions" / "buggy_example")
    runs = [("Grading the reference solution, its notebook executed headless (quick mode)", DEFAULT_REFERENCE,
             ["--execute", "--quick"]),
            ("Grading the untouched student template", DEFAULT_TEMPLATE, []),
            ("Grading an example with two bugs (db averaged, average pooling)", buggy, [])]
    for title, folder, extra in runs:
        failures += _step(title, ["grade", str(folder), "--out", str(OUTPUT / "graded" / folder.name),
                                  "--data", str(data), *extra]) != 0
    print(f"\nIn {OUTPUT / 'graded'}/<name>/: results.json (Gradescope's format), feedback.md, "
          "problem_2_solution.pdf (the staff's copy, made from the notebook), and for the executed reference "
          "executed_Problem_2.ipynb and its weights.")
    print("demo finished: all steps behaved as expected" if not failures
          else f"demo finished: {failures} step(s) did not behave as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_demo())

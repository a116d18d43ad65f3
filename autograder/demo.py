"""`make demo`: the main job on the bundled material, offline, in under a minute.

It proves the staff's chain end to end: the template is in sync with the reference, the
fixtures are what the reference computes, and the reference passes the notebook's own checks
in a real kernel while the untouched template fails each of them without crashing.
"""

from __future__ import annotations

import sys

from autograder.cli import DEFAULT_REFERENCE, DEFAULT_TEMPLATE, main


def _step(title: str, argv: list[str]) -> int:
    print(f"\n=== {title}\n$ python grade.py {' '.join(argv)}", flush=True)
    return main(argv)


def run_demo() -> int:
    """Run each step; the exit status is non-zero if any step that should pass did not."""
    failures = 0
    failures += _step("Student template in sync with the reference", ["template", "--check"]) != 0
    failures += _step("Fixtures recomputed from the reference", ["fixtures", "--verify"]) != 0
    failures += _step("Reference solution: the notebook's checks", ["notebook-checks", str(DEFAULT_REFERENCE)]) != 0
    template_status = _step("Student template: the same checks fail, each with a reason",
                            ["notebook-checks", str(DEFAULT_TEMPLATE)])
    failures += template_status != 1
    print("\n" + ("demo finished: all steps behaved as expected" if not failures
                  else f"demo finished: {failures} step(s) did not behave as expected"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_demo())

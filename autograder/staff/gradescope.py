"""The Gradescope autograder bundle, for classes too large for one machine.

Gradescope runs one container per submission: `setup.sh` once when the image is built,
`run_autograder` for each submission, which must leave `/autograder/results/results.json`.
`run_autograder` honours AUTOGRADER_ROOT in place of /autograder (the tests use a temporary
folder) and always writes a results file: from the grader, from this module's fault handler,
or, if Python itself cannot start, from the shell script.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from autograder import REPO_ROOT
from autograder.staff.reproducible_zip import write_zip

SETUP_SH = """#!/usr/bin/env bash
# Runs once when Gradescope builds the image: Python, a virtual environment, the pinned packages.
set -euo pipefail
SOURCE="${AUTOGRADER_ROOT:-/autograder}/source"
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
fi
python3 -m venv "$SOURCE/.venv"
"$SOURCE/.venv/bin/python" -m pip install --quiet -r "$SOURCE/requirements.txt"
# The fixtures hold the expected values: readable by root (the grader) only.
chmod -R go-rwx "$SOURCE/fixtures"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Runs once per submission: grades /autograder/submission into /autograder/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="${AUTOGRADER_PYTHON:-$SOURCE/.venv/bin/python}"
mkdir -p "$ROOT/results"
chmod 700 "$ROOT/results"
chmod -R go-rwx "$SOURCE/fixtures" 2>/dev/null
cd "$SOURCE" || exit 0
"$PYTHON" -c "from autograder.staff.gradescope import run; run('$ROOT')"
if [ ! -s "$ROOT/results/results.json" ]; then
    printf '{"score": 0, "output": "The grader could not start (%s); staff have been told.", "tests": []}\\n' \\
        "$PYTHON" > "$ROOT/results/results.json"
fi
exit 0
"""

_BUNDLED = ("grade.py", "requirements.txt")


def bundle_files() -> dict[str, tuple[bytes, int]]:
    """Every file of the bundle: name -> (content, mode)."""
    files = {"setup.sh": (SETUP_SH.encode(), 0o755), "run_autograder": (RUN_AUTOGRADER.encode(), 0o755)}
    for name in _BUNDLED:
        files[name] = ((REPO_ROOT / name).read_bytes(), 0o644)
    for folder in ("autograder", "fixtures"):
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(REPO_ROOT).as_posix()] = (path.read_bytes(), 0o644)
    return files


def build_bundle(destination: Path) -> list[str]:
    """Write autograder.zip as Gradescope expects it (setup.sh and run_autograder at the top)."""
    return write_zip(destination, bundle_files())


def run(root: str) -> None:
    """Grade ROOT/submission into ROOT/results; on any fault, write a results.json that says so."""
    root_path = Path(root)
    results = root_path / "results"
    try:
        from autograder.grading import grade_submission
        grade_submission(root_path / "submission", results)
    except Exception:  # noqa: BLE001 - the container must always leave a result
        if not (results / "results.json").is_file():
            results.mkdir(parents=True, exist_ok=True)
            fault = traceback.format_exc()
            document = {"score": 0, "tests": [],
                        "output": "The grader failed on this submission; staff have been told.\n\n" + fault[-3000:]}
            (results / "results.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

"""The Gradescope autograder bundle, for classes too large for one machine.

Gradescope runs one container per submission: `setup.sh` once when the image is built,
`run_autograder` for each submission, which must leave `/autograder/results/results.json`.
`setup.sh` uses the image's own `python3` (3.10 on Gradescope's Ubuntu 22.04 base image, 3.12 on
24.04; older ones are refused with a message that says which image to pick), makes a virtual
environment in source/.venv and installs requirements.txt into it, whose pins resolve on both.
`run_autograder` grades with that environment's Python and nothing else, honours
AUTOGRADER_ROOT in place of /autograder (the tests use a temporary folder), and always writes
a results file: from the grader, from this module's fault handler, or, if Python itself cannot
start, from the shell script.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from autograder import REPO_ROOT
from autograder.edition import Edition
from autograder.staff.reproducible_zip import write_zip

#: The oldest Python the pins install on and the grader runs on (Ubuntu 22.04's).
MIN_PYTHON = (3, 10)

SETUP_SH = """#!/usr/bin/env bash
# Runs once when Gradescope builds the image (base image: Ubuntu 22.04 or 24.04). Uses the image's
# python3 (3.10 or newer), makes a virtual environment in source/.venv and installs the pinned
# requirements.txt into it; then makes the fixtures and the harness code readable by root only.
set -euo pipefail
SOURCE="${AUTOGRADER_ROOT:-/autograder}/source"
VENV="$SOURCE/.venv"
if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (@MAJOR@, @MINOR@))'; then
    echo "setup.sh: the grader needs Python @MAJOR@.@MINOR@ or newer, \
and python3 here is $(python3 --version 2>&1)." >&2
    echo "setup.sh: choose Gradescope's Ubuntu 22.04 (Python 3.10) or 24.04 (Python 3.12) base image." >&2
    exit 1
fi
# The interpreter itself, not a link to it: the venv points at this path, and the grader's confined
# worker sees the interpreter's own folder only.
PYTHON3=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
if ! "$PYTHON3" -m venv "$VENV"; then  # Ubuntu keeps venv's pip in a package of its own
    rm -rf "$VENV"
    apt-get update -qq && apt-get install -y -qq python3-venv
    "$PYTHON3" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SOURCE/requirements.txt"
# Fail the build, not every submission, when the grader cannot be imported.
(cd "$SOURCE" && "$VENV/bin/python" -c "import autograder.grading")
echo "setup.sh: grader installed for $("$VENV/bin/python" --version)"
# The fixtures hold the expected values: readable by root (the grader) only. So is the harness code
# (its trusted forward, its rubric): the worker runs from a copy of its own modules in a folder of its
# own (autograder/sandbox/worker_code.py), and without mount namespaces file permissions are all that
# keeps student code from importing the rest.
chmod -R go-rwx "$SOURCE/fixtures" "$SOURCE/autograder" "$SOURCE/grade.py"
""".replace("@MAJOR@", str(MIN_PYTHON[0])).replace("@MINOR@", str(MIN_PYTHON[1]))

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Runs once per submission: grades /autograder/submission into /autograder/results/results.json,
# with the Python of the environment that setup.sh made.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="$SOURCE/.venv/bin/python"
mkdir -p "$ROOT/results"
chmod 700 "$ROOT/results"
chmod -R go-rwx "$SOURCE/fixtures" "$SOURCE/autograder" "$SOURCE/grade.py" 2>/dev/null
cd "$SOURCE" || exit 0
"$PYTHON" -c "from autograder.staff.gradescope import run; run('$ROOT'@EDITION@)"
if [ ! -s "$ROOT/results/results.json" ]; then
    printf '{"score": 0, "output": "The grader could not start (%s); staff have been told.", "tests": [],
 "visibility": "visible", "stdout_visibility": "hidden"}\\n' \\
        "$PYTHON" > "$ROOT/results/results.json"
fi
exit 0
"""

_BUNDLED = ("grade.py", "requirements.txt")


def run_autograder_script(edition: Edition | None = None) -> str:
    """run_autograder; with an edition, every submission is graded as that edition (as `--edition` does)."""
    return RUN_AUTOGRADER.replace("@EDITION@", f", {edition.name!r}" if edition is not None else "")


def bundle_files(edition: Edition | None = None) -> dict[str, tuple[bytes, int]]:
    """Every file of the bundle: name -> (content, mode). The harness and fixtures are the same for every
    edition; only run_autograder names the edition it grades as (none: each submission's is detected)."""
    files = {"setup.sh": (SETUP_SH.encode(), 0o755), "run_autograder": (run_autograder_script(edition).encode(), 0o755)}
    for name in _BUNDLED:
        files[name] = ((REPO_ROOT / name).read_bytes(), 0o644)
    for folder in ("autograder", "fixtures"):
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(REPO_ROOT).as_posix()] = (path.read_bytes(), 0o644)
    return files


def build_bundle(destination: Path, edition: Edition | None = None) -> list[str]:
    """Write autograder.zip as Gradescope expects it (setup.sh and run_autograder at the top)."""
    return write_zip(destination, bundle_files(edition))


def run(root: str, edition: str | None = None) -> None:
    """Grade ROOT/submission into ROOT/results (as `edition`, when the bundle was built for one); on any
    fault, write a results.json that says so."""
    root_path = Path(root)
    results = root_path / "results"
    try:
        from autograder.edition import get_edition
        from autograder.grading import grade_submission
        from autograder.sandbox.exposure import SecretsExposed
        given = {"edition": get_edition(edition)} if edition else {}
    except Exception:  # noqa: BLE001 - the container must always leave a result
        _write_fault(results, "The grader could not start on this submission; staff have been told.")
        return
    try:
        grade_submission(root_path / "submission", results, **given)
    except SecretsExposed as refusal:  # this image cannot hide the hidden tests: staff must change the image
        _write_fault(results, "The grader refused to grade here: on this autograder image your code could have "
                     "read the hidden tests, so nothing was graded. This is not a problem with your submission; "
                     "staff have been told and will regrade it.", str(refusal))
    except Exception:  # noqa: BLE001 - the container must always leave a result
        _write_fault(results, "The grader failed on this submission; staff have been told.")


def _write_fault(results: Path, message: str, detail: str | None = None) -> None:
    """A results.json that says why nothing was graded, unless the grader already wrote one: the message for
    the student, the traceback in a staff-notes test that only staff see ([release] staff_notes)."""
    if not (results / "results.json").is_file():
        results.mkdir(parents=True, exist_ok=True)
        detail = traceback.format_exc() if detail is None else detail
        (results / "results.json").write_text(json.dumps(fault_document(message, detail), indent=1) + "\n",
                                              encoding="utf-8")


def fault_document(message: str, detail: str) -> dict:
    """The results.json of a submission nothing of which was graded, with the release rules' visibility: the
    student reads `message`, staff the `detail` (a traceback may name the harness's files, never theirs to see)."""
    try:
        from autograder.reports.results import release_rules
        from autograder.rubric import STAFF_NOTES
        release = release_rules()
        visibility, stdout, notes, tag = release.visibility, release.stdout_visibility, release.staff_notes, STAFF_NOTES
    except Exception:  # noqa: BLE001 - the harness itself may be what failed: Gradescope's safe words then
        visibility, stdout, notes, tag = "visible", "hidden", "hidden", "staff_notes"
    staff = {"name": "Notes for staff (no points)", "score": 0.0, "max_score": 0.0, "status": "failed",
             "output": f"For staff:\n{detail[-3000:]}", "tags": [tag], "visibility": notes,
             "extra_data": {"release": tag}}
    return {"score": 0, "tests": [staff], "output": message, "visibility": visibility, "stdout_visibility": stdout}

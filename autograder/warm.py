"""What a grading process already holds when the local batch forks it for a submission.

The local batch (batch.LocalEngine) forks each submission's grading process from a server that imported
this module once per batch (multiprocessing's `forkserver` with this module preloaded): the harness's
modules, the PDF's fonts, the confinement probes and the worker's copy of its code are then paid once,
not once per student. Nothing here reads a submission, the rubric's staff settings or the staff's data,
so nothing of one student can reach the next: each grading process is a fresh fork of this state alone,
and what it does after the fork dies with it.
"""

from __future__ import annotations

import autograder.batch  # noqa: F401 - the grading process's entry point
import autograder.checks.backward_probe  # noqa: F401 - imported by the checks pytest collects
import autograder.checks.configuration  # noqa: F401
import autograder.checks.expect  # noqa: F401
import autograder.grading  # noqa: F401 - and everything it imports
import autograder.notebook.trusted_eval  # noqa: F401 - imported when a weights file is evaluated
from autograder.notebook.pdf import register_fonts
from autograder.sandbox.confinement import interpreter_paths, probes


def warm() -> None:
    """Do once, in the server, the work every grading process would otherwise repeat at its start. A failure
    here costs only speed: the grading process meets it again where it does the same work, and reports it."""
    try:
        register_fonts()
        interpreter_paths()  # writes the worker's copy of its code (worker_code.py), read-only, shared by every fork
        probes()
    except Exception:  # noqa: BLE001 - see above
        pass


warm()

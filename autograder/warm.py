"""What a grading process already holds when the local batch forks it for a submission.

The local batch (batch.LocalEngine) forks each submission's grading process from a server that imported
this module once per batch (multiprocessing's `forkserver` with this module preloaded): the harness's
modules, the PDF's fonts, the confinement probes and the worker's copy of its code are then paid once,
not once per student. Nothing here reads a submission, the rubric's staff settings or the staff's data,
so nothing of one student can reach the next: each grading process is a fresh fork of this state alone,
and what it does after the fork dies with it.
"""

from __future__ import annotations

import os

from autograder import ONE_BLAS_THREAD

# One BLAS thread in every grading process, set before NumPy loads here: a batch's parallelism is its jobs, and
# each grading process's worker computes beside it (the student's forward while the trusted one runs). A second
# OpenBLAS thread would spin on the core they need.
for _variable, _value in ONE_BLAS_THREAD.items():
    os.environ.setdefault(_variable, _value)

import autograder.batch  # noqa: E402, F401 - the grading process's entry point
import autograder.checks.backward_probe  # noqa: E402, F401 - imported by the checks pytest collects
import autograder.checks.configuration  # noqa: E402, F401
import autograder.checks.expect  # noqa: E402, F401
import autograder.grading  # noqa: E402, F401 - and everything it imports
import autograder.notebook.trusted_eval  # noqa: E402, F401 - imported when a weights file is evaluated
from autograder.notebook.pdf import register_fonts  # noqa: E402
from autograder.sandbox.confinement import interpreter_paths, probes  # noqa: E402


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

"""cnn-grader: the grading harness for "Problem 2: Incorporating CNNs".

The package reads in one direction: intake -> checks -> notebook -> score -> reports.
Staff-side tools (template, fixtures) derive everything from `reference_solution/`.
"""

from pathlib import Path

__version__ = "0.1.0"

#: One BLAS thread, for a process that computes beside others on the same cores: a batch's grading process
#: (autograder/warm.py) or a Dask task's (cluster.py), whose worker computes on another core.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: The repository root: the folder that holds grade.py, reference_solution/ and fixtures/.
REPO_ROOT = Path(__file__).resolve().parent.parent


class UserInputError(ValueError):
    """Input the person running grade.py can fix (a missing path, a bad zip, a bad --data or --baseline,
    arguments that do not fit, a broken rubric.toml or fixtures folder): the command line reports it
    with exit 2. Anything else that goes wrong is a fault of the harness (exit 3, with its traceback)."""

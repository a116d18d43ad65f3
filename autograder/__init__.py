"""cnn-grader: the grading harness for "Problem 2: Incorporating CNNs".

The package reads in one direction: intake -> checks -> notebook -> score -> reports.
Staff-side tools (template, fixtures) derive everything from `reference_solution/`.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root: the folder that holds grade.py, reference_solution/ and fixtures/.
REPO_ROOT = Path(__file__).resolve().parent.parent


class UserInputError(ValueError):
    """Input the person running grade.py can fix (a missing path, a bad zip, a bad --data or --baseline,
    arguments that do not fit, a broken rubric.toml or fixtures folder): the command line reports it
    with exit 2. Anything else that goes wrong is a fault of the harness (exit 3, with its traceback)."""

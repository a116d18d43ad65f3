"""The reference notebook's own checks, executed in a real Jupyter kernel."""

from __future__ import annotations

import re

import pytest
from conftest import REFERENCE, TEMPLATE, run_grade

from autograder.notebook.execute import run_unit_checks

pytestmark = pytest.mark.slow


def test_reference_passes_every_notebook_check():
    runs = run_unit_checks(REFERENCE)
    assert [run.error for run in runs] == [None] * len(runs)
    text = {run.section: run.text for run in runs}
    assert ("Received [32, 16, 16, 16] and expected [32, 16, 16, 16]"
            in text["Convolutional Layer Output size calculation [2pts]"])
    errors = [float(v) for v in re.findall(r"Error:\s+(\S+)", text["Conv Layer Backward [5pts]"])]
    assert len(errors) == 3 and max(errors) < 1e-6
    assert text["Test a Small Convolutional Neural Network [3pts]"].count("Passed!") == 3


def test_template_fails_the_checks_through_the_cli():
    result = run_grade("notebook-checks", str(TEMPLATE))
    assert result.returncode == 1
    assert "5 raised an error" in result.stdout
    assert "KeyError: 'param_name_w'" in result.stdout


def test_missing_notebook_is_a_clear_error(tmp_path):
    result = run_grade("notebook-checks", str(tmp_path))
    assert result.returncode == 2
    assert "Problem_2.ipynb: no such notebook" in result.stderr

"""Library warnings while grading are kept for the submission's log, and nothing is left installed."""

from __future__ import annotations

import logging
import warnings

from notebooks import broken_pdf

from autograder.notebook.pdf_check import compare
from autograder.reports.grading_log import GRADING_LOG, captured, write_log


def test_pypdf_and_python_warnings_are_captured_then_released(tmp_path):
    handlers = list(logging.getLogger().handlers)
    showwarning = warnings.showwarning
    with captured() as log:
        result = compare(broken_pdf(tmp_path / "problem_2_solution.pdf"), {"curves": []})
        warnings.warn("an old notebook format", DeprecationWarning, stacklevel=1)
        logging.getLogger("some.library").info("chatter below WARNING is not kept")
    assert not result.problem  # pypdf repaired it; only its complaint is kept
    assert any("pypdf" in line and "Ignoring wrong pointing object" in line for line in log.lines)
    assert any("DeprecationWarning" in line and "an old notebook format" in line for line in log.lines)
    assert not any("chatter" in line for line in log.lines)
    assert logging.getLogger().handlers == handlers and warnings.showwarning is showwarning

    path = write_log(tmp_path, log, "warnings while grading 1234")
    assert path == tmp_path / GRADING_LOG and path.read_text().startswith("warnings while grading 1234\n")
    with captured() as quiet:
        pass
    assert write_log(tmp_path, quiet, "regraded") is None and not path.exists()  # no stale log left behind


def test_a_flood_of_warnings_is_capped_and_counted():
    with captured() as log:
        for index in range(2500):
            logging.getLogger("pypdf._reader").warning("Ignoring wrong pointing object %d 0", index)
    assert len(log.lines) == 2000 and log.dropped == 500

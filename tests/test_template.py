"""The student template: in sync with the reference, importable, and free of solutions."""

from __future__ import annotations

import shutil

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE, TEMPLATE, run_grade

from autograder.staff.lib_loader import imported_lib
from autograder.staff.regions import RegionError, find_regions, strip_solutions
from autograder.staff.template import build_template, template_differences, write_template


def test_committed_template_is_current():
    result = run_grade("template", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_check_reports_a_stale_template(tmp_path):
    stale = tmp_path / "template"
    shutil.copytree(TEMPLATE, stale)
    (stale / "lib" / "cnn" / "layer_utils.py").write_text("# edited by hand\n")
    (stale / "extra.txt").write_text("x")
    result = run_grade("template", "--check", "--out", str(stale))
    assert result.returncode == 1
    assert "differs from the reference: lib/cnn/layer_utils.py" in result.stdout
    assert "not in the reference: extra.txt" in result.stdout
    assert run_grade("template", "--out", str(stale)).returncode == 0
    assert template_differences(build_template(REFERENCE), stale) == []


def test_template_holds_no_solution_line():
    """Every line of every solution region is absent from the template file made from it."""
    for relative in build_template(REFERENCE):
        source = (REFERENCE / relative).read_text()
        if relative.endswith(".py"):
            regions = find_regions(source, "python", relative)
        elif relative.endswith(".ipynb"):
            notebook = nbformat.reads(source, as_version=4)
            regions = [r for cell in notebook.cells
                       for r in find_regions(cell.source, "python" if cell.cell_type == "code" else "markdown")]
        else:
            continue
        template_text = (TEMPLATE / relative).read_text()
        for region in regions:
            for line in region.solution:
                if len(line.strip()) > 12:  # skip short lines such as "k, _, _, n = w.shape" twins
                    assert line.strip() not in template_text, f"{relative}: solution line leaked: {line.strip()}"
        assert "BEGIN SOLUTION" not in template_text and "HANDOUT:" not in template_text


def test_template_notebook_has_tags_and_no_outputs():
    notebook = nbformat.read(TEMPLATE / "Problem_2.ipynb", as_version=4)
    tags = {tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])}
    assert {"parameters", "training-run", "training-curves", "filter-visualization", "inline-answer"} <= tags
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    answer = next(c for c in notebook.cells if "inline-answer" in c.metadata.get("tags", []))
    assert answer.source.strip() == "*Your answer here.*"
    sources = "\n".join(cell.source for cell in notebook.cells)
    assert 'get_params("param_name_w")' in sources
    assert 'YOUR_FIRST_CONV_LAYER_NAME_w' in sources


def test_template_imports_and_every_todo_is_unimplemented():
    with imported_lib(TEMPLATE) as lib:
        conv = lib.cnn_layers.ConvLayer2D(3, 3, 4)
        assert conv.get_output_size((1, 5, 5, 3)) == [None, None, None, None]
        assert conv.forward(np.zeros((1, 5, 5, 3))) is None
        with pytest.raises(ValueError, match="No forward function"):
            conv.backward(np.zeros((1, 3, 3, 4)))
        pool = lib.cnn_layers.MaxPoolingLayer(2, 2, "p")
        assert pool.forward(np.zeros((1, 4, 4, 1))) is None
        assert lib.cnn_models.TestCNN().net.layers == []
        assert lib.cnn_models.SmallConvolutionalNetwork().net.layers == []
        # Problem 1 parts are given complete.
        assert lib.mlp_layers.softmax(np.zeros((1, 4))).sum() == pytest.approx(1.0)


def test_regions_placeholders_and_indentation():
    source = "def f():\n    x = 1\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n\n" \
             "def g():\n    # BEGIN SOLUTION\n    y = 2\n    # HANDOUT: y = None\n    # HANDOUT:\n    # END SOLUTION\n"
    assert strip_solutions(source, "python") == "def f():\n    x = 1\n    pass\n\ndef g():\n    y = None\n\n"
    markdown = "Q?\n<!-- BEGIN SOLUTION -->\nSecret.\n<!-- HANDOUT: *Answer.* -->\n<!-- END SOLUTION -->"
    assert strip_solutions(markdown, "markdown") == "Q?\n*Answer.*"


@pytest.mark.parametrize("source,message", [
    ("# BEGIN SOLUTION\nx\n", "f.py:1: BEGIN SOLUTION is never closed"),
    ("x\n# END SOLUTION\n", "f.py:2: END SOLUTION without a BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
     "f.py:2: BEGIN SOLUTION inside the region opened on line 1"),
])
def test_unbalanced_markers_name_file_and_line(source, message):
    with pytest.raises(RegionError, match=message):
        strip_solutions(source, "python", "f.py")


def test_write_template_replaces_the_folder_whole(tmp_path):
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "leftover.py").write_text("old")
    files = build_template(REFERENCE)
    write_template(files, destination)
    assert not (destination / "leftover.py").exists()
    assert template_differences(files, destination) == []

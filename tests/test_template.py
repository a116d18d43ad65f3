"""The student template: in sync with the reference, importable, and free of solutions."""

from __future__ import annotations

import shutil

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from submissions import CODE_ITEMS, grade

from autograder.edition import editions, get_edition
from autograder.staff import overlays
from autograder.staff.lib_loader import imported_lib
from autograder.staff.regions import RegionError, find_regions, strip_solutions
from autograder.staff.template import build_template, edition_template, template_differences, write_template

#: Every edition with a reference solution here: each has its template, and each template is checked alike.
EDITIONS = [edition.name for edition in editions() if overlays.has_reference(edition)]


def _folders(name: str):
    edition = get_edition(name)
    return (overlays.edition_folder(overlays.REFERENCE, edition), overlays.edition_folder(overlays.TEMPLATE, edition))


def test_both_editions_have_a_reference():
    assert [get_edition(name).year for name in EDITIONS] == [2022, 2023]


@pytest.mark.parametrize("edition", [[], ["--edition", "2022"], ["--edition", "2023"]])
def test_committed_template_is_current(edition):
    result = run_grade("template", "--check", *edition)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_the_2023_template_overlay_holds_only_what_differs_and_composes_to_the_whole_template(tmp_path):
    edition = get_edition("2023")
    committed = overlays.overlay_dir(edition) / overlays.TEMPLATE
    names = sorted(p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file())
    # The layers' skeletons and the networks' TODOs are the same as 2022's: not repeated in the overlay.
    assert "lib/cnn/layer_utils.py" not in names and "lib/cnn/cnn_models.py" not in names
    assert {"Problem_2.ipynb", "lib/datasets.py", "lib/mlp/layer_utils.py", "lib/mlp/train.py"} <= set(names)
    whole = tmp_path / "whole"
    assert run_grade("template", "--edition", "2023", "--out", str(whole)).returncode == 0
    assert template_differences(edition_template(edition), whole) == []
    assert template_differences(edition_template(edition), overlays.edition_folder(overlays.TEMPLATE, edition)) == []
    assert not (whole / "get_datasets.sh").exists() and not (whole / "lib/mlp/datasets.py").exists()


def test_a_2023_reference_of_ones_own_needs_an_out_folder(tmp_path):
    done = run_grade("template", "--edition", "2023", "--reference", str(REFERENCE))
    assert done.returncode == 2 and "say where the template goes with --out" in done.stderr
    assert run_grade("template", "--check").returncode == 0  # the 2022 template was not touched


def test_a_stale_2023_overlay_is_reported(tmp_path):
    stale = tmp_path / "overlay"
    shutil.copytree(overlays.overlay_dir(get_edition("2023")) / overlays.TEMPLATE, stale)
    (stale / "lib" / "datasets.py").write_text("# edited by hand\n")
    from autograder.staff.template import overlay_template
    problems = template_differences(overlay_template(get_edition("2023")), stale)
    assert problems == ["differs from the reference: lib/datasets.py"]


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


@pytest.mark.parametrize("edition", EDITIONS)
def test_template_holds_no_solution_line(edition):
    """Every line of every solution region is absent from the template file made from it."""
    reference, template = _folders(edition)
    for relative in build_template(reference):
        source = (reference / relative).read_text()
        if relative.endswith(".py"):
            regions = find_regions(source, "python", relative)
        elif relative.endswith(".ipynb"):
            notebook = nbformat.reads(source, as_version=4)
            regions = [r for cell in notebook.cells
                       for r in find_regions(cell.source, "python" if cell.cell_type == "code" else "markdown")]
        else:
            continue
        template_text = (template / relative).read_text()
        for region in regions:
            for line in region.solution:
                if len(line.strip()) > 12:  # skip short lines such as "k, _, _, n = w.shape" twins
                    assert line.strip() not in template_text, f"{relative}: solution line leaked: {line.strip()}"
        assert "BEGIN SOLUTION" not in template_text and "HANDOUT:" not in template_text


@pytest.mark.parametrize("edition", EDITIONS)
def test_template_notebook_has_tags_and_no_outputs(edition):
    notebook = nbformat.read(_folders(edition)[1] / "Problem_2.ipynb", as_version=4)
    tags = {tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])}
    assert {"parameters", "training-run", "training-curves", "filter-visualization", "inline-answer"} <= tags
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    answer = next(c for c in notebook.cells if "inline-answer" in c.metadata.get("tags", []))
    sources = "\n".join(cell.source for cell in notebook.cells)
    assert 'get_params("param_name_w")' in sources
    if get_edition(edition).year == 2022:
        assert answer.source.strip() == "*Your answer here.*"
        assert 'YOUR_FIRST_CONV_LAYER_NAME_w' in sources
    else:  # as the 2023 handout: an empty answer cell after the Extra-Credit prompt, no pre-filled filter line
        assert answer.source == "" and "Extra-Credit" in notebook.cells[notebook.cells.index(answer) - 1].source
        assert "YOUR_FIRST_CONV_LAYER_NAME_w" not in sources and "filters = " not in sources


@pytest.mark.parametrize("edition", EDITIONS)
def test_template_imports_and_every_todo_is_unimplemented(edition):
    with imported_lib(_folders(edition)[1]) as lib:
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


@pytest.mark.parametrize("edition", EDITIONS)
def test_the_template_earns_nothing_and_the_reference_every_code_point(edition, tmp_path):
    reference, template = _folders(edition)
    scores, result, _ = grade(template, tmp_path / "template")
    assert result.score == 0
    for item_id in CODE_ITEMS:
        assert {case.outcome.label for case in scores[item_id].cases} == {"not implemented"}, item_id
    scores, result, _ = grade(reference, tmp_path / "reference")
    assert all(scores[item_id].score == scores[item_id].item.points for item_id in CODE_ITEMS)

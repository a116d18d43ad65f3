"""The grade command end to end on the bundled folders and on real-world-shaped submissions."""

from __future__ import annotations

import json

import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from submissions import CODE_ITEMS, LAYERS, RESULT_TESTS, grade, item_tags, make_submission

from autograder.grading import grade_submission
from autograder.model import graded_tests
from autograder.rubric import HIDDEN_CASE_DETAILS, STAFF_NOTES, VISIBILITIES

GRADESCOPE_TEST_KEYS = {"name", "score", "max_score", "status", "output", "tags", "visibility", "extra_data"}


def test_reference_gets_every_code_point(tmp_path):
    scores, result, out_dir = grade(REFERENCE, tmp_path)
    for item_id in CODE_ITEMS:
        assert scores[item_id].score == scores[item_id].item.points, scores[item_id].reason
        assert all(case.outcome.passed for case in scores[item_id].cases)
    assert result.score == 25
    hidden = {(item_id, c.case) for item_id in CODE_ITEMS for c in scores[item_id].cases if c.visibility == "hidden"}
    assert len(hidden) == 35  # each judged part by part (conv backward: 3, TestCNN: 3 besides its 2 checks)
    assert len(scores["conv_backward"].cases) == 3 * 7 and len(scores["test_cnn"].cases) == 2 + 3 * 4


def test_template_gets_zero_with_not_implemented_reasons(tmp_path):
    scores, result, out_dir = grade(TEMPLATE, tmp_path)
    assert result.score == 0
    for item_id in CODE_ITEMS:
        labels = {case.outcome.label for case in scores[item_id].cases}
        assert labels == {"not implemented"}, (item_id, labels)


def test_results_json_follows_gradescopes_schema(tmp_path):
    result, out_dir = grade_submission(REFERENCE, tmp_path / "out")
    document = json.loads((out_dir / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests"} <= set(document)
    assert document["score"] == 25
    graded = graded_tests(document)
    assert len(graded) == RESULT_TESTS
    for test in document["tests"]:
        assert GRADESCOPE_TEST_KEYS <= set(test)
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITIES
    assert all(len(test["tags"]) == 1 for test in graded)
    assert [test["tags"] for test in document["tests"] if test not in graded] == \
        [[HIDDEN_CASE_DETAILS, item_id] for item_id in CODE_ITEMS] + [[STAFF_NOTES]]  # the release tests
    assert document["visibility"] in VISIBILITIES and document["stdout_visibility"] in VISIBILITIES
    assert item_tags(document) == CODE_ITEMS + ["training", "filters", "inline_answer"]
    training, filters, answer = graded[-3:]
    # The committed reference notebook has no outputs: nothing to read, each says why.
    assert training["score"] == 0 and "no svhn_cnn_params.npz" in training["output"]
    assert filters["score"] == 0 and "no image output" in filters["output"]
    assert answer["extra_data"]["grading"] == "pending" and answer["output_format"] == "md"
    extra = document["extra_data"]
    assert extra["fixtures_manifest_sha256"] and extra["submission_sha256"] and extra["numpy"]
    feedback = (out_dir / "feedback.md").read_text()
    assert feedback.count("\n## ") == 9


def test_public_only_runs_only_the_notebooks_cases(tmp_path):
    result, out_dir = grade_submission(REFERENCE, tmp_path / "out", public_only=True)
    cases = [case for item in result.items for case in item.cases]
    assert cases and all(case.visibility in ("public", "check") for case in cases)
    assert "public cases only" in (out_dir / "feedback.md").read_text()
    assert result.score == 0  # a self-check claims no points: they come from the hidden cases


OFFICIAL_STYLE = [
    (LAYERS, "import numpy as np\n", "import numpy as np\nfrom this import d\nimport tqdm\nimport cv2\n"),
    (LAYERS, "        k, s, p = self.kernel_size, self.stride, self.padding\n        img_pad",
     "        k, s, p = np.int(self.kernel_size), int(np.float(self.stride)), self.padding\n        img_pad"),
    (LAYERS, "        p, s = self.pool_size, self.stride\n        windows",
     "        print('pooling', img.shape)\n        p, s = self.pool_size, self.stride\n        windows"),
]


def test_a_submission_shaped_like_the_official_handout_grades_correctly(tmp_path):
    """No __init__.py, star-import chains, np.int/np.float, a stray `from this import d`,
    tqdm and cv2 imported but not used, prints in library code."""
    sub = make_submission(tmp_path / "sub", OFFICIAL_STYLE)
    assert not list(sub.rglob("__init__.py"))
    scores, result, out_dir = grade(sub, tmp_path)
    for item_id in CODE_ITEMS:
        assert scores[item_id].score == scores[item_id].item.points, (item_id, scores[item_id].reason)
    assert "Beautiful is better than ugly" in result.printed  # the Zen, printed at import, is shown
    assert "pooling" in result.printed


def test_a_missing_module_costs_only_what_needs_it(tmp_path):
    """A broken Problem-1 module (here the loader) must not cost the conv items."""
    sub = make_submission(tmp_path / "sub",
                          [("lib/mlp/datasets.py", "import scipy.io\n", "import scipy.io\nimport no_such_module\n")])
    scores, result, out_dir = grade(sub, tmp_path)
    assert result.score == 25
    assert any("lib.mlp.datasets" in note and "no_such_module" in note for note in result.notes)


def test_cli_grades_into_the_default_folder(tmp_path):
    sub = make_submission(tmp_path / "4916525888", [])
    work = tmp_path / "work"
    work.mkdir()
    done = run_grade("grade", str(sub), cwd=work)
    assert done.returncode == 0, done.stderr
    assert "4916525888: 25 / 60" in done.stdout
    assert "conv_backward" in done.stdout and "total" in done.stdout
    assert json.loads((work / "graded" / "4916525888" / "results.json").read_text())["score"] == 25


def test_cli_refuses_a_missing_path():
    done = run_grade("grade", "/nonexistent/submission.zip")
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr


@pytest.mark.slow
def test_cli_help_explains_the_contract():
    done = run_grade("grade", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines
    for words in ("--out", "--public-only", "results.json", "Exit 0 whenever results were written"):
        assert words in text

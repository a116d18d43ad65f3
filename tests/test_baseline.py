"""The baseline: the handout students received, as a folder or a zip, and what a bad one is told."""

from __future__ import annotations

import json
import zipfile

import nbformat
import pytest
from conftest import TEMPLATE, run_grade
from notebooks import EXTRA_CREDIT, official_2023_notebook, official_handout
from submissions import make_submission

from autograder.baseline import BaselineError, default_baseline, load_baseline


def zip_folder(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def handout(tmp_path):
    return official_handout(tmp_path / "handout", TEMPLATE)


def test_a_folder_and_its_zip_are_the_same_baseline(tmp_path, handout):
    folder = load_baseline(handout)
    zipped = load_baseline(zip_folder(handout, tmp_path / "handout.zip", prefix="assignment1/"))
    assert folder.text == zipped.text and folder.code == zipped.code and folder.digest == zipped.digest
    assert "extra credit analysis on trained model 5pts" in folder.text
    assert zipped.label == str(tmp_path / "handout.zip")
    ours = default_baseline()
    assert ours.label == "student_template (default)" and ours.digest != folder.digest
    assert "your answer here" in ours.text and "extra credit analysis on trained model 5pts" not in ours.text


def test_a_bad_baseline_is_named(tmp_path, handout):
    (tmp_path / "notes.txt").write_text("not a handout")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "empty").mkdir()
    (handout / "Problem_2.ipynb").unlink()
    cases = {tmp_path / "missing": "no such file or folder", tmp_path / "notes.txt": "not a folder or a .zip",
             tmp_path / "broken.zip": "not a valid zip file", tmp_path / "empty": "no lib/ folder found",
             handout: "no .ipynb notebook"}
    for path, why in cases.items():
        with pytest.raises(BaselineError) as raised:
            load_baseline(path)
        assert str(path) in str(raised.value) and why in str(raised.value)


def test_the_command_line_refuses_a_bad_baseline_before_grading(tmp_path):
    submission = make_submission(tmp_path / "1234")
    missing = tmp_path / "no-such-handout.zip"
    done = run_grade("grade", str(submission), "--out", str(tmp_path / "out"), "--baseline", str(missing))
    assert done.returncode == 2 and f"error: baseline {missing}: no such file or folder" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing graded half-way
    (tmp_path / "in").mkdir()
    done = run_grade("batch", str(tmp_path / "in"), "--out", str(tmp_path / "graded"),
                     "--baseline", str(tmp_path / "in"))
    assert done.returncode == 2 and f"baseline {tmp_path / 'in'}: no lib/ folder found" in done.stderr


@pytest.mark.slow
def test_grade_with_the_official_handout_as_folder_and_as_zip(tmp_path, handout):
    """The answer cell also holds the handout's next section: only the student's text is graded and
    printed in the PDF, whichever form the baseline is given in."""
    own = "Edge detectors at four orientations, and two colour-opponent blobs."
    submission = make_submission(tmp_path / "4242")
    nbformat.write(official_2023_notebook(answer=own + "\n\n" + EXTRA_CREDIT), str(submission / "Problem_2.ipynb"))
    archive = zip_folder(handout, tmp_path / "official.zip")
    for name, baseline in (("folder", handout), ("zip", archive)):
        out = tmp_path / name
        done = run_grade("grade", str(submission), "--out", str(out), "--baseline", str(baseline))
        assert done.returncode == 0, done.stderr
        document = json.loads((out / "results.json").read_text())
        answer = next(test for test in document["tests"] if test["tags"] == ["inline_answer"])
        assert answer["extra_data"]["answer"] == own
        assert document["extra_data"]["baseline"] == str(baseline)
    assert (json.loads((tmp_path / "folder" / "results.json").read_text())["extra_data"]["baseline_sha256"]
            == json.loads((tmp_path / "zip" / "results.json").read_text())["extra_data"]["baseline_sha256"])
    done = run_grade("grade", str(submission), "--out", str(tmp_path / "ours"))  # our template's words differ,
    answer = next(test for test in json.loads((tmp_path / "ours" / "results.json").read_text())["tests"]
                  if test["tags"] == ["inline_answer"])  # yet the Extra-Credit prompt is never read as the answer
    assert "Extra-Credit" not in answer["extra_data"]["answer"] and own in answer["extra_data"]["answer"]

"""The similarity check: what counts as the same code or answer, and what does not."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import REFERENCE, TEMPLATE
from loop_submission import LOOP_LAYERS
from notebooks import official_2023_notebook, official_handout
from submissions import LAYERS, make_submission

from autograder.baseline import default_baseline, load_baseline
from autograder.notebook.items import answer_text
from autograder.notebook.reading import extract
from autograder.reports.similarity import answer_words, fingerprint, flags_by_student, similar_pairs
from autograder.rubric import load_rubric

SETTINGS = load_rubric().similarity
#: Our student template's `lib/cnn` lines: nobody's own.
BASELINE = default_baseline().code
ANSWER = ("Gradient descent with a larger batch gives a smoother estimate of the gradient, so the loss curve "
          "is less noisy; smaller batches add noise that can help escape sharp minima but slow convergence.")


def _disguised(text: str) -> str:
    """What a student hiding a copy does: rename the variables, rewrite the comments, re-space."""
    for old, new in (("padded", "xpad"), ("windows", "patches"), ("out", "result"), ("dout", "upstream")):
        text = re.sub(rf"\b{old}\b", new, text)
    text = re.sub(r"#.*", "# worked this out myself", text)
    return text.replace(" = ", "  =  ").replace("\n\n", "\n\n\n")


def _pairs(prints: dict) -> dict:
    return {(p.kind, p.first, p.second): p.score for p in similar_pairs(prints, SETTINGS)}


def test_renamed_and_recommented_code_is_still_the_same(tmp_path):
    original = fingerprint(make_submission(tmp_path / "a"), BASELINE)
    copy = make_submission(tmp_path / "b")
    for path in (copy / "lib" / "cnn").glob("*.py"):
        path.write_text(_disguised(path.read_text()))
    assert (copy / LAYERS).read_text() != (REFERENCE / LAYERS).read_text()
    disguised = fingerprint(copy, BASELINE)
    assert disguised["code"] == original["code"]
    assert _pairs({"a": original, "b": disguised}) == {("code", "a", "b"): 1.0}


def test_template_lines_count_for_no_one(tmp_path):
    assert fingerprint(TEMPLATE, BASELINE)["code"] == []
    untouched = {"a": fingerprint(make_submission(tmp_path / "a", source=TEMPLATE), BASELINE),
                 "b": fingerprint(make_submission(tmp_path / "b", source=TEMPLATE), BASELINE)}
    assert _pairs(untouched) == {}  # identical, but nothing of their own to compare


def test_independent_implementations_are_not_flagged(tmp_path):
    """The loop-based layers share only the interface's idioms with the vectorised reference."""
    reference = fingerprint(make_submission(tmp_path / "ref"), BASELINE)
    loops = {"code": fingerprint(make_submission(tmp_path / "loops", append={LAYERS: LOOP_LAYERS}), BASELINE)["code"]}
    own_loops = [line for line in loops["code"] if line not in set(reference["code"])]
    assert len(" ".join(own_loops).split()) >= SETTINGS["min_code_tokens"]
    scores = {p.second: p.score for p in similar_pairs({"ref": reference, "z": {"code": own_loops}},
                                                       dict(SETTINGS, code_threshold=0.0))}
    assert scores["z"] < 0.1
    assert _pairs({"ref": reference, "z": {"code": own_loops}}) == {}


def test_a_small_change_ranks_below_a_copy(tmp_path):
    prints = {"a": fingerprint(make_submission(tmp_path / "a"), BASELINE),
              "b": fingerprint(make_submission(tmp_path / "b"), BASELINE),
              "c": fingerprint(make_submission(tmp_path / "c", append={LAYERS: LOOP_LAYERS}), BASELINE)}
    ranked = similar_pairs(prints, dict(SETTINGS, code_threshold=0.3))
    assert [(p.first, p.second) for p in ranked] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert ranked[0].score == 1.0 and 0.3 <= ranked[1].score < 1.0
    assert _pairs(prints) == {("code", "a", "b"): 1.0}  # at the rubric's threshold only the copy


def test_unparsable_source_is_compared_as_text(tmp_path):
    """Python 2 syntax or broken indentation must not stop the comparison."""
    folder = make_submission(tmp_path / "py2")
    layers = folder / LAYERS
    layers.write_text(layers.read_text() + "\nprint 'done'\n    def broken(:\n\tpass\n")
    lines = fingerprint(folder, BASELINE)["code"]
    assert "print'done'" in lines and "defbroken(:" in lines  # the text form: spaces removed
    assert "classConvLayer2D(object):" not in lines  # template lines go in either form
    assert lines[0] == fingerprint(REFERENCE, BASELINE)["code"][0]  # cnn_models.py still tokenizes


def test_links_and_huge_files_are_not_read(tmp_path):
    folder = make_submission(tmp_path / "linked")
    secret = tmp_path / "secret.py"
    secret.write_text("expected = [1.0, 2.0, 3.0]\n" * 20)
    os.symlink(secret, folder / "lib" / "cnn" / "zz_link.py")
    (folder / "lib" / "cnn" / "zz_huge.py").write_text("x = 1\n" * 400_000)
    assert fingerprint(folder, BASELINE)["code"] == fingerprint(REFERENCE, BASELINE)["code"]


def test_answers_copied_with_new_punctuation_are_flagged_paraphrases_not():
    copied = ANSWER.upper().replace(",", "").replace(";", ".")
    paraphrase = ("Bigger batches average more examples, which makes each update's direction steadier and the "
                  "curve smoother; with few examples per step the updates jump around more.")
    assert answer_words(copied) == answer_words(ANSWER)
    prints = {"a": {"answer": ANSWER}, "b": {"answer": copied}, "c": {"answer": paraphrase},
              "d": {"answer": "Smoother."}}
    assert _pairs(prints) == {("answer", "a", "b"): 1.0}


def test_flags_name_the_other_student_on_both_sides():
    prints = {"s1": {"answer": ANSWER}, "s2": {"answer": ANSWER}, "s3": {"answer": ""}}
    flags = flags_by_student(similar_pairs(prints, SETTINGS))
    assert flags == {"s1": ["similar answer: s2 (1.00)"], "s2": ["similar answer: s1 (1.00)"]}


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    return official_handout(tmp_path_factory.mktemp("official") / "handout", TEMPLATE)


def _answer(notebook, baseline) -> str:
    return answer_text(extract(notebook, Path("Problem_2.ipynb"), baseline.text))


def test_the_unsolved_handout_is_flagged_with_no_one(tmp_path, handout):
    """Two students hand in the official handout untouched. Against our template its skeleton (the
    `sequential` copy) looked like their own code, and the pair was flagged; against the handout the
    class received, it is nobody's."""
    official = load_baseline(handout)
    ours = {"a": fingerprint(handout, default_baseline().code), "b": fingerprint(handout, default_baseline().code)}
    assert len(" ".join(ours["a"]["code"]).split()) >= SETTINGS["min_code_tokens"]
    assert _pairs(ours) == {("code", "a", "b"): 1.0}
    theirs = {"a": fingerprint(handout, official.code), "b": fingerprint(handout, official.code)}
    assert theirs["a"]["code"] == [] and _pairs(theirs) == {}
    skeleton = (handout / LAYERS).read_text()
    solved = make_submission(tmp_path / "solved", append={LAYERS: skeleton[skeleton.index("class sequential"):]})
    own = fingerprint(solved, official.code)["code"]
    assert own == fingerprint(REFERENCE, official.code)["code"]  # the solution counts, the handout's copy does not


def test_answers_that_are_the_handouts_text_are_no_ones(handout):
    """The batch of 31: fourteen left the answer cell empty, and the Extra-Credit prompt after the
    question was taken for their answer; all of them, and the unsolved handout, were 'identical'."""
    official = load_baseline(handout)
    notebooks = {"handout": official_2023_notebook(handout=True), "s1": official_2023_notebook(answer=""),
                 "s2": official_2023_notebook(answer="*   \n"), "s3": official_2023_notebook(answer=ANSWER),
                 "s4": official_2023_notebook(answer=ANSWER.upper())}
    before = {name: {"answer": _answer(nb, default_baseline())} for name, nb in notebooks.items()}
    # what went wrong was the prompt taken for the answer with a baseline that lacks it; since issue 22 its
    # heading ends the region under the question whatever the baseline
    assert ("answer", "handout", "s1") not in _pairs(before)
    assert [before[name]["answer"] for name in ("handout", "s1", "s2")] == ["", "", ""]
    after = {name: {"answer": _answer(nb, official)} for name, nb in notebooks.items()}
    assert [after[name]["answer"] for name in ("handout", "s1", "s2")] == ["", "", ""]
    assert _pairs(after) == {("answer", "s3", "s4"): 1.0}  # a real shared answer is still flagged

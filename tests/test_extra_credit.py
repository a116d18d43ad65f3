"""The 2023 notebook's question and extra-credit sections: where the answer is, what the extra-credit work is,
the PDF's last section, and extra credit as a staff-graded item outside the 60 points (results.json, feedback,
merge-manual, the gradebook, the grading sheet). Notebooks follow the 2023 handout's cell structure: the Inline
Question heading, the Extra-Credit prompt, the empty answer cell, the Submission section."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
import tomllib
from conftest import TEMPLATE, run_grade
from nbformat.v4 import new_code_cell, new_markdown_cell
from notebooks import EXTRA_CREDIT as HANDOUT_PROMPT
from notebooks import _image, official_handout, official_notebook, png
from pypdf import PdfReader
from submissions import grade, make_submission

import autograder.grading as grading
from autograder.baseline import default_baseline, load_baseline
from autograder.batch import BatchEntry, write_gradebook
from autograder.edition import get_edition
from autograder.model import BatchStatus, GradeResult, ReasonCode
from autograder.notebook.items import (
    TrainingEvidence,
    answer_text,
    score_extra_credit,
    score_inline_answer,
    score_training,
)
from autograder.notebook.pdf import SECTIONS, build_pdf, extra_credit_title
from autograder.notebook.pdf_check import compare
from autograder.notebook.reading import extract, read_notebook
from autograder.reports.manual import merge_manual
from autograder.reports.manual_sheet import build_manual_sheet
from autograder.reports.results import results_json, write_reports
from autograder.rubric import EXTRA_CREDIT, RUBRIC_PATH, load_rubric, parse_rubric
from autograder.score import score_submission

CIFAR = get_edition("2023")
SVHN = get_edition("2022")
QUESTION = "#### Inline Question: Comment below on what kinds of filters you see. Include your response [5pts]"
# The prompt in our own words, shaped as the 2023 handout's: its heading, then suggestions.
PROMPT = ("## Extra-Credit: Analysis on Trained Model [5pts]\n\n"
          "Optionally, study the network you trained a little further. Ideas:\n"
          "1. A confusion matrix of the test predictions: which superclasses get mixed up?\n"
          "2. Train with and without a normalisation layer and compare.\n\n"
          "Put your analysis last in your PDF, in a section called \"Extra Credit\".")
SUBMISSION = "# Submission\n\nPrepare problem_2_solution.pdf with the curves, the filters and your answers."
ANSWER = "Most filters are oriented edges; a few are colour blobs."
ANALYSIS = "The confusion matrix shows the two vehicle superclasses confused most often."


def notebook_2023(under: str | None = None, later: str = "", extra_before: list | None = None,
                  extra_after: list | None = None, prompt: str | None = PROMPT):
    """The 2023 tail: question heading, [a cell under it], prompt, [work], the answer cell, [work], Submission."""
    cells = official_notebook(answer="").cells
    question = next(i for i, cell in enumerate(cells) if "Inline Question" in cell.source)
    cells[2] = new_markdown_cell("## Loading the data (CIFAR-100 with its 20 superclasses)")
    cells[4] = new_code_cell("data = CIFAR100_data('data/cifar100/')")
    tail = [new_markdown_cell(QUESTION)]
    tail += [new_markdown_cell(under)] if under is not None else []
    tail += [new_markdown_cell(prompt)] if prompt is not None else []
    tail += list(extra_before or [])
    tail += [new_markdown_cell(later)]
    tail += list(extra_after or [])
    tail += [new_markdown_cell(SUBMISSION), new_code_cell("")]
    cells[question:] = tail
    notebook = official_notebook()
    notebook.cells = cells
    return notebook


def figure(seed: int = 7):
    return new_code_cell("plot_confusion(model)", outputs=[_image(png(seed, size=(48, 50)))])


def read(notebook, tmp_path, edition=CIFAR, handout=None, name="Problem_2.ipynb"):
    path = tmp_path / name
    nbformat.write(notebook, str(path))
    return extract(read_notebook(path), path, default_baseline().text if handout is None else handout,
                   edition=edition)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """The baseline of a class that received a 2023-shaped handout (its prompt is notebooks.EXTRA_CREDIT)."""
    return load_baseline(official_handout(tmp_path_factory.mktemp("official") / "handout", TEMPLATE))


# ----------------------------------------------------------------------------- the answer and the work

def test_an_answer_under_the_question_and_nothing_else(tmp_path):
    found = read(notebook_2023(under=ANSWER), tmp_path)
    assert found.answer == ANSWER
    assert found.extra_credit_parts == []
    assert "confusion matrix" not in found.answer.lower()  # the prompt, whatever the baseline


def test_an_answer_in_the_cell_after_the_prompt(tmp_path):
    found = read(notebook_2023(later=ANSWER), tmp_path)
    assert found.answer == ANSWER and found.extra_credit_parts == []


def test_both_empty_is_no_answer_and_no_extra_credit(tmp_path):
    found = read(notebook_2023(), tmp_path)
    assert found.answer == "" and found.extra_credit_parts == []
    rubric = load_rubric().with_edition(CIFAR)
    assert score_inline_answer(rubric, found).code == ReasonCode.NO_ANSWER
    extra = score_extra_credit(rubric, found)
    assert (extra.score, extra.status, extra.code) == (0.0, "graded", ReasonCode.NO_EXTRA_CREDIT)
    assert "outside the 60 points" in extra.note


def test_the_default_baseline_alone_no_longer_takes_the_prompt(tmp_path):
    """Read as 2022 (no extra-credit section), the prompt after the question was the "answer" with a
    baseline that lacks it (what every 2023 student got before editions); since issue 22 its heading ends
    the region under the question, so it is not."""
    assert read(notebook_2023(), tmp_path, edition=SVHN).answer == ""
    assert read(notebook_2023(), tmp_path, edition=SVHN).extra_credit_parts == []


def test_extra_credit_work_with_a_figure_is_not_the_answer(tmp_path):
    notebook = notebook_2023(under=ANSWER, extra_before=[figure(7), new_markdown_cell(ANALYSIS)],
                             extra_after=[figure(8)])
    found = read(notebook, tmp_path)
    assert found.answer == ANSWER
    assert found.extra_credit == ANALYSIS
    assert len(found.extra_credit_images) == 2
    assert [type(part) for part in found.extra_credit_parts] == [bytes, str, bytes]  # the notebook's order
    assert "plot_confusion" not in found.extra_credit  # code is never text
    rubric = load_rubric().with_edition(CIFAR)
    item = score_extra_credit(rubric, found)
    assert (item.status, item.code, item.extra["figures"]) == ("pending", ReasonCode.PENDING_STAFF, 2)
    assert item.extra["work"] == ANALYSIS and item.extra["extra_credit"] is True
    # a student who answered under the question uses the empty cell after the prompt for the analysis
    found = read(notebook_2023(under=ANSWER, later=ANALYSIS), tmp_path)
    assert (found.answer, found.extra_credit) == (ANSWER, ANALYSIS)


def test_answer_in_the_later_cell_and_work_around_it(tmp_path):
    found = read(notebook_2023(later=ANSWER, extra_after=[figure(), new_markdown_cell(ANALYSIS)]), tmp_path)
    assert (found.answer, found.extra_credit, len(found.extra_credit_images)) == (ANSWER, ANALYSIS, 1)
    # work inserted between the prompt and the answer cell: the cell right after the prompt is code, so the
    # answer cell is not "right after the prompt" and the prose there is the work's
    found = read(notebook_2023(later="", extra_before=[new_markdown_cell("### My own extra credit\n\n" + ANALYSIS),
                                                       figure()]), tmp_path)
    assert found.answer == "" and ANALYSIS in found.extra_credit and len(found.extra_credit_images) == 1


def test_a_student_who_deleted_the_prompt(tmp_path):
    own_section = [new_markdown_cell("## Extra Credit\n\n" + ANALYSIS), figure()]
    found = read(notebook_2023(under=ANSWER, prompt=None, extra_after=own_section), tmp_path)
    assert found.answer == ANSWER
    assert found.extra_credit == "## Extra Credit\n\n" + ANALYSIS and len(found.extra_credit_images) == 1
    # no heading of their own: their code cell starts the work, and what follows it is no answer
    found = read(notebook_2023(under=ANSWER, prompt=None, extra_after=[figure(), new_markdown_cell(ANALYSIS)]),
                 tmp_path)
    assert (found.answer, found.extra_credit) == (ANSWER, ANALYSIS)


def test_text_written_into_the_prompt_cell(tmp_path, official):
    mine = HANDOUT_PROMPT + "\n\n" + ANALYSIS
    # the class's own handout as baseline: its words go, the student's stay, as extra credit
    found = read(notebook_2023(under=ANSWER, prompt=mine), tmp_path, handout=official.text)
    assert (found.answer, found.extra_credit) == (ANSWER, ANALYSIS)
    # a baseline that does not know the prompt cannot tell the two apart: the cell is left out whole
    found = read(notebook_2023(under=ANSWER, prompt=mine), tmp_path)
    assert (found.answer, found.extra_credit) == (ANSWER, "")


def test_a_heading_answer_in_the_later_cell_is_an_answer(tmp_path):
    heading = "##### Edges, and the rest are colour patches"
    assert read(notebook_2023(later=heading), tmp_path).answer == heading
    # but the student's own extra-credit heading there opens their work
    found = read(notebook_2023(later="### Extra credit: confusion matrix\n\n" + ANALYSIS), tmp_path)
    assert found.answer == "" and ANALYSIS in found.extra_credit


def test_the_extra_credit_text_is_capped_like_the_answer(tmp_path):
    rubric = load_rubric()
    limits = type(rubric.intake)(**{**dict(rubric.intake), "max_answer_chars": 40})
    path = tmp_path / "Problem_2.ipynb"
    nbformat.write(notebook_2023(under=ANSWER, extra_after=[new_markdown_cell(ANALYSIS * 3)]), str(path))
    found = extract(read_notebook(path), path, default_baseline().text, limits, edition=CIFAR)
    assert found.extra_credit_cut and len(found.extra_credit) <= 40


# ----------------------------------------------------------------------------- the PDF

def text_of(pdf: Path) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages)


def images_of(pdf: Path) -> list:
    return [image.image for page in PdfReader(str(pdf)).pages for image in page.images]


def test_grade_pdf_on_a_2023_notebook_puts_the_extra_credit_last(tmp_path):
    notebook = notebook_2023(later=ANSWER, extra_after=[figure(), new_markdown_cell(ANALYSIS)])
    path = tmp_path / "Problem_2.ipynb"
    nbformat.write(notebook, str(path))
    done = run_grade("pdf", str(path), "--edition", "2023")
    assert done.returncode == 0, done.stderr
    pdf = tmp_path / "problem_2_solution.pdf"
    text = text_of(pdf)
    titles = [" ".join(title.split()) for title in (*SECTIONS, extra_credit_title(CIFAR))]
    positions = [text.index(title) for title in titles]
    assert positions == sorted(positions) and titles[-1] == "4. Extra Credit"
    assert positions[2] < text.index("oriented edges") < positions[3] < text.index("vehicle superclasses")
    assert "Optionally, study the network" not in text and "Analysis on Trained Model" not in text
    assert [image.size for image in images_of(pdf)] == [(60, 40), (60, 40), (50, 48)]
    # detected, without --edition: the notebook loads CIFAR-100
    (tmp_path / "detected").mkdir()
    done = run_grade("pdf", str(path), "-o", str(tmp_path / "detected" / "out.pdf"))
    assert done.returncode == 0, done.stderr
    assert "4. Extra Credit" in text_of(tmp_path / "detected" / "out.pdf")


def test_no_extra_credit_section_without_work_or_in_2022(tmp_path):
    found = read(notebook_2023(under=ANSWER), tmp_path)
    made = build_pdf(found, answer_text(found), tmp_path / "a.pdf", edition=CIFAR)
    assert not made.missing and "Extra Credit" not in text_of(tmp_path / "a.pdf")
    assert ANSWER.split(";")[0] in text_of(tmp_path / "a.pdf")
    # a 2022 notebook: the three sections, as before
    found = read(official_notebook(answer=ANSWER), tmp_path, edition=SVHN, name="old.ipynb")
    build_pdf(found, answer_text(found), tmp_path / "b.pdf", edition=SVHN)
    assert "Extra Credit" not in text_of(tmp_path / "b.pdf") and extra_credit_title(SVHN) == ""


def test_a_student_pdf_with_the_extra_section_is_not_flagged(tmp_path):
    found = read(notebook_2023(under=ANSWER, extra_after=[figure(3), figure(4)]), tmp_path)
    theirs = tmp_path / "theirs.pdf"
    build_pdf(found, answer_text(found), theirs, edition=CIFAR)
    assert len(images_of(theirs)) == 4  # curves, filters and two extra-credit figures
    check = compare(theirs, {SECTIONS[0]: found.curve_images, SECTIONS[1]: found.filter_images})
    assert check.consistent, check.sections


# ----------------------------------------------------------------------------- the item, outside the 60

def _result(student: str, found, rubric) -> GradeResult:
    scores = {"inline_answer": score_inline_answer(rubric, found)}
    scores.update({item.id: score_extra_credit(rubric, found) for item in rubric.extra_items})
    return GradeResult(student, score_submission(rubric, [], scores, "not run here"), 1.0,
                       metadata={"submission_sha256": student * 8})


def test_results_json_shows_extra_credit_outside_the_total(tmp_path):
    rubric = load_rubric().with_edition(CIFAR)
    assert rubric.total == 60 and [item.id for item in rubric.extra_items] == [EXTRA_CREDIT]
    found = read(notebook_2023(under=ANSWER, extra_after=[new_markdown_cell(ANALYSIS), figure()]), tmp_path)
    result = _result("2023a", found, rubric)
    assert result.max_score == 60
    document = results_json(result)
    test = next(t for t in document["tests"] if t["tags"] == [EXTRA_CREDIT])
    assert (test["max_score"], test["score"], test["extra_data"]["grading"]) == (5.0, 0.0, "pending")
    assert test["extra_data"]["extra_credit"] is True and test["extra_data"]["counted_in_total"] is False
    assert ANALYSIS in test["output"]
    assert "extra credit, not in the 60 points" in document["output"]
    write_reports(result, tmp_path / "out")
    feedback = (tmp_path / "out" / "feedback.md").read_text()
    assert "/ 60 points**" in feedback and "(extra credit, not in the total)" in feedback
    # a 2022 submission has no such item
    old = _result("2022a", read(official_notebook(), tmp_path, edition=SVHN, name="old.ipynb"), load_rubric())
    assert not [t for t in results_json(old)["tests"] if t["tags"] == [EXTRA_CREDIT]]


def test_merge_manual_gradebook_and_sheet_keep_extra_credit_apart(tmp_path):
    graded = tmp_path / "graded"
    cifar = load_rubric().with_edition(CIFAR)
    with_work = read(notebook_2023(under=ANSWER, extra_after=[new_markdown_cell(ANALYSIS)]), tmp_path)
    write_reports(_result("2023a", with_work, cifar), graded / "2023a")
    write_reports(_result("2023b", read(notebook_2023(later=ANSWER), tmp_path, name="b.ipynb"), cifar),
                  graded / "2023b")
    write_reports(_result("2022a", read(official_notebook(), tmp_path, edition=SVHN, name="c.ipynb"), load_rubric()),
                  graded / "2022a")
    before = json.loads((graded / "2023a" / "results.json").read_text())["score"]
    scores = tmp_path / "scores.csv"
    scores.write_text("student_id,item,points,comment\n2023a,extra_credit,4,good matrix\n2023a,inline_answer,5,\n")
    merge_manual(scores, graded, by="tester")
    document = json.loads((graded / "2023a" / "results.json").read_text())
    test = next(t for t in document["tests"] if t["tags"] == [EXTRA_CREDIT])
    assert test["score"] == 4 and test["extra_data"]["staff"]["points"] == 4
    assert document["score"] == before + 5  # the inline answer counts, the extra credit does not
    feedback = (graded / "2023a" / "feedback.md").read_text()
    assert "4 / 5 (extra credit, not in the total)" in feedback and "extra credit aside" in feedback
    # a 2022 submission has no extra credit to set
    scores.write_text("student_id,item,points\n2022a,extra_credit,1\n")
    with pytest.raises(Exception, match="is not in 2022a/results.json"):
        merge_manual(scores, graded, by="tester")
    # the gradebook: its own column, blank for 2022, never in the total
    entries = [BatchEntry(s, Path(s), BatchStatus.GRADED) for s in ("2022a", "2023a", "2023b")]
    with open(write_gradebook(graded, entries), newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert (rows["2023a"][EXTRA_CREDIT], rows["2023a"]["total"]) == ("4.0", str(document["score"]))
    assert rows["2022a"][EXTRA_CREDIT] == "" and rows["2023b"][EXTRA_CREDIT] == "0.0"
    assert "extra_credit pending staff" not in rows["2023b"]["flags"]  # nothing to grade: no work
    # the grading sheet: a field for 2023 students only; no work is settled by the grader
    sheet = build_manual_sheet(graded).read_text()
    assert sheet.count("data-item='extra_credit'") == 2 * 2  # the points field and the comment, two students
    assert "data-student='2023b' data-item='extra_credit' data-max='5' data-settled='grader'" in sheet
    assert "data-student='2023a' data-item='extra_credit' data-max='5' data-merged='4'" in sheet
    assert ANALYSIS in sheet


def test_a_graded_2023_submission_carries_the_answer_and_the_extra_credit(tmp_path, monkeypatch):
    """A real grade (worker, notebook, PDF) of a submission with a 2023 notebook, graded as 2023: the answer
    found in the cell after the prompt, the extra credit pending outside the 60, the staff's PDF with the
    work last and no prompt."""
    folder = make_submission(tmp_path / "student")
    (folder / "lib" / "datasets.py").write_text("def CIFAR100_data(folder):\n    raise NotImplementedError\n")
    notebook = notebook_2023(later=ANSWER, extra_after=[figure(), new_markdown_cell(ANALYSIS)])
    notebook.cells[3] = new_markdown_cell("Try to reach 40% validation accuracy.")
    nbformat.write(notebook, str(folder / "Problem_2.ipynb"))
    cifar = load_rubric().with_edition(CIFAR)
    monkeypatch.setattr(grading, "load_rubric", lambda: cifar)  # until grading detects the edition itself
    items, result, out = grade(folder, tmp_path)
    assert items["inline_answer"].extra["answer"] == ANSWER
    assert (items[EXTRA_CREDIT].status, items[EXTRA_CREDIT].extra["work"]) == ("pending", ANALYSIS)
    document = json.loads((out / "results.json").read_text())
    assert document["score"] == result.score and result.max_score == 60
    assert sum(t["max_score"] for t in document["tests"] if not t["extra_data"].get("extra_credit")) == 60
    text = text_of(out / "problem_2_solution.pdf")
    assert text.index("3. Inline question") < text.index(ANSWER[:20]) < text.index("4. Extra Credit") \
        < text.index("vehicle superclasses")
    assert "Optionally, study the network" not in text


# ----------------------------------------------------------------------------- set by staff: no longer pending

def pending_rubric():
    """The 2023 rubric with the training's unverified policy `pending`: an accuracy from the log alone awaits staff."""
    data = tomllib.loads(RUBRIC_PATH.read_text())
    data["training"]["unverified_policy"] = "pending"
    return parse_rubric(data).with_edition(CIFAR)


def section_of(feedback: str, title: str) -> str:
    """One item's section of feedback.md: its heading up to the next heading."""
    start = feedback.index(f"## {title}: ")
    end = feedback.find("\n## ", start)
    return feedback[start:] if end < 0 else feedback[start:end]


def test_every_item_staff_can_set_no_longer_says_it_is_pending_once_set(tmp_path):
    """The answer, the extra credit and the training under the `pending` policy, each awaiting staff, then set by
    merge-manual: feedback.md shows the staff's score and comment where the item's note said "pending", keeps what
    the grader found (the answer's length, the work, the accuracy claimed) without "pending", and results.json's
    tests and summary say the same. Merging new comments replaces them, never adds."""
    rubric = pending_rubric()
    found = read(notebook_2023(under=ANSWER, extra_after=[new_markdown_cell(ANALYSIS)]), tmp_path)
    claimed = TrainingEvidence(reported=0.45, kinds=["conv", "pool", "flatten", "fc"], output_shape=[2, 20],
                               unverified="no cifar100_cnn_params.npz was submitted")
    scores = {"training": score_training(rubric, claimed), "inline_answer": score_inline_answer(rubric, found),
              EXTRA_CREDIT: score_extra_credit(rubric, found)}
    assert {item.status for item in scores.values()} == {"pending"}
    result = GradeResult("2023p", score_submission(rubric, [], scores, "not run here"), 1.0,
                         metadata={"submission_sha256": "ab" * 32, "edition": {"name": CIFAR.name}})
    graded = tmp_path / "graded"
    write_reports(result, graded / "2023p")
    titles = {item_id: score.item.title for item_id, score in scores.items()}
    before = (graded / "2023p" / "feedback.md").read_text()
    assert all("pending staff" in section_of(before, title) for title in titles.values())

    for comments in (("replays checked", "clear and right", "good matrix"), ("", "on reflection", "thin")):
        scores_csv = tmp_path / "scores.csv"
        scores_csv.write_text("student_id,item,points,comment\n"
                              f"2023p,training,20,{comments[0]}\n2023p,inline_answer,4.5,{comments[1]}\n"
                              f"2023p,extra_credit,4,{comments[2]}\n")
        merge_manual(scores_csv, graded, by="tester")
        feedback = (graded / "2023p" / "feedback.md").read_text()
        document = json.loads((graded / "2023p" / "results.json").read_text())
        for (item_id, title), (points, maximum), comment, kept in zip(
                titles.items(), ((20, 25), (4.5, 5), (4, 5)), comments,
                ("validation accuracy 0.4500 (reported, from the notebook's log; not verified: no "
                 "cifar100_cnn_params.npz was submitted)",
                 f"answer of {len(ANSWER.split())} words",
                 f"extra credit, outside the 60 points: work of {len(ANALYSIS.split())} words")):
            section = section_of(feedback, title)
            assert section.startswith(f"## {title}: {points:g} / {maximum:g} (set by staff)\n\n"), section
            assert "pending" not in section.lower() and "staff will" not in section, section
            said = f"**Score set by staff: {points:g} / {maximum:g}**" + (f". Staff's comment: {comment}" if comment
                                                                           else ".")
            assert said in section and section.count("Score set by staff") == 1, section
            assert f"What the grader found (its score is replaced): {kept}" in section, section
            [test] = [t for t in document["tests"] if t["tags"] == [item_id]]
            assert test["output"].startswith(f"Score set by staff: {points:g} / {maximum:g}")
            assert "pending" not in test["output"].lower() and kept in test["output"]
        assert "Your answer, as staff read it:" in feedback and f"> {ANSWER}" in feedback  # the answer stays
        assert "> " + ANALYSIS in feedback
        for stale in ("replays checked", "clear and right", "good matrix")[:3 if comments[0] == "" else 0]:
            assert stale not in feedback
        assert "pending" not in document["output"].lower()
        assert f"{titles[EXTRA_CREDIT]}: 4 / 5 (set by staff)" in document["output"]

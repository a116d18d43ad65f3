"""The gradebook says what is final, and the class report asks staff only what is theirs to do.

Each student's results are made by the real scorers (score_submission on real case outcomes, the filters
scored from a real matplotlib figure without weights, the inline answer from its text), written by the real
report writer, merged into with the real merge-manual; the gradebook and the class report are then read
back as staff read them.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402

from autograder.attributes import Geometry, sides  # noqa: E402
from autograder.batch import BatchEntry, refresh_reports, timed_out_result, write_gradebook  # noqa: E402
from autograder.model import BatchStatus, CaseResult, GradeResult  # noqa: E402
from autograder.notebook.items import score_filters, score_inline_answer  # noqa: E402
from autograder.notebook.reading import Findings  # noqa: E402
from autograder.outcomes import Passed, WrongValue  # noqa: E402
from autograder.reports.class_report import build_class_report  # noqa: E402
from autograder.reports.flags import FLAG_KINDS, asks_staff, flag_kind  # noqa: E402
from autograder.reports.manual import merge_manual  # noqa: E402
from autograder.reports.results import write_reports  # noqa: E402
from autograder.rubric import all_extra_items, load_rubric  # noqa: E402
from autograder.score import score_submission  # noqa: E402

WRONG = WrongValue("backward(dout)", 0.5, 1e-6)
# (batch, height, width, channels, kernel, stride, padding): a and c have padding 0
SHAPES = {"a": Geometry(2, 7, 9, 3, 3, 1, 0), "b": Geometry(2, 8, 8, 1, 2, 2, 1),
          "c": Geometry(3, 6, 6, 1, 3, 3, 0), "d": Geometry(1, 9, 7, 2, 1, 1, 2)}


def _filter_figure() -> bytes:
    """Eight 3x3 filters drawn as a student would, one tile each."""
    weights = np.random.default_rng(3).normal(size=(3, 3, 3, 8))
    figure, axes = plt.subplots(1, 8, figsize=(8, 1.4), dpi=80)
    for index, axis in enumerate(axes):
        tile = weights[..., index]
        axis.imshow((tile - tile.min()) / (tile.max() - tile.min()), interpolation="nearest")
        axis.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _backward_cases(failing: str) -> list[CaseResult]:
    """conv backward's cases, every part: dimg fails the cases named in `failing`, dW and db pass."""
    return [CaseResult("conv_backward", name, "hidden", 1.0, name, WRONG if part == "dimg" and name in failing
                       else Passed(), component=part, sides=sides("conv_backward", shape))
            for part in ("dimg", "dw", "db") for name, shape in SHAPES.items()]


def grade(out: Path, student: str, failing: str = "", answer: str = "Edges and colour blobs.",
          notebook: bool = True, metadata: dict | None = None) -> dict:
    """One student's results.json and feedback, as grading writes them; `notebook` False: not read."""
    rubric = load_rubric()
    scores = None
    if notebook:
        findings = Findings(Path("Problem_2.ipynb"), has_outputs=True, answer=answer,
                            filter_source="show_filters(model.params['conv1_w'])", filter_cell=3,
                            filter_images=[_filter_figure()])
        scores = {"filters": score_filters(rubric, findings, "conv1_w"),
                  "inline_answer": score_inline_answer(rubric, findings)}
    items = score_submission(rubric, _backward_cases(failing), scores, "0: the notebook was not read")
    write_reports(GradeResult(student, items, 1.0, metadata=metadata or {}), out / student)
    return json.loads((out / student / "results.json").read_text(encoding="utf-8"))


def rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def merge(out: Path, tmp_path: Path, lines: str) -> None:
    scores = tmp_path / "scores.csv"
    scores.write_text("student_id,item,points,comment\n" + lines, encoding="utf-8")
    merge_manual(scores, out, by="test")
    assert refresh_reports(out) == out / "gradebook.csv"


def flagged(out: Path) -> list[str]:
    """The students under the class report's "Flagged submissions" (Markdown), by id."""
    report = (out / "class_report.md").read_text(encoding="utf-8")
    section = report[report.index("## Flagged submissions"):].split("\n## ")[0]
    return re.findall(r"^- \[([^\]]+)\]", section, flags=re.MULTILINE)


# --- the gradebook: status, blank cells, provisional -------------------------------------------------------

def test_an_answer_awaiting_staff_is_blank_its_points_provisional_until_merged(tmp_path):
    out = tmp_path / "graded"
    document = grade(out, "0042")
    write_gradebook(out, [BatchEntry("0042", Path("0042.zip"), BatchStatus.GRADED)])
    row = rows(out)["0042"]
    code = sum(test["score"] for test in document["tests"] if test["tags"] == ["conv_backward"])
    assert code == 5 and document["score"] == 10  # conv backward 5, the filters provisionally 5, the answer 0
    assert row["status"] == "pending staff"
    assert row["inline_answer"] == "" and row["filters"] == ""  # not 0, not the provisional 5
    assert float(row["provisional"]) == 5 and float(row["total"]) == 10  # total includes the provisional 5
    assert float(row["conv_backward"]) == 5 and float(row["training"]) == 0  # settled items keep their points
    assert "inline_answer pending staff" in row["flags"] and "filters provisional" in row["flags"]

    merge(out, tmp_path, "0042,inline_answer,4,clear\n")  # the filters still await staff
    row = rows(out)["0042"]
    assert (row["status"], row["inline_answer"], row["filters"]) == ("pending staff", "4.0", "")
    assert float(row["provisional"]) == 5 and float(row["total"]) == 14

    merge(out, tmp_path, "0042,filters,3,\n")
    row = rows(out)["0042"]
    assert (row["status"], row["inline_answer"], row["filters"]) == ("complete", "4.0", "3.0")
    assert float(row["provisional"]) == 0 and float(row["total"]) == 12
    assert "pending" not in row["flags"] and "provisional" not in row["flags"]


def test_faults_timeouts_and_rows_not_graded_yet_keep_their_status_through_a_refresh(tmp_path):
    out = tmp_path / "graded"
    grade(out, "0001", notebook=False)  # nothing awaits staff
    grade(out, "0002", metadata={"harness_fault": "RuntimeError: the grader's own bug"})
    (out / "0003").mkdir(parents=True)
    write_reports(timed_out_result("0003", 90.0, 91.0), out / "0003")
    entries = [BatchEntry("0001", Path("0001"), BatchStatus.GRADED),
               BatchEntry("0002", Path("0002"), BatchStatus.HARNESS_FAULT, detail="RuntimeError"),
               BatchEntry("0003", Path("0003"), BatchStatus.TIMED_OUT),
               BatchEntry("0004", Path("0004.zip"), BatchStatus.HARNESS_FAULT,
                          detail="the grading process died (exit code -9)"),
               BatchEntry("0005", Path("0005.zip"))]  # the batch has not reached it yet
    write_gradebook(out, entries)
    book = rows(out)
    assert {student: row["status"] for student, row in book.items()} == {
        "0001": "complete", "0002": "fault", "0003": "fault", "0004": "fault", "0005": "not graded yet"}
    assert "harness fault" in book["0002"]["flags"].split("; ")
    assert book["0003"]["flags"] == "grading timed out (90 s)" and float(book["0003"]["total"]) == 0
    assert book["0004"]["flags"] == "harness fault: the grading process died (exit code -9)"
    assert book["0004"]["total"] == book["0004"]["provisional"] == book["0005"]["total"] == ""
    written = (out / "gradebook.csv").read_bytes()
    refresh_reports(out)
    assert (out / "gradebook.csv").read_bytes() == written  # every status survives being read back
    assert flagged(out) == ["0002", "0003", "0004"]  # not the complete one, nor the one not graded yet


def test_a_gradebook_of_the_previous_version_refreshes_into_the_new_statuses(tmp_path):
    out = tmp_path / "graded"
    grade(out, "0001")  # the answer awaits staff
    grade(out, "0002", notebook=False)
    (out / "0003").mkdir(parents=True)
    write_reports(timed_out_result("0003", 90.0, 91.0), out / "0003")
    items = [item.id for item in (*load_rubric().items, *all_extra_items())]
    old = [["student_id", "total", *items, "edition", "status", "flags", "source"],
           ["0001", "10.0", *[""] * len(items), "", "graded", "inline_answer pending staff", "0001.zip"],
           ["0002", "5.0", *[""] * len(items), "", "unchanged", "", "0002"],
           ["0003", "0.0", *[""] * len(items), "", "timed out", "grading timed out (90 s)", "0003"],
           ["0004", "", *[""] * len(items), "", "harness fault", "harness fault: worker died", "0004.zip"],
           ["0005", "", *[""] * len(items), "", "pending", "", "0005.zip"]]
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(old)
    assert refresh_reports(out) == out / "gradebook.csv"
    book = rows(out)
    assert list(next(iter(book.values())))[:3] == ["student_id", "total", "provisional"]
    assert {student: row["status"] for student, row in book.items()} == {
        "0001": "pending staff", "0002": "complete", "0003": "fault", "0004": "fault", "0005": "not graded yet"}
    assert book["0001"]["inline_answer"] == "" and float(book["0001"]["provisional"]) == 5
    assert book["0004"]["flags"] == "harness fault: worker died" and book["0004"]["source"] == "0004.zip"
    assert book["0003"]["flags"] == "grading timed out (90 s)"  # a timeout is not turned into a harness fault


# --- the flags: each classified ------------------------------------------------------------------------------

#: Every flag the gradebook can show, as the code writes it (`<>` where the code fills in a value), and
#: whether it asks staff to act. A flag added to the code fails the first test until it is added here and
#: classified in autograder/reports/flags.py.
EMITTED = {
    "grading timed out (<> s)": True, "timed out": True, "unreadable submission": True, "unreadable notebook": True,
    "edition contradiction": True, "no data for this edition": True, "accuracy verified": False,
    "accuracy reported": False, "accuracy mismatch": True, "architecture violation": True,
    "PDF mismatch": True, "PDF not compared": True, "answer in several places": True, "harness fault": True,
    "<> pending staff": True,
    "<> set by staff for an earlier submission": True, "<> set by staff": False,
    "accuracy pending": True, "accuracy unverified": True, "accuracy unverified (capped)": True,
    "accuracy unverified (no credit)": False,
    "weights not evaluable": True, "accuracy from own forward": False, "held-out gap": True,
    "forward disagreement": True, "filters timed out": True, "filters provisional": True,
    "filters need staff review": True, "filters do not match weights": False, "answer cut": True,
    "extra credit cut": True, "image too large": True, "image unreadable": True, "log not reproduced": True,
    "similar <>: <><>": True,
}
#: The modules whose code writes the gradebook's flags.
SOURCES = ("autograder/batch.py", "autograder/notebook/items.py", "autograder/notebook/replay.py",
           "autograder/reports/similarity.py")


def _template(node: ast.expr) -> str | None:
    """A flag's words as the code writes them: a string, or an f-string with `<>` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "<>" for part in node.values)
    return None


def _written_flags() -> set[str]:
    """Every flag the source writes: appended to a list named *flag*, or in a list assigned to one."""
    found = set()
    for source in SOURCES:
        tree = ast.parse((REPO_ROOT / source).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                    and "flag" in ast.unparse(node.func.value) and node.args):
                values = [node.args[0]]
                if isinstance(node.args[0], ast.IfExp):
                    values = [node.args[0].body, node.args[0].orelse]
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any("flag" in ast.unparse(target) for target in targets):
                    values = [element for part in ast.walk(node.value) if isinstance(part, ast.List)
                              for element in part.elts]
            found |= {text for text in map(_template, values) if text is not None}
    return found


def test_every_flag_the_code_writes_is_listed_and_classified():
    written = _written_flags()
    assert written == set(EMITTED), \
        f"flags written but not listed here: {written - set(EMITTED)}; listed, no longer written: " \
        f"{set(EMITTED) - written}"
    for template, acts in EMITTED.items():
        flag = template.replace("<>", "x")
        assert flag_kind(flag) is not None, f"{template!r} is not classified in autograder/reports/flags.py"
        assert asks_staff(flag) == acts, template


def test_the_classification_has_no_entry_that_nothing_writes_and_an_unknown_flag_asks_staff():
    for kind in FLAG_KINDS:
        sample = re.sub(r"<[^<>]+>", "x", kind.template)
        assert flag_kind(sample) is kind, kind.template  # no entry hidden behind an earlier one
    assert asks_staff("a flag nobody classified")  # shown, never hidden
    assert not asks_staff("accuracy verified") and not asks_staff("filters set by staff")
    assert asks_staff("filters set by staff for an earlier submission")


# --- the class report: flagged, units ------------------------------------------------------------------------

def test_a_class_with_only_informational_flags_has_nobody_flagged(tmp_path):
    out = tmp_path / "graded"
    for student in ("0001", "0002"):
        grade(out, student)
    write_gradebook(out, [BatchEntry(s, Path(s), BatchStatus.GRADED) for s in ("0001", "0002")])
    merge(out, tmp_path, "0001,inline_answer,4,\n0001,filters,5,\n0002,inline_answer,3,\n0002,filters,0,\n")
    informational = [re.sub(r"<[^<>]+>", "filters", kind.template) for kind in FLAG_KINDS if not kind.asks_staff]
    book = list(rows(out).values())
    assert {row["status"] for row in book} == {"complete"} and all(row["flags"] == "filters set by staff"
                                                                   for row in book)
    for row in book:  # every kind of flag that only says how the grade was reached, on every student
        row["flags"] = "; ".join(informational)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(book[0]))
        writer.writeheader()
        writer.writerows(book)
    build_class_report(out)
    assert flagged(out) == []
    page = (out / "class_report.html").read_text(encoding="utf-8")
    assert "<p id='flagged'>None.</p>" in page and "accuracy verified" in page  # still in the table of students

    book[1]["flags"] += "; PDF mismatch"
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(book[0]))
        writer.writeheader()
        writer.writerows(book)
    build_class_report(out)
    report = (out / "class_report.md").read_text(encoding="utf-8")
    assert flagged(out) == ["0002"] and "- [0002](0002/feedback.md): PDF mismatch\n" in report  # that flag alone


def test_failures_are_counted_in_cases_and_patterns_in_students_each_saying_so(tmp_path):
    out = tmp_path / "graded"
    grade(out, "0001", failing="ac")  # dimg fails exactly the padding-0 cases: the pattern
    grade(out, "0002", failing="ac")
    grade(out, "0003", failing="acd")  # padding 2 fails too: no pattern
    write_gradebook(out, [BatchEntry(s, Path(s), BatchStatus.GRADED) for s in ("0001", "0002", "0003")])
    build_class_report(out)
    documents = [json.loads((out / s / "results.json").read_text()) for s in ("0001", "0002", "0003")]
    cases = sum(1 for d in documents for t in d["tests"] for c in t["extra_data"].get("cases", [])
                if not c["passed"] and c["reason_code"] == "wrong_value")
    pattern = [d for d in documents if any("conv_backward.dimg.padding_0" in t["extra_data"].get("patterns", [])
                                           for t in d["tests"])]
    assert (cases, len(pattern)) == (7, 2)  # seven failing cases, three students, two of them with the pattern
    report = (out / "class_report.md").read_text(encoding="utf-8")
    assert "- **conv_backward**: failing cases: wrong value (7 cases); students: wrong value (3 students)" in report
    line = next(text for text in report.splitlines() if "`conv_backward.dimg.padding_0`" in text)
    assert ": 2 students (" in line
    page = (out / "class_report.html").read_text(encoding="utf-8")
    assert "<th>most common failures (cases)</th><th>most common failures (students)</th>" in page
    assert "<td class='cases'>wrong value (7 cases)</td><td class='students'>wrong value (3 students)</td>" in page
    assert re.search(r"<tr class='pattern'><td>[^<]*padding 0[^<]*</td><td>2</td>", page)
    assert "<th>pattern</th><th>students</th>" in page


def test_the_class_report_is_one_file_with_its_style_from_beside_the_module(tmp_path):
    out = tmp_path / "graded"
    grade(out, "0001")
    write_gradebook(out, [BatchEntry("0001", Path("0001"), BatchStatus.GRADED)])
    build_class_report(out)
    page = (out / "class_report.html").read_text(encoding="utf-8")
    style = (REPO_ROOT / "autograder" / "reports" / "class_report.css").read_text(encoding="utf-8")
    assert f"<style>{style}</style>" in page
    assert not re.search(r"<(link|script)\b|src=['\"](?!data:)", page)  # nothing fetched from elsewhere


def test_every_count_of_the_class_report_says_students_cases_or_pairs(tmp_path):
    """The summary, the editions line and the similar-work groups count students (one gradebook row each), in
    the Markdown and on the page: never a bare "3 submissions"."""
    from autograder.reports.similarity import PAIRS, SimilarPair, write_pairs

    out = tmp_path / "graded"
    svhn, cifar = ({"edition": {"name": name, "how": "detected"}} for name in ("2022-svhn", "2023-cifar100"))
    for student, metadata in (("0001", svhn), ("0002", svhn), ("0003", cifar)):
        grade(out, student, metadata=metadata)  # each answer awaits staff: all three ask staff to act
    write_gradebook(out, [BatchEntry(s, Path(s), BatchStatus.GRADED) for s in ("0001", "0002", "0003")])
    write_pairs(out / PAIRS, [SimilarPair("answer", "0001", "0002", 0.95), SimilarPair("answer", "0002", "0003", 0.9),
                              SimilarPair("answer", "0001", "0003", 0.9)])
    build_class_report(out)
    report = (out / "class_report.md").read_text(encoding="utf-8")
    page = (out / "class_report.html").read_text(encoding="utf-8")
    assert report.splitlines()[2].startswith("3 students (3 pending staff); mean total")
    assert "; 3 students asking staff to act." in report
    assert ("Editions: 2022-svhn (SVHN, trained to 88 %): 2 students; 2023-cifar100 (CIFAR-100, trained to 40 %): "
            "1 student.") in report
    assert "- answer, 3 students (pairs ≥ 0.90): [0001]" in report
    assert "<p id=\"summary\">3 students (3 pending staff);" in page and "3 students asking staff to act." in page
    assert "<li>2023-cifar100 (CIFAR-100, trained to 40 %): 1 student</li>" in page
    assert "<th>what</th><th>students</th><th>pairs at least</th>" in page
    assert "Pair by pair, most alike first (3 pairs of students)" in page
    text = re.sub(r"<[^<>]+>", " ", page) + report
    assert not re.search(r"\b\d+ submissions?\b", text), re.findall(r".{40}\b\d+ submissions?\b.{20}", text)
    # every answer awaits staff: the item has no mean yet, where a 0.00 would read as a class that scored nothing
    assert re.search(r"\| Inline[^|]*\| none settled \| 5 \| 0/0 \|", report), report
    assert re.search(r"<tr><td>Inline[^<]*</td><td>none settled</td>", page)


def test_a_blank_cell_of_a_complete_row_is_an_item_its_edition_lacks_as_the_readme_says(tmp_path):
    """A 2022 row with every item settled is `complete` with its `extra_credit` cell blank (2022 has no extra
    credit): the README's gradebook must say that a blank is not only an item awaiting staff, or staff read that
    row as waiting for them."""
    out = tmp_path / "graded"
    grade(out, "0001", metadata={"edition": {"name": "2022-svhn", "how": "detected"}})
    write_gradebook(out, [BatchEntry("0001", Path("0001"), BatchStatus.GRADED)])
    merge(out, tmp_path, "0001,inline_answer,4,\n0001,filters,5,\n")
    row = rows(out)["0001"]
    assert (row["status"], row["edition"], row["extra_credit"]) == ("complete", "2022-svhn", "")
    assert all(row[item.id] != "" for item in load_rubric().items)  # the one blank: the item 2022 lacks
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("a blank cell is also an item the submission's edition does not have, which awaits no one "
            "(`extra_credit` in every 2022 row: 2022 has no extra credit, and such a row can be `complete` with that "
            "cell blank") in readme
    assert "A blank is thus never a score, and in a `complete` row none awaits staff" in readme

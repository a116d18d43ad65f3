"""The staff's grading sheet (OUT/manual_grading.html) as HTML: what each card shows, read from the
files a real grading wrote, and what the student's answer can and cannot put on the page. Its
behaviour in a browser (typing, the CSV, reload, Enter) is tested in test_manual_sheet_browser.py."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shlex
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REFERENCE, TEMPLATE, run_grade
from filter_images import plant_filters
from submissions import make_submission

from autograder.grading import grade_submission
from autograder.reports.manual_sheet import NOTEBOOK_IMAGE, RENDERED_IMAGE, SHEET, build_manual_sheet, render_answer
from autograder.reports.similarity import PAIRS, SimilarPair, write_pairs

ADVERSARIAL = """Filters are edges.

<script>window.__pwned = 1</script>
<img src=x onerror="window.__pwned = 2">
[click me](javascript:alert(1)) and [also](JAVASCRIPT:alert(2)) and [data](data:text/html,<b>x</b>)
![remote](https://example.invalid/track.png)
</div></section><section class="card" data-student="9999"><input class="points" data-student="9999"
data-item="inline_answer" data-max="5" value="5">
<style>body{display:none}</style>
"""


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every <script> and <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.blocks: dict[str, list[str]] = {"script": [], "style": []}
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in self.blocks:
            self._inside = tag
            self.blocks[tag].append("")

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside:
            self.blocks[self._inside][-1] += data


def parse(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """One real results.json (the reference, graded by a real worker), for the class below to copy."""
    root = tmp_path_factory.mktemp("sheet")
    _, out = grade_submission(REFERENCE, root / "reference")
    return out


def student(out: Path, graded: Path, student_id: str, answer: str | None = None) -> Path:
    folder = out / student_id
    shutil.copytree(graded, folder)
    if answer is not None:
        results = folder / "results.json"
        document = json.loads(results.read_text(encoding="utf-8"))
        for test in document["tests"]:
            if test.get("tags") == ["inline_answer"]:
                test["extra_data"]["answer"] = answer
        results.write_text(json.dumps(document), encoding="utf-8")
    return folder


def gradebook(out: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["student_id,total,status,flags"] + [f"{sid},35,{status},{flags}" for sid, status, flags in rows]
    (out / "gradebook.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def cards(page: str) -> list[str]:
    return re.findall(r"<section class='card[^']*' id='card-\d+'(?: data-student='([^']*)')?", page)


def test_render_answer_keeps_markdown_and_drops_everything_active():
    rendered = render_answer(ADVERSARIAL + "\n**bold** *it* `code`\n\n- one\n- two\n\n[course](https://example.org/x)")
    tags = parse(rendered).tags
    names = {name for name, _ in tags}
    assert names <= {"p", "strong", "em", "code", "ul", "li", "a", "span"}, names  # span: an image as text
    links = [attrs for name, attrs in tags if name == "a"]
    assert [link["href"] for link in links] == ["https://example.org/x"]  # javascript:, data: stay text
    assert all(link["rel"] == "noopener noreferrer nofollow" and link["tabindex"] == "-1" for link in links)
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in rendered  # shown as text
    assert "[click me](javascript:alert(1))" in rendered
    assert "[image, not loaded: remote https://example.invalid/track.png]" in rendered  # never an <img>
    assert "<strong>bold</strong>" in rendered and "<li>one</li>" in rendered


def test_one_card_per_student_in_the_gradebook_order_with_what_each_has(graded, tmp_path):
    out = tmp_path / "class"
    out.mkdir()
    plant_filters(student(out, graded, "3001", "Edges and blobs, *mostly*."), match=0.875, shown=16)
    plant_filters(student(out, graded, "3002", "Edges and blobs, *mostly*."), rendered=False)
    student(out, graded, "3003", "")
    bad = student(out, graded, "3004 a&b")  # no images at all: results from before the filter matching
    (out / "3005").mkdir()  # a harness fault that left no results
    gradebook(out, [("3001", "graded", ""), ("3002", "graded", ""), ("3003", "graded", ""),
                    ("3004 a&b", "graded", ""), ("3005", "harness fault", "harness fault: worker died")])
    write_pairs(out / PAIRS, [SimilarPair("answer", "3001", "3002", 1.0), SimilarPair("code", "3001", "3003", 0.9)])
    document = json.loads((bad / "results.json").read_text())
    document["extra_data"]["intake_error"] = "not a zip file"
    (bad / "results.json").write_text(json.dumps(document))

    page = build_manual_sheet(out).read_text(encoding="utf-8")
    assert (out / SHEET).is_file()
    assert cards(page) == ["3001", "3002", "3003", "3004 a&amp;b", ""]  # the last: no results, no fields
    chunks = re.split(r"<section class='card", page)[1:]
    one, two, three, four, five = chunks
    assert f"src='3001/{NOTEBOOK_IMAGE}'" in one and f"src='3001/{RENDERED_IMAGE}'" in one
    assert "mean correlation 0.88, 16 filters shown" in one and "provisional score" in one
    assert "similar answer: 3002 (1.00)" in one and "similar code" not in one  # only the answer's flags
    assert "<em>mostly</em>" in one
    assert f"src='3002/{NOTEBOOK_IMAGE}'" in two and "no weights to render" in two
    assert "no answer found" in three and "no filter image found" in three
    assert "Unreadable submission: not a zip file" in four
    assert f"src='3004%20a%26b/{NOTEBOOK_IMAGE}'" not in four and "no filter image found" in four
    assert "No results to grade: harness fault: worker died" in five and "<input" not in five
    inputs = [attrs for name, attrs in parse(page).tags if name == "input"]
    assert len(inputs) == 8  # points for two items on each of the four cards with results
    assert {(i["data-item"], i["data-max"], i["min"], i["step"]) for i in inputs} == {
        ("filters", "5", "0", "0.5"), ("inline_answer", "5", "0", "0.5")}
    assert [i["data-student"] for i in inputs][::2] == ["3001", "3002", "3003", "3004 a&b"]


def test_images_are_read_defensively(graded, tmp_path):
    out = tmp_path / "class"
    out.mkdir()
    folder = student(out, graded, "4001")
    plant_filters(folder)
    document = json.loads((folder / "results.json").read_text())
    for test in document["tests"]:
        if test.get("tags") == ["filters"]:
            test["extra_data"].update(notebook_image="../../secret.png", rendered_image=7, match="high", shown=None)
    (folder / "results.json").write_text(json.dumps(document))
    gradebook(out, [("4001", "graded", "")])
    page = build_manual_sheet(out).read_text(encoding="utf-8")
    assert "<img" not in page and "no filter image found" in page and "no weights to render" in page
    assert "match" not in page.split("4001", 1)[1].split("provisional score")[0]  # a non-number is not shown


def test_the_page_loads_nothing_remote_and_allows_only_its_own_script_and_style(graded, tmp_path):
    out = tmp_path / "class"
    out.mkdir()
    plant_filters(student(out, graded, "5001", ADVERSARIAL))
    gradebook(out, [("5001", "graded", "")])
    page = build_manual_sheet(out).read_text(encoding="utf-8")
    parsed = parse(page)
    policy = next(attrs["content"] for name, attrs in parsed.tags
                  if name == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "'self' file:"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert len(parsed.blocks["script"]) == 1 and len(parsed.blocks["style"]) == 1  # the answer added none
    assert directives["script-src"] == digest(parsed.blocks["script"][0])
    assert directives["style-src"] == digest(parsed.blocks["style"][0])
    for name, attrs in parsed.tags:
        for key in ("src", "href"):
            if key in attrs and name != "a":
                assert not re.match(r"[a-z]+:", attrs[key]), (name, attrs)  # images and links: relative only
        assert not any(key.startswith("on") for key in attrs), (name, attrs)
    assert [attrs["data-student"] for name, attrs in parsed.tags if name == "input"] == ["5001", "5001"]


def test_merged_scores_are_shown_counted_and_a_resubmission_is_marked(graded, tmp_path):
    """The cards of a merged student, of one merged for an earlier submission (the student resubmitted),
    and of one not merged: what a blank field leaves, and what the page's script counts as merged."""
    from autograder.reports.manual import apply_staff_score

    out = tmp_path / "class"
    out.mkdir()
    for student_id, submission in (("6001", None), ("6002", "0" * 64), ("6003", "")):
        folder = student(out, graded, student_id)
        if submission == "":
            continue
        results = folder / "results.json"
        document = json.loads(results.read_text(encoding="utf-8"))
        document = apply_staff_score(document, "inline_answer", 4, "fine, 'brief'", submission)
        document = apply_staff_score(document, "filters", 2.5, "", submission)
        results.write_text(json.dumps(document), encoding="utf-8")
    gradebook(out, [("6001", "graded", ""), ("6002", "graded", ""), ("6003", "graded", "")])
    page = build_manual_sheet(out).read_text(encoding="utf-8")
    merged, earlier, untouched = re.split(r"<section class='card", page)[1:]
    inputs = {(attrs["data-student"], attrs["data-item"]): attrs for name, attrs in parse(page).tags
              if name == "input"}
    assert inputs["6001", "inline_answer"]["data-merged"] == "4"
    assert inputs["6001", "inline_answer"]["data-merged-comment"] == "fine, 'brief'"
    assert inputs["6001", "filters"]["data-merged"] == "2.5" and inputs["6001", "filters"]["data-merged-comment"] == ""
    assert not any("data-merged" in inputs[s, i] for s in ("6002", "6003") for i in ("filters", "inline_answer"))
    assert "Already merged from a CSV: 4 points (fine, &#x27;brief&#x27;)." in merged
    assert "Blank points: no row in the CSV, the current score stays (4, the staff's, merged)." in merged
    assert "the grader's score stays" not in page
    assert earlier.count("Merged for an earlier submission") == 2 and "Already merged" not in earlier
    assert "the current score stays (2.5, the staff's, for an earlier submission)" in earlier
    assert "Blank points: no row in the CSV, the current score stays (0, pending: not graded yet)." in untouched
    assert "Merged" not in untouched and "merged from a CSV" not in untouched
    assert "blank points leave the current score" in page


def printed_command(page: str) -> list[str]:
    """The merge-manual command the sheet tells staff to run, split as a POSIX shell splits it."""
    found = re.search(r"<code>(python grade\.py merge-manual [^<]*)</code>", page)
    assert found, "the sheet prints no merge-manual command"
    return shlex.split(html.unescape(found.group(1)))


def test_the_printed_merge_command_works_as_printed_from_where_the_batch_ran(tmp_path):
    """A batch run with a nested relative --out (a space in it): the sheet names that folder as given, quoted, and
    the command, typed as printed where the batch ran, merges; its last name alone would name no folder there."""
    where = tmp_path / "course"
    make_submission(where / "class" / "2001", source=TEMPLATE)
    done = run_grade("batch", "class", "--out", "terms/spring 24/batch", "--jobs", "1", cwd=where)
    assert done.returncode == 0, done.stdout + done.stderr
    out = where / "terms" / "spring 24" / "batch"
    page = (out / SHEET).read_text(encoding="utf-8")
    command = printed_command(page)
    assert command == ["python", "grade.py", "merge-manual", "manual_scores.csv", "terms/spring 24/batch"]
    assert "&#x27;terms/spring 24/batch&#x27;" in page  # quoted for the shell, then escaped for HTML
    assert not (where / "batch").exists()  # what the sheet used to print
    (where / "manual_scores.csv").write_text("student_id,item,points,comment\n2001,inline_answer,2,brief\n")
    merged = run_grade(*command[2:], cwd=where)  # as typed there (grade.py is the harness's)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    document = json.loads((out / "2001" / "results.json").read_text(encoding="utf-8"))
    assert next(t for t in document["tests"] if t["tags"] == ["inline_answer"])["score"] == 2
    assert printed_command((out / SHEET).read_text(encoding="utf-8")) == command  # rebuilt by the merge: the same


@pytest.mark.parametrize("given, printed", [
    ("/srv/grading/fall/batch", "/srv/grading/fall/batch"),
    ("out dir/it's here", "'out dir/it'\"'\"'s here'"),
    ("-batch", "./-batch"),
    ("$(rm -rf ~)", "'$(rm -rf ~)'"),
])
def test_the_printed_folder_is_quoted_for_a_shell(graded, tmp_path, given, printed):
    from autograder.reports.manual_sheet import merge_command
    out = tmp_path / "base"
    student(out, graded, "3001")
    gradebook(out, [("3001", "graded", "")])
    assert merge_command(Path(given)) == f"python grade.py merge-manual manual_scores.csv {printed}"
    assert shlex.split(merge_command(Path(given)))[-1] in (given, f"./{given}")
    page = build_manual_sheet(out).read_text(encoding="utf-8")
    assert printed_command(page)[-1] == str(out)  # absolute, as this call was given it

"""The staff's grading sheet as staff use it: a real batch, the page opened from OUT as a file in
headless Chromium driven over the DevTools protocol (tests/cdp.py), scores typed and the button
clicked, the downloaded CSV merged with `grade.py merge-manual` as a real subprocess.

Without Chromium the tests are skipped, unless CNN_GRADER_REQUIRE_BROWSER is set (CI sets it).
With CNN_GRADER_UPDATE_DOCS=1 the screenshot also replaces docs/manual_grading.png.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import filter_renderings as draw
import nbformat
import pytest
from cdp import Browser
from conftest import REFERENCE, TEMPLATE, need_tool, run_grade
from submissions import LAYERS, make_submission
from test_manual_sheet import ADVERSARIAL

from autograder import REPO_ROOT
from autograder.reports.manual_sheet import SHEET

pytestmark = pytest.mark.slow

OWN_ANSWER = """Most filters look like **edge detectors** at different angles; a few are colour blobs.

- horizontal and vertical edges
- red/green opposition

See `conv1_w`: 16 filters of 3x3."""


def _chromium() -> str:
    return (shutil.which("chromium") or shutil.which("chromium-browser")
            or need_tool("chromium", "CNN_GRADER_REQUIRE_BROWSER", "chromium"))


def set_answer(folder: Path, text: str) -> None:
    """Put `text` in the notebook's tagged answer cell, as a student would write it."""
    path = folder / "Problem_2.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "inline-answer" in c.metadata.get("tags", []))
    cell.source = text
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A real batch: the reference whose filter image shows its saved weights, a copy of it (same answer)
    whose image shows another run's filters, a mutant with its own answer and no weights (provisional),
    the template, a corrupt zip, and an answer that tries to run script and fake the page's fields."""
    root = tmp_path_factory.mktemp("sheet-browser")
    folder = root / "submissions"
    mine, other = draw.weights("trained_1"), draw.weights("trained_2")
    draw.show_filters(make_submission(folder / "2001", source=REFERENCE), draw.subplots(mine, 4, 4), mine)
    draw.show_filters(make_submission(folder / "2002", source=REFERENCE), draw.handout(other, 2, 8), mine)
    mutant = make_submission(folder / "2003", [(LAYERS, "windows.max(axis=(4, 5))", "windows.mean(axis=(4, 5))")])
    set_answer(draw.show_filters(mutant, draw.handout(mine, 4, 4), None), OWN_ANSWER)
    make_submission(folder / "2004", source=TEMPLATE)
    (folder / "2005.zip").write_bytes(b"PK\x03\x04 cut short")
    set_answer(make_submission(folder / "2006", source=REFERENCE), ADVERSARIAL)
    out = root / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    return folder, out


def points(page, student: str, item: str) -> str:
    return f"input.points[data-student='{student}'][data-item='{item}']"


def focused(page) -> list:
    return page.evaluate("(e => [e.dataset.student || e.id, e.dataset.item || '', e.className])"
                         "(document.activeElement)")


def download(browser: Browser, page, folder: Path) -> Path:
    before = set(folder.iterdir()) if folder.exists() else set()
    page.click("#download")
    browser.wait_event("Browser.downloadProgress", where=lambda params: params.get("state") == "completed")
    new = [path for path in folder.iterdir() if path not in before and path.suffix == ".csv"]
    assert len(new) == 1, new
    return new[0]


def test_staff_grade_in_the_browser_download_the_csv_and_merge_it(graded_class, tmp_path):
    executable = _chromium()
    submissions, out = graded_class
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(executable, tmp_path / "profile", window=(1200, 1400)) as browser:
        browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                     "eventsEnabled": True})
        page = browser.new_page()
        page.open((out / SHEET).as_uri())

        # every card, every planted image decoded; nothing the adversarial answer wrote ran or counts
        state = page.evaluate("""(async () => {
            const images = [...document.images];
            await Promise.all(images.map(i => i.decode().catch(() => null)));
            return {cards: [...document.querySelectorAll('section.card')].map(c => c.dataset.student || ''),
                    images: images.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
                    inputs: document.querySelectorAll('input').length,
                    points: [...document.querySelectorAll('input.points')].map(i => i.dataset.student),
                    scripts: document.scripts.length, pwned: window.__pwned === undefined ? null : window.__pwned,
                    jsLinks: document.querySelectorAll('a[href^="javascript" i], a[href^="data" i]').length,
                    hidden: getComputedStyle(document.body).display,
                    text: document.querySelector("section.card[data-student='2006'] .answer").textContent,
                    progress: document.getElementById('progress').textContent}; })()""")
        assert state["cards"] == ["2001", "2002", "2003", "2004", "2005", "2006"]
        assert sorted(src for src, *_ in state["images"]) == [
            "2001/filters_from_weights.png", "2001/filters_notebook.png", "2002/filters_from_weights.png",
            "2002/filters_notebook.png", "2003/filters_notebook.png"]
        assert all(complete and width > 0 for _, complete, width in state["images"]), state["images"]
        scored = page.evaluate("""Object.fromEntries([...document.querySelectorAll('section.card')].map(c =>
            [c.dataset.student, (c.querySelector('p.provisional') || {}).textContent || '']))""")
        assert "grader's score: 5 / 5" in scored["2001"] and "16 of 16 filters" in scored["2001"], scored
        assert "grader's score: 0 / 5" in scored["2002"], scored  # another run's filters
        assert "provisional score: 5 / 5" in scored["2003"], scored  # no weights to check against
        assert state["inputs"] == 12 and state["points"] == [s for s in state["cards"] for _ in (0, 1)]
        assert state["scripts"] == 1 and state["pwned"] is None and state["jsLinks"] == 0
        assert state["hidden"] == "block"  # the answer's <style> is text, not a style
        assert "<script>window.__pwned = 1</script>" in state["text"] and "<input" in state["text"]
        assert state["progress"] == ("graded 0 of 6 students (scores: 1 verified by the grader, 0 merged, 0 typed, "
                                     "not merged yet)")  # 2001's filters: matched against its weights

        # type as staff do: click, type, Tab from field to field, Enter to the next student
        page.click(points(page, "2001", "filters"))
        page.type("4.5")
        page.press("Tab")
        assert focused(page)[:2] == ["2001", "filters"] and "comment" in focused(page)[2]
        page.type('Clear filters, "edges", well shown')
        page.press("Tab")
        assert focused(page)[:2] == ["2001", "inline_answer"] and "points" in focused(page)[2]
        page.type("3")
        page.press("Tab")
        page.type("Names edges; colour\nopponents missing")
        page.press("Enter")  # from a comment too: the next student's first field, scrolled to
        assert focused(page)[:2] == ["2002", "filters"] and "points" in focused(page)[2]
        assert page.evaluate("document.querySelector(\"section.card[data-student='2002']\")"
                             ".getBoundingClientRect().top < 200")
        page.type("7")  # out of range: shown as invalid, not exported
        page.press("Tab")
        page.type("blurred")
        page.press("Enter", shift=True)  # a new line in the comment; focus stays
        page.type("grid")
        assert focused(page)[:2] == ["2002", "filters"] and "comment" in focused(page)[2]
        page.press("Tab")
        page.type("2.5")
        page.press("Enter")
        assert focused(page)[:2] == ["2003", "filters"]
        invalid = page.evaluate("""(f => [f.classList.contains('invalid'), f.getAttribute('aria-invalid'),
            f.closest('.fields').querySelector('.invalid-message').textContent])(document.querySelector(
            "input.points[data-student='2002'][data-item='filters']"))""")
        assert invalid == [True, "true", "7 is outside 0..5: not exported"]
        assert page.evaluate("document.getElementById('progress').textContent") == \
            "graded 1 of 6 students (scores: 0 verified by the grader, 0 merged, 3 typed, not merged yet, 1 invalid)"

        page.evaluate("window.scrollTo(0, 0)")
        shot = tmp_path / "manual_grading.png"
        page.screenshot(shot, 1200, 1400)

        scores = download(browser, page, downloads)
        text = scores.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows == [["student_id", "item", "points", "comment"],
                        ["2001", "filters", "4.5", 'Clear filters, "edges", well shown'],
                        ["2001", "inline_answer", "3", "Names edges; colour\nopponents missing"],
                        ["2002", "inline_answer", "2.5", ""]]
        assert '"Clear filters, ""edges"", well shown"' in text  # quoted as CSV quotes
        said = page.evaluate("document.getElementById('message').textContent")
        assert "3 rows" in said and "invalid points: 2002 filters" in said

        # staff merge the file as they would, and the grades change
        merged = run_grade("merge-manual", str(scores), str(out))
        assert merged.returncode == 0, merged.stdout + merged.stderr
        tests = {t["tags"][0]: t for t in json.loads((out / "2001" / "results.json").read_text())["tests"]
                 if t.get("tags")}
        assert tests["inline_answer"]["score"] == 3 and tests["filters"]["score"] == 4.5
        assert tests["filters"]["extra_data"]["staff"]["comment"] == 'Clear filters, "edges", well shown'
        book = {row["student_id"]: row for row in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
        assert float(book["2001"]["inline_answer"]) == 3 and float(book["2002"]["inline_answer"]) == 2.5
        again = run_grade("batch", str(submissions), "--out", str(out), "--jobs", "2")  # staff scores kept
        assert again.returncode == 0, again.stderr
        book = {row["student_id"]: row for row in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
        assert float(book["2001"]["inline_answer"]) == 3 and float(book["2002"]["inline_answer"]) == 2.5

        # the rebuilt sheet, reloaded, keeps what was typed (and says what was merged)
        page.reload()
        merged_notes = page.evaluate("[...document.querySelectorAll('.merged')].map(p => p.textContent)")
        assert any('Clear filters, "edges", well shown' in note for note in merged_notes), merged_notes
        kept = page.evaluate("""[...document.querySelectorAll('input.points, textarea.comment')]
            .filter(f => f.value !== '').map(f => [f.dataset.student, f.dataset.item, f.value])""")
        assert kept == [["2001", "filters", "4.5"], ["2001", "filters", 'Clear filters, "edges", well shown'],
                        ["2001", "inline_answer", "3"],
                        ["2001", "inline_answer", "Names edges; colour\nopponents missing"],
                        ["2002", "filters", "7"], ["2002", "filters", "blurred\ngrid"],
                        ["2002", "inline_answer", "2.5"]]
        assert page.evaluate("document.querySelector(\"section.card[data-student='2001'] .merged\") !== null")
        # what was typed and merged counts as merged; the invalid field is still not graded
        assert page.evaluate("document.getElementById('progress').textContent") == \
            "graded 1 of 6 students (scores: 0 verified by the grader, 3 merged, 0 typed, not merged yet, 1 invalid)"
        page.evaluate(f"document.querySelector(\"{points(page, '2002', 'inline_answer')}\").value = ''")
        page.click(points(page, "2002", "inline_answer"))
        page.type("3")  # 2.5 merged, now 3: typed, not merged yet
        assert page.evaluate("document.getElementById('progress').textContent") == \
            "graded 1 of 6 students (scores: 0 verified by the grader, 2 merged, 1 typed, not merged yet, 1 invalid)"

        # another class's sheet (another folder) starts empty: the saved scores are this file's
        other = tmp_path / "other-class"
        shutil.copytree(out, other)
        page.open((other / SHEET).as_uri())
        assert page.evaluate("[...document.querySelectorAll('input.points')].every(f => f.value === '')")
        # nothing typed there, but the merged scores count: 2001's card is graded
        assert page.evaluate("document.getElementById('progress').textContent") == \
            "graded 1 of 6 students (scores: 0 verified by the grader, 3 merged, 0 typed, not merged yet)"
        assert page.evaluate("document.querySelector(\"section.card[data-student='2001'] .card-state\")"
                             ".textContent") == "graded"

    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 1400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # text, fields and the filter images
        if os.environ.get("CNN_GRADER_UPDATE_DOCS"):
            image.convert("RGB").quantize(colors=256).save(REPO_ROOT / "docs" / "manual_grading.png", optimize=True)


def test_the_merge_reads_back_every_comment_exactly_as_typed(graded_class, tmp_path):
    """Commas, quotes, new lines and a leading '=' survive the round trip: the comment is not
    guarded against spreadsheet formulas, because merge-manual would keep the guard's quote."""
    executable = _chromium()
    _, out = graded_class
    copy = tmp_path / "graded"
    shutil.copytree(out, copy)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    comment = '=SUM(A1) , "quoted"\nsecond line'
    with Browser(executable, tmp_path / "profile") as browser:
        browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                     "eventsEnabled": True})
        page = browser.new_page()
        page.open((copy / SHEET).as_uri())
        page.click(points(page, "2004", "inline_answer"))
        page.type("0.5")
        page.press("Tab")
        page.type(comment)
        scores = download(browser, page, downloads)
    assert run_grade("merge-manual", str(scores), str(copy)).returncode == 0
    document = json.loads((copy / "2004" / "results.json").read_text())
    tests = {t["tags"][0]: t for t in document["tests"] if t.get("tags")}
    assert tests["inline_answer"]["score"] == 0.5
    assert tests["inline_answer"]["extra_data"]["staff"]["comment"] == comment
    assert re.search(r"^2004,inline_answer,0\.5,\"=SUM", scores.read_text(), re.MULTILINE)

"""The staff's grading sheet: OUT/manual_grading.html, one card per student for the items a person grades.

Ten of the 60 points need a person: the filter visualisation (`filters`, scored provisionally by the
grader) and the inline answer (`inline_answer`, pending until staff grade it). The sheet shows, per
student (in the gradebook's order): the total so far, the notebook's filter image (the figure of the filter
section that was judged, with its cell; "no filter image found" only when the section has none) beside the
grader's rendering of the filters from the weights (when grading wrote them), each figure's reading when the
section has several, the provisional filter score with its note, the answer rendered from Markdown with where it
was found (every candidate, for staff to choose, when the student wrote in several places near the question),
who the answer is similar to, and for both items a points field and a comment. Wherever the PDF check
flagged the submission ("PDF mismatch", "PDF not compared") the card shows its evidence: each section's outcome
and note in words, the closest PDF image, the pictures grading wrote, or why the PDF was not compared. A
button downloads what was typed as the CSV that `grade.py merge-manual` reads
(`student_id,item,points,comment`, one row per filled-in points field).

Like the class report it reads only files: OUT/gradebook.csv, OUT/similarity.json and each
OUT/<id>/results.json with the images beside it, so it can be rebuilt at any time.

The page works offline, opened from OUT as a file: no server, no external file. Its images are
referred to by relative URL (`<id>/filters_notebook.png`), so it must stay beside the student folders
(embedding them would make a 300-student page tens of megabytes). The answer is the student's text:
it is rendered with raw HTML off, links only to http(s) and mailto, images shown as text (never
loaded), and a Content-Security-Policy allows nothing remote and only the page's own script and style
(by their sha256). What staff type is kept in the browser's localStorage under a key made of the
page's own path, so two classes' sheets (two OUT folders) never mix and a rebuilt sheet keeps them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import re
import shlex
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt

from autograder.model import ReasonCode
from autograder.notebook.items import NOTEBOOK_IMAGE, RENDERED_IMAGE  # OUT/<id>/, written by grading
from autograder.notebook.pdf_check import DIFFERENT, EVIDENCE_DIR, NOT_FOUND, UNSURE  # pdf_evidence/: grading
from autograder.reports.results import write_atomically
from autograder.reports.similarity import PAIRS, flags_by_student, read_pairs
from autograder.rubric import EXTRA_CREDIT, Rubric, load_rubric

SHEET = "manual_grading.html"  # OUT/
#: The items staff grade here, in the order of each card's fields.
ITEMS = ("filters", "inline_answer", EXTRA_CREDIT)  # extra credit: only where the results have it (2023)
_SAFE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LINK_SCHEMES = ("http://", "https://", "mailto:")


def _markdown() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML off (shown as text), links only to
    http(s) and mailto (others stay their source text), images never loaded (shown as text)."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = lambda url: url.strip().lower().startswith(_LINK_SCHEMES)

    def link_open(renderer, tokens, index, options, env):  # bound to the renderer, as its own rules are
        token = tokens[index]
        token.attrSet("rel", "noopener noreferrer nofollow")
        token.attrSet("target", "_blank")
        token.attrSet("tabindex", "-1")  # Tab goes from field to field, not through the students' links
        return renderer.renderToken(tokens, index, options, env)

    def image(renderer, tokens, index, options, env):
        token = tokens[index]
        alt = "".join(child.content for child in token.children or [])
        return (f"<span class='answer-image'>[image, not loaded: {html.escape(alt)} "
                f"{html.escape(token.attrGet('src') or '')}]</span>")

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


_MD = _markdown()


def render_answer(text: str) -> str:
    """The student's Markdown answer as HTML that cannot run, load or change anything on the page."""
    return _MD.render(text)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _image_file(folder: Path, extra: dict, key: str, default: str) -> str | None:
    """The file name of an image grading wrote beside results.json, or None. `extra[key]` names it
    when grading recorded it (null: none); results from before the key look for the default name."""
    name = extra.get(key, default) if isinstance(extra, dict) else default
    if not isinstance(name, str) or not _SAFE_FILE.fullmatch(name) or not (folder / name).is_file():
        return None
    return name


def _figure(student: str, name: str | None, caption: str, missing: str, css: str) -> str:
    if name is None:
        return f"<figure class='{css} missing'><div class='none'>{html.escape(missing)}</div>" \
               f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    url = f"{quote(student, safe='')}/{quote(name, safe='/')}"  # name: a checked file name, or pdf_evidence/<one>
    return (f"<figure class='{css}'><a href='{url}' target='_blank' tabindex='-1'>"
            f"<img src='{url}' alt='{html.escape(caption)} of {html.escape(student)}'></a>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fields(student: str, item_id: str, maximum: float, step: float, test: dict | None = None,
            settled: bool = False) -> str:
    """The points field (0..maximum, in the rubric's [grading_sheet] point_step) and the comment of one
    item; the script reads who and what from the data attributes. A staff score merged for this
    submission is in data-merged (and its comment in data-merged-comment): the script counts the item
    as graded while the field is blank or holds the same. `settled`: the grader's own score needs no
    person (filters verified against the weights): a blank field counts as graded, by the grader."""
    who = html.escape(student)
    label = html.escape(f"{student} {item_id}")
    staff = _staff(test) if test is not None else None
    merged = ""
    if staff is not None and not staff.get("earlier_submission") and _number(staff.get("points")) is not None:
        merged = (f" data-merged='{_number(staff['points']):g}'"
                  f" data-merged-comment='{html.escape(str(staff.get('comment') or '').strip())}'")
    if settled and not merged:
        merged = " data-settled='grader'"
    return (f"<div class='fields'><label>points <input type='number' class='points' inputmode='decimal' "
            f"min='0' max='{maximum:g}' step='{step:g}' data-student='{who}' data-item='{item_id}' "
            f"data-max='{maximum:g}'{merged} aria-label='points for {label}'> / {maximum:g}</label>"
            f"<span class='invalid-message' aria-live='polite'></span>"
            f"<label class='comment-label'>comment <textarea class='comment' rows='2' data-student='{who}' "
            f"data-item='{item_id}' aria-label='comment for {label}'></textarea></label></div>")


def _staff(test: dict) -> dict | None:
    """What merge-manual recorded when staff set this item (autograder/reports/manual.py), or None."""
    staff = (test.get("extra_data") or {}).get("staff")
    return staff if isinstance(staff, dict) else None


def _merged(test: dict) -> str:
    """What was merged for this item: a note, or a warning when it was given for an earlier submission
    (the student resubmitted since: staff grade the new one)."""
    staff = _staff(test)
    if staff is None:
        return ""
    comment, points = staff.get("comment") or "", staff.get("points", test.get("score"))
    said = f"{html.escape(str(points))} points" + (f" ({html.escape(str(comment))})" if comment else "")
    if staff.get("earlier_submission"):
        return (f"<p class='warning earlier'>Merged for an earlier submission: {said}. The student resubmitted "
                "since; grade this submission again (the old score stays until you merge a new one).</p>")
    return f"<p class='merged'>Already merged from a CSV: {said}.</p>"


def _blank_hint(test: dict) -> str:
    """What a blank points field leaves in place: the current score, and whose it is."""
    staff = _staff(test)
    score = _number(test.get("score")) or 0
    if staff is not None:
        whose = ("the staff's, for an earlier submission" if staff.get("earlier_submission")
                 else "the staff's, merged")
    elif (test.get("extra_data") or {}).get("grading") == "pending":
        whose = "pending: not graded yet"
    else:
        whose = "the grader's"
    return f"<p class='hint'>Blank points: no row in the CSV, the current score stays ({score:g}, {whose}).</p>"


def _filters_section(student: str, folder: Path, test: dict | None, rubric: Rubric) -> str:
    item = rubric.item("filters")
    if test is None:
        return f"<div class='item'><h3>{html.escape(item.title)}</h3><p>not in the results</p></div>"
    extra = test.get("extra_data") or {}
    notebook = _image_file(folder, extra, "notebook_image", NOTEBOOK_IMAGE)
    rendered = _image_file(folder, extra, "rendered_image", RENDERED_IMAGE)
    about = []
    match, shown = _number(extra.get("match")), _number(extra.get("shown"))
    if match is not None:
        about.append(f"mean correlation {match:.2f}")
    if shown is not None:
        about.append(f"{shown:g} filters shown")
    staff = _staff(test)
    kind = ("staff's, for an earlier submission," if staff is not None and staff.get("earlier_submission")
            else "staff's" if staff is not None else "provisional" if extra.get("provisional")
            else "uncertain" if extra.get("reason_code") == ReasonCode.FILTERS_UNCERTAIN else "grader's")
    note = str(test.get("output") or "").split("\n\n")[0]
    verified = staff is None and not extra.get("provisional") and extra.get("reason_code") == ReasonCode.PASSED \
        and shown is not None  # matched against the weights: nothing left for a person
    figures = (_figure(student, notebook, "the notebook's filter image" + _judged_caption(extra),
                       _no_figure(extra), "notebook")
               + _figure(student, rendered, "from the weights" + (f" ({', '.join(about)})" if about else ""),
                         "no weights to render", "rendered"))
    return (f"<div class='item filters'><h3>{html.escape(item.title)} <span class='max'>({item.points:g} points)"
            f"</span></h3><div class='figures'>{figures}</div>{_judged_list(extra)}"
            f"<p class='provisional'>{kind} score: <b>{_number(test.get('score')) or 0:g} / {item.points:g}</b> "
            f"&mdash; {html.escape(note)}</p>{_merged(test)}{_blank_hint(test)}"
            f"{_fields(student, 'filters', item.points, rubric.grading_sheet.point_step, test, verified)}</div>")


def _judged_caption(extra: dict) -> str:
    """" (cell 14, figure 2 of the filter section's 3)": which figure of the section is shown (the one judged)."""
    cell, cells = _number(extra.get("image_cell")), extra.get("image_cells")
    count = len(cells) if isinstance(cells, list) else 0
    index = _number(extra.get("image_index"))
    if cell is None:
        return ""
    if count > 1 and index is not None:
        return f" (cell {cell:g}, figure {index + 1:g} of the filter section's {count})"
    return f" (cell {cell:g})"


def _no_figure(extra: dict) -> str:
    """What stands in place of the notebook's figure: "no filter image found" only when the filter section had
    none at all; otherwise why none is shown."""
    count = _number(extra.get("images")) or 0
    if count == 0 and extra.get("left_out"):
        return "the filter section's image was left out (see the note)"
    if count == 0:
        return "no filter image found"
    return f"the filter section has {count:g} image(s), none saved beside the results: see the notebook"


def _judged_list(extra: dict) -> str:
    """Every figure of the filter section that was compared with the weights, when there were several: which
    cell, how many filters it shows, its correlation; the one shown marked."""
    judged = extra.get("judged")
    if not isinstance(judged, list) or len(judged) < 2:
        return ""
    shown_index = _number(extra.get("image_index"))
    rows = []
    for one in judged:
        if not isinstance(one, dict):
            continue
        cell, shown, match = _number(one.get("cell")), _number(one.get("shown")), _number(one.get("match"))
        said = (f"{shown:g} filters recognised, mean correlation {match:.2f}" if shown is not None and match is not None
                else "could not be read")
        mark = " &larr; shown above" if _number(one.get("image_index")) == shown_index else ""
        rows.append(f"<li>cell {'?' if cell is None else f'{cell:g}'}: {said}{mark}</li>")
    return (f"<p class='hint'>The filter section has {len(judged)} figures; each was compared with the weights:</p>"
            f"<ul class='hint'>{''.join(rows)}</ul>")


def _candidates(extra: dict) -> list[dict]:
    """The answer's candidates as grading recorded them (autograder/notebook/items.py), each well formed."""
    found = extra.get("answer_candidates")
    if not isinstance(found, list):
        return []
    return [one for one in found if isinstance(one, dict) and isinstance(one.get("text"), str)
            and isinstance(one.get("cells"), list) and isinstance(one.get("where"), str)]


def _place(one: dict) -> str:
    cells = [f"{c:g}" for c in (_number(c) for c in one["cells"]) if c is not None]
    return f"{'cell' if len(cells) == 1 else 'cells'} {', '.join(cells)}, {one['where']}"


def _answer_body(text: str, candidates: list[dict]) -> str:
    """The answer: one text (and where it was found), or, when the student wrote in more than one place near the
    question, every candidate for staff to choose from: the grader does not pick one silently."""
    if len(candidates) > 1:
        blocks = "".join(f"<h4 class='candidate'>Candidate {number}: {html.escape(_place(one))} "
                         f"<span class='words'>({len(one['text'].split())} words)</span></h4>"
                         f"<div class='answer'>{render_answer(one['text'])}</div>"
                         for number, one in enumerate(candidates, start=1))
        return (f"<p class='warning'>Text of the student's in {len(candidates)} places near the question: the grader "
                f"did not choose. Read them all; grade the one that answers the question (or all of them together), "
                f"and say which in the comment.</p>{blocks}")
    if not text.strip():
        return "<p class='none'>no answer found</p>"
    where = f"<p class='hint'>Found in {html.escape(_place(candidates[0]))}.</p>" if candidates else ""
    return f"{where}<div class='answer'>{render_answer(text)}</div>"


def _answer_section(student: str, test: dict | None, similar: list[str], rubric: Rubric) -> str:
    item = rubric.item("inline_answer")
    if test is None:
        return f"<div class='item'><h3>{html.escape(item.title)}</h3><p>not in the results</p></div>"
    extra = test.get("extra_data") or {}
    text = extra.get("answer") if isinstance(extra.get("answer"), str) else ""
    words = f"{len(text.split())} words"
    cut = ""
    if _number(extra.get("cut_at")) is not None and _number(extra.get("answer_chars")) is not None:
        words += f" (of its first {_number(extra['cut_at']):,.0f} characters)"
        cut = (f"<p class='warning'>The answer was cut at {_number(extra['cut_at']):,.0f} of its "
               f"{_number(extra['answer_chars']):,.0f} characters for grading: read the whole answer in the "
               f"student's notebook.</p>")
    flags = "".join(f"<li>{html.escape(flag)}</li>" for flag in similar if flag.startswith("similar answer"))
    candidates = _candidates(extra)
    if len(candidates) > 1:
        words += f" in {len(candidates)} places"
    unread = extra.get("reason_code") in (ReasonCode.NOTEBOOK_UNREADABLE, ReasonCode.UNREADABLE_SUBMISSION)
    body = f"<p class='warning'>{html.escape(str(test.get('output')))}</p>" if unread else \
        _answer_body(text, candidates)
    return (f"<div class='item inline-answer'><h3>{html.escape(item.title)} <span class='max'>({item.points:g} "
            f"points)</span> <span class='words'>{words}</span></h3>"
            + (f"<ul class='similar'>{flags}</ul>" if flags else "")
            + f"{cut}{body}{_merged(test)}{_blank_hint(test)}"
            + f"{_fields(student, 'inline_answer', item.points, rubric.grading_sheet.point_step, test)}</div>")


def _extra_credit_section(student: str, test: dict | None, rubric: Rubric) -> str:
    """The edition's extra credit (outside the total), when these results have it: the work's text, how many
    figures (they are in the staff's PDF beside the results), the fields. With no work the grader's 0 is
    settled: a blank field counts as graded."""
    if test is None:
        return ""
    extra = test.get("extra_data") or {}
    maximum = _number(test.get("max_score")) or 0.0
    title = str(test.get("name", "")).removesuffix(f" [{EXTRA_CREDIT}]")
    text = extra.get("work") if isinstance(extra.get("work"), str) else ""
    figures = int(_number(extra.get("figures")) or 0)
    pdf = f"{quote(student, safe='')}/{quote(rubric.assignment.pdf, safe='')}"
    shown = (f"<p class='hint'>{figures} figure{'' if figures == 1 else 's'}: see the extra-credit section of "
             f"<a href='{pdf}' target='_blank' tabindex='-1'>the staff's PDF</a>.</p>" if figures else "")
    body = (f"<div class='answer'>{render_answer(text)}</div>" if text.strip()
            else "<p class='none'>no extra-credit text</p>" if figures else
            "<p class='none'>no extra-credit work found</p>")
    settled = extra.get("reason_code") == ReasonCode.NO_EXTRA_CREDIT
    return (f"<div class='item extra-credit'><h3>{html.escape(title)} <span class='max'>({maximum:g} points, "
            f"extra credit: not in the total)</span></h3>{body}{shown}{_merged(test)}{_blank_hint(test)}"
            f"{_fields(student, EXTRA_CREDIT, maximum, rubric.grading_sheet.point_step, test, settled)}</div>")


def _pdf_section(student: str, folder: Path, document: dict) -> str:
    """Every PDF check that asks staff to look, with its evidence: the gradebook's "PDF mismatch" (a different
    figure) and "PDF not compared" (a section it could not tell, a PDF with no image, a PDF it could not read)
    must each be visible on the card that staff grade from, never a flag with nothing behind it. Per section
    the outcome and the check's note in words, the PDF image it came closest to, and the notebook's picture
    beside the PDF's where grading wrote them (OUT/<id>/pdf_evidence/); the images it left out. Nothing for a
    PDF showing the notebook's figures."""
    parts = []
    for test in document.get("tests", []):
        if not isinstance(test, dict) or test.get("tags") != ["pdf_consistency"]:
            continue
        extra = test.get("extra_data") or {}
        pdf = html.escape(str(extra.get("pdf") or "PDF"))
        left_out = _left_out(extra)
        problem = extra.get("problem")
        if isinstance(problem, str) and problem:
            parts.append(f"<div class='item pdf-check'><h3>{pdf}: not compared <span class='max'>(no points)"
                         f"</span></h3><p class='hint outcome'>The check did not compare this PDF with the notebook: "
                         f"{html.escape(problem)}. Open the PDF and look at it.</p>{left_out}</div>")
            continue
        sections = extra.get("sections") if isinstance(extra.get("sections"), dict) else {}
        evidence = extra.get("evidence") if isinstance(extra.get("evidence"), dict) else {}
        for section, state in sections.items():
            if state not in _ASKS_STAFF:
                continue
            seen = evidence.get(section) if isinstance(evidence.get(section), dict) else {}
            kind = "warning" if state in (DIFFERENT, "mismatched") else "hint"
            parts.append(f"<div class='item pdf-check'><h3>{pdf}: {html.escape(str(section))} <span class='max'>"
                         f"({html.escape(str(state))}, no points)</span></h3>"
                         f"{_pdf_pictures(student, folder, seen)}"
                         f"<p class='{kind} outcome'>{html.escape(_found_words(str(state), seen))}</p>"
                         f"{_closest(seen)}{left_out}</div>")
            left_out = ""  # said once per PDF
    return "".join(parts)


#: The outcomes of a PDF section that ask staff to look ("mismatched": results from before the three outcomes).
_ASKS_STAFF = (DIFFERENT, "mismatched", UNSURE, NOT_FOUND)


def _found_words(state: str, seen: dict) -> str:
    """What the check found for a section, in words: its outcome ("could not tell", "not found", ...) and its
    own note (why, which image)."""
    note = str(seen.get("note") or "").strip().rstrip(".")
    return f"{state[:1].upper()}{state[1:]}" + (f": {note}." if note else ".")


def _closest(seen: dict) -> str:
    """The PDF image the check came closest to (its number in the PDF's reading order, its page, the score), or
    nothing when it compared none."""
    image, page = _number(seen.get("image")), _number(seen.get("page"))
    if image is None:
        return ""
    said = f"Closest image of the PDF: image {image:g}" + (f" on page {page:g}" if page is not None else "")
    distance, correlation = _number(seen.get("distance")), _number(seen.get("correlation"))
    if distance is not None:
        said += f", {distance:.3f} of the strokes without a counterpart"
    if correlation is not None:
        said += f", correlation {correlation:.2f}"
    return f"<p class='hint closest'>{html.escape(said)}.</p>"


def _pdf_pictures(student: str, folder: Path, seen: dict) -> str:
    """The notebook's figure beside the PDF's closest image, where grading wrote them; else words saying why
    there is nothing to see."""
    files = seen.get("files") if isinstance(seen.get("files"), dict) else {}
    written = {side: _evidence_file(folder, files.get(side)) for side in ("notebook", "pdf")}
    if not any(written.values()):
        return "<p class='hint'>No pictures of this section were written.</p>"
    return "<div class='figures'>" + "".join(
        _figure(student, written[side], caption, "picture not written", css)
        for side, caption, css in (("notebook", "the notebook's figure", "notebook"),
                                   ("pdf", "the PDF's closest image", "pdf"))) + "</div>"


def _left_out(extra: dict) -> str:
    """The PDF's images the check did not compare (too large, undecodable, past the image cap), in words."""
    notes = [str(note) for note in (extra.get("left_out") or []) if isinstance(note, str) and note]
    if not notes:
        return ""
    return ("<p class='hint'>Not compared:</p><ul class='hint left-out'>"
            + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")


def _evidence_file(folder: Path, name) -> str | None:
    """`pdf_evidence/<name>` when `name` is a plain file name and the file is there, else None."""
    if not isinstance(name, str) or not _SAFE_FILE.fullmatch(name) or not (folder / EVIDENCE_DIR / name).is_file():
        return None
    return f"{EVIDENCE_DIR}/{name}"


def _card(index: int, row: dict, out_dir: Path, similar: dict[str, list[str]], rubric: Rubric) -> str:
    student = row["student_id"]
    folder = out_dir / student
    results = folder / "results.json"
    head = f"<h2><span class='student-id'>{html.escape(student)}</span>"
    document = None
    if results.is_file():
        try:
            document = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            document = None
    if not isinstance(document, dict):
        why = row.get("flags") or row.get("status") or "no results"
        return (f"<section class='card no-results' id='card-{index}'>{head}</h2><p class='warning'>No results "
                f"to grade: {html.escape(why)}. Nothing here can be merged; see the student's folder.</p></section>")
    tests = {}
    for test in document.get("tests", []):
        if test.get("tags") and test["tags"][0] in ITEMS:
            tests[test["tags"][0]] = test
    meta = document.get("extra_data") or {}
    warnings = []
    if meta.get("intake_error"):
        warnings.append(f"Unreadable submission: {meta['intake_error']}")
    if meta.get("harness_fault") or "harness fault" in (row.get("flags") or "") or row.get("status") == "harness fault":
        warnings.append(f"Harness fault while grading: {meta.get('harness_fault') or row.get('flags')}. "
                        "What is shown may be incomplete; look at the submission itself.")
    total = _number(document.get("score"))
    return (f"<section class='card' id='card-{index}' data-student='{html.escape(student)}'>{head}"
            f"<span class='total'>total so far {total or 0:g} / {rubric.total:g}</span>"
            f"<span class='card-state'></span></h2>"
            + "".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings)
            + _filters_section(student, folder, tests.get("filters"), rubric)
            + _answer_section(student, tests.get("inline_answer"), similar.get(student, []), rubric)
            + _extra_credit_section(student, tests.get(EXTRA_CREDIT), rubric)
            + _pdf_section(student, folder, document)
            + "</section>")


def _rows(out_dir: Path) -> list[dict]:
    """The gradebook's rows (every student, in its order); without a gradebook, every folder with results."""
    book = out_dir / "gradebook.csv"
    if book.is_file():
        with open(book, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    return [{"student_id": path.parent.name} for path in sorted(out_dir.glob("*/results.json"))]


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def content_security_policy(script: str, style: str) -> str:
    """Nothing remote, nothing but the page's own script and style (by hash), images from the page's
    own folder only, no forms, no base URL."""
    return (f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
            "img-src 'self' file:; base-uri 'none'; form-action 'none'")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
header{position:sticky;top:0;z-index:2;background:#1f3b5b;color:#fff;padding:.6em 1.2em;display:flex;
 flex-wrap:wrap;gap:.4em 1.2em;align-items:center}
header h1{font-size:1.15em;margin:0}
#progress{font-weight:600}
#download{font-size:1em;padding:.35em .9em;border-radius:4px;border:0;background:#ffd166;color:#1d2430;cursor:pointer}
#download:focus{outline:3px solid #fff}
#message{flex-basis:100%;color:#ffe3a3}
#message:empty{display:none}
main{max-width:78em;margin:0 auto;padding:1em}
.intro{font-size:.92em;color:#445}
.card{background:#fff;border:1px solid #ccd3dc;border-radius:6px;margin:1em 0;padding:.6em 1.1em;
 scroll-margin-top:5.5em}
.card.done{border-left:6px solid #2a9d60}
.card h2{font-size:1.1em;display:flex;gap:1em;align-items:baseline;margin:.3em 0}
.total{font-weight:400;color:#445}
.card-state{margin-left:auto;font-size:.85em;font-weight:400;color:#2a9d60}
.item{border-top:1px solid #e4e8ee;padding:.4em 0}
.item h3{font-size:1em;margin:.3em 0}
.max,.words{font-weight:400;color:#667;font-size:.9em}
.figures{display:flex;gap:1em;flex-wrap:wrap}
figure{margin:0;text-align:center}
figure img{max-width:30em;max-height:16em;border:1px solid #dde;image-rendering:pixelated;background:#fafafa}
figure .none{width:16em;height:6em;display:flex;align-items:center;justify-content:center;border:1px dashed #bbc;
 color:#778;background:#fafafa}
figcaption{font-size:.85em;color:#556}
.answer{background:#f8f9fb;border-left:3px solid #9ab;padding:.2em .9em;max-height:24em;overflow:auto;
 overflow-wrap:anywhere}
.answer h1,.answer h2,.answer h3,.answer h4,.answer h5,.answer h6{font-size:1em}
.answer pre{white-space:pre-wrap}
.answer-image{color:#777;font-style:italic}
.similar{color:#9a4a00;margin:.2em 0}
.warning{background:#fff1e6;border:1px solid #f0a060;padding:.4em .7em;border-radius:4px}
.merged{color:#2a6d9d}
.earlier{color:#8a3b00}
.hint{font-size:.85em;color:#667;margin:.2em 0}
.fields{display:flex;flex-wrap:wrap;gap:.3em 1.2em;align-items:flex-start;margin:.4em 0}
.points{width:5em;font-size:1em}
.points.invalid{outline:2px solid #d62828;background:#ffe5e5}
.invalid-message{color:#d62828;font-size:.9em;min-width:10em}
.comment-label{flex:1;display:flex;gap:.5em;min-width:20em}
.comment{flex:1;font:inherit}
input:focus,textarea:focus{outline:3px solid #ffd166}
"""

_SCRIPT = r"""
(() => {
  "use strict";
  const KEY = "cnn-grader manual sheet v1 " + location.pathname;
  const points = [...document.querySelectorAll("input.points")];
  const comments = [...document.querySelectorAll("textarea.comment")];
  const fields = [...document.querySelectorAll("input.points, textarea.comment")];
  const cards = [...document.querySelectorAll("section.card")].filter(c => c.querySelector("input.points"));
  const message = document.getElementById("message");
  const id = f => JSON.stringify([f.dataset.student, f.dataset.item, f.classList.contains("points") ? "p" : "c"]);

  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }
  for (const f of fields) if (typeof saved[id(f)] === "string") f.value = saved[id(f)];

  function save() {
    const values = {};
    for (const f of fields) if (f.value !== "") values[id(f)] = f.value;
    try { localStorage.setItem(KEY, JSON.stringify(values)); }
    catch (e) { message.textContent = "Could not keep the scores in this browser (" + e + "): download them."; }
  }

  // "" for a blank field, a number for a valid one, or a string saying why it is invalid.
  function check(f) {
    if (f.validity.badInput) return "not a number";
    const text = f.value.trim();
    if (text === "") return "";
    const value = Number(text), max = Number(f.dataset.max);
    if (!Number.isFinite(value)) return "not a number";
    if (value < 0 || value > max) return value + " is outside 0.." + max;
    const step = Number(f.step) || 1;  // the rubric's [grading_sheet] point_step
    if (Math.abs(value / step - Math.round(value / step)) > 1e-9) return value + " is not in steps of " + step;
    return value;
  }

  function show(f) {
    const verdict = check(f);
    const bad = typeof verdict === "string" && verdict !== "";
    f.classList.toggle("invalid", bad);
    f.setAttribute("aria-invalid", bad ? "true" : "false");
    f.closest(".fields").querySelector(".invalid-message").textContent = bad ? verdict + ": not exported" : "";
    return verdict;
  }

  // One points field: "merged" (blank, or the same points and comment as merged for this submission),
  // "typed" (a valid score not merged yet), "grader" (blank, the grader's score verified), "invalid",
  // or "" (not graded).
  function state(f) {
    const verdict = show(f);
    if (typeof verdict === "string" && verdict !== "") return "invalid";
    const merged = f.dataset.merged;
    if (merged === undefined) return verdict !== "" ? "typed" : f.dataset.settled ? "grader" : "";
    const comment = f.closest(".fields").querySelector("textarea.comment").value.trim();
    if (verdict === "" || (verdict === Number(merged) && comment === f.dataset.mergedComment)) return "merged";
    return "typed";
  }

  function progress() {
    let done = 0;
    const count = {grader: 0, merged: 0, typed: 0, invalid: 0};
    for (const card of cards) {
      const own = [...card.querySelectorAll("input.points")].map(state);
      for (const s of own) if (s) count[s] += 1;
      const graded = own.filter(s => s === "grader" || s === "merged" || s === "typed").length;
      card.classList.toggle("done", graded === own.length);
      card.querySelector(".card-state").textContent = graded === own.length ? "graded" : graded + " of " + own.length;
      if (graded === own.length) done += 1;
    }
    document.getElementById("progress").textContent =
      "graded " + done + " of " + cards.length + " students (scores: " + count.grader + " verified by the grader, " +
      count.merged + " merged, " +
      count.typed + " typed, not merged yet" + (count.invalid ? ", " + count.invalid + " invalid" : "") + ")";
  }

  function quoteCsv(value) {
    const text = String(value);
    return /[",\r\n]/.test(text) || text.trim() !== text ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function download() {
    const lines = [["student_id", "item", "points", "comment"]];
    const invalid = [], commentOnly = [];
    for (const f of points) {
      const verdict = show(f);
      const comment = f.closest(".fields").querySelector("textarea.comment").value;
      if (typeof verdict === "number") lines.push([f.dataset.student, f.dataset.item, String(verdict), comment]);
      else if (verdict !== "") invalid.push(f.dataset.student + " " + f.dataset.item);
      else if (comment.trim() !== "") commentOnly.push(f.dataset.student + " " + f.dataset.item);
    }
    const csv = lines.map(row => row.map(quoteCsv).join(",")).join("\r\n") + "\r\n";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csv], {type: "text/csv;charset=utf-8"}));
    link.download = "manual_scores.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    let said = "Downloaded manual_scores.csv with " + (lines.length - 1) + " rows.";
    if (invalid.length) said += " Not exported, invalid points: " + invalid.join(", ") + ".";
    if (commentOnly.length) said += " Not exported, a comment without points: " + commentOnly.join(", ") + ".";
    message.textContent = said;
  }

  function nextStudent(from) {
    const card = from.closest("section.card");
    const at = cards.indexOf(card);
    const next = cards[at + 1];
    const target = next ? next.querySelector("input.points") : document.getElementById("download");
    target.focus({preventScroll: true});
    (next || target).scrollIntoView({block: "start"});
  }

  document.addEventListener("input", event => {
    if (!event.target.matches("input.points, textarea.comment")) return;
    save();
    progress();
  });
  document.addEventListener("keydown", event => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!event.target.matches("input.points, textarea.comment")) return;
    event.preventDefault();  // Shift+Enter makes a new line in a comment
    nextStudent(event.target);
  });
  document.getElementById("download").addEventListener("click", download);
  progress();
})();
"""


def merge_command(out_dir: Path) -> str:
    """The merge-manual command staff run after downloading the CSV, as it must be typed: OUT as this process was
    given it (relative to where the batch or the merge was run, or absolute), never its last name alone, which
    names another folder, or none, from there; quoted for a POSIX shell (spaces, quotes, a leading '-')."""
    folder = str(out_dir)
    if folder.startswith("-"):  # a folder named like an option: say it as a path
        folder = f"./{folder}"
    return f"python grade.py merge-manual manual_scores.csv {shlex.quote(folder)}"


def build_manual_sheet(out_dir: Path) -> Path:
    """Write OUT/manual_grading.html from the batch's files (the gradebook, similarity.json, each
    student's results.json and images); returns its path."""
    rubric = load_rubric()
    rows = _rows(out_dir)
    similar = flags_by_student(read_pairs(out_dir / PAIRS))
    cards = "".join(_card(index, row, out_dir, similar, rubric) for index, row in enumerate(rows))
    title = f"Manual grading: {rubric.title}"
    items = " and ".join(f"{rubric.item(i).title} ({rubric.item(i).points:g} points)" for i in ITEMS
                         if i != EXTRA_CREDIT) + " (and, where the edition has it, its extra credit)"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{content_security_policy(_SCRIPT, _STYLE)}">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)} ({html.escape(out_dir.name)})</title>
<style>{_STYLE}</style></head>
<body><header><h1>{html.escape(title)} <small>({html.escape(out_dir.name)})</small></h1>
<span id="progress">graded 0 students</span>
<button id="download" type="button">Download scores (CSV)</button>
<div id="message" aria-live="polite"></div></header>
<main><p class="intro">For staff: {html.escape(items)}, one card per student. Type points (0 to the item's
points, in steps of {rubric.grading_sheet.point_step:g}) and a comment; Tab goes from field to field, Enter to
the next student (Shift+Enter: a new line in a comment). What you type stays in this browser for this file's
location (localStorage) until you clear the browser's site data. <b>Download scores (CSV)</b> writes
<code>manual_scores.csv</code> (one row per filled-in points field; blank points leave the current score:
the grader's, or a staff score merged before), then run
<code>{html.escape(merge_command(out_dir))}</code>. Keep this page in its
folder, beside the student folders: the filter images are read from there.</p>
<noscript><p class="warning">JavaScript is off: the scores cannot be kept or downloaded.</p></noscript>
{cards or "<p>No submissions.</p>"}
</main><script>{_SCRIPT}</script></body></html>
"""
    path = out_dir / SHEET
    write_atomically(path, page)
    return path

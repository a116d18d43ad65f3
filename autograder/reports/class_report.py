"""The class report: how a whole batch went, for staff, as one self-contained HTML page and Markdown.

Read from the batch's own files (gradebook.csv and every results.json), so it can be rebuilt at
any time: the score distribution (a histogram, PNG by matplotlib, embedded in the page), each
item's mean and pass rate, the most common failure reasons per item (counted twice, each count
saying its unit: failing cases, and students), the failure patterns across the class (how many
students fail exactly the cases with padding 0 in conv backward's dimg, ...: counted from the pattern
codes in results.json, never from prose), and the submissions that ask staff to act (a status that
is not complete, or a flag that autograder/reports/flags.py classifies as a call to act: never
"accuracy verified"), with links to their feedback. The page's style is class_report.css beside this
module, put into the page so that it stays one self-contained file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autograder.edition import EditionError, get_edition  # noqa: E402
from autograder.model import RowStatus, graded_tests, pattern_words, split_code  # noqa: E402
from autograder.reports.flags import to_act_on  # noqa: E402
from autograder.reports.results import write_atomically  # noqa: E402
from autograder.reports.similarity import PAIRS, groups, read_pairs  # noqa: E402
from autograder.rubric import Rubric, load_rubric  # noqa: E402


def _mean(mean: float | None) -> str:
    """An item's mean as the report shows it: "none settled" while every cell awaits staff."""
    return "none settled" if mean is None else f"{mean:.2f}"


def _histogram(totals: list[float], maximum: float) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    axes.hist(totals, bins=min(20, max(5, len(totals))), range=(0, maximum), color="#3a6ea5", edgecolor="white")
    axes.set_xlabel("total points")
    axes.set_ylabel("students")
    axes.set_title(f"Score distribution ({_students(len(totals))})")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


STYLE = Path(__file__).with_name("class_report.css")


def _failure_reasons(documents: dict[str, dict]) -> tuple[dict[str, Counter], dict[str, Counter]]:
    """Two counts per item and reason code, never mixed: failing cases (items with cases), and students (a
    student counts once per reason: one of its failing cases ended so, or, for an item without cases that
    lost points, the item did). Counted from results.json's codes, never from its prose."""
    cases: dict[str, Counter] = {}
    students: dict[str, Counter] = {}
    for document in documents.values():
        seen: dict[str, set[str]] = {}
        for test in graded_tests(document):  # a release test repeats cases its item's tests count
            item = (test.get("tags") or ["?"])[0]
            extra = test.get("extra_data", {})
            for case in extra.get("cases", []):
                if not case.get("passed"):
                    reason = _code_text(case.get("reason_code"))
                    cases.setdefault(item, Counter())[reason] += 1
                    seen.setdefault(item, set()).add(reason)
            if (not extra.get("cases") and extra.get("grading") == "graded" and not extra.get("staff")
                    and test.get("score", 0) < test.get("max_score", 0)):  # a staff score is no failure pattern
                seen.setdefault(item, set()).add(_code_text(extra.get("reason_code")))
        for item, reasons in seen.items():
            students.setdefault(item, Counter()).update(reasons)
    return cases, students


def _students(count: int) -> str:
    """A count of students: "1 student", "3 students". Every count of the report says what it counts, students
    (one gradebook row each), failing cases or pairs of students: a bare "3 submissions" leaves staff to guess."""
    return f"{count} student{'' if count == 1 else 's'}"


def _pairs(count: int) -> str:
    """A count of similar pairs, each two students: "1 pair of students", "4 pairs of students"."""
    return f"{count} pair{'' if count == 1 else 's'} of students"


def _counted(counter: Counter | None, unit: str, shown: int = 3) -> str:
    """The commonest reasons with their counts, each saying its unit: "wrong value (7 cases)"."""
    def said(count: int) -> str:
        return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return ", ".join(f"{reason} ({said(count)})" for reason, count in (counter or Counter()).most_common(shown))


_COMPLETE = (RowStatus.COMPLETE, "graded", "unchanged")  # "graded", "unchanged": a gradebook of an earlier version


def needs_staff(row: dict[str, str]) -> list[str]:
    """What in a gradebook row asks staff to act: each flag that is a call to act, or its status alone when it
    is not complete (pending staff, a fault) and no flag says why; empty for a row that asks nothing (or is
    not graded yet)."""
    status = row.get("status") or ""
    asked = to_act_on(row.get("flags") or "")
    return asked or ([] if status in (*_COMPLETE, RowStatus.NOT_GRADED_YET, "pending") else [status])


def _status(row: dict[str, str]) -> str:
    return f" ({row['status']})" if row.get("status") and row["status"] not in _COMPLETE else ""


def _code_text(code: str | None) -> str:
    """A reason code as a table shows it: "wrong_value" -> "wrong value"."""
    return (code or "unknown").replace("_", " ")


def _patterns(documents: dict[str, dict]) -> dict[str, list[str]]:
    """Pattern code -> the students whose feedback names it, most frequent first."""
    found: dict[str, set[str]] = {}
    for student, document in documents.items():
        for test in graded_tests(document):
            for code in test.get("extra_data", {}).get("patterns", []) or []:
                found.setdefault(str(code), set()).add(student)
    return {code: sorted(found[code]) for code in sorted(found, key=lambda c: (-len(found[c]), c))}


def pattern_text(code: str, rubric: Rubric) -> str:
    """A pattern code in words: "padding 0 in ConvLayer2D.backward (dimg, dW, db), dimg"."""
    item_id, component, side = split_code(code)
    try:
        title = rubric.item(item_id).title
    except KeyError:
        title = item_id
    return f"{pattern_words(side)} in {title}" + (f", {component}" if component else "")


_PATTERN_NOTE = ("Students whose failing cases of a part all return the same kind of wrong output (a dimension "
                 "taken from another, all zeros, None, the height and width swapped, the right values moved or "
                 "scaled), or are exactly the cases with one attribute (and whose passing cases all lack it, "
                 "with nothing returned contradicting it): the bug shows in that form or is tied to that "
                 "attribute. A student can show both. Counted in students.")

_ITEMS_NOTE = ("An item's mean and full marks count the students whose item is settled: a cell left blank (an "
               "item pending staff, or provisional) is not counted until staff set it.")

_FAILURES_NOTE = ("Each item's commonest reasons for lost points, counted twice: in failing cases (one student's "
                  "bug may fail many), and in students (each once per reason; an item without cases, such as "
                  "the training, counts students only).")

_FLAGGED_NOTE = ("Submissions that ask staff to act: an item pending staff or a fault (the status), or a flag "
                 "that calls for a look (a PDF mismatch, an accuracy mismatch, similar work, ...). Flags that only "
                 "say how a grade was reached (\"accuracy verified\", \"<item> set by staff\") are in the table "
                 "of submissions, not here.")

_SIMILAR_NOTE = ("Submissions whose own lib/cnn code (template lines removed; names, comments and spacing "
                 "ignored) or inline answers are near-identical: first as groups, then pair by pair, most alike "
                 "first (1.00 = the same). For staff to look at, not a verdict: the thresholds are in "
                 "rubric.toml [similarity].")


def _student_link(student_id: str) -> str:
    return f"<a href='{html.escape(student_id)}/feedback.md'>{html.escape(student_id)}</a>"


def _markdown_link(student_id: str) -> str:
    return f"[{student_id}]({student_id}/feedback.md)"


def edition_of(document: dict) -> dict:
    """results.json's extra_data.edition (grading.py: name, year, how decided, evidence, contradiction)."""
    edition = document.get("extra_data", {}).get("edition")
    return edition if isinstance(edition, dict) else {}


def edition_label(document: dict) -> str:
    """A student's edition as the gradebook and class report show it: its name, and "(given)" when staff
    fixed it, "(default)" when nothing in the files named one."""
    edition = edition_of(document)
    name = str(edition.get("name", ""))
    how = edition.get("how")
    return f"{name} ({how})" if name and how in ("given", "default") else name


def _editions(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """The students of each edition in the gradebook (its "edition" column; a gradebook written before
    editions has none): edition name -> student ids, in gradebook order."""
    found: dict[str, list[str]] = {}
    for row in rows:
        name = (row.get("edition") or "").split(" (")[0]
        if name:
            found.setdefault(name, []).append(row["student_id"])
    return found


def _item_titles(editions: dict[str, list[str]]) -> dict[str, str]:
    """Each item's title in the words of the class's editions: one edition's own title (the training item's
    "40 % ... on CIFAR-100"), or, for a class of several, each edition's where they differ, joined by " / ";
    the default edition's for a gradebook without editions (or of editions this grader does not know)."""
    rubric = load_rubric()
    known = []
    for name in editions:
        try:
            known.append(rubric.with_edition(get_edition(name)))
        except EditionError:  # its results still say which edition it was
            continue
    titles: dict[str, list[str]] = {}
    for each in known or [rubric]:
        for item in each.items:
            if item.title not in titles.setdefault(item.id, []):
                titles[item.id].append(item.title)
    return {item_id: " / ".join(said) for item_id, said in titles.items()}


def _edition_lines(editions: dict[str, list[str]]) -> list[str]:
    """One line per edition: its name, its task in its own words, how many students."""
    lines = []
    for name, who in editions.items():
        try:
            task = f" ({get_edition(name).task})"
        except EditionError:
            task = ""
        lines.append(f"{name}{task}: {_students(len(who))}")
    return lines


def build_class_report(out_dir: Path) -> tuple[Path, Path]:
    """Write class_report.html and class_report.md next to gradebook.csv."""
    with open(out_dir / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    editions = _editions(rows)
    rubric, titles = load_rubric(), _item_titles(editions)
    documents = {}
    for row in rows:
        results = out_dir / row["student_id"] / "results.json"
        if results.is_file():
            documents[row["student_id"]] = json.loads(results.read_text(encoding="utf-8"))
    totals = [float(row["total"]) for row in rows if row["total"]]
    statuses = Counter(row.get("status") or "" for row in rows)
    items = []
    for item in rubric.items:
        points = [float(row[item.id]) for row in rows if row.get(item.id) not in (None, "")]
        mean = sum(points) / len(points) if points else None  # no settled cell yet: no mean, never a 0.00
        passed = sum(1 for value in points if value >= item.points)
        items.append((item, mean, passed, len(points)))
    failing_cases, failing_students = _failure_reasons(documents)
    patterns = _patterns(documents)
    flagged = [(row, needs_staff(row)) for row in rows if needs_staff(row)]
    png = _histogram(totals, rubric.total)
    summary = (f"{_students(len(rows))} (" + ", ".join(f"{count} {status}" for status, count in statuses.items())
               + f"); mean total {sum(totals) / len(totals) if totals else 0:.2f} of {rubric.total:g} "
               f"(provisional points included); {_students(len(flagged))} asking staff to act")

    markdown = [f"# Class report: {rubric.title}", "", summary + ".",
                "", *(["Editions: " + "; ".join(_edition_lines(editions)) + ".", ""] if editions else []),
                "![score distribution](class_report_scores.png)", "",
                "| item | mean | of | full marks (students) |", "|---|---:|---:|---:|"]
    markdown += [f"| {titles[item.id]} | {_mean(mean)} | {item.points:g} | {passed}/{count} |"
                 for item, mean, passed, count in items]
    markdown += ["", _ITEMS_NOTE, "", "## Most common failures", "", _FAILURES_NOTE, ""]
    for item, *_ in items:
        said = [f"{unit}: {text}" for unit, text in (("failing cases", _counted(failing_cases.get(item.id), "case")),
                                                     ("students", _counted(failing_students.get(item.id), "student")))
                if text]
        if said:
            markdown.append(f"- **{item.id}**: " + "; ".join(said))
    markdown += ["", "## Failure patterns", "", _PATTERN_NOTE, ""]
    markdown += [f"- {pattern_text(code, rubric)}: {len(who)} student{'' if len(who) == 1 else 's'} ("
                 + ", ".join(map(_markdown_link, who)) + f") `{code}`" for code, who in patterns.items()] or ["none"]
    pairs = read_pairs(out_dir / PAIRS)
    alike_groups, shown = groups(pairs), rubric.similarity.report_pairs
    markdown += ["", "## Similar submissions", "", _SIMILAR_NOTE, ""]
    markdown += [f"- {kind}, {_students(len(members))} (pairs ≥ {lowest:.2f}): "
                 + ", ".join(map(_markdown_link, members)) for kind, members, lowest in alike_groups]
    markdown += [""] + [f"{rank}. {pair.kind}: {_markdown_link(pair.first)} and {_markdown_link(pair.second)}, "
                        f"{pair.score:.2f}"
                        for rank, pair in enumerate(pairs[:shown], 1)] if pairs else ["none above the thresholds"]
    if len(pairs) > shown:
        markdown.append(f"\n{_pairs(len(pairs) - shown)} more in {PAIRS}.")
    markdown += ["", "## Flagged submissions", "", _FLAGGED_NOTE, ""]
    markdown += [f"- {_markdown_link(row['student_id'])}{_status(row)}: {'; '.join(asked)}"
                 for row, asked in flagged] or ["none"]
    if len(editions) > 1:  # a class of several editions: who had which
        markdown += ["", "## Editions", ""] + [f"- {name}: " + ", ".join(map(_markdown_link, who))
                                               for name, who in editions.items()]
    write_atomically(out_dir / "class_report_scores.png", png)
    md_path = out_dir / "class_report.md"
    write_atomically(md_path, "\n".join(markdown) + "\n")

    escape = html.escape
    table = "".join(f"<tr><td>{escape(titles[item.id])}</td><td>{_mean(mean)}</td><td>{item.points:g}</td>"
                    f"<td>{passed}/{count}</td>"
                    f"<td class='cases'>{escape(_counted(failing_cases.get(item.id), 'case'))}</td>"
                    f"<td class='students'>{escape(_counted(failing_students.get(item.id), 'student'))}</td></tr>"
                    for item, mean, passed, count in items)
    students = "".join(
        f"<tr class='student'><td>{_student_link(row['student_id'])}</td>"
        f"<td>{escape(row['total'])}</td><td>{escape(row.get('provisional') or '')}</td>"
        f"<td>{escape(row.get('edition') or '')}</td><td class='status'>{escape(row.get('status') or '')}</td>"
        f"<td>{escape(row.get('flags') or '')}</td></tr>"
        for row in rows)
    flagged_html = ("<ul id='flagged'>" + "".join(f"<li class='flagged'>{_student_link(row['student_id'])}"
                                                  f"{escape(_status(row))}: "
                                                  f"{escape('; '.join(asked))}</li>" for row, asked in flagged)
                    + "</ul>") if flagged else "<p id='flagged'>None.</p>"
    similar = "".join(f"<tr class='group'><td>{kind}</td><td>{len(members)}</td><td>{lowest:.2f}</td>"
                      f"<td>{', '.join(_student_link(m) for m in members)}</td></tr>"
                      for kind, members, lowest in alike_groups)
    ranked = "".join(f"<tr class='pair'><td>{rank}</td><td>{pair.kind}</td><td>{_student_link(pair.first)}</td>"
                     f"<td>{_student_link(pair.second)}</td><td>{pair.score:.2f}</td></tr>"
                     for rank, pair in enumerate(pairs[:shown], 1))
    more = f"<p>{_pairs(len(pairs) - shown)} more in {PAIRS}.</p>" if len(pairs) > shown else ""
    pattern_rows = "".join(f"<tr class='pattern'><td>{escape(pattern_text(code, rubric))}</td><td>{len(who)}</td>"
                           f"<td>{', '.join(_student_link(s) for s in who)}</td>"
                           f"<td><code>{escape(code)}</code></td></tr>"
                           for code, who in patterns.items())
    pattern_table = (f"<table id='patterns'><tr><th>pattern</th><th>students</th><th>who</th><th>code</th></tr>"
                     f"{pattern_rows}</table>" if patterns else "<p>None.</p>")
    similar = (f"<table id='groups'><tr><th>what</th><th>students</th><th>pairs at least</th><th>who</th></tr>"
               f"{similar}</table><details><summary>Pair by pair, most alike first ({_pairs(len(pairs))})</summary>"
               f"<table id='similar'><tr><th>rank</th><th>what</th><th>student</th><th>student</th>"
               f"<th>alike</th></tr>{ranked}</table>{more}</details>" if pairs else "<p>None above the thresholds.</p>")
    edition_html = ("<ul id='editions'>" + "".join(f"<li>{escape(line)}</li>" for line in _edition_lines(editions))
                    + "</ul>") if editions else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {escape(rubric.title)}</title>
<style>{STYLE.read_text(encoding="utf-8")}</style></head>
<body><h1>Class report: {escape(rubric.title)}</h1>
<p id="summary">{escape(summary)}.</p>
<img id="scores" alt="score distribution" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Flagged submissions</h2><p>{escape(_FLAGGED_NOTE)}</p>{flagged_html}
<h2>Items</h2><p>{escape(_ITEMS_NOTE)} {escape(_FAILURES_NOTE)}</p>\
<table id="items"><tr><th>item</th><th>mean</th><th>of</th>\
<th>full marks (students)</th><th>most common failures (cases)</th><th>most common failures (students)</th></tr>\
{table}</table>
<h2>Failure patterns</h2><p>{escape(_PATTERN_NOTE)}</p>{pattern_table}
<h2>Similar submissions</h2><p>{escape(_SIMILAR_NOTE)}</p>{similar}
<h2>Submissions</h2>{edition_html}<table id="students"><tr><th>student</th><th>total (provisional included)</th>\
<th>provisional</th><th>edition</th><th>status</th><th>flags</th></tr>\
{students}</table>
</body></html>
"""
    html_path = out_dir / "class_report.html"
    write_atomically(html_path, page)
    return html_path, md_path

"""problem_2_solution.pdf, assembled with reportlab: no LaTeX, no browser, nothing beyond pip.

In the assignment's strict order: a header (title, student id, the notebook's name and
modification time), 1. the training curves, 2. the filter visualisation, 3. the inline
answer, and, for an edition with extra credit (2023), the student's extra-credit work last, under the
edition's title for it (`[extra_credit] pdf_section`), when there is any: never the handout's prompt.
Images are embedded at their full resolution, scaled to the page width with their
aspect kept, never split; each is decoded first as a PNG within the pixel cap (images.py), and one that
is not is left out with a note. The answer's Markdown is parsed by a CommonMark parser and rendered
(headings, paragraphs, lists, bold, italic, inline code, code blocks; LaTeX math stays as its source
text; should reportlab still fail on it, the answer is shown as typed) in DejaVu fonts,
which ship with matplotlib and cover most of Unicode. A missing part becomes a framed note
saying what to do, and is reported to the caller. A long paragraph is handed to reportlab in
pieces of at most `PARAGRAPH_CHUNK` characters: its line breaking re-breaks a paragraph's rest at
every page, so one paragraph of 200 KB took 22 s and one of 1 MB twelve minutes.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import matplotlib
from markdown_it import MarkdownIt
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from autograder.edition import Edition, default_edition
from autograder.notebook.images import ImageRefused, open_image
from autograder.notebook.reading import Findings
from autograder.rubric import load_rubric

SECTIONS = ("1. Training loss and accuracy curves", "2. Visualisation of the first convolutional layer's filters",
            "3. Inline question: what kinds of filters do you see?")
_FONT_DIR = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
_MARGIN = 18 * mm
#: The longest piece of one paragraph reportlab breaks into lines at once (about half a page).
PARAGRAPH_CHUNK = 2000


@dataclass
class PdfResult:
    """What was written, and which parts were missing."""

    path: Path
    missing: list[str] = field(default_factory=list)  # one message per missing part
    pages: int = 0
    fallback: str = ""  # why the answer was shown as typed, when reportlab could not lay out its formatting


def register_fonts() -> None:
    """Load the DejaVu fonts once per process (a warm grading process has them before it is forked)."""
    if "DejaVu" in pdfmetrics.getRegisteredFontNames():
        return
    for name, file in (("DejaVu", "DejaVuSans.ttf"), ("DejaVu-Bold", "DejaVuSans-Bold.ttf"),
                       ("DejaVu-Oblique", "DejaVuSans-Oblique.ttf"),
                       ("DejaVu-BoldOblique", "DejaVuSans-BoldOblique.ttf"),
                       ("DejaVuMono", "DejaVuSansMono.ttf")):
        pdfmetrics.registerFont(TTFont(name, str(_FONT_DIR / file)))
    pdfmetrics.registerFontFamily("DejaVu", normal="DejaVu", bold="DejaVu-Bold", italic="DejaVu-Oblique",
                                  boldItalic="DejaVu-BoldOblique")


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName="DejaVu", fontSize=10, leading=14, alignment=TA_LEFT, spaceAfter=6)
    return {
        "body": base,
        "title": ParagraphStyle("title", parent=base, fontName="DejaVu-Bold", fontSize=17, leading=22, spaceAfter=4),
        "meta": ParagraphStyle("meta", parent=base, fontSize=9, textColor=colors.HexColor("#444444"), spaceAfter=2),
        "section": ParagraphStyle("section", parent=base, fontName="DejaVu-Bold", fontSize=13, leading=17,
                                  spaceBefore=12, spaceAfter=8, keepWithNext=1),
        "h": ParagraphStyle("h", parent=base, fontName="DejaVu-Bold", fontSize=11, leading=15, spaceBefore=6,
                            keepWithNext=1),
        "code": ParagraphStyle("code", parent=base, fontName="DejaVuMono", fontSize=8.5, leading=11,
                               backColor=colors.HexColor("#f3f3f3"), borderPadding=4, spaceBefore=4, spaceAfter=8),
        "note": ParagraphStyle("note", parent=base, textColor=colors.HexColor("#8a1c1c")),
    }


# ----------------------------------------------------------------------------- Markdown
# The answer is parsed by a CommonMark parser (markdown-it-py; raw HTML is text), never by patterns: its
# tokens nest properly, and each run of text is wrapped in its own complete tags, so reportlab's paragraph
# markup can never receive tags that cross (`**a *b** c*` made reportlab raise when regexes rendered it).
_STYLES = {"strong": ("<b>", "</b>"), "em": ("<i>", "</i>"), "s": ("<strike>", "</strike>"),
           "code": ('<font name="DejaVuMono">', "</font>")}
Run = tuple[str, tuple[str, ...]]  # a piece of plain text and the styles (keys of _STYLES) it is shown in


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("strikethrough")


_MARKDOWN = _parser()


def _runs(children) -> list[Run]:
    """An inline token's children as runs of plain text with their styles; links keep their text,
    images their alt text, raw HTML its source."""
    runs: list[Run] = []
    active: list[str] = []
    for token in children or []:
        kind = token.type
        if kind.endswith("_open") and kind[:-5] in _STYLES:
            active.append(kind[:-5])
        elif kind.endswith("_close") and kind[:-6] in _STYLES:
            if kind[:-6] in active:
                del active[len(active) - 1 - active[::-1].index(kind[:-6])]
        elif kind in ("text", "html_inline", "image"):
            runs.append((token.content, tuple(active)))
        elif kind == "code_inline":
            runs.append((token.content, (*active, "code")))
        elif kind == "softbreak":
            runs.append((" ", tuple(active)))
        elif kind == "hardbreak":
            runs.append(("\n", tuple(active)))
    return [run for run in runs if run[0]]


def _markup(runs: list[Run]) -> str:
    """reportlab paragraph markup for runs: each run escaped and wrapped in its own complete tags."""
    out = []
    for text, styles in runs:
        piece = html.escape(text, quote=False).replace("\n", "<br/>")
        for style in reversed(dict.fromkeys(styles)):  # each style once: `***a***` nests em in em
            opening, closing = _STYLES[style]
            piece = f"{opening}{piece}{closing}"
        out.append(piece)
    return "".join(out)


def inline_markup(text: str) -> str:
    """Markdown inline syntax as reportlab paragraph markup; everything else escaped as text."""
    tokens = _MARKDOWN.parseInline(text)
    return _markup(_runs(tokens[0].children if tokens else []))


def chunks(text: str, size: int = PARAGRAPH_CHUNK) -> list[str]:
    """`text` in pieces of at most `size` characters, each ending after a sentence where one ends in
    its second half, else after a space, else wherever the size runs out; joined they are `text`."""
    pieces = []
    while len(text) > size:
        window = text[:size]
        cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "))
        cut = cut + 2 if cut >= size // 2 else window.rfind(" ") + 1
        cut = cut if cut > 0 else size
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text] if text or not pieces else pieces


def _split_runs(runs: list[Run]) -> list[list[Run]]:
    """Runs cut where `chunks` cuts their plain text, each piece keeping its styles."""
    pieces, current, position = [], [], 0
    bounds = [len(piece) for piece in chunks("".join(text for text, _ in runs))]
    limit = bounds.pop(0)
    for text, styles in runs:
        while text:
            take = min(len(text), limit - position)
            current.append((text[:take], styles))
            text, position = text[take:], position + take
            if position == limit and bounds:
                pieces.append(current)
                current, position, limit = [], 0, bounds.pop(0)
    return [*pieces, current]


def _paragraphs(runs: list[Run], style: ParagraphStyle) -> list[Paragraph]:
    """One paragraph's runs as reportlab Paragraphs, a long one in `chunks` (the pieces but the last
    without space after, so they read as one paragraph that starts new lines now and then)."""
    pieces = _split_runs(runs)
    if len(pieces) == 1:
        return [Paragraph(_markup(pieces[0]), style)]
    joined = ParagraphStyle(f"{style.name}-piece", parent=style, spaceAfter=0, keepWithNext=0)
    return [Paragraph(_markup(piece), style if index == len(pieces) - 1 else joined)
            for index, piece in enumerate(pieces)]


def markdown_flowables(text: str, styles: dict[str, ParagraphStyle]) -> list:
    """Flowables for a Markdown text: headings, paragraphs, (nested) lists, code blocks; block quotes
    read as their paragraphs, a thematic break as space."""
    flowables: list = []
    lists: list[dict] = []  # the open lists, innermost last: {"ordered", "start", "items": [[flowable]]}

    def target() -> list:
        return lists[-1]["items"][-1] if lists and lists[-1]["items"] else flowables

    tokens = _MARKDOWN.parse(text.replace("\r\n", "\n"))
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "inline":
            heading = index > 0 and tokens[index - 1].type == "heading_open"
            target().extend(_paragraphs(_runs(token.children), styles["h" if heading else "body"]))
        elif kind in ("fence", "code_block"):
            target().append(Preformatted(token.content.rstrip("\n") or " ", styles["code"]))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append({"ordered": kind == "ordered_list_open", "start": token.attrGet("start") or 1, "items": []})
        elif kind == "list_item_open" and lists:
            lists[-1]["items"].append([])
        elif kind in ("bullet_list_close", "ordered_list_close") and lists:
            done = lists.pop()
            items = [ListItem(item or [Spacer(1, 0)]) for item in done["items"]]
            if items:
                target().append(ListFlowable(
                    items, bulletType="1" if done["ordered"] else "bullet",
                    start=str(done["start"]) if done["ordered"] else "•",
                    bulletFormat="%s." if done["ordered"] else None, bulletFontName="DejaVu", bulletFontSize=9,
                    leftIndent=16))
        elif kind == "hr":
            target().append(Spacer(1, 8))
    return flowables


def plain_flowables(text: str, styles: dict[str, ParagraphStyle]) -> list:
    """The answer as its source text, nothing interpreted: what the PDF shows when its rendering failed."""
    return [Preformatted(piece, styles["code"]) for piece in chunks(text) if piece.strip()]


# ----------------------------------------------------------------------------- images and notes
def _image(png: bytes, width: float, max_height: float) -> Image:
    """The image at full resolution, scaled to fit the frame with its aspect kept. Decoded first as a
    PNG and nothing else, within the pixel cap (images.py): ImageRefused when it is not one."""
    with open_image(png, ("PNG",), load_rubric().intake.max_image_pixels) as picture:
        pixels_w, pixels_h = picture.size
    scale = min(width / pixels_w, max_height / pixels_h)
    return Image(io.BytesIO(png), width=pixels_w * scale, height=pixels_h * scale)


def _missing_note(text: str, styles, width: float) -> Table:
    box = Table([[Paragraph(inline_markup(text), styles["note"])]], colWidths=[width])
    box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 1, colors.HexColor("#b03030")),
                             ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fbeeee")),
                             ("LEFTPADDING", (0, 0), (-1, -1), 8), ("TOPPADDING", (0, 0), (-1, -1), 6),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return box


def extra_credit_title(edition: Edition) -> str:
    """The title of the PDF's extra-credit section ("4. Extra Credit"), "" for an edition without one."""
    section = edition.extra_credit.pdf_section
    return f"{len(SECTIONS) + 1}. {section}" if edition.extra_credit.points > 0 and section else ""


def _extra_credit_story(findings: Findings, styles, width: float, height: float, result: PdfResult | None,
                        as_typed: bool = False) -> list:
    """The extra-credit work in the notebook's order: its Markdown rendered (or shown as typed, when the
    answer's formatting already failed), its figures at full resolution."""
    story: list = []
    for number, part in enumerate(findings.extra_credit_parts, start=1):
        if isinstance(part, str):
            story.extend(plain_flowables(part, styles) if as_typed else markdown_flowables(part, styles))
            continue
        try:
            story.append(KeepTogether([_image(part, width, height * 0.8), Spacer(1, 6)]))
        except ImageRefused as exc:
            story.append(_missing_note(f"a figure of this section was left out: {exc}", styles, width))
            if result is not None:
                result.missing.append(f"extra credit: figure {number} was left out: {exc}")
    if findings.extra_credit_cut:
        story.append(_missing_note("The extra-credit text was cut for its length; the full text is in the notebook.",
                                   styles, width))
    return story


def build_pdf(findings: Findings, answer: str, destination: Path, student_id: str | None = None,
              edition: Edition | None = None) -> PdfResult:
    """Write the PDF for one notebook's findings; `answer` is the inline answer's Markdown. `edition`
    (default: the default edition) says whether an extra-credit section comes last."""
    edition = edition or default_edition()
    register_fonts()
    styles = _styles()
    width, height = A4[0] - 2 * _MARGIN, A4[1] - 2 * _MARGIN
    result = PdfResult(destination)
    modified = (datetime.fromtimestamp(findings.path.stat().st_mtime, tz=timezone.utc)
                if findings.path.exists() else None)
    story: list = [Paragraph("Problem 2: Incorporating CNNs", styles["title"])]
    if student_id:
        story.append(Paragraph(f"Student: {html.escape(student_id)}", styles["meta"]))
    story.append(Paragraph(f"Notebook: {html.escape(findings.path.name)}"
                           + (f", last modified {modified:%Y-%m-%d %H:%M} UTC" if modified else ""), styles["meta"]))
    parts = ((SECTIONS[0], findings.curve_images, "no image output in the training-curves cell: run the notebook "
              "and save it with outputs"),
             (SECTIONS[1], findings.filter_images, "no image output in the filter-visualisation cell: run it and "
              "save the notebook with outputs"))
    for (title, images, missing), role in zip(parts, ("curves", "filters")):
        story.append(Paragraph(title, styles["section"]))
        left_out = findings.left_out_notes(role)
        if left_out:  # over the rubric's pixel cap (autograder/notebook/reading.py): never decoded
            missing = "; ".join(left_out) if not images else ""
            for note in left_out:
                story.append(_missing_note(note, styles, width))
        if not images:
            if not left_out:
                story.append(_missing_note(missing, styles, width))
            result.missing.append(f"{title}: {missing}")
        for number, png in enumerate(images, start=1):
            try:
                story.append(KeepTogether([_image(png, width, height * 0.8), Spacer(1, 6)]))
            except ImageRefused as exc:
                story.append(_missing_note(f"image {number} of this section was left out: {exc}", styles, width))
                result.missing.append(f"{title}: image {number} was left out: {exc}")
    story.append(Paragraph(SECTIONS[2], styles["section"]))
    answer_at = len(story)
    if answer.strip():
        story.extend(markdown_flowables(answer, styles))
        if findings.answer_cut:
            story.append(_missing_note(f"The answer was cut at the first {len(findings.answer):,} of its "
                                       f"{findings.answer_chars:,} characters; the full text is in the notebook.",
                                       styles, width))
    else:
        message = "no answer found: write it in the Markdown cell after the Inline Question heading"
        if edition.notebook.extra_credit_prompt:
            message += f" (or in the empty cell after the {edition.notebook.extra_credit_prompt} prompt)"
        story.append(_missing_note(message, styles, width))
        result.missing.append(f"{SECTIONS[2]}: {message}")
    extra_title = extra_credit_title(edition)
    extra = [Paragraph(html.escape(extra_title), styles["section"]),
             *_extra_credit_story(findings, styles, width, height, result)] \
        if extra_title and findings.extra_credit_parts else []
    story.extend(extra)
    destination.parent.mkdir(parents=True, exist_ok=True)
    document = SimpleDocTemplate(str(destination), pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN,
                                 topMargin=_MARGIN, bottomMargin=_MARGIN, title="Problem 2: Incorporating CNNs",
                                 author=student_id or "", invariant=1)
    try:
        document.build(list(story))
    except Exception as exc:  # noqa: BLE001 - reportlab on the student's text: show it as typed instead
        if not answer.strip():
            raise
        plain = plain_flowables(answer, styles) + [_missing_note(
            f"The answer is shown as typed: its formatting could not be laid out ({type(exc).__name__}).",
            styles, width)]
        document = SimpleDocTemplate(str(destination), pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN,
                                     topMargin=_MARGIN, bottomMargin=_MARGIN, title="Problem 2: Incorporating CNNs",
                                     author=student_id or "", invariant=1)
        if extra:
            extra = [extra[0], *_extra_credit_story(findings, styles, width, height, None, as_typed=True)]
        document.build(story[:answer_at] + plain + extra)
        result.fallback = f"{type(exc).__name__}: {str(exc)[:200]}"
    result.pages = document.page
    return result

"""problem_2_solution.pdf, assembled with reportlab: no LaTeX, no browser, nothing beyond pip.

In the assignment's strict order: a header (title, student id, the notebook's name and
modification time), 1. the training curves, 2. the filter visualisation, 3. the inline
answer. Images are embedded at their full resolution, scaled to the page width with their
aspect kept, never split. The answer's Markdown is rendered (headings, paragraphs, lists,
bold, italic, inline code, code blocks; LaTeX math stays as its source text) in DejaVu fonts,
which ship with matplotlib and cover most of Unicode. A missing part becomes a framed note
saying what to do, and is reported to the caller. A long paragraph is handed to reportlab in
pieces of at most `PARAGRAPH_CHUNK` characters: its line breaking re-breaks a paragraph's rest at
every page, so one paragraph of 200 KB took 22 s and one of 1 MB twelve minutes.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import matplotlib
from PIL import Image as PILImage
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

from autograder.notebook.reading import Findings

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


def _register_fonts() -> None:
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
_INLINE = [
    (re.compile(r"`([^`]+)`"), r'<font name="DejaVuMono">\1</font>'),
    (re.compile(r"\*\*(.+?)\*\*|__(.+?)__"), lambda m: f"<b>{m.group(1) or m.group(2)}</b>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?!\w)|(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?!\w)"),
     lambda m: f"<i>{m.group(1) or m.group(2)}</i>"),
]


def inline_markup(text: str) -> str:
    """Markdown inline syntax as reportlab paragraph markup; everything else escaped as text."""
    pieces = re.split(r"(`[^`]+`)", text)
    out = []
    for piece in pieces:
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            out.append(f'<font name="DejaVuMono">{html.escape(piece[1:-1], quote=False)}</font>')
            continue
        escaped = html.escape(piece, quote=False)
        for pattern, replacement in _INLINE[1:]:
            escaped = pattern.sub(replacement, escaped)
        out.append(escaped)
    return "".join(out)


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


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    """One paragraph of Markdown text as reportlab Paragraphs, a long one in `chunks` (the pieces but the
    last without space after, so they read as one paragraph that starts new lines now and then)."""
    pieces = chunks(text)
    if len(pieces) == 1:
        return [Paragraph(inline_markup(text), style)]
    joined = ParagraphStyle(f"{style.name}-piece", parent=style, spaceAfter=0, keepWithNext=0)
    return [Paragraph(inline_markup(piece.strip()), style if index == len(pieces) - 1 else joined)
            for index, piece in enumerate(pieces)]


def markdown_flowables(text: str, styles: dict[str, ParagraphStyle]) -> list:
    """Flowables for a Markdown text: headings, paragraphs, lists, code blocks."""
    flowables: list = []
    lines = text.replace("\r\n", "\n").split("\n")
    paragraph: list[str] = []
    items: list[str] = []
    ordered = False
    index = 0

    def flush_paragraph() -> None:
        if paragraph:
            flowables.extend(_paragraphs(" ".join(line.strip() for line in paragraph), styles["body"]))
            paragraph.clear()

    def flush_list() -> None:
        nonlocal items
        if items:
            flowables.append(ListFlowable(
                [ListItem(_paragraphs(item, styles["body"])) for item in items],
                bulletType="1" if ordered else "bullet", start="1" if ordered else "•",
                bulletFormat="%s." if ordered else None, bulletFontName="DejaVu", bulletFontSize=9, leftIndent=16))
            items = []

    while index < len(lines):
        line = lines[index]
        fence = re.match(r"^\s*(```|~~~)", line)
        if fence:
            flush_paragraph()
            flush_list()
            block = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(fence.group(1)):
                block.append(lines[index])
                index += 1
            flowables.append(Preformatted("\n".join(block) or " ", styles["code"]))
        elif re.match(r"^\s*#{1,6}\s", line):
            flush_paragraph()
            flush_list()
            flowables.extend(_paragraphs(line.strip().lstrip("#").strip(), styles["h"]))
        elif re.match(r"^\s*([-*+]|\d+[.)])\s+", line):
            flush_paragraph()
            is_ordered = bool(re.match(r"^\s*\d+[.)]", line))
            if items and is_ordered != ordered:
                flush_list()
            ordered = is_ordered
            items.append(re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", line))
        elif not line.strip():
            flush_paragraph()
            flush_list()
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # a list item's continuation line
        else:
            flush_list()
            paragraph.append(line)
        index += 1
    flush_paragraph()
    flush_list()
    return flowables


# ----------------------------------------------------------------------------- images and notes
def _image(png: bytes, width: float, max_height: float) -> Image:
    """The image at full resolution, scaled to fit the frame with its aspect kept."""
    with PILImage.open(io.BytesIO(png)) as picture:
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


def build_pdf(findings: Findings, answer: str, destination: Path, student_id: str | None = None) -> PdfResult:
    """Write the PDF for one notebook's findings; `answer` is the inline answer's Markdown."""
    _register_fonts()
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
        for png in images:
            story.append(KeepTogether([_image(png, width, height * 0.8), Spacer(1, 6)]))
    story.append(Paragraph(SECTIONS[2], styles["section"]))
    if answer.strip():
        story.extend(markdown_flowables(answer, styles))
        if findings.answer_cut:
            story.append(_missing_note(f"The answer was cut at the first {len(findings.answer):,} of its "
                                       f"{findings.answer_chars:,} characters; the full text is in the notebook.",
                                       styles, width))
    else:
        message = "no answer found: write it in the Markdown cell after the Inline Question heading"
        story.append(_missing_note(message, styles, width))
        result.missing.append(f"{SECTIONS[2]}: {message}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    document = SimpleDocTemplate(str(destination), pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN,
                                 topMargin=_MARGIN, bottomMargin=_MARGIN, title="Problem 2: Incorporating CNNs",
                                 author=student_id or "", invariant=1)
    document.build(story)
    result.pages = document.page
    return result

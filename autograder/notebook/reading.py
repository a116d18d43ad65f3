"""Reading a Problem 2 notebook: which file, which cells, and what their outputs say.

Cells are found by tag first (our template tags them) and by heading and content second,
because notebooks made from the official handout have no tags, and students insert, delete
and copy cells. Nothing here executes anything; images are returned as checked PNG bytes. A notebook
that breaks the notebook format is read as far as its types allow (autograder/notebook/schema.py),
each problem named with its cell.

What is read is capped here, once, so that every consumer (the items, the PDF, results.json, the
similarity check, the grading sheet) sees the same bounded input ([intake] of the rubric): the answer
is cut at `max_answer_chars`, and an image over `max_image_pixels` is left out, its size read from its
header and never decoded, with a note saying so (`Findings.left_out`).

The answer is the student's own text near the question (`split_question`): right above the heading, in the
heading cell and under it up to the next section, or in the cell the handout leaves for it (the tagged cell; in
2023, whose handout puts an Extra-Credit prompt between the question and the empty answer cell, the cell after
the prompt: autograder/editions/*.toml [notebook]). Code, docstrings, the handout's text and another section's
work never are; what follows the prompt is extra-credit work, read apart (`Findings.extra_credit_parts`). Where
more than one place holds text, all are kept (`Findings.answer_candidates`) for staff to choose.

The filter figure is looked for in every code cell of the filter section (the edition's filter heading to the
next section, `_filter_section`), each figure kept with its cell (`Findings.filter_image_cells`): students read
the weights in one cell and draw them in the next.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat
from PIL import Image

from autograder import UserInputError
from autograder.deadlines import Deadline, unbounded
from autograder.edition import Edition, Training, default_edition
from autograder.notebook.images import FORMATS, ImageRefused, as_png
from autograder.notebook.schema import checked
from autograder.rubric import Intake, load_rubric

# A number as a log prints it, and no further: "0.85." ends a sentence, it is not part of the number.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_VALIDATION = re.compile(r"validation\s+acc(?:uracy)?\s*(?:is|[:=])?\s*(" + _NUMBER + r")\s*(%?)",
                         re.IGNORECASE | re.ASCII)
_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)\s*=\s*(" + _NUMBER + r")\s*(?:#.*)?$", re.MULTILINE | re.ASCII)
_SUBMISSION = re.compile(r"^\s*#+\s*[*_]*\s*Submission\b", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+|$)(.*)$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class NotebookError(UserInputError):
    """The notebook cannot be read; the message names the file."""


@dataclass
class Findings:
    """What grading needs from one notebook."""

    path: Path
    has_outputs: bool = False
    epochs: list[tuple[int, int, float | None, float]] = field(default_factory=list)  # (epoch, of, train, val)
    reported_extra: list[float] = field(default_factory=list)  # other cells' printouts: shown, never scored
    curve_images: list[bytes] = field(default_factory=list)
    filter_images: list[bytes] = field(default_factory=list)
    filter_source: str = ""
    filter_cell: int | None = None
    # every figure of the filter section (the filter heading to the next section), in order, and each one's
    # cell (filter_image_cells[i] is the cell of filter_images[i]); the section's code cells with their source
    filter_image_cells: list[int] = field(default_factory=list)
    filter_section: list[tuple[int, str]] = field(default_factory=list)
    # the images of every cell but the curves' and the filters', each with what it is ("the figure of
    # cell 12"): a filter image that is one of them (or a curves image) again shows no filters
    other_images: list[tuple[str, bytes]] = field(default_factory=list)
    answer: str = ""  # cut at the rubric's [intake] max_answer_chars
    answer_chars: int = 0  # the answer's length before the cut (more than len(answer) when it was cut)
    # every place near the question with text of the student's own (`split_question`); more than one: staff choose
    answer_candidates: list[AnswerCandidate] = field(default_factory=list)
    # images left out for their size, each (the cell's role: "curves", "filters" or "other", the note why)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    # images left out because they are not the format they claim or are damaged (role, the note why)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "cell N: Name: value"
    parameters: dict[str, float] = field(default_factory=dict)
    training_cell: int | None = None
    # the student's extra-credit work (an edition with an extra-credit section), in cell order: Markdown
    # text (str, the handout's own text left out) and figures (PNG bytes); never the answer
    extra_credit_parts: list[str | bytes] = field(default_factory=list)
    extra_credit_chars: int = 0  # its text's length before the [intake] max_answer_chars cut
    extra_credit_cells: list[int] = field(default_factory=list)  # the cells it was read from

    @property
    def extra_credit(self) -> str:
        """The extra-credit work's text (its Markdown cells, in order)."""
        return "\n\n".join(part for part in self.extra_credit_parts if isinstance(part, str))

    @property
    def extra_credit_cut(self) -> bool:
        """Whether the extra-credit text was longer than the rubric's cap and only its start is kept."""
        return self.extra_credit_chars > len(self.extra_credit)

    @property
    def extra_credit_images(self) -> list[bytes]:
        return [part for part in self.extra_credit_parts if isinstance(part, bytes)]

    @property
    def reported_best(self) -> float | None:
        """The claim: the best Validation Accuracy of the training cell's `train_net` epoch lines only.
        Other cells' printouts (reported_extra) are kept for staff to read, never scored."""
        values = [epoch[3] for epoch in self.epochs]
        return max(values) if values else None

    @property
    def answer_cut(self) -> bool:
        """Whether the answer was longer than the rubric's cap and `answer` holds only its start."""
        return self.answer_chars > len(self.answer)

    def left_out_notes(self, role: str) -> list[str]:
        """The notes on the images of cells of this role ("curves", "filters", "other") left out, for their
        size or because they could not be decoded."""
        return [note for where, note in self.left_out + self.unreadable if where == role]

    @property
    def reported_last(self) -> float | None:
        return self.epochs[-1][3] if self.epochs else None


def choose_notebook(root: Path) -> tuple[Path | None, list[str]]:
    """The Problem 2 notebook of a submission: the official name first, else the likeliest."""
    candidates = sorted(p for p in root.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts and "__MACOSX" not in p.parts)
    if not candidates:
        return None, []
    ranked = sorted(candidates, key=lambda p: (p.name != load_rubric().assignment.notebook,
                                                "problem_2" not in p.name.lower().replace(" ", "_"),
                                                "2" not in p.name, len(p.relative_to(root).parts), p.name))
    chosen = ranked[0]
    return chosen, [p.relative_to(root).as_posix() for p in ranked[1:]]


def read_notebook(path: Path, problems: list[str] | None = None) -> nbformat.NotebookNode:
    """The notebook as format 4 (older formats are upgraded), holding only what has the format's types
    (autograder/notebook/schema.py); each place where it breaks the format is appended to `problems`,
    naming the cell. NotebookError when it is not a notebook at all (not JSON, or no cell readable)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise NotebookError(f"{path.name}: not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    major = data.get("nbformat") if isinstance(data, dict) else None
    if isinstance(major, int) and not isinstance(major, bool) and major < 4:
        try:  # an old format: nbformat upgrades it, then it is checked as any other
            data = json.loads(nbformat.writes(nbformat.convert(nbformat.from_dict(data), 4), version=4))
        except Exception as exc:  # noqa: BLE001 - the upgrade of a malformed old notebook fails in many ways
            raise NotebookError(f"{path.name}: a notebook of format {major} that could not be upgraded "
                                f"({type(exc).__name__}: {str(exc)[:200]}); save it again with Jupyter") from None
    try:
        notebook, found = checked(data)
    except RecursionError:  # the student's JSON nests deeper than the schema checker can follow
        raise NotebookError(f"{path.name}: its JSON is nested too deeply to read (a cell's metadata or outputs "
                            f"hold lists inside lists hundreds of levels deep); save it again with Jupyter") from None
    if problems is not None:
        problems.extend(found)
    if not isinstance(data, dict):
        raise NotebookError(f"{path.name}: not a notebook ({found[0].split(': ', 1)[1]})")
    return notebook


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stream_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts) if all(isinstance(p, str) for p in parts) else ""


def image_size(data: bytes) -> tuple[int, int] | None:
    """An image's (width, height) from its header, without decoding a pixel: a PNG's IHDR chunk, else
    what Pillow's lazy `Image.open` reads. None when the bytes are no image Pillow knows (its consumers
    then say the image is unreadable); Pillow's own decompression-bomb refusal reads as a size above
    any cap the rubric allows (rubric.py keeps max_image_pixels within Pillow's limit)."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                return picture.size
    except Image.DecompressionBombError:
        limit = Image.MAX_IMAGE_PIXELS or 0
        return 2 * limit + 1, 1
    except Exception:  # noqa: BLE001 - the student's bytes: Pillow fails on garbage in many ways
        return None


def size_text(width: int, height: int) -> str:
    """"W x H pixels (N MP)": how an image too large to read is named to the student."""
    return f"{width} x {height} pixels ({width * height / 1e6:.0f} MP)"


def oversized(data: bytes, max_pixels: int) -> str:
    """`size_text` of the image when it has more pixels than `max_pixels`, else ""."""
    size = image_size(data)
    if size is None or size[0] * size[1] <= max_pixels:
        return ""
    return size_text(*size)


def _images(cell, index: int, role: str, found: Findings, limits: Intake, deadline: Deadline) -> list[bytes]:
    """The cell's images as checked PNG bytes (autograder/notebook/images.py: read only as the format their
    MIME type names, PNG or JPEG, and fully decoded). One over the rubric's pixel cap is left out with a
    note in `found.left_out`; one that is not what it claims, or is damaged, with a note in `found.unreadable`."""
    images = []
    for output in cell.get("outputs", []):
        deadline.check()
        if output.get("output_type") not in ("display_data", "execute_result"):
            continue
        data = output.get("data", {})
        mime = next((kind for kind in FORMATS if data.get(kind)), None)
        if mime is None:
            continue
        encoded = data[mime]
        try:
            raw = base64.b64decode(encoded if isinstance(encoded, str) else "".join(encoded))
        except (ValueError, TypeError):
            found.unreadable.append((role, f"an image of cell {index} was left out: its {mime} data is not base64"))
            continue
        size = oversized(raw, limits.max_image_pixels)
        if size:
            found.left_out.append((role, f"an image of cell {index} is {size}, over the "
                                         f"{limits.max_image_pixels / 1e6:g} MP the grader reads, and was left "
                                         f"out: save the figure at a lower dpi (or a smaller figsize)"))
            continue
        try:
            images.append(as_png(raw, FORMATS[mime], limits.max_image_pixels))
        except ImageRefused as exc:
            found.unreadable.append((role, f"an image of cell {index} ({mime}) was left out: {exc}; "
                                           f"save the figure again with plt.savefig or re-run the cell"))
    return images


def _headings(cell) -> str:
    return cell.source if cell.cell_type == "markdown" else ""


def _find(cells, tag: str, predicate, deadline: Deadline) -> int | None:
    for index, cell in enumerate(cells):
        if tag in _tags(cell):
            return index
    for index, cell in enumerate(cells):
        deadline.check()
        if predicate(cell):
            return index
    return None


def _accuracy(value: str, sign: str) -> float | None:
    """An accuracy as printed (a fraction, or a percentage with or without its sign) as a fraction;
    None for what no accuracy can be (negative, above 100 %, not finite): a log is a claim."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    fraction = number / 100 if sign == "%" or number > 1.0 else number
    return fraction if fraction <= 1.0 else None


@lru_cache(maxsize=16)
def log_pattern(regex: str) -> re.Pattern[str]:
    """An edition's log line, compiled once (edition.py checked it and its named groups on loading)."""
    return re.compile(regex)


def log_texts(cell) -> list[str]:
    """What a code cell printed, one text per channel: all its stdout in order, all its stderr, then each
    result's plain text. A log line is read within its own stream: the 2023 handout's train_net runs in
    tqdm, whose progress (carriage returns, no newline) goes to stderr between and even inside the stdout
    lines the kernel sent in pieces, so the outputs joined in their saved order would cut lines apart."""
    streams: dict[str, list[str]] = {}
    results: list[str] = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            streams.setdefault(str(output.get("name", "")), []).append(output.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            results.append(output.get("data", {}).get("text/plain", ""))
    texts = ["".join(parts) for parts in streams.values() if all(isinstance(p, str) for p in parts)]
    return texts + [text for text in results if isinstance(text, str)]


def epoch_lines(texts: list[str], training: Training) -> list[tuple[int, int, float | None, float]]:
    """The epoch lines of the edition's log (`training.epoch_line`) in `texts`, as (epoch, of, training
    accuracy, validation accuracy) fractions; a line whose validation accuracy no accuracy can be is left out.
    The optional groups train_percent / val_percent hold a printed percent sign."""
    pattern = log_pattern(training.epoch_line)
    found = []
    for text in texts:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            validation = _accuracy(groups["val"], groups.get("val_percent") or "")
            if validation is not None:
                found.append((int(groups["epoch"]), int(groups["total"]),
                              _accuracy(groups["train"], groups.get("train_percent") or ""), validation))
    return found


def plain(text: str) -> str:
    """Text reduced to what it says, to compare it with the handout's: HTML comments and tags,
    Markdown markup and punctuation dropped, lowercase words separated by single spaces."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"</?[A-Za-z][^>]*>", " ", text)
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def text_units(notebook: nbformat.NotebookNode) -> frozenset[str]:
    """Every paragraph and every line of every cell of a notebook, each as `plain` text: what a
    submission's answer is compared with to leave the handout's own text out."""
    units = set()
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        if not isinstance(source, str):
            continue
        source = re.sub(r"<!--.*?-->", " ", source, flags=re.DOTALL)
        for block in _PARAGRAPH_BREAK.split(source):
            units.add(plain(block))
            units.update(plain(line) for line in block.splitlines())
    units.discard("")
    return frozenset(units)


def own_text(text: str, handout: frozenset[str]) -> str:
    """`text` without what the handout also says: each paragraph, heading or line whose `plain` form
    is one of the handout's is dropped; a paragraph left with no words goes too. "" when nothing of
    the student's own remains."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    kept = []
    for block in _PARAGRAPH_BREAK.split(text):
        if plain(block) in handout:
            continue
        lines = [line for line in block.splitlines() if not (plain(line) and plain(line) in handout)]
        if plain("\n".join(lines)):
            kept.append("\n".join(lines).strip("\n"))
    return "\n\n".join(kept).strip()


def _heading(cell) -> tuple[int, str] | None:
    """(level, `plain` text) of the heading a Markdown cell opens with (its first line with words on it,
    HTML comments aside), or None when it opens with anything else."""
    if cell.cell_type != "markdown":
        return None
    for line in re.sub(r"<!--.*?-->", "", cell.source, flags=re.DOTALL).splitlines():
        if line.strip():
            found = _HEADING.match(line)
            return (len(found.group(1)), plain(found.group(2))) if found else None
    return None


def _after_heading(source: str) -> str:
    """A Markdown cell's text after the heading it opens with (HTML comments aside)."""
    lines = re.sub(r"<!--.*?-->", "", source, flags=re.DOTALL).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    return "\n".join(lines[first + 1:])


def _names(heading: tuple[int, str] | None, words: str) -> bool:
    """Whether a heading's text holds `words` (compared as `plain` text, whole words): "Extra Credit",
    "**Extra-credit** analysis" and "extra credit" all name "Extra-Credit"."""
    return bool(heading and plain(words)) and f" {plain(words)} " in f" {heading[1]} "


#: What students leave in the answer cell when they have not answered (compared lowercased, stripped).
PLACEHOLDERS = frozenset({"*your answer here.*", "your answer here", "your answer:", "*your answer:*", "answer:",
                          "todo"})
#: Words that open a heading of the student's own answer ("#### Answer", "**My response**"): such a heading,
#: even at the question's level, is the answer's, not another section's.
_ANSWER_LABELS = ("answer", "my answer", "our answer", "response", "my response")
#: Words that name an extra-credit section in any edition (a 2022 student may add one of their own).
_EXTRA_CREDIT_WORDS = "Extra Credit"
#: Words that, in a heading at any level, name work beside the answer ("##### Extra: confusion matrix",
#: "Bonus analysis", "Optional"): such a heading ends the answer even when it is deeper than the question's.
_EXTRA_WORK_WORDS = ("extra", "bonus", "optional")


def _names_extra_work(heading: tuple[int, str] | None, extra_credit_heading: str = "") -> bool:
    """Whether a heading names work beside the answer: the edition's extra-credit heading, or extra, bonus or
    optional work at any level ("##### Extra: confusion matrix")."""
    return _names(heading, extra_credit_heading) or any(_names(heading, words) for words in _EXTRA_WORK_WORDS)


def _before_extra_work(text: str, extra_credit_heading: str = "") -> str:
    """`text` up to a heading line inside it that names extra work: a student who wrote "##### Extra: ..." in
    the answer's own cell ends the answer there, as a cell opening with that heading does."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        found = _HEADING.match(line)
        if found and _names_extra_work((len(found.group(1)), plain(found.group(2))), extra_credit_heading):
            return "".join(lines[:index])
    return text


@dataclass(frozen=True)
class AnswerCandidate:
    """One place near the question that holds text of the student's own (the handout's text left out)."""

    cells: tuple[int, ...]  # the cells it was read from, in order (the question cell: text under its heading)
    where: str  # where, said for staff: "above the question heading", "under the question heading", ...
    text: str  # the student's own text, cut at [intake] max_answer_chars
    chars: int  # its length before the cut


@dataclass
class QuestionSplit:
    """Where the answer is, and (an edition with an extra-credit section) where the extra-credit work is."""

    answer: str  # the candidates' texts, in cell order ("" when none)
    answer_cells: list[int]  # the cells the candidates were read from
    prompt: int | None  # the handout's Extra-Credit prompt cell, None when there is none or it was deleted
    extra: list[tuple[int, str]]  # the extra-credit work: (cell, its own Markdown text, "" for a code cell)
    candidates: list[AnswerCandidate] = field(default_factory=list)


def _student_text(text: str) -> bool:
    """Whether `text` (already without the handout's) says anything: not empty, not a placeholder."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL).strip()
    return bool(text) and text.lower() not in PLACEHOLDERS


def split_question(cells, question: int | None, edition: Edition, handout: frozenset[str],
                   deadline: Deadline, max_chars: int | None = None) -> QuestionSplit:
    """The answer's candidates and, for an edition with an extra-credit section, the extra-credit work.

    A student answers near the question, and nowhere else is the answer. The candidates:

    - *above the question heading*: the Markdown and raw cells right above it, up to the code cell or heading
      cell before them (a student who wrote the answer first and pasted the question below it);
    - *under the question heading*: the question cell's own text after its heading and the Markdown and raw
      cells after it, up to the next section: a code cell (the student's own work starts there, and code or a
      docstring is never the answer), a heading of the question's level or higher (unless it labels the answer,
      "#### Answer", or opens the first cell under the question, the one the handout leaves for the answer), a
      heading naming the extra credit, the edition's Extra-Credit prompt, the Submission heading;
    - *the answer cell the handout leaves*: a cell tagged `inline-answer` (our template) wherever it is, and in
      an edition whose question is followed by an Extra-Credit prompt (2023; in an edition that names none, any
      heading naming the extra credit after the question: a class's handout may add one), the Markdown cell right
      after the prompt. The untagged cell after the prompt is the answer only when nothing was written near the
      question: a student who answered there uses that cell for the analysis the prompt asks for (extra credit).

    Each candidate keeps only the student's own text (`own_text`); one with none is no candidate. More than one
    is not decided here: all are kept, in cell order, for staff to read (the answer is their texts joined).

    The extra-credit work (only for an edition that has extra credit): everything from the end of the region
    under the question to the Submission heading that is not a candidate (Markdown text and code cells' figures,
    code itself never), and what the student wrote into the prompt's own cell when the baseline knows the
    prompt's words; with a baseline that does not, that cell is the handout's and left out whole.
    """
    sections = edition.notebook
    limit = max_chars if max_chars is not None else load_rubric().intake.max_answer_chars
    tagged = [i for i, cell in enumerate(cells) if "inline-answer" in _tags(cell) and cell.cell_type != "code"]

    def candidate(indices: list[int], where: str, text: str) -> AnswerCandidate | None:
        own = own_text(_before_extra_work(text, sections.extra_credit_heading), handout)
        if not _student_text(own):
            return None
        return AnswerCandidate(tuple(indices), where, own[:limit].rstrip(), len(own))

    if question is None:  # no question heading: only the handout's answer cell can say where the answer is
        found = candidate(tagged, "in the answer cell", "\n\n".join(cells[i].source for i in tagged)) \
            if tagged else None
        return _split([found] if found else [], None, [])
    end = next((i for i in range(question + 1, len(cells)) if cells[i].cell_type == "markdown"
                and _SUBMISSION.match(cells[i].source)), len(cells))
    level = (_heading(cells[question]) or (4, ""))[0]
    prompt = None
    for index in range(question + 1, end):
        deadline.check()
        heading = _heading(cells[index])
        if heading is not None and plain(sections.extra_credit_prompt) and \
                f" {heading[1]}".startswith(f" {plain(sections.extra_credit_prompt)}"):
            prompt = index
            break
        if heading is not None and not plain(sections.extra_credit_prompt) and _names(heading, _EXTRA_CREDIT_WORDS):
            prompt = index  # an extra-credit prompt the edition does not name (a class's own handout's)
            break

    def opens_section(cell, first: bool = False) -> bool:
        """Whether the cell's heading opens another section. The first cell under the question is the one the
        handout leaves for the answer, so there only an extra-credit heading does ("### What I see" is an answer)."""
        heading = _heading(cell)
        if heading is None:
            return False
        if _names_extra_work(heading, sections.extra_credit_heading):
            return True
        labels_answer = any(f" {heading[1]} ".startswith(f" {label} ") for label in _ANSWER_LABELS)
        return heading[0] <= level and not labels_answer and not first

    above: list[int] = []
    for index in range(question - 1, -1, -1):
        deadline.check()
        cell = cells[index]
        if (cell.cell_type == "code" and cell.source.strip()) or _heading(cell) is not None:
            break
        if cell.cell_type in ("markdown", "raw") and cell.source.strip():
            above.insert(0, index)
    below: list[int] = []
    stop = prompt if prompt is not None else end
    for index in range(question + 1, stop):
        deadline.check()
        cell = cells[index]
        if (cell.cell_type == "code" and cell.source.strip()) or opens_section(cell, first=not below) or \
                (cell.cell_type == "markdown" and _SUBMISSION.match(cell.source)):
            stop = index
            break
        if cell.cell_type in ("markdown", "raw") and cell.source.strip():
            below.append(index)
    own = cells[question].source.split("\n", 1)
    under = own[1] if len(own) > 1 else ""  # written into the question cell under the heading
    found = [candidate(above, "above the question heading", "\n\n".join(cells[i].source for i in above)),
             candidate(([question] if under.strip() else []) + below, "under the question heading",
                       "\n\n".join([under.strip()] * bool(under.strip()) + [cells[i].source for i in below]))]
    found = [one for one in found if one is not None]
    near = {question, *above, *below}
    place = [i for i in tagged if i not in near]
    explicit = bool(place)
    after = prompt + 1 if prompt is not None else None
    if not place and after is not None and after < end and cells[after].cell_type == "markdown" \
            and not opens_section(cells[after]):
        place = [after]
    if place and (explicit or not found):
        where = ("in the answer cell after the Extra-Credit prompt" if prompt is not None and place[0] > prompt
                 else "in the answer cell")
        kept = candidate(place, where, "\n\n".join(cells[i].source for i in place))
        found += [kept] if kept else []
    found.sort(key=lambda one: one.cells[0])
    extra = []
    if sections.extra_credit_heading:
        answer_cells = {i for one in found for i in one.cells}
        knows_prompt = prompt is not None and _heading(cells[prompt])[1] in handout
        for index in range(stop, end):
            deadline.check()
            cell = cells[index]
            if index in answer_cells or index in tagged or (index == prompt and not knows_prompt):
                continue
            if cell.cell_type == "markdown":
                text = own_text(cell.source, handout)
                if index == prompt:  # its heading is the handout's, whatever the baseline
                    text = own_text(_after_heading(cell.source), handout)
                if text:
                    extra.append((index, text))
            elif cell.cell_type == "code" and cell.get("outputs"):
                extra.append((index, ""))
    return _split(found, prompt, extra)


def _split(candidates: list[AnswerCandidate], prompt: int | None, extra: list[tuple[int, str]]) -> QuestionSplit:
    return QuestionSplit("\n\n".join(one.text for one in candidates),
                         [i for one in candidates for i in one.cells], prompt, extra, candidates)


def extract(notebook: nbformat.NotebookNode, path: Path, handout: frozenset[str] = frozenset(),
            limits: Intake | None = None, deadline: Deadline | None = None,
            edition: Edition | None = None) -> Findings:
    """Everything grading reads from the notebook; `handout` is the handout notebook's `text_units`
    (autograder.baseline), whose text is never taken for the student's answer. `limits` caps the answer's
    length and the images' pixels (default: the rubric's [intake]); every loop over cells and outputs
    checks `deadline` ([deadlines] notebook_seconds; StageTimeout past it). `edition` (default: the
    default edition) gives the training log's line formats, where the answer is, and whether there is
    extra-credit work to read apart."""
    limits = limits or load_rubric().intake
    edition = edition or default_edition()
    epoch_pattern = log_pattern(edition.training.epoch_line)
    deadline = deadline or unbounded()
    cells = notebook.cells
    found = Findings(path)
    found.has_outputs = any(cell.get("outputs") for cell in cells if cell.cell_type == "code")
    for index, cell in enumerate(cells):
        deadline.check()
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                found.errors.append(f"cell {index}: {output.get('ename')}: {str(output.get('evalue'))[:200]}")
    for tag in ("parameters", "injected-parameters"):  # a quick run's overrides come second and win
        index = _find(cells, tag, lambda c: False, deadline)
        if index is not None:
            for name, value in _ASSIGNMENT.findall(cells[index].source):
                number = float(value)  # the pattern admits only what float() reads
                if math.isfinite(number) and abs(number) < 1e12:
                    found.parameters[name] = number
    training = _find(cells, "training-run", lambda c: c.cell_type == "code" and "train_net(" in c.source
                     and "def train_net" not in c.source, deadline)
    found.training_cell = training
    if training is not None:
        found.epochs = epoch_lines(log_texts(cells[training]), edition.training)
    for cell in cells[training + 1 if training is not None else 0:]:  # a student's own compute_acc printout
        deadline.check()
        if cell.cell_type == "code":
            text = epoch_pattern.sub("", _stream_text(cell))
            found.reported_extra += [a for a in (_accuracy(v, s) for v, s in _VALIDATION.findall(text))
                                     if a is not None]
    start = training + 1 if training is not None else 0
    curves = _find(cells, "training-curves", lambda c: c.cell_type == "code" and cells.index(c) >= start
                   and ("Training loss" in c.source or ("loss_hist" in c.source and "plot" in c.source)), deadline)
    if curves is not None:
        found.curve_images = _images(cells[curves], curves, "curves", found, limits, deadline)
    sections = edition.notebook
    heading = _find(cells, "", lambda c: sections.filters_heading in _headings(c), deadline)
    filters = _find(cells, "filter-visualization", lambda c: c.cell_type == "code" and (
        "im_array" in c.source or (heading is not None and cells.index(c) > heading and "imshow" in c.source)),
                    deadline)
    section = [index for index in _filter_section(cells, heading, filters, edition, deadline)
               if index not in (curves, training)]
    _filter_figures(found, cells, section, filters, limits, deadline)
    question = _find(cells, "", lambda c: c.cell_type == "markdown"
                     and sections.question_heading in c.source, deadline)
    split = split_question(cells, question, edition, handout, deadline, limits.max_answer_chars)
    extra_images = _extra_credit(found, cells, split, (curves, *section), limits, deadline)
    for index, cell in enumerate(cells):  # the curves and the filter section were read above
        if cell.cell_type == "code" and index != curves and index not in section and cell.get("outputs"):
            if len(found.other_images) >= limits.max_other_images:
                found.left_out.append(("other", f"the figures of cell {index} and later cells were not read: the "
                                                f"grader reads {limits.max_other_images} figures of other cells"))
                break
            pngs = extra_images[index] if index in extra_images else _images(cell, index, "other", found, limits,
                                                                                deadline)
            found.other_images += [(f"the figure of cell {index}", png) for png in pngs]
    found.answer_candidates = list(split.candidates)
    answer = split.answer
    found.answer_chars = sum(one.chars for one in split.candidates) + 2 * max(len(split.candidates) - 1, 0)
    found.answer = answer[:limits.max_answer_chars].rstrip()  # each candidate is stripped: only a cut one changes
    return found


def _filter_section(cells, heading: int | None, filters: int | None, edition: Edition,
                    deadline: Deadline) -> list[int]:
    """The code cells of the filter section: from the edition's filter heading to the next heading of its level
    or higher, or one that opens the question, the extra credit or the Submission (the question's heading is a
    level below the filters' in the handouts); and, when the filter cell is not among them (no heading, or the
    cell moved), from that cell to the next heading of any level. Students read the weights in one cell and
    draw them in the next, so the figure is looked for in the whole section, not in one cell."""
    sections = edition.notebook
    names = [words for words in (sections.question_heading, sections.extra_credit_heading, _EXTRA_CREDIT_WORDS)
             if plain(words)]
    found: set[int] = set()
    opened = _heading(cells[heading]) if heading is not None else None
    starts = [(heading + 1, opened[0] if opened else 0)] if heading is not None else []
    starts += [(filters, 0)] if filters is not None else []
    for first, level in starts:
        for index in range(first, len(cells)):
            deadline.check()
            cell = cells[index]
            title = _heading(cell)
            if index != filters and title is not None and (
                    not level or title[0] <= level or any(_names(title, words) for words in names)
                    or _SUBMISSION.match(cell.source)):
                break
            if cell.cell_type == "code":
                found.add(index)
    return sorted(found)


def _filter_figures(found: Findings, cells, section: list[int], filters: int | None, limits: Intake,
                    deadline: Deadline) -> None:
    """Read every figure of the filter section into `found` (at most [intake] max_other_images of them: a
    section of many figures is a notebook of many figures), each with its cell; the filter cell is the one
    found by its tag or content, else the first of the section with a figure."""
    for index in section:
        if len(found.filter_images) >= limits.max_other_images:
            found.left_out.append(("other", f"the figures of cell {index} and later cells of the filter section "
                                            f"were not read: the grader reads {limits.max_other_images} figures there"))
            break
        pngs = _images(cells[index], index, "filters", found, limits, deadline)
        found.filter_images += pngs
        found.filter_image_cells += [index] * len(pngs)
    found.filter_section = [(index, cells[index].source) for index in section]
    cell = filters if filters is not None else next(iter(found.filter_image_cells), None)
    if cell is None and section:
        cell = section[0]
    if cell is not None:
        found.filter_source = cells[cell].source
        found.filter_cell = cell


def _extra_credit(found: Findings, cells, split: QuestionSplit | None, read: tuple[int | None, ...],
                  limits: Intake, deadline: Deadline) -> dict[int, list[bytes]]:
    """Fill `found.extra_credit_parts` from the split's extra-credit cells (their text cut, like the
    answer's, at [intake] max_answer_chars; at most max_other_images figures); the figures read, by cell,
    so that the other-figures pass does not decode them again."""
    images: dict[int, list[bytes]] = {}
    if split is None:
        return images
    budget, figures = limits.max_answer_chars, 0
    for index, text in split.extra:
        deadline.check()
        if "inline-answer" in _tags(cells[index]) or index in read:
            continue
        if text:
            found.extra_credit_chars += len(text) + (2 if found.extra_credit_chars else 0)
            if budget > 0:
                found.extra_credit_parts.append(text[:budget].rstrip())
                budget -= len(text) + 2
            found.extra_credit_cells.append(index)
        elif figures < limits.max_other_images:
            images[index] = _images(cells[index], index, "extra credit", found, limits, deadline)
            figures += len(images[index])
            found.extra_credit_parts += images[index]
            if images[index]:
                found.extra_credit_cells.append(index)
    return images

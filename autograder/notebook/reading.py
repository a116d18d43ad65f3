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

Where the answer is depends on the edition (autograder/editions/*.toml [notebook]): in 2022 it follows the
Inline Question up to the Submission heading; the 2023 handout puts an Extra-Credit prompt between the
question and the empty answer cell, so the answer is what the student wrote right under the question or,
failing that, in the cell right after the prompt, and what else follows the prompt is extra-credit work,
read apart (`Findings.extra_credit_parts`), never the answer (`_question_regions`).
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
    # the images of every cell but the curves' and the filters', each with what it is ("the figure of
    # cell 12"): a filter image that is one of them (or a curves image) again shows no filters
    other_images: list[tuple[str, bytes]] = field(default_factory=list)
    answer: str = ""  # cut at the rubric's [intake] max_answer_chars
    answer_chars: int = 0  # the answer's length before the cut (more than len(answer) when it was cut)
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


def _answer(cells, question: int | None, handout: frozenset[str], deadline: Deadline) -> str:
    """The inline answer: the tagged cells, else what follows the question up to the Submission
    heading; either way without the handout's own text (see `own_text`)."""
    tagged = [cell.source for cell in cells if "inline-answer" in _tags(cell)]
    if tagged:
        return own_text("\n\n".join(tagged), handout)
    if question is None:
        return ""
    parts = []
    own = cells[question].source.split("\n", 1)
    if len(own) > 1 and own[1].strip():
        parts.append(own[1].strip())  # written into the question cell under the heading
    for cell in cells[question + 1:]:
        deadline.check()
        if cell.cell_type == "markdown" and _SUBMISSION.match(cell.source):
            break
        if cell.cell_type == "markdown" and cell.source.strip():
            parts.append(cell.source.strip())
        elif cell.cell_type == "code":
            parts += [text.strip() for text in re.findall(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', cell.source, re.DOTALL)
                      for text in text if text.strip()]
    return own_text("\n\n".join(parts), handout)


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


@dataclass
class QuestionSplit:
    """Where an edition with an extra-credit section keeps the answer and the extra-credit work."""

    answer: str  # the student's own text (handout text left out), "" when none
    answer_cells: list[int]  # the cells it was read from (the question cell when written under its heading)
    prompt: int | None  # the handout's Extra-Credit prompt cell, None when the student deleted it
    extra: list[tuple[int, str]]  # the extra-credit work: (cell, its own Markdown text, "" for a code cell)


def split_question(cells, question: int, edition: Edition, handout: frozenset[str],
                   deadline: Deadline) -> QuestionSplit:
    """The answer and the extra-credit work of an edition whose question is followed by an extra-credit
    prompt (2023: heading, prompt, empty answer cell, Submission). Students answer right under the question
    or in the cell right after the prompt; both are the answer, nothing else is:

    - under the question: the question cell's own lines after its heading, and the Markdown cells after it up
      to the next section (the prompt, a heading above the question's level or naming the extra credit, the
      Submission heading; without the prompt, also the first code cell: the student's own work starts there);
    - after the prompt: the cell right after it, when nothing was written under the question and that cell
      is Markdown with words of the student's own that do not open an extra-credit section of theirs (a
      student who answered under the question uses that cell for the analysis the prompt asks for);
    - everything else up to the Submission heading (Markdown text and code cells' figures; code itself never)
      is extra-credit work, and so is what the student wrote into the prompt's own cell when the baseline
      knows the prompt's words; with a baseline that does not, that cell is the handout's and left out whole.
    """
    sections = edition.notebook
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

    def opens_section(cell) -> bool:
        heading = _heading(cell)
        return heading is not None and (heading[0] < level or _names(heading, sections.extra_credit_heading))

    parts, answer_cells = [], []
    own = cells[question].source.split("\n", 1)
    if len(own) > 1 and own[1].strip():
        parts.append(own[1].strip())  # written into the question cell under the heading
        answer_cells.append(question)
    stop = prompt if prompt is not None else end
    for index in range(question + 1, stop):
        deadline.check()
        cell = cells[index]
        if opens_section(cell) or (prompt is None and cell.cell_type == "code" and cell.source.strip()):
            stop = index
            break
        if cell.cell_type == "markdown" and cell.source.strip():
            parts.append(cell.source.strip())
            answer_cells.append(index)
    answer = own_text("\n\n".join(parts), handout)
    if not answer:
        answer_cells = []
    after = prompt + 1 if prompt is not None else None
    if not answer and after is not None and after < end and cells[after].cell_type == "markdown" \
            and not opens_section(cells[after]):
        answer = own_text(cells[after].source, handout)
        answer_cells = [after] if answer else []
    extra = []
    knows_prompt = prompt is not None and _heading(cells[prompt])[1] in handout
    for index in range(stop, end):
        deadline.check()
        cell = cells[index]
        if index in answer_cells or (index == prompt and not knows_prompt):
            continue
        if cell.cell_type == "markdown":
            text = own_text(cell.source, handout)
            if index == prompt:  # its heading is the handout's, whatever the baseline
                text = own_text(_after_heading(cell.source), handout)
            if text:
                extra.append((index, text))
        elif cell.cell_type == "code" and cell.get("outputs"):
            extra.append((index, ""))
    return QuestionSplit(answer, answer_cells, prompt, extra)


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
    heading = _find(cells, "", lambda c: "Visualizing Layers" in _headings(c), deadline)
    filters = _find(cells, "filter-visualization", lambda c: c.cell_type == "code" and (
        "im_array" in c.source or (heading is not None and cells.index(c) > heading and "imshow" in c.source)),
                    deadline)
    if filters is not None:
        found.filter_images = _images(cells[filters], filters, "filters", found, limits, deadline)
        found.filter_source = cells[filters].source
        found.filter_cell = filters
    question = _find(cells, "", lambda c: c.cell_type == "markdown"
                     and edition.notebook.question_heading in c.source, deadline)
    split = None
    if edition.notebook.extra_credit_heading and question is not None:
        split = split_question(cells, question, edition, handout, deadline)
    extra_images = _extra_credit(found, cells, split, (curves, filters), limits, deadline)
    for index, cell in enumerate(cells):  # the curves and the filters were read above
        if cell.cell_type == "code" and index not in (curves, filters) and cell.get("outputs"):
            if len(found.other_images) >= limits.max_other_images:
                found.left_out.append(("other", f"the figures of cell {index} and later cells were not read: the "
                                                f"grader reads {limits.max_other_images} figures of other cells"))
                break
            pngs = extra_images[index] if index in extra_images else _images(cell, index, "other", found, limits,
                                                                                deadline)
            found.other_images += [(f"the figure of cell {index}", png) for png in pngs]
    if any("inline-answer" in _tags(cell) for cell in cells) or split is None:
        answer = _answer(cells, question, handout, deadline)
    else:
        answer = split.answer
    found.answer_chars = len(answer)
    found.answer = answer[:limits.max_answer_chars].rstrip()  # `_answer` strips: only a cut one changes
    return found


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

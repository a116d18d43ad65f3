"""Near-identical submissions across a batch: a ranked list for staff to look at, never a verdict.

Only what is the student's own is compared; the handout students received (the baseline,
autograder/baseline.py: our student template, or the official handout staff name) is nobody's:
- the `lib/cnn` code, after normalisation: comments, blank lines, indentation and docstrings
  dropped, every string folded to `S` and every name that is not an attribute folded to `_`
  (so renaming variables changes nothing), and every line that also occurs in the baseline's
  `lib/cnn` removed (so the handed-out skeleton counts for no one);
- the inline answers, as lowercase words, as grading found them: without the baseline
  notebook's text (autograder/notebook/reading.py `own_text`), so an answer left empty, or holding only
  the handout's prompts, is no answer at all.
Each side becomes a set of overlapping k-grams (of tokens, or of words); the score of a pair is
their Jaccard index, from 0 (nothing shared) to 1 (the same after normalisation). Sides with too
little of their own text are skipped: two untouched handouts are alike, and that says nothing.

`fingerprint` runs once per submission, while grading has it unpacked (`grade_submission(...,
write_fingerprint=True)`, as the batch asks); the fingerprints are kept as
OUT/<id>/fingerprint.json, so a resumed batch compares without unpacking again. `similar_pairs`
ranks them; the thresholds are in rubric.toml [similarity].
"""

from __future__ import annotations

import io
import json
import keyword
import re
import tokenize
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from autograder.reports.results import write_atomically  # a batch rewrites it while it runs

FINGERPRINT = "fingerprint.json"  # OUT/<student id>/
PAIRS = "similarity.json"  # OUT/
_MAX_SOURCE_BYTES = 1 << 20

_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
            tokenize.ENDMARKER}
# Python 3.12 splits f-strings into parts; the whole f-string counts as one string, like on 3.11.
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions that look alike in one respect, with how alike (0 to 1)."""

    kind: str  # "code" or "answer"
    first: str
    second: str
    score: float


def _token_lines(source: str) -> list[str]:
    """Normalised logical lines of Python source; plain stripped lines if it does not tokenize."""
    lines, current, previous, inside_fstring = [], [], None, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == _FSTRING_START:
                inside_fstring += 1
                if inside_fstring == 1:
                    current.append("S")
                continue
            if inside_fstring:
                inside_fstring -= token.type == _FSTRING_END
                continue
            if token.type in _DROPPED:
                continue
            if token.type == tokenize.NEWLINE:
                if current and current != ["S"]:  # a docstring or a bare string is no code
                    lines.append(" ".join(current))
                current, previous = [], None
                continue
            if token.type == tokenize.STRING:
                text = "S"
            elif token.type == tokenize.NAME and not keyword.iskeyword(token.string) and previous != ".":
                text = "_"
            else:
                text = token.string
            current.append(text)
            previous = token.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return _text_lines(source)  # Python 2, mixed tabs, a half-written line
    if current and current != ["S"]:
        lines.append(" ".join(current))
    return lines


def _text_lines(source: str) -> list[str]:
    """The lines of source that does not tokenize: comments and all white space gone."""
    return [re.sub(r"\s+", "", line.split("#")[0]) for line in source.splitlines() if line.split("#")[0].strip()]


def code_lines(folder: Path, text_form: bool = False) -> list[str]:
    """The normalised lines of every `.py` file of `folder` (a `lib/cnn`), token form or text form."""
    lines = []
    for path in sorted(folder.glob("*.py")) if folder.is_dir() and not folder.is_symlink() else []:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_SOURCE_BYTES:
            continue  # a link may point anywhere (we run as root); a huge file is no hand-written code
        source = path.read_text(encoding="utf-8", errors="replace")
        lines += _text_lines(source) if text_form else _token_lines(source)
    return lines


def baseline_lines(folder: Path) -> frozenset[str]:
    """A handout's `lib/cnn` lines in both forms, so that a line of it is dropped whichever form
    the student's file is read in."""
    return frozenset(code_lines(folder)) | frozenset(code_lines(folder, text_form=True))


def fingerprint(root: Path, baseline_code: frozenset[str]) -> dict:
    """What a submission's code is compared by: its own normalised `lib/cnn` lines, those of the
    baseline (`Baseline.code`, autograder/baseline.py) left out; grading adds the inline answer."""
    own = [line for line in code_lines(root / "lib" / "cnn") if line not in baseline_code]
    return {"code": own}


def _shingles(tokens: list[str], k: int) -> set[int]:
    return {hash(tuple(tokens[i:i + k])) for i in range(len(tokens) - k + 1)}


def _jaccard(first: set, second: set) -> float:
    return len(first & second) / len(first | second) if first and second else 0.0


def answer_words(text: str) -> list[str]:
    """The answer as lowercase words, punctuation and Markdown gone."""
    return re.findall(r"[a-z0-9]+", text.lower())


def similar_pairs(fingerprints: dict[str, dict], settings: dict) -> list[SimilarPair]:
    """Pairs at or above the thresholds, most alike first; `fingerprints` maps student id to
    {"code": [normalised lines], "answer": "text"}."""
    code, answers = {}, {}
    for student, print_ in fingerprints.items():
        tokens = " ".join(print_.get("code", [])).split()
        if len(tokens) >= settings["min_code_tokens"]:
            code[student] = _shingles(tokens, settings["code_kgram"])
        words = answer_words(print_.get("answer", ""))
        if len(words) >= settings["min_answer_words"]:
            answers[student] = _shingles(words, settings["answer_kgram"])
    pairs = []
    for kind, sets, threshold in (("code", code, settings["code_threshold"]),
                                  ("answer", answers, settings["answer_threshold"])):
        for first, second in combinations(sorted(sets), 2):
            score = _jaccard(sets[first], sets[second])
            if score >= threshold:
                pairs.append(SimilarPair(kind, first, second, round(score, 3)))
    return sorted(pairs, key=lambda pair: (-pair.score, pair.kind, pair.first, pair.second))


def write_pairs(path: Path, pairs: list[SimilarPair]) -> None:
    """OUT/similarity.json: the ranked pairs, read back by the gradebook and the class report."""
    write_atomically(path, json.dumps([pair.__dict__ for pair in pairs], indent=1) + "\n")


def read_pairs(path: Path) -> list[SimilarPair]:
    """The pairs of `write_pairs`; none when the file is absent (a batch from before similarity)."""
    if not path.is_file():
        return []
    return [SimilarPair(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]


def flags_by_student(pairs: list[SimilarPair], shown: int = 3) -> dict[str, list[str]]:
    """Each student's similarity flags for the gradebook, one per kind, most alike first:
    'similar code: 1002 (1.00), 1007 (0.91) +4 more'."""
    others: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for pair in pairs:
        others.setdefault((pair.first, pair.kind), []).append((pair.score, pair.second))
        others.setdefault((pair.second, pair.kind), []).append((pair.score, pair.first))
    flags: dict[str, list[str]] = {}
    for (student, kind), alike in sorted(others.items()):
        alike.sort(key=lambda entry: (-entry[0], entry[1]))
        named = ", ".join(f"{other} ({score:.2f})" for score, other in alike[:shown])
        more = f" +{len(alike) - shown} more" if len(alike) > shown else ""
        flags.setdefault(student, []).append(f"similar {kind}: {named}{more}")
    return flags


def groups(pairs: list[SimilarPair]) -> list[tuple[str, list[str], float]]:
    """Pairs joined into groups (kind, members, lowest score of a pair inside), largest first: fifteen
    students sharing one answer are one line for staff, not 105 pairs."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        parent[root((pair.kind, pair.first))] = root((pair.kind, pair.second))
    members: dict[tuple[str, str], list[str]] = {}
    for node in list(parent):
        members.setdefault(root(node), []).append(node[1])
    lowest: dict[tuple[str, str], float] = {}
    for pair in pairs:
        top = root((pair.kind, pair.first))
        lowest[top] = min(lowest.get(top, pair.score), pair.score)
    found = [(top[0], sorted(names), lowest[top]) for top, names in members.items()]
    return sorted(found, key=lambda group: (-len(group[1]), -group[2], group[0], group[1]))

"""Solution regions: the one marker convention shared by the reference code and notebook.

In Python (library files and code cells)::

    # BEGIN SOLUTION
    ...the reference's code...
    # HANDOUT: what the student template shows instead (optional, repeatable)
    # END SOLUTION

In Markdown cells the same words sit in HTML comments::

    <!-- BEGIN SOLUTION -->
    ...the reference's text...
    <!-- HANDOUT: *Your answer here.* -->
    <!-- END SOLUTION -->

The template keeps the `HANDOUT:` lines (at the indentation of the BEGIN marker) and drops
everything else between the markers; a Python region without `HANDOUT:` lines becomes `pass`,
a Markdown one becomes nothing. Regions do not nest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autograder import UserInputError

_PATTERNS = {
    "python": {
        "begin": re.compile(r"^(\s*)# BEGIN SOLUTION\s*$"),
        "end": re.compile(r"^\s*# END SOLUTION\s*$"),
        "handout": re.compile(r"^\s*# HANDOUT:(?: (.*))?$"),
    },
    "markdown": {
        "begin": re.compile(r"^(\s*)<!-- BEGIN SOLUTION -->\s*$"),
        "end": re.compile(r"^\s*<!-- END SOLUTION -->\s*$"),
        "handout": re.compile(r"^\s*<!-- HANDOUT:(?: (.*?))? -->\s*$"),
    },
}
_DEFAULT_PLACEHOLDER = {"python": "pass", "markdown": None}


class RegionError(UserInputError):
    """Markers that do not pair up; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    """One solution region: 1-based line numbers of its markers and the lines between them."""

    begin_line: int
    end_line: int
    solution: tuple[str, ...]
    handout: tuple[str, ...]


def find_regions(text: str, syntax: str, source: str = "<text>") -> list[Region]:
    """All solution regions in `text`; raises RegionError when markers are unbalanced."""
    patterns = _PATTERNS[syntax]
    regions: list[Region] = []
    begin: int | None = None
    solution: list[str] = []
    handout: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if patterns["begin"].match(line):
            if begin is not None:
                raise RegionError(f"{source}:{number}: BEGIN SOLUTION inside the region opened on line {begin}")
            begin, solution, handout = number, [], []
        elif patterns["end"].match(line):
            if begin is None:
                raise RegionError(f"{source}:{number}: END SOLUTION without a BEGIN SOLUTION")
            regions.append(Region(begin, number, tuple(solution), tuple(handout)))
            begin = None
        elif begin is not None:
            found = patterns["handout"].match(line)
            if found:
                handout.append(found.group(1) or "")
            else:
                solution.append(line)
    if begin is not None:
        raise RegionError(f"{source}:{begin}: BEGIN SOLUTION is never closed")
    return regions


def strip_solutions(text: str, syntax: str, source: str = "<text>") -> str:
    """The student's version of `text`: each region replaced by its handout lines."""
    patterns = _PATTERNS[syntax]
    regions = {region.begin_line: region for region in find_regions(text, syntax, source)}
    out: list[str] = []
    skip_until = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if number <= skip_until:
            continue
        region = regions.get(number)
        if region is None:
            out.append(line)
            continue
        indent = patterns["begin"].match(line).group(1)
        replacement = list(region.handout)
        if not replacement and _DEFAULT_PLACEHOLDER[syntax] is not None:
            replacement = [_DEFAULT_PLACEHOLDER[syntax]]
        out.extend(indent + handout_line if handout_line else "" for handout_line in replacement)
        skip_until = region.end_line
    stripped = "\n".join(out)
    if text.endswith("\n"):
        stripped += "\n"
    return stripped

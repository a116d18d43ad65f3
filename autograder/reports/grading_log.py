"""Library warnings raised while grading go to the submission's log, never to the terminal.

Reading students' files makes libraries complain: pypdf logs "Ignoring wrong pointing object"
for a slightly broken PDF, nbformat warns about an old notebook. Printed, those lines run over a
batch's progress bar and mean nothing to the person watching it; they belong beside the
submission they are about. `captured()` collects every log record of WARNING and above and
every Python warning raised while one submission is graded; `write_log` keeps them in
OUT/<id>/grading.log (and removes a stale one when there is nothing to say).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

GRADING_LOG = "grading.log"  # OUT/<student id>/
_MAX_LINES = 2000  # a PDF with thousands of broken objects logs thousands of lines; the count is kept


@dataclass
class CapturedLog:
    """The lines captured, and how many more were dropped past the cap."""

    lines: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < _MAX_LINES:
            self.lines.append(line)
        else:
            self.dropped += 1


class _Collector(logging.Handler):
    def __init__(self, log: CapturedLog):
        super().__init__(logging.WARNING)
        self.log = log
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.add(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is noted, not raised
            self.log.add(f"{record.levelname} {record.name}: (unformattable message {record.msg!r})")


@contextmanager
def captured() -> Iterator[CapturedLog]:
    """Within the block, log records (WARNING and above, from any logger that propagates to the
    root) and warnings go to the returned CapturedLog instead of stderr."""
    log = CapturedLog()
    collector = _Collector(log)
    root = logging.getLogger()
    root.addHandler(collector)  # with a handler present, logging's last-resort stderr printer stays quiet

    def to_log(message, category, filename, lineno, file=None, line=None):
        log.add(f"WARNING {category.__name__} ({Path(filename).name}:{lineno}): {message}")

    try:
        with warnings.catch_warnings():  # restores the filters and showwarning afterwards
            warnings.simplefilter("default")  # each warning once per place, in every submission's log
            warnings.showwarning = to_log
            yield log
    finally:
        root.removeHandler(collector)


def write_log(out_dir: Path, log: CapturedLog, header: str) -> Path | None:
    """OUT/grading.log with the captured lines, or no such file when there were none."""
    path = out_dir / GRADING_LOG
    if not log.lines:
        path.unlink(missing_ok=True)
        return None
    text = "\n".join([header, *log.lines] + ([f"... and {log.dropped} more"] if log.dropped else [])) + "\n"
    path.write_text(text, encoding="utf-8")
    return path

"""Zips that staff hand out (the student handout, the Gradescope bundle), written reproducibly.

Every entry gets the same fixed timestamp and an explicit file mode, in the order given, so the
same files always make the same bytes: a rebuilt handout can be compared with the one students
received by its sha256.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

FIXED_TIME = (2022, 1, 1, 0, 0, 0)


def write_zip(destination: Path, files: dict[str, tuple[bytes, int]]) -> list[str]:
    """Write {name: (data, mode)} to `destination`; returns the entry names."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return list(files)

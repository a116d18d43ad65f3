"""Student files found by the fresh-clone adversary after round three: each is the student's slip or
attack, answered with a student-facing reason (never a harness fault, never unbounded memory)."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autograder.intake import IntakeError, directory_problem, input_digest, safe_unzip
from autograder.notebook.images import as_png
from autograder.notebook.reading import NotebookError, read_notebook
from autograder.notebook.weights_file import WeightsError, read_weights


def _inflate(path: Path, copies: int) -> Path:
    """The zip at `path` with `copies` more copies of its first central-directory entry, while its end
    record still declares the original count: zipfile would parse every one of them."""
    data = path.read_bytes()
    end = data.rfind(b"PK\x05\x06")
    entries, size, offset = struct.unpack("<HII", data[end + 10:end + 20])
    first = data[offset:offset + 46 + struct.unpack("<H", data[offset + 28:offset + 30])[0]]
    directory = data[offset:offset + size] + first * copies
    record = data[end:end + 12] + struct.pack("<II", len(directory), offset) + data[end + 20:]
    path.write_bytes(data[:offset] + directory + record)
    return path


def _inflated_directory(path: Path, copies: int) -> Path:
    """A small real zip of two files, inflated by `copies` entries."""
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("lib/a.py", "x = 1\n")
        bundle.writestr("b.npy", b"\x93NUMPY")
    return _inflate(path, copies)


def test_a_zip_whose_directory_is_larger_than_its_entries_could_take_is_refused_unread(tmp_path):
    bomb = _inflated_directory(tmp_path / "bomb.zip", 60_000)
    assert "directory is" in directory_problem(bomb, 2000)
    with pytest.raises(IntakeError, match="bomb.zip: its directory is"):
        safe_unzip(bomb, tmp_path / "out", 1 << 20, 2000)
    small = _inflated_directory(tmp_path / "small.zip", 0)
    assert directory_problem(small, 2000) == ""  # the same zip, honest: unpacked
    safe_unzip(small, tmp_path / "small", 1 << 20, 2000)
    assert (tmp_path / "small" / "lib" / "a.py").read_text() == "x = 1\n"


def test_an_npz_with_an_inflated_directory_is_not_read(tmp_path):
    path = tmp_path / "svhn_cnn_params.npz"
    np.savez(path, conv1_w=np.zeros((3, 3, 3, 16)))
    _inflate(path, 200_000)
    with pytest.raises(WeightsError, match="directory is"):
        read_weights(path, {"conv1_w": (3, 3, 3, 16)}, 128, 1000)


def test_a_zip_name_flagged_utf8_that_is_not_is_the_students_unreadable_zip(tmp_path):
    path = tmp_path / "names.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("lib/abc.py", "x = 1\n")
    data = bytearray(path.read_bytes())
    for signature, flags, name in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = data.find(signature)
        struct.pack_into("<H", data, at + flags, struct.unpack_from("<H", data, at + flags)[0] | 0x800)
        data[at + name + 4:at + name + 6] = b"\xff\xfe"  # "lib/" then two bytes that are no UTF-8
    path.write_bytes(bytes(data))
    with pytest.raises(IntakeError, match="names.zip: could not be unpacked"):
        safe_unzip(path, tmp_path / "out", 1 << 20, 2000)


def test_a_folder_with_a_file_name_that_is_not_utf8_has_a_digest(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "notes.txt").write_text("a")
    with open(os.path.join(os.fsencode(folder), b"notes_\xe9t\xe9.txt"), "wb") as handle:
        handle.write(b"latin-1 name")
    first = input_digest(folder)
    with open(os.path.join(os.fsencode(folder), b"notes_\xe9t\xe9.txt"), "wb") as handle:
        handle.write(b"changed")
    assert len(first) == 64 and input_digest(folder) != first


def test_a_cmyk_jpeg_is_read_as_a_png():
    buffer = io.BytesIO()
    Image.new("CMYK", (20, 10), (0, 255, 0, 0)).save(buffer, format="JPEG")
    png = as_png(buffer.getvalue(), ("JPEG",), 10_000)
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.size == (20, 10) and picture.mode == "RGB"


def test_a_notebook_nested_too_deeply_is_the_students_unreadable_notebook(tmp_path):
    deep: list = []
    for _ in range(900):
        deep = [deep]
    cell = {"cell_type": "code", "source": "x = 1", "metadata": {"deep": deep}, "outputs": [],
            "execution_count": None}
    path = tmp_path / "Problem_2.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    try:
        read_notebook(path)
    except NotebookError as exc:
        assert "nested too deeply" in str(exc)
    # read as far as it could be, or refused with the reason: never a RecursionError


def test_weights_that_are_a_folder_are_submitted_and_not_evaluable(tmp_path):
    (tmp_path / "svhn_cnn_params.npz").mkdir()
    with pytest.raises(WeightsError, match="not a file"):
        read_weights(tmp_path / "svhn_cnn_params.npz", None, 128, 1000)


def test_figures_of_other_cells_are_read_up_to_the_rubrics_cap(tmp_path):
    """They only serve the same-figure check: past [intake] max_other_images the rest is not decoded
    (3,000 large figures took 124 s), and the filter image is still read."""
    import nbformat
    from notebooks import official_notebook, png

    from autograder.notebook.reading import extract
    from autograder.rubric import load_rubric

    limits = load_rubric().intake
    book = official_notebook()
    for index in range(limits.max_other_images + 5):
        book.cells.append(nbformat.v4.new_code_cell("plt.plot(x)", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": png(seed=index + 10)})]))
    found = extract(book, tmp_path / "Problem_2.ipynb", frozenset(), limits)
    assert len(found.other_images) == limits.max_other_images
    assert found.filter_images and any("were not read" in note for where, note in found.left_out if where == "other")


def test_a_folder_too_deep_for_the_system_is_skipped_and_the_rest_graded(tmp_path):
    """1,500 nested folders (a path past the system's 4,096 bytes) cost the whole submission before."""
    from conftest import REFERENCE

    from autograder.intake import open_submission

    folder = tmp_path / "submission"
    shutil.copytree(REFERENCE / "lib", folder / "lib")
    deep = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(1500):
            os.mkdir("abc", dir_fd=deep)
            inner = os.open("abc", os.O_RDONLY, dir_fd=deep)
            os.close(deep)
            deep = inner
    finally:
        os.close(deep)
    try:
        submission = open_submission(folder, tmp_path / "scratch", 200 << 20, 2000)
        assert (submission.root / "lib" / "cnn" / "layer_utils.py").is_file()
        assert any("nested more than" in why for why in submission.refused.values())
    finally:  # Python's rmtree (pytest's clean-up) recurses once per level: coreutils' rm does not
        subprocess.run(["rm", "-rf", str(folder / "abc")], check=True)


def test_a_zip_entry_in_a_method_python_cannot_read_is_left_out_with_a_note(tmp_path):
    """Deflate64 (method 9) on one irrelevant entry used to make the whole zip unreadable (0 / 60)."""
    from conftest import REFERENCE

    from autograder.intake import open_submission

    path = tmp_path / "student.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for file in sorted((REFERENCE / "lib").rglob("*.py")):
            bundle.write(file, file.relative_to(REFERENCE).as_posix())
        bundle.writestr("big_dataset.bin", b"\0" * 1000)
    data = bytearray(path.read_bytes())
    name = b"big_dataset.bin"
    for signature, method, name_at in ((b"PK\x03\x04", 8, 30), (b"PK\x01\x02", 10, 46)):
        at = data.find(signature)
        while data[at + name_at:at + name_at + len(name)] != name:
            at = data.find(signature, at + 4)
        struct.pack_into("<H", data, at + method, 9)
    path.write_bytes(bytes(data))
    submission = open_submission(path, tmp_path / "scratch", 200 << 20, 2000)
    assert (submission.root / "lib" / "cnn" / "layer_utils.py").is_file()
    assert not (submission.root / "big_dataset.bin").exists()
    assert any("big_dataset.bin was not read: compressed with a method" in note for note in submission.notes)

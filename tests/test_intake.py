"""Intake of real zips: the course's own, hand-made ones, and broken or unsafe ones."""

from __future__ import annotations

import json
import os
import stat
import time
import zipfile

import pytest
from conftest import REFERENCE
from submissions import CODE_ITEMS, RESULT_TESTS, grade, make_submission

from autograder.intake import IntakeError, mtime_extra, open_submission, student_id_for
from autograder.model import graded_tests

MB = 1 << 20


def zip_folder(folder, archive, prefix="", extra=()):
    """Zip as collectSubmission.sh does (no top folder), or with a wrapper `prefix`."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (path.suffix in (".py", ".ipynb")):
                bundle.write(path, prefix + path.relative_to(folder).as_posix())
        for name, data in extra:
            bundle.writestr(name, data)
    return archive


def test_collect_submission_zip_without_a_top_folder(tmp_path):
    archive = zip_folder(REFERENCE, tmp_path / "4916525888.zip")
    scores, result, out_dir = grade(archive, tmp_path)
    assert result.student_id == "4916525888"
    assert result.score == 25
    assert result.metadata["submission_sha256"]


def test_hand_made_zip_with_wrapper_folder_and_macos_litter(tmp_path):
    archive = zip_folder(REFERENCE, tmp_path / "1234.zip", prefix="assignment1/",
                         extra=[("__MACOSX/assignment1/lib/._layer_utils.py", b"\x00\x05junk")])
    scores, result, out_dir = grade(archive, tmp_path)
    assert result.score == 25
    assert any("assignment1/" in note for note in result.notes)


@pytest.mark.parametrize("name,entries,message", [
    ("dotdot", [("../escape.py", b"x")], "points outside the folder"),
    ("absolute", [("/etc/evil.py", b"x")], "points outside the folder"),
    ("nolib", [("Problem_2.ipynb", b"{}")], "no lib/ folder found"),
])
def test_unsafe_or_incomplete_zips_score_zero_with_the_reason(tmp_path, name, entries, message):
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for entry, data in entries:
            bundle.writestr(zipfile.ZipInfo(entry), data)
    scores, result, out_dir = grade(archive, tmp_path)
    document = json.loads((out_dir / "results.json").read_text())
    assert document["score"] == 0 and len(graded_tests(document)) == RESULT_TESTS
    assert message in document["output"]
    for item_id in CODE_ITEMS:
        assert message in scores[item_id].cases[0].outcome.message()
        # every case says why it did not run, in words and in its code; none blames "your code"
        assert all(case.outcome.code == "unreadable_submission" for case in scores[item_id].cases)
        assert not any("your code raised" in case.outcome.message() for case in scores[item_id].cases)
    cases = [case for test in document["tests"] for case in test.get("extra_data", {}).get("cases", [])]
    assert cases and {case["reason_code"] for case in cases} == {"unreadable_submission"}
    assert not (tmp_path.parent / "escape.py").exists()


def test_symbolic_link_entries_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("lib/cnn/layer_utils.py")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(info, "/etc/passwd")
    with pytest.raises(IntakeError, match="is a symbolic link"):
        open_submission(archive, tmp_path / "scratch", 10 * MB, 100)


def test_corrupt_zip_is_a_result_not_a_crash(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    scores, result, out_dir = grade(archive, tmp_path)
    assert result.score == 0
    assert "broken.zip: not a valid zip file" in json.loads((out_dir / "results.json").read_text())["output"]


def test_zip_bomb_is_stopped_while_unpacking(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("lib/cnn/big.py", b"0" * (30 * MB))
    assert archive.stat().st_size < MB
    with pytest.raises(IntakeError, match="unpacks to more than 20 MB"):
        open_submission(archive, tmp_path / "scratch", 20 * MB, 100)


def test_too_many_entries_are_refused(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for index in range(30):
            bundle.writestr(f"lib/f{index}.py", b"")
    with pytest.raises(IntakeError, match="30 entries, more than the limit of 20"):
        open_submission(archive, tmp_path / "scratch", MB, 20)


def test_student_ids_are_safe_names(tmp_path):
    assert student_id_for(tmp_path / "4916525888.zip") == "4916525888"
    assert student_id_for(tmp_path / "Jane Doe (late).zip") == "Jane_Doe_late"
    assert student_id_for(tmp_path / "../..") == "submission"


# ----------------------------------------------------------------------------- folders: links and special files
def _copied(folder, tmp_path, max_bytes=200 * MB, max_files=2000):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return open_submission(folder, scratch, max_bytes, max_files)


def test_a_folder_is_graded_from_a_copy_that_follows_links_only_inside_it(tmp_path):
    sub = make_submission(tmp_path / "sub")
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes(b"another student's weights")
    (sub / "svhn_cnn_params.npz").symlink_to(outside)  # out of the submission: refused
    (sub / "notes.txt").write_text("mine")
    (sub / "notes_link.txt").symlink_to(sub / "notes.txt")  # inside: followed, as its content
    (sub / "lib_link").symlink_to(sub / "lib")  # a folder: refused (no cycles, no second lib/)
    (sub / "Problem_2.ipynb").unlink(missing_ok=True)
    (sub / "Problem_2.ipynb").symlink_to("/dev/zero")  # never read
    os.mkfifo(sub / "pipe.ipynb")  # never opened (opening a FIFO for reading blocks)
    submission = _copied(sub, tmp_path)
    root = submission.root
    assert root != sub and not (root / "svhn_cnn_params.npz").exists()
    assert (root / "notes_link.txt").read_text() == "mine" and not (root / "notes_link.txt").is_symlink()
    assert not (root / "lib_link").exists() and not (root / "Problem_2.ipynb").exists()
    assert not (root / "pipe.ipynb").exists()
    assert (root / "lib" / "cnn" / "layer_utils.py").is_file()
    assert set(submission.refused) == {"svhn_cnn_params.npz", "lib_link", "Problem_2.ipynb", "pipe.ipynb"}
    assert "pointing outside the submission" in submission.refused["svhn_cnn_params.npz"]
    assert "named pipe" in submission.refused["pipe.ipynb"]
    assert any(note.startswith("svhn_cnn_params.npz was not read") for note in submission.notes)


def test_a_folder_copy_is_capped_leaving_out_the_largest_files(tmp_path):
    sub = make_submission(tmp_path / "sub")
    (sub / "data").mkdir()
    (sub / "data" / "train_32x32.mat").write_bytes(b"\0" * (3 * MB))
    submission = _copied(sub, tmp_path, max_bytes=2 * MB)
    assert "data/train_32x32.mat" in submission.refused
    assert (submission.root / "lib" / "cnn" / "layer_utils.py").is_file()


def test_a_folder_in_a_folder_names_refused_files_from_the_graded_root(tmp_path):
    outer = tmp_path / "4916525888"
    sub = make_submission(outer / "assignment1")
    (sub / "svhn_cnn_params.npz").symlink_to(tmp_path)
    submission = _copied(outer, tmp_path)
    assert submission.root.name == "assignment1"
    assert set(submission.refused) == {"svhn_cnn_params.npz"}


def test_a_folder_with_too_many_entries_is_refused_without_walking_it_all(tmp_path):
    sub = make_submission(tmp_path / "sub")
    (sub / "venv").mkdir()
    for index in range(50):
        (sub / "venv" / f"{index}.py").write_text("")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(IntakeError, match="more than 30 entries"):
        open_submission(sub, scratch, 200 * MB, 2000, max_entries=30)


def test_the_graded_copy_keeps_when_each_file_was_last_saved(tmp_path):
    """The PDF says when the notebook was last saved; a copy or an unpacked zip dated 'now' would make it
    say when it was graded (and two gradings of one submission read differently)."""
    saved = 1_650_000_000  # 2022-04-15 05:20 UTC
    sub = make_submission(tmp_path / "sub")
    os.utime(sub / "Problem_2.ipynb", (saved, saved))
    copied = _copied(sub, tmp_path)
    assert (copied.root / "Problem_2.ipynb").stat().st_mtime == saved
    stamped, dos_only = tmp_path / "stamped.zip", tmp_path / "dos.zip"
    with zipfile.ZipFile(stamped, "w") as bundle:  # with the extended timestamp Info-ZIP and macOS write
        entry = zipfile.ZipInfo("Problem_2.ipynb", date_time=(2020, 1, 1, 0, 0, 0))
        entry.extra = mtime_extra(saved)
        bundle.writestr(entry, "{}")
        bundle.writestr("lib/__init__.py", "")
    with zipfile.ZipFile(dos_only, "w") as bundle:  # a DOS time only: this machine's local time, as unzip reads it
        bundle.writestr(zipfile.ZipInfo("Problem_2.ipynb", date_time=(2021, 6, 1, 12, 30, 0)), "{}")
        bundle.writestr("lib/__init__.py", "")
    for archive, expected in ((stamped, saved), (dos_only, time.mktime((2021, 6, 1, 12, 30, 0, 0, 0, -1)))):
        scratch = tmp_path / f"scratch-{archive.stem}"
        scratch.mkdir()
        unpacked = open_submission(archive, scratch, 200 * MB, 2000)
        assert (unpacked.root / "Problem_2.ipynb").stat().st_mtime == expected

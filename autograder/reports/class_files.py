"""The files a batch keeps at the top of its OUT folder, beside one folder per student.

Students' folders and the class's own files share OUT: a submission handed in as `manual_merges.jsonl`
(a folder) or `class_report.html.zip` became a student folder of that name, after which every merge failed
on a folder where its log goes, or the student's grading failed on the report already there. So the batch
reserves these names (`is_reserved`: compared without case, as a case-insensitive file system would) and
grades such a submission under another id (autograder/batch.py `discover`), and a command that is about to
write them checks first that none is a folder (`check_class_files`), naming it, rather than failing
half-way with a traceback.

The names are written out here, not imported from the modules that write the files: those modules (the merge
log's, the grading sheet's) import this one. tests/test_batch_names.py holds the list to what a real batch and
merge leave in OUT.
"""

from __future__ import annotations

from pathlib import Path

from autograder import UserInputError

GRADEBOOK = "gradebook.csv"
#: Every file a batch or a merge writes at the top of OUT (their temporary copies start with a dot, which no
#: student id does): the gradebook, the class report and its histogram, the similarity ranking, the staff's
#: grading sheet and the merge log.
CLASS_FILES: tuple[str, ...] = (GRADEBOOK, "class_report.html", "class_report.md", "class_report_scores.png",
                                "similarity.json", "manual_grading.html", "manual_merges.jsonl")
_RESERVED = frozenset(name.lower() for name in CLASS_FILES)


def is_reserved(student_id: str) -> bool:
    """Whether a student id is the name of one of OUT's own files, in any case: a folder of that name would
    take the file's place (and on a case-insensitive file system `Gradebook.CSV` is `gradebook.csv`)."""
    return student_id.lower() in _RESERVED


def check_class_files(out_dir: Path) -> None:
    """Raise UserInputError, naming the path, when one of OUT's own files is there but is not a regular file
    (a student folder graded into its name by an earlier version of the batch, or anything else): writing
    the gradebook, the reports or the merge log over it would fail part-way."""
    for name in CLASS_FILES:
        path = out_dir / name
        if path.exists() and not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise UserInputError(
                f"{path}: {what}, where the batch keeps its own file {name}; move it out of {out_dir} (a "
                f"submission of that name is now graded under another id: run the batch again) and retry")

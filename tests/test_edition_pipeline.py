"""Each submission graded as its own edition, end to end: detected from its own files (or given with
--edition and flagged when the files disagree), graded on that edition's task (its classes, its target and
chance, its loader), and named in results.json, the notes, the gradebook and the class report.

The 2023 submissions are real ones built in tmp folders: the reference with its last layer widened to the
edition's 20 classes, the 2023 handout's loader module (lib/datasets.py, no lib/mlp/datasets.py) and a
notebook laid out like the 2023 handout's that loads CIFAR-100 and logs its validation accuracy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE, run_grade
from notebooks import official_2023_notebook, official_notebook
from submissions import MODELS, grade, make_submission, quick_limits

from autograder.edition import get_edition
from autograder.grading import GradeOptions
from autograder.model import graded_tests
from autograder.notebook.architecture import parse_description, rule_violation
from autograder.notebook.training_evidence import width_contradiction
from autograder.rubric import load_rubric
from autograder.sandbox.parent import WorkerFault, WorkerProcess, lib_modules
from autograder.sandbox.probe import describe_model
from autograder.sandbox.worker import LIB_MODULES

RUBRIC = load_rubric()
SVHN, CIFAR = get_edition("2022"), get_edition("2023")
WIDEST = 'fc(100, 10, init_scale=0.14, name="fc2")'

#: The 2023 handout's loader, as a student's lib/datasets.py would start (never called by the grader).
LOADER_2023 = '''import os

import numpy as np
import scipy.io


def CIFAR100_data(data_dir="data/cifar100", num_training=40000, num_validation=10000):
    """CIFAR-100's 20 superclasses from train.mat / test.mat / meta.mat."""
    train = scipy.io.loadmat(os.path.join(data_dir, "train.mat"))
    return {"data_train": train["data"], "labels_train": train["coarse_labels"]}
'''


def notebook_2023(accuracies=(0.31, 0.41, 0.45)) -> nbformat.NotebookNode:
    """The 2023 handout's layout (question, Extra-Credit prompt, answer), loading CIFAR-100 to a 40% target,
    with a log of 2023's lines."""
    book = official_2023_notebook(answer="Edges and colour blobs.", accuracies=accuracies)
    for cell in book.cells:
        cell.source = (cell.source.replace("data = SVHN_data()", "data = CIFAR100_data('data/cifar100')")
                       .replace("(SVHN)", "(CIFAR-100)")
                       .replace("### Training the Network [25pts]",
                                "### Training the Network [25pts]\nTrain to at least 40% validation accuracy."))
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout":
                output["text"] = output["text"].replace(") loss:", ") Average loss:")
    return book


def make_2023_submission(folder: Path, outputs: int = 20, accuracies=(0.31, 0.41, 0.45)) -> Path:
    """A 2023 student's submission: lib/datasets.py, no lib/mlp/datasets.py, `outputs` scores, a 2023 notebook."""
    sub = make_submission(folder, [(MODELS, WIDEST, WIDEST.replace("10,", f"{outputs},"))])
    (sub / "lib" / "mlp" / "datasets.py").unlink(missing_ok=True)
    (sub / "lib" / "datasets.py").write_text(LOADER_2023)
    nbformat.write(notebook_2023(accuracies), str(sub / "Problem_2.ipynb"))
    return sub


def make_2022_submission(folder: Path, accuracies=(0.7, 0.86, 0.891, 0.885)) -> Path:
    sub = make_submission(folder)
    nbformat.write(official_notebook(accuracies=accuracies), str(sub / "Problem_2.ipynb"))
    return sub


def test_a_2023_submission_is_graded_on_the_2023_task(tmp_path):
    """20 outputs understood, the 40 % target and 5 % chance give the credit, the edition is named, and
    nothing speaks of the 2022 task or blames a file of the 2022 handout."""
    sub = make_2023_submission(tmp_path / "sub")
    scores, result, out_dir = grade(sub, tmp_path, limits=quick_limits())
    training = scores["training"]
    assert "architecture violation" not in training.extra["flags"], training.note
    assert training.extra.get("architecture_violation") is None
    assert training.score == training.item.points  # 0.45 logged against 40 %: full credit (policy: reported)
    assert "40 %" in training.item.title and "CIFAR-100" in training.item.title
    document = json.loads((out_dir / "results.json").read_text())
    edition = document["extra_data"]["edition"]
    assert (edition["name"], edition["year"], edition["how"]) == ("2023-cifar100", 2023, "detected")
    assert any("lib/datasets.py" in said for said in edition["evidence"]) and not edition["contradiction"]
    feedback = (out_dir / "feedback.md").read_text()
    assert "graded as the 2023-cifar100 edition (CIFAR-100, trained to 40 %)" in feedback
    for foreign in ("lib.mlp.datasets", "svhn_cnn_params", "SVHN", "88 %", "(2, 10)"):
        assert foreign not in feedback, foreign
    assert "no cifar100_cnn_params.npz was submitted" in training.note  # the edition's own weights file


def test_a_2022_submission_still_grades_as_2022(tmp_path):
    sub = make_2022_submission(tmp_path / "sub")
    scores, result, out_dir = grade(sub, tmp_path, limits=quick_limits())
    edition = json.loads((out_dir / "results.json").read_text())["extra_data"]["edition"]
    assert (edition["name"], edition["how"]) == ("2022-svhn", "detected")
    assert "88 %" in scores["training"].item.title and "SVHN" in scores["training"].item.title
    assert scores["training"].score == scores["training"].item.points  # 0.891 against 88 %
    assert not any("CIFAR" in note or "lib.datasets" in note for note in result.notes)


def test_ten_outputs_under_2023_is_a_violation_naming_twenty(tmp_path):
    sub = make_2023_submission(tmp_path / "sub", outputs=10)
    scores, result, _ = grade(sub, tmp_path, limits=quick_limits())
    training = scores["training"]
    assert training.score == 0 and "architecture violation" in training.extra["flags"]
    assert "expected (4, 20)" in training.note and "20 classes" in training.note  # 4 probe images
    # 10 outputs are the 2022 task's: staff are told what the width says
    assert "edition contradiction" in training.extra["flags"]
    assert "2022-svhn" in training.extra["edition_contradiction"]


def test_a_given_edition_that_the_files_contradict_is_graded_as_given_and_flagged(tmp_path):
    """--edition 2022 on a 2023 submission: graded as 2022 (the staff's word), flagged twice over (the
    files and the network's width), never a silent zero: the code items keep their points."""
    sub = make_2023_submission(tmp_path / "sub")
    scores, result, out_dir = grade(sub, tmp_path, limits=quick_limits(), options=GradeOptions(edition=SVHN))
    document = json.loads((out_dir / "results.json").read_text())
    edition = document["extra_data"]["edition"]
    assert (edition["name"], edition["how"]) == ("2022-svhn", "given")
    assert "2023-cifar100" in edition["contradiction"]
    assert any(note.startswith("EDITION CONTRADICTION") for note in result.notes)
    training = scores["training"]
    assert "edition contradiction" in training.extra["flags"]
    assert "20 outputs" in training.extra["edition_contradiction"] and "EDITION CONTRADICTION" in training.note
    assert all(scores[item.id].score == item.points for item in RUBRIC.code_items())


def test_the_same_submission_given_its_own_edition_has_no_contradiction(tmp_path):
    sub = make_2023_submission(tmp_path / "sub")
    scores, result, out_dir = grade(sub, tmp_path, limits=quick_limits(), edition=CIFAR)
    edition = json.loads((out_dir / "results.json").read_text())["extra_data"]["edition"]
    assert (edition["name"], edition["how"], edition["contradiction"]) == ("2023-cifar100", "given", "")
    assert "edition contradiction" not in scores["training"].extra["flags"]


def test_the_worker_imports_only_the_editions_loader(tmp_path):
    """A 2023 submission has no lib/mlp/datasets.py: nothing says importing it failed; a broken 2023 loader
    is reported by its own name, and costs no code item."""
    sub = make_2023_submission(tmp_path / "sub")
    (sub / "lib" / "datasets.py").write_text(LOADER_2023 + "\nimport no_such_module\n")
    scores, result, _ = grade(sub, tmp_path, limits=quick_limits())
    assert not any("lib.mlp.datasets" in note for note in result.notes)
    assert any("lib.datasets" in note and "no_such_module" in note for note in result.notes)
    assert all(scores[item.id].score == item.points for item in RUBRIC.code_items())


def test_the_module_list_is_data_sent_at_start_and_checked_by_the_worker(tmp_path):
    assert lib_modules(SVHN.dataset.loader_module) == LIB_MODULES  # 2022 exactly as before
    assert lib_modules(CIFAR.dataset.loader_module) == [
        name if name != "lib.mlp.datasets" else "lib.datasets" for name in LIB_MODULES]
    sub = make_2023_submission(tmp_path / "sub")
    with WorkerProcess(sub, quick_limits(), modules=lib_modules("lib.datasets")) as worker:
        assert worker.start() is None and worker.import_errors == {}
    with WorkerProcess(sub, quick_limits()) as worker:  # the default list: the 2022 handout's, whose loader is absent
        assert worker.start() is None and "lib.mlp.datasets" in worker.import_errors
    with WorkerProcess(sub, quick_limits(), modules=["os"]) as worker:  # not under lib/: our bug, refused
        with pytest.raises(WorkerFault, match="module names under lib"):
            worker.start()


def test_the_architecture_rule_counts_the_editions_classes(ref):
    """The 2022 reference with its last layer widened to 20 outputs: a 2023 network by behaviour."""
    np.random.seed(0)
    widened = ref.cnn_models.SmallConvolutionalNetwork()
    widened.net = ref.mlp_layers.sequential(*widened.net.layers[:-1],
                                            ref.mlp_layers.fc(100, 20, init_scale=0.14, name="fc2"))
    limits = {"max_kernel": RUBRIC.training["probe_max_kernel"], "max_stride": RUBRIC.training["probe_max_stride"],
              "max_padding": RUBRIC.training["probe_max_padding"]}
    probe = (np.random.default_rng(0).standard_normal((2, 32, 32, 3)) * 0.25).astype(np.float32)
    header, _ = describe_model(widened, probe, limits, RUBRIC.training["chain_tolerance"])
    architecture = parse_description(header, RUBRIC.training)
    assert architecture.output_shape == (2, 20)
    assert rule_violation(architecture, RUBRIC.training, CIFAR.dataset.classes) == ""
    assert "expected (2, 10)" in rule_violation(architecture, RUBRIC.training, SVHN.dataset.classes)
    as_2022, as_2023 = RUBRIC.with_edition(SVHN), RUBRIC.with_edition(CIFAR)
    assert "2023-cifar100" in width_contradiction(architecture.output_shape, as_2022)
    assert width_contradiction(architecture.output_shape, as_2023) == ""
    assert "2022-svhn" in width_contradiction((2, 10), as_2023)
    assert width_contradiction((2, 7), as_2023) == ""  # no edition has 7 classes: only the rule speaks


def test_an_unknown_edition_is_a_usage_error_listing_the_editions(tmp_path):
    for command in (["grade", str(REFERENCE)], ["batch", str(tmp_path), "--out", str(tmp_path / "o")],
                    ["check", str(REFERENCE)]):
        done = run_grade(*command, "--edition", "2031")
        assert done.returncode == 2, (command, done.stderr)
        assert "unknown edition '2031'" in done.stderr and "2022-svhn" in done.stderr and "2023-cifar100" in done.stderr
    helped = run_grade("grade", "--help")
    assert "--edition" in helped.stdout and "detected from its own files" in " ".join(helped.stdout.split())


@pytest.mark.slow
def test_a_batch_of_both_editions_shows_each_students_edition(tmp_path):
    folder = tmp_path / "class"
    make_2022_submission(folder / "2201")
    make_2023_submission(folder / "2301")
    out = tmp_path / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    with open(out / "gradebook.csv", newline="") as handle:
        book = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert (book["2201"]["edition"], book["2301"]["edition"]) == ("2022-svhn", "2023-cifar100")
    assert float(book["2201"]["training"]) == float(book["2301"]["training"]) == 25
    assert "edition contradiction" not in book["2301"]["flags"]
    report = (out / "class_report.md").read_text()
    assert "2022-svhn (SVHN, trained to 88 %): 1 student" in report
    assert "2023-cifar100 (CIFAR-100, trained to 40 %): 1 student" in report
    assert "## Editions" in report
    html = (out / "class_report.html").read_text()
    assert "<td>2023-cifar100</td>" in html and "<td>2022-svhn</td>" in html
    # Staff fix the edition: every submission is regraded as told, the 2022 one flagged
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2", "--edition", "2023")
    assert done.returncode == 0, done.stderr
    assert "2 graded, 0 unchanged" in done.stdout  # the given edition is part of what a grade depends on
    with open(out / "gradebook.csv", newline="") as handle:
        book = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert book["2201"]["edition"] == book["2301"]["edition"] == "2023-cifar100 (given)"
    assert "edition contradiction" in book["2201"]["flags"] and "edition contradiction" not in book["2301"]["flags"]


def test_staff_scores_merged_into_a_2023_feedback_keep_its_words(tmp_path):
    """merge-manual rewrites the feedback's row and heading of the item it sets: for a 2023 student, the
    2023 title (40 %, CIFAR-100), found in that feedback and kept, never the 2022 one."""
    from autograder.grading import grade_submission
    from autograder.reports.manual import merge_manual

    sub = make_2023_submission(tmp_path / "sub")
    graded = tmp_path / "graded"
    grade_submission(sub, graded / "2301", limits=quick_limits())
    scores = tmp_path / "scores.csv"
    scores.write_text("student_id,item,points,comment\n2301,training,20,checked by hand\n")
    merge_manual(scores, graded)
    feedback = (graded / "2301" / "feedback.md").read_text()
    title = RUBRIC.with_edition(CIFAR).item("training").title
    assert f"| {title} | 20 | 25 | set by staff |" in feedback and f"## {title}: 20 / 25 (set by staff)" in feedback
    assert "88 %" not in feedback and "SVHN" not in feedback


@pytest.mark.parametrize("editions, training_title", [
    (("2022-svhn", "2022-svhn"), "SmallConvolutionalNetwork trained to 88 % validation accuracy on SVHN"),
    (("2023-cifar100 (given)", "2023-cifar100"),
     "SmallConvolutionalNetwork trained to 40 % validation accuracy on CIFAR-100"),
    (("2022-svhn", "2023-cifar100"), "SmallConvolutionalNetwork trained to 88 % validation accuracy on SVHN / "
                                     "SmallConvolutionalNetwork trained to 40 % validation accuracy on CIFAR-100"),
])
def test_the_class_report_speaks_in_the_words_of_the_class_editions(tmp_path, editions, training_title):
    """Read from the gradebook's edition column: a class of one edition sees that edition's titles, a class
    of both sees both; a student's edition is in the page's table of submissions."""
    from autograder.reports.class_report import build_class_report

    items = [item.id for item in RUBRIC.items]
    with open(tmp_path / "gradebook.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "total", *items, "edition", "status", "flags", "source"])
        for index, edition in enumerate(editions):
            writer.writerow([f"30{index}", 25, *[0] * len(items), edition, "graded", "", f"30{index}.zip"])
    build_class_report(tmp_path)
    report = (tmp_path / "class_report.md").read_text()
    assert f"| {training_title} | 0.00 | 25 | 0/2 |" in report
    assert ("## Editions" in report) == (len({e.split(" ")[0] for e in editions}) > 1)
    html = (tmp_path / "class_report.html").read_text()
    assert all(f"<td>{edition}</td>" in html for edition in editions)


@pytest.mark.slow
def test_the_2023_reference_executed_headless_earns_every_computed_point_and_the_template_none(tmp_path):
    """Issue 21's end-to-end case, as staff run it: the 2023 reference (composed from its overlay), its notebook
    executed headless on synthetic CIFAR-100, graded as detected (no --edition): every computed item full, its
    accuracy verified from the run's own weights, no flag against it; the 2023 template earns nothing."""
    from autograder.staff.overlays import REFERENCE, TEMPLATE, materialise

    edition = get_edition("2023")
    data = tmp_path / "data"
    made = run_grade("data", "--synthetic", "--edition", "2023", "--out", str(data), "--train", "2500",
                     "--test", "300")
    assert made.returncode == 0, made.stderr
    reference = materialise(REFERENCE, edition, tmp_path / "reference")
    graded = run_grade("grade", str(reference), "--out", str(tmp_path / "out"), "--data", str(data), "--execute",
                       "--quick", timeout=900)
    assert graded.returncode == 0, graded.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["extra_data"]["edition"]["name"] == "2023-cifar100"
    assert results["extra_data"]["edition"]["how"] == "detected"
    earned: dict[str, float] = {}
    for test in graded_tests(results):  # "title [item]" or "title [item.component]"
        item_id = test["name"].rsplit("[", 1)[1].rstrip("]").split(".")[0]
        earned[item_id] = earned.get(item_id, 0.0) + test["score"]
    rubric = load_rubric().with_edition(edition)
    computed = [item for item in rubric.items if item.kind in ("code", "notebook")]
    assert {item.id: earned[item.id] for item in computed} == {item.id: item.points for item in computed}
    training = next(t for t in results["tests"] if t["name"].endswith("[training]"))["extra_data"]
    assert training["accuracy_source"] == "verified" and training["flags"] == ["accuracy verified"]
    assert training["accuracy"] > edition.training.target
    template = materialise(TEMPLATE, edition, tmp_path / "template")
    blank = run_grade("grade", str(template), "--out", str(tmp_path / "blank"), "--data", str(data))
    assert blank.returncode == 0, blank.stderr
    assert json.loads((tmp_path / "blank" / "results.json").read_text())["score"] == 0


def test_a_data_folder_without_this_editions_files_grades_as_without_data(tmp_path):
    """A batch of both editions given one edition's data: the other edition's students are graded as without
    --data (the stated unverified policy), with a note that it is staff's data, never a zero that blames them."""
    from autograder.staff.synthetic_cifar import write_synthetic_cifar100

    cifar_only = tmp_path / "data"
    write_synthetic_cifar100(cifar_only, get_edition("2023"), train=40, test=20)
    sub = make_2022_submission(tmp_path / "sub")
    scores, result, out_dir = grade(sub, tmp_path, limits=quick_limits(), data_dir=cifar_only)
    training = scores["training"]
    assert training.score == training.item.points and training.extra["accuracy_source"] == "reported"
    assert any("has no SVHN files for this edition (missing train_32x32.mat)" in note for note in result.notes)
    document = json.loads((out_dir / "results.json").read_text())
    assert document["extra_data"]["data_missing"] == ["train_32x32.mat"]

"""`make demo`: the main job on the bundled material, offline, in about a minute.

1. The template is in sync with the reference and the fixtures are what the reference computes.
2. A small synthetic SVHN is made (the real one cannot be downloaded here).
3. The reference notebook is executed headless in quick mode and graded, its accuracy verified.
4. The untouched template and an example with two typical bugs (built here from the reference,
   so that no near-solution is ever committed) are graded as staff would.
5. The three as a class: a batch (gradebook, class report, the staff's grading sheet), then a
   CSV of staff scores merged into it, as staff finish the two items a person grades.
6. The 2023 edition beside it: a small synthetic CIFAR-100, the 2023 reference (composed from its
   overlay, see staff/overlays.py) executed headless and graded as 2023, and the 2023 template.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from autograder.cli import DEFAULT_REFERENCE, DEFAULT_TEMPLATE, main
from autograder.edition import default_edition, get_edition
from autograder.model import graded_tests
from autograder.rubric import load_rubric

OUTPUT = Path("demo_output")
#: The later edition graded beside the default one.
OTHER_EDITION = "2023"
#: Two typical bugs: the bias gradient averaged instead of summed, and average pooling.
BUGS = [("lib/cnn/layer_utils.py", "self.grads[self.b_name] = dout.sum(axis=0)",
         "self.grads[self.b_name] = dout.mean(axis=0)"),
        ("lib/cnn/layer_utils.py", "output = windows.max(axis=(4, 5))", "output = windows.mean(axis=(4, 5))")]


def make_buggy_example(destination: Path) -> Path:
    """A copy of the reference with BUGS planted; fails loudly if the reference changed under them."""
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(DEFAULT_REFERENCE, destination, ignore=shutil.ignore_patterns("data", "*.npz", "__pycache__"))
    for relative, old, new in BUGS:
        path = destination / relative
        text = path.read_text()
        if old not in text:
            raise RuntimeError(f"demo: {relative} no longer contains {old!r}; update autograder/demo.py")
        path.write_text(text.replace(old, new))
    return destination


def make_class(folder: Path, reference_run: Path, buggy: Path) -> Path:
    """The demo's three submissions as a class hands them in: the reference with the notebook and the
    weights its headless run wrote (as a student saves them), the buggy example and the template."""
    if folder.exists():
        shutil.rmtree(folder)
    student = folder / "1001"
    shutil.copytree(DEFAULT_REFERENCE, student, ignore=shutil.ignore_patterns("data", "*.npz", "__pycache__"))
    rubric = load_rubric()
    for name in (rubric.assignment.notebook, rubric.assignment.weights_file):
        executed = reference_run / f"executed_{name}"
        if executed.is_file():
            shutil.copyfile(executed, student / name)
    shutil.copytree(buggy, folder / "1002")
    shutil.copytree(DEFAULT_TEMPLATE, folder / "1003", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def write_staff_scores(path: Path) -> Path:
    """A CSV of staff scores, as the grading sheet downloads it."""
    path.write_text("student_id,item,points,comment\n"
                    "1001,inline_answer,4.5,\"Edges and colour blobs, well observed\"\n"
                    "1002,inline_answer,2,Names edges only\n", encoding="utf-8")
    return path


def _step(title: str, argv: list[str]) -> int:
    print(f"\n=== {title}\n$ python grade.py {' '.join(argv)}", flush=True)
    return main(argv)


def edition_copies(name: str, destination: Path) -> tuple[Path, Path]:
    """The edition's reference and template as folders a staff member would grade (composed from the
    default edition's and the overlay's files), fresh in `destination`."""
    from autograder.staff.overlays import REFERENCE, TEMPLATE, materialise
    edition = get_edition(name)
    folders = []
    for kind in (REFERENCE, TEMPLATE):
        folder = destination / f"{kind}_{edition.name}"
        shutil.rmtree(folder, ignore_errors=True)
        folders.append(materialise(kind, edition, folder))
    return folders[0], folders[1]


def run_other_edition(name: str = OTHER_EDITION) -> int:
    """The later edition's part of the demo: its data, its reference executed and graded, its template graded;
    the number of steps that did not behave as expected."""
    edition = get_edition(name)
    failures = _step(f"The {edition.name} template in sync with its reference",
                     ["template", "--check", "--edition", name]) != 0
    data = OUTPUT / f"data_{edition.name}"
    if not all((data / file).is_file() for file in edition.dataset.files):
        failures += _step(f"A small synthetic {edition.dataset.name}",
                          ["data", "--synthetic", "--edition", name, "--out", str(data), "--train", "2500",
                           "--test", "300"]) != 0
    reference, template = edition_copies(name, OUTPUT / "submissions")
    runs = [(f"Grading the {edition.name} reference, its notebook executed headless (quick mode)", reference,
             ["--execute", "--quick"]),
            (f"Grading the untouched {edition.name} template", template, [])]
    for title, folder, extra in runs:
        failures += _step(title, ["grade", str(folder), "--edition", name, "--out",
                                  str(OUTPUT / "graded" / folder.name), "--data", str(data), *extra]) != 0
    failures += _expect_other_edition(edition, OUTPUT / "graded" / reference.name, OUTPUT / "graded" / template.name)
    return failures


def _expect_other_edition(edition, reference: Path, template: Path) -> int:
    """What the later edition's grades must show (1 when they do not, with why): the executed reference earns
    every computed point with its accuracy verified from its own weights; the template earns nothing."""
    rubric = load_rubric().with_edition(edition)
    try:
        graded = json.loads((reference / "results.json").read_text())
        blank = json.loads((template / "results.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"expected results of the {edition.name} reference and template: {exc}")
        return 1
    earned: dict[str, float] = {}
    for test in graded_tests(graded):  # "title [item]" or "title [item.component]"
        item_id = test["name"].rsplit("[", 1)[-1].rstrip("]").split(".")[0]
        earned[item_id] = earned.get(item_id, 0.0) + test["score"]
    short = [f"{item.id} {earned.get(item.id, 0):g} of {item.points:g}" for item in rubric.items
             if item.kind in ("code", "notebook") and earned.get(item.id, 0) != item.points]
    training = next((t["extra_data"] for t in graded["tests"] if t["name"].endswith("[training]")), {})
    if training.get("accuracy_source") != "verified":
        short.append(f"training accuracy {training.get('accuracy_source')}, not verified")
    if blank.get("score") != 0:
        short.append(f"the template earned {blank.get('score')}")
    if short:
        print(f"the {edition.name} grades are not as expected: " + "; ".join(short))
        return 1
    print(f"\n{edition.name}: the executed reference earns every computed point (accuracy "
          f"{training['accuracy']:.3f} verified against the {edition.training.target_percent} target); "
          "the template earns 0")
    return 0


def run_demo() -> int:
    """Run each step; the exit status is non-zero if any step did not behave as expected."""
    failures = 0
    failures += _step("Student template in sync with the reference", ["template", "--check"]) != 0
    failures += _step("Fixtures recomputed from the reference", ["fixtures", "--verify"]) != 0
    data = OUTPUT / "data"
    if not (data / default_edition().dataset.train_file).is_file():
        failures += _step("A small synthetic SVHN", ["data", "--synthetic", "--out", str(data), "--train", "2500",
                                                     "--test", "300"]) != 0
    buggy = make_buggy_example(OUTPUT / "submissions" / "buggy_example")
    runs = [("Grading the reference solution, its notebook executed headless (quick mode)", DEFAULT_REFERENCE,
             ["--execute", "--quick"]),
            ("Grading the untouched student template", DEFAULT_TEMPLATE, []),
            ("Grading an example with two bugs (db averaged, average pooling)", buggy, [])]
    for title, folder, extra in runs:
        failures += _step(title, ["grade", str(folder), "--out", str(OUTPUT / "graded" / folder.name),
                                  "--data", str(data), *extra]) != 0
    batch = OUTPUT / "batch"
    shutil.rmtree(batch, ignore_errors=True)  # the same demo every time: no staff scores from an earlier run
    make_class(OUTPUT / "class", OUTPUT / "graded" / DEFAULT_REFERENCE.name, buggy)
    failures += _step("The three as a class: gradebook, class report and the grading sheet",
                      ["batch", str(OUTPUT / "class"), "--out", str(batch), "--data", str(data)]) != 0
    scores = write_staff_scores(OUTPUT / "staff_scores.csv")
    failures += _step("Staff scores for the inline answer merged into the class",
                      ["merge-manual", str(scores), str(batch), "--by", "demo"]) != 0
    failures += run_other_edition()
    print(f"\nIn {OUTPUT / 'graded'}/<name>/: results.json (Gradescope's format), feedback.md (what "
          "students read before the due date), feedback_released.md (with the hidden cases' inputs), "
          "problem_2_solution.pdf (the staff's copy, made from the notebook), and for the executed reference "
          "executed_Problem_2.ipynb and its weights (the 2023 ones in "
          f"{OUTPUT / 'graded'}/reference_solution_{get_edition(OTHER_EDITION).name}/). "
          f"In {batch}/: gradebook.csv, class_report.html, "
          "manual_grading.html (open it in a browser) and manual_merges.jsonl.")
    print("demo finished: all steps behaved as expected" if not failures
          else f"demo finished: {failures} step(s) did not behave as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_demo())

"""The command line: a thin layer of argument parsing over the autograder's Python API.

Each subcommand is one function that parses nothing itself and returns an exit status;
the work is done by the modules it calls, which the tests call directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Module level: only what the student commands (`check`, `pdf`) need, all of it in the handout.
# Staff commands import their modules when they run (see _staff_tool); the handout leaves those out.
from autograder import REPO_ROOT, UserInputError, __version__
from autograder.baseline import Baseline, default_baseline, load_baseline
from autograder.edition import Edition, default_edition, detect, edition_names, editions, get_edition
from autograder.grading import HarnessError, grade_submission, summary
from autograder.notebook.items import answer_text
from autograder.notebook.pdf import build_pdf
from autograder.notebook.reading import extract, read_notebook
from autograder.progress import MODES
from autograder.reports.grading_log import GRADING_LOG
from autograder.rubric import RubricError, load_rubric
from autograder.sandbox.confinement import REQUIRE_VARIABLE
from autograder.sandbox.exposure import SecretsExposed

DEFAULT_REFERENCE = REPO_ROOT / "reference_solution"
DEFAULT_TEMPLATE = REPO_ROOT / "student_template"
DEFAULT_FIXTURES = REPO_ROOT / "fixtures"
#: Dask's scheduler's HTTP server port unless told otherwise (`grade.py scheduler --dashboard-port`).
DASHBOARD_PORT = 8787


@contextmanager
def _staff_tool(command: str) -> Iterator[None]:
    """Wrap a staff command's imports: in the student handout its modules are absent on purpose,
    and the student should hear that rather than see a ModuleNotFoundError."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("autograder."):
            raise
        raise UsageError(f"`grade.py {command}` is a course-staff command and is not part of the student handout "
                         f"({exc.name} is left out); students use `grade.py check` and `grade.py pdf`") from None


def _report(problems: list[str], headline: str, in_sync: str) -> int:
    """Print a check's outcome; 1 when it found problems, 0 when everything matched."""
    if problems:
        print(f"{headline} ({len(problems)} problem(s)):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(in_sync)
    return 0


def _template_files(args: argparse.Namespace) -> tuple[dict, Path, str]:
    """The template files to write or check, where, and what they come from. Without --edition, or for the
    default edition: the whole template of --reference, in --out. For another edition: its overlay (the
    files that differ from the default template) in its overlay folder, or with --out the whole template."""
    from autograder.edition import get_edition
    from autograder.staff.overlays import REFERENCE, TEMPLATE, is_default, overlay_dir
    from autograder.staff.template import build_template, edition_template, overlay_template
    edition = get_edition(args.edition) if args.edition else None
    if edition is None or is_default(edition):
        reference = args.reference or DEFAULT_REFERENCE
        return build_template(reference), args.out or DEFAULT_TEMPLATE, str(reference)
    if args.reference is not None:  # a whole reference of that edition, made elsewhere: never over our template
        if args.out is None:
            raise UsageError(f"--reference with --edition {args.edition}: say where the template goes with --out")
        return build_template(args.reference), args.out, str(args.reference)
    if args.out is not None:
        return edition_template(edition), args.out, f"the {edition.name} reference"
    folder = overlay_dir(edition)
    return overlay_template(edition), folder / TEMPLATE, f"{folder / REFERENCE} on {DEFAULT_REFERENCE}"


def _cmd_template(args: argparse.Namespace) -> int:
    with _staff_tool("template"):
        from autograder.staff.template import template_differences, write_template
    files, out, source = _template_files(args)
    if args.check:
        rerun = "python grade.py template" + (f" --edition {args.edition}" if args.edition else "")
        return _report(template_differences(files, out), f"{out} is stale; run `{rerun}`",
                       f"{out} matches {source} ({len(files)} files)")
    write_template(files, out)
    print(f"wrote {len(files)} files to {out}")
    return 0


def _cmd_fixtures(args: argparse.Namespace) -> int:
    with _staff_tool("fixtures"):
        from autograder.rubric import load_rubric
        from autograder.staff.fixture_build import verify_fixtures, write_fixtures
    rubric = load_rubric()
    if args.verify:
        return _report(verify_fixtures(args.reference, args.out, rubric),
                       f"{args.out} does not match the reference; run `python grade.py fixtures`",
                       f"{args.out} matches what {args.reference} computes")
    seed = args.seed if args.seed is not None else int(rubric.fixtures["seed"])
    manifest = write_fixtures(args.reference, args.out, rubric, seed)
    visible = sum(1 for case in manifest["cases"] if case["visibility"] == "public")
    print(f"wrote {len(manifest['cases'])} cases ({visible} public, {len(manifest['cases']) - visible} hidden, "
          f"seed {seed}) to {args.out}")
    if seed != int(rubric.fixtures["seed"]):
        print(f"note: the rubric's seed is {rubric.fixtures['seed']}; put {seed} in autograder/rubric.toml "
              "so that `--verify` and later runs use the same one")
    return 0


def _cmd_notebook_checks(args: argparse.Namespace) -> int:
    from autograder.notebook.execute import run_unit_checks
    from autograder.sandbox.confinement import SECRET_PATHS  # in the handout: grading needs both
    name = args.notebook or load_rubric().assignment.notebook
    notebook = args.folder / name
    if not notebook.is_file():
        raise UsageError(f"{notebook}: no such notebook")
    runs = run_unit_checks(args.folder, name, hidden=list(SECRET_PATHS))
    for run in runs:
        print(f"== {run.section}")
        if run.text.strip():
            print(run.text.rstrip())
        if run.error:
            print(f"!! {run.error}")
    failed = sum(1 for run in runs if run.error)
    print(f"{len(runs)} cells run, {failed} raised an error")
    return 1 if failed else 0


def _edition(name: str | None) -> Edition | None:
    """--edition's edition (a name, a year or an edition file), or None: each submission's is detected.
    An unknown name is the user's error (EditionError), which lists the editions."""
    return get_edition(name) if name is not None else None


def _check_data(folder: Path | None, needed: bool, edition: Edition | None = None) -> None:
    """--data must hold the files of `edition` (when staff fixed it) or of at least one edition (a batch
    may hold both; each submission is graded on its own edition's files)."""
    if folder is None:
        if needed:
            raise UsageError("--execute needs --data DIR (the edition's data files; `grade.py data --synthetic` "
                             "makes some)")
        return
    from autograder.notebook.datasets import missing_files
    candidates = [edition] if edition is not None else list(editions())
    missing = [(each, missing_files(each, folder)) for each in candidates]
    if all(names for _, names in missing):
        raise UsageError(f"--data {folder}: " + "; or ".join(
            f"missing {', '.join(names)} ({each.dataset.name}, edition {each.name})" for each, names in missing))


def _baseline(path: Path | None) -> Baseline:
    """--baseline's handout, or ours; read before any grading so a bad path stops nothing half-done."""
    return load_baseline(path) if path is not None else default_baseline()


def _check_out(out: Path | None) -> None:
    """An --out that is (or lies inside) a file would fail only after the grading was done: say so first."""
    if out is None:
        return
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                raise UsageError(f"{out}: --out must be a folder, but {place} is a file")
            return


def _cmd_grade(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise UsageError(f"{args.path}: no such file or folder")
    if args.quick and not args.execute:
        raise UsageError("--quick shortens a headless run: use it with --execute")
    _check_out(args.out)
    edition = _edition(args.edition)
    _check_data(args.data, needed=args.execute, edition=edition)
    baseline = _baseline(args.baseline)
    try:
        result, out_dir = grade_submission(args.path, args.out, public_only=args.public_only, data_dir=args.data,
                                           execute=args.execute, quick=args.quick, baseline=baseline,
                                           replay=not args.no_replay, edition=edition, release=args.release)
    except HarnessError as exc:
        return _harness_fault(exc, "results were still written")
    print(summary(result, out_dir))
    return 0


def _harness_fault(exc: BaseException, what: str) -> int:
    """A fault of the harness itself: its traceback and exit 3 (never mistaken for the user's input)."""
    traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
    print(f"harness fault: {exc} ({what})", file=sys.stderr)
    return 3


def _cmd_batch(args: argparse.Namespace) -> int:
    with _staff_tool("batch"):
        from autograder.batch import BatchStopped, run_batch
        from autograder.reports.similarity import PAIRS, read_pairs
    engine = None
    if args.scheduler:  # a mistyped address is refused at once, before anything is read, reached or written
        from autograder.cluster import ClusterEngine
        engine = ClusterEngine(args.scheduler)
    if not args.input.is_dir():
        raise UsageError(f"{args.input}: not a folder of submissions")
    _check_out(args.out)
    if args.quick and not args.execute:
        raise UsageError("--quick shortens a headless run: use it with --execute")
    edition = _edition(args.edition)
    _check_data(args.data, needed=args.execute, edition=edition)
    baseline = _baseline(args.baseline)
    if args.deadline is not None and not args.deadline > 0:
        raise UsageError(f"--deadline {args.deadline:g}: must be a positive number of seconds")
    said = sys.stderr if args.progress == "jsonl" else sys.stdout  # jsonl: stdout holds the JSON lines alone
    try:
        entries, notes = run_batch(args.input, args.out, jobs=args.jobs, force=args.force, data_dir=args.data,
                                   execute=args.execute, quick=args.quick, baseline=baseline,
                                   replay=not args.no_replay, deadline=args.deadline, edition=edition,
                                   engine=engine, progress=args.progress, release=args.release)
    except BatchStopped as exc:
        print(f"batch {exc}: the gradebook and reports in {args.out} list everyone graded so far (the others are "
              f"\"not graded yet\"; run the batch again to grade them)", file=sys.stderr)
        return 128 + exc.signum  # as a shell reports a process a signal stopped: 130 for Ctrl-C, 143 for SIGTERM
    except KeyboardInterrupt:  # Ctrl-C before the grading began or after it ended: nothing is half-done
        print(f"batch stopped by Ctrl-C (SIGINT) outside the grading: the reports in {args.out} are as the last "
              f"write left them; run the batch again", file=sys.stderr)
        return 130
    finally:
        if engine is not None:
            engine.close()
    for note in notes:
        print(f"note: {note}", file=said)
    counts = {status: sum(1 for e in entries if e.status == status)
              for status in ("graded", "unchanged", "harness fault", "timed out")}
    for entry in entries:
        if entry.status in ("harness fault", "timed out"):
            print(f"{entry.status}: {entry.student_id} ({entry.source.name}): {entry.detail}", file=sys.stderr)
    timed_out = f", {counts['timed out']} timed out (flagged in the gradebook)" if counts["timed out"] else ""
    print(f"{len(entries)} submission(s): {counts['graded']} graded, {counts['unchanged']} unchanged since the last "
          f"run, {counts['harness fault']} harness fault(s){timed_out}; gradebook: {args.out / 'gradebook.csv'}",
          file=said)
    pairs = read_pairs(args.out / PAIRS)
    print(f"class report: {args.out / 'class_report.html'}; {len(pairs)} similar pair(s) listed there for a look",
          file=said)
    print(f"grading sheet for staff (filters, inline answer): {args.out / 'manual_grading.html'}", file=said)
    logged = [entry.student_id for entry in entries if (args.out / entry.student_id / GRADING_LOG).is_file()]
    if logged:
        print(f"library warnings (a broken PDF, an old notebook) of {len(logged)} submission(s) are in "
              f"{args.out / '<student id>' / GRADING_LOG}: {', '.join(logged[:5])}"
              + (" ..." if len(logged) > 5 else ""), file=said)
    return 3 if counts["harness fault"] else 0


def _cmd_dask(args: argparse.Namespace) -> int:
    """`grade.py scheduler` and `grade.py worker`: Dask's own commands, run with this checkout importable (the
    scheduler unpickles our tasks, the workers run them), so a cluster is started the same way everywhere.
    With --host, every socket they listen on is on that address: Dask's data port and its HTTP server (the
    scheduler's info pages, /health, /metrics, no login), which Dask otherwise opens on every interface."""
    from autograder.sandbox.confinement import available_mode, unmet_requirement
    host = args.host
    if host is not None and ":" in host:  # Dask's --dashboard-address is HOST:PORT, split at the colon
        raise UsageError(f"--host {host}: an IPv6 address cannot be given to Dask's HTTP server; give a host name "
                         f"that resolves to it")
    where = f"on {host}" if host else "on every interface"
    if args.command == "worker":
        unmet = unmet_requirement()
        print(f"cnn-grader {__version__} worker: student code is confined in mode {available_mode()!r} here"
              + (f"; this worker will refuse to grade: {unmet}" if unmet else ""), file=sys.stderr)
        command = ["distributed.cli.dask_worker", args.address, "--nthreads", str(args.nthreads),
                   "--memory-limit", args.memory_limit, "--death-timeout", f"{args.death_timeout:g}"]
        command += ["--host", host, "--dashboard-address", f"{host}:0"] if host else []
        print(f"cnn-grader worker: Dask's worker and its HTTP server (/health, /metrics; no login) listen {where}, "
              f"each on a free port" + ("" if host else " (the scheduler is told the address that reaches it); "
                                        "--host ADDRESS limits them to that address"), file=sys.stderr)
    else:
        command = ["distributed.cli.dask_scheduler", "--port", str(args.port)]
        command += ["--idle-timeout", f"{args.idle_timeout:g}"] if args.idle_timeout else []
        if host:
            command += ["--host", host, "--dashboard-address", f"{host}:{args.dashboard_port}"]
        elif args.dashboard_port != DASHBOARD_PORT:
            command += ["--dashboard-address", f":{args.dashboard_port}"]
        print(f"cnn-grader scheduler: tasks on port {args.port}, Dask's HTTP server (its pages on the workers and "
              f"tasks, /health, /metrics; no login) on port {args.dashboard_port} (a free one if that is taken: "
              f"see \"dashboard at\" below), both {where}"
              + ("" if host else "; --host 127.0.0.1 (or this machine's address on the cluster's network) limits "
                                 "them to that address"), file=sys.stderr)
    command += ["--no-dashboard"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    # Without Bokeh's dashboard (--no-dashboard) Dask's "dashboard at" line names a page its HTTP server has
    env.setdefault("DASK_DISTRIBUTED__DASHBOARD__LINK", "{scheme}://{host}:{port}/info/main/workers.html")
    os.chdir(REPO_ROOT)  # `python -m` puts the current folder first on the path: it must be this checkout
    os.execve(sys.executable, [sys.executable, "-m", *command], env)
    return 0  # pragma: no cover - execve does not return


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from autograder.sandbox.confinement import available_mode, explain_mode, unmet_requirement  # in the handout
    from autograder.sandbox.exposure import guard_secrets
    mode = available_mode()
    print("How student code can be confined here (strongest first):")
    print("\n".join(f"  {line}" for line in explain_mode().splitlines()))
    print(f"mode used: {mode}")
    try:
        exposure = guard_secrets(DEFAULT_FIXTURES)
        print(f"hidden fixtures: a full grade may run here ({exposure.checked} secret file(s) checked, "
              f"{len(exposure.readable)} readable by the worker, in {exposure.seconds:.3f} s)")
    except SecretsExposed as exc:
        print(f"hidden fixtures: a full grade would be refused here:\n{exc}")
    unmet = unmet_requirement(args.require)
    if unmet:
        print(f"error: {unmet}", file=sys.stderr)
        return 1
    return 0


def _cmd_handout(args: argparse.Namespace) -> int:
    with _staff_tool("handout"):
        from autograder.staff.handout import build_handout, leaks
    from autograder.edition import get_edition
    edition = get_edition(args.edition) if args.edition else None
    entries = build_handout(args.output, edition)
    problems = leaks(args.output, edition)
    if problems:
        args.output.unlink()
        return _report(problems, f"{args.output} would leak; it was deleted", "")
    print(f"wrote {args.output}: {len(entries)} files (the template, grade.py, the harness, public fixtures, README)"
          + (f" for the edition {edition.name}" if edition else ""))
    return 0


def _cmd_gradescope(args: argparse.Namespace) -> int:
    with _staff_tool("gradescope"):
        from autograder.staff.gradescope import build_bundle
    from autograder.edition import get_edition
    edition = get_edition(args.edition) if args.edition else None
    entries = build_bundle(args.output, edition)
    print(f"wrote {args.output}: {len(entries)} files (setup.sh, run_autograder, the harness, all fixtures)"
          + (f"; every submission is graded as {edition.name}" if edition else ""))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    folder = args.folder
    if not (folder / "lib").is_dir():
        raise UsageError(f"{folder.resolve()}: no lib/ folder here; run `grade.py check` in your assignment folder")
    edition = _edition(args.edition)
    try:
        result, out_dir = grade_submission(folder, folder / "self_check", public_only=True, edition=edition)
    except HarnessError as exc:
        return _harness_fault(exc, f"the grader itself failed, not your code; {folder / 'self_check'} says so; "
                                   "tell the course staff")
    print(summary(result, out_dir))
    code = [item for item in result.items if item.item.kind == "code"]
    runs = {(item.item.id, case.case) for item in code for case in item.cases}
    failing = {(item.item.id, case.case) for item in code for case in item.cases if not case.outcome.passed}
    print(f"\nThe notebook's public cases and the fixed checks: {len(runs) - len(failing)} of {len(runs)} pass. "
          "They earn no points by themselves: the code items' points come from hidden cases, which staff run "
          f"on {load_rubric().hidden_cases_text()}. Test your layers on such inputs before you submit.")
    print("Not checked here: the hidden cases, your accuracy on the validation data, and your inline answer "
          "(staff read it).")
    print("All public cases pass." if not failing else f"{len(failing)} public case(s) or check(s) fail: see "
                                                       f"{out_dir / 'feedback.md'}")
    return 0 if not failing else 1


def _cmd_pdf(args: argparse.Namespace) -> int:
    notebook = args.notebook or Path(load_rubric().assignment.notebook)
    if not notebook.is_file():
        raise UsageError(f"{notebook}: no such notebook")
    given = get_edition(args.edition) if args.edition else None
    decision = detect(notebook.resolve().parent, notebook.name, given)
    if decision.contradiction:
        print(f"warning: {decision.contradiction}", file=sys.stderr)
    problems: list[str] = []
    findings = extract(read_notebook(notebook, problems), notebook, default_baseline().text,
                       edition=decision.edition)
    for problem in problems[:8]:  # what of the notebook could not be read, and where
        print(f"warning: {notebook.name} does not follow the notebook format: {problem}", file=sys.stderr)
    for _, note in findings.unreadable[:8]:
        print(f"warning: {note}", file=sys.stderr)
    if not findings.has_outputs:
        raise UsageError(f"{notebook}: the notebook has no outputs at all: run it and save it with its outputs first")
    output = args.output or notebook.with_name(load_rubric().assignment.pdf)
    made = build_pdf(findings, answer_text(findings), output, args.student, decision.edition)
    for message in made.missing:
        print(f"error: missing part: {message}", file=sys.stderr)
    print(f"wrote {made.path} ({made.pages} page(s))")
    return 1 if made.missing and not args.allow_missing else 0


def _cmd_data(args: argparse.Namespace) -> int:
    edition = get_edition(args.edition) if args.edition else default_edition()
    with _staff_tool("data"):
        from autograder.staff.synthetic import write_synthetic_svhn
        from autograder.staff.synthetic_cifar import write_synthetic_cifar100
    if not args.synthetic:
        raise UsageError(f"only synthetic data can be made here: pass --synthetic (the real {edition.dataset.name} "
                         "files come from the handout's download instructions, on a machine with network access)")
    writers = {"svhn-mat": lambda: write_synthetic_svhn(args.out, args.train, args.test, args.seed, edition),
               "cifar100-mat": lambda: write_synthetic_cifar100(args.out, edition, args.train, args.test, args.seed)}
    try:
        written = writers[edition.dataset.format]()
    except ValueError as exc:  # too few images for one of each class
        raise UsageError(str(exc)) from None
    print(f"wrote {args.train} training and {args.test} test images of synthetic {edition.dataset.name} "
          f"(edition {edition.name}, seed {args.seed}): " + ", ".join(str(path) for path in written.values()))
    print(f"the {edition.year} handout's loader reads them from {edition.dataset.folder}/ beside the notebook; "
          "give this folder to `grade.py grade --data`")
    return 0


def _cmd_merge_manual(args: argparse.Namespace) -> int:
    with _staff_tool("merge-manual"):
        from autograder.batch import refresh_reports, status_counts
        from autograder.reports.manual import merge_manual
    report = merge_manual(args.scores, args.graded, by=args.by)  # all or nothing: a bad row raises, exit 2
    for change in report.changes:
        old = f"{change['old_points']:g}" + ("" if change["old_by"] == "staff" else " (grader)")
        print(f"  {change['student_id']} {change['item']}: {old} -> {change['new_points']:g}"
              + (f" ({change['new_comment']})" if change["new_comment"] else ""))
    print(f"{args.scores.name}: {len(report.changes)} changed, {report.unchanged} unchanged"
          + (f", {report.blank} blank row(s) skipped" if report.blank else "") + f"; logged in {report.log}")
    book = refresh_reports(args.graded)
    print(f"gradebook, class report and grading sheet rebuilt: {book} ({status_counts(book)})" if book else
          f"no gradebook.csv in {args.graded} (not a batch's output): only the students' results were updated")
    return 0


BUILD_EDITION_HELP = "the edition (its name or year, e.g. 2023) whose reference solution is used (default: 2022)"
RELEASE_HELP = ("after the due date: feedback.md is the released version, with the hidden cases' inputs, your "
                "outputs and the differences (as feedback_released.md, written either way); without it feedback.md "
                "names no hidden input (rubric.toml [release])")
BASELINE_HELP = ("the handout the students received, as a folder or .zip (default: student_template/): its "
                 "notebook's text is never taken for an answer, and its lib/cnn lines count for no one in the "
                 "similarity check")


class UsageError(UserInputError):
    """Arguments that do not fit together; reported like argparse's own errors."""


def _file_names() -> dict[str, str]:
    """The rubric's [assignment] file names for help texts; words instead when the rubric is broken
    (the command that loads it then says what is wrong)."""
    try:
        assignment = load_rubric().assignment
    except RubricError:
        return {"notebook": "the rubric's [assignment] notebook", "pdf": "the rubric's [assignment] pdf"}
    return {"notebook": assignment.notebook, "pdf": assignment.pdf}


def _edition_help() -> str:
    """--edition's help: the editions by name and year, and how a submission's is found without it."""
    try:
        known = ", ".join(f"{e.name} ({e.year}: {e.summary})" for e in editions()).replace("%", "%%")  # argparse
    except UserInputError as exc:  # a broken edition file must not break --help; grading will say so
        known = f"the edition files could not be read: {exc}".replace("%", "%%")
    return (f"grade as this edition of the assignment, by name or year: {known}. Default: each submission's "
            f"edition is detected from its own files (the handout's data loader in lib/, the data and the "
            f"target its notebook names) and stated in results.json; a submission whose files point at another "
            f"edition than the one given is graded as given and flagged 'edition contradiction' for staff")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate from main() so that tests can inspect it."""
    names = _file_names()
    edition_help = _edition_help()
    parser = argparse.ArgumentParser(
        prog="grade.py",
        description="Grading harness for 'Problem 2: Incorporating CNNs' (NumPy conv and pooling layers, "
                    "two small CNNs, training on the edition's data (SVHN in 2022, CIFAR-100 in 2023), filters, "
                    "inline answer).",
    )
    parser.add_argument("--version", action="version", version=f"cnn-grader {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    template = commands.add_parser(
        "template", help="regenerate student_template/ from reference_solution/",
        description="Write the student template: the reference with every solution region replaced by its "
                    "handout text (see autograder/staff/regions.py for the markers).")
    template.add_argument("--check", action="store_true",
                          help="change nothing; exit 1 and list the differences when the template is stale")
    template.add_argument("--reference", type=Path,
                          help=f"default: {DEFAULT_REFERENCE} (the edition's, with --edition)")
    template.add_argument("--out", type=Path, help=f"default: {DEFAULT_TEMPLATE}; with --edition of another edition, "
                                                   "its overlay (edition_overlays/NAME/student_template/: the files "
                                                   "that differ), and with --out the whole template")
    template.add_argument("--edition", metavar="NAME", help=BUILD_EDITION_HELP)
    template.set_defaults(run=_cmd_template)

    fixtures = commands.add_parser(
        "fixtures", help="generate or verify the public and hidden test fixtures",
        description="Compute every graded case with the reference solution and write fixtures/ (public cases, "
                    "hidden cases drawn from the seed, manifest.json). Refuses to write when the reference's "
                    "analytic gradients disagree with central differences.")
    fixtures.add_argument("--seed", type=int, help="seed of the hidden cases (default: the rubric's)")
    fixtures.add_argument("--verify", action="store_true",
                          help="change nothing; check that the seed draws the stored inputs exactly, recompute "
                               "every output from them and exit 1 on any difference beyond 1/100 of the grading "
                               "tolerance (sizes and max-pool selections: any difference)")
    fixtures.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="default: %(default)s")
    fixtures.add_argument("--out", type=Path, default=DEFAULT_FIXTURES, help="default: %(default)s")
    fixtures.set_defaults(run=_cmd_fixtures)

    grade = commands.add_parser(
        "grade", help="grade one submission (a folder or a .zip)",
        description="Grade the code items of one submission: its lib/ is imported in a sandboxed worker process "
                    "and checked on the notebook's public cases and the hidden cases. Writes results.json "
                    "(Gradescope's format), feedback.md (before the due date: no hidden case's inputs; --release: "
                    "all) and feedback_released.md (all). Exit 0 whenever results were written, whatever the score.")
    grade.add_argument("path", type=Path, help="a submission folder, or a .zip as collectSubmission.sh makes it")
    grade.add_argument("--out", type=Path, help="output folder (default: graded/<student id>/, the id from the name)")
    grade.add_argument("--public-only", action="store_true",
                       help="run the public cases only (a self-check: says what it did not check)")
    grade.add_argument("--data", type=Path, metavar="DIR",
                       help="folder with the edition's data files (2022: train_32x32.mat and test_32x32.mat; "
                            "2023: train.mat, test.mat and meta.mat): the grader evaluates saved weights "
                            "on the rubric's validation split and a held-out test subset, and --execute runs with "
                            "it as data/")
    grade.add_argument("--execute", action="store_true",
                       help="run the notebook headless (confined, in a scratch copy) and grade the executed copy")
    grade.add_argument("--quick", action="store_true",
                       help="with --execute: override the notebook's parameters cell for a short smoke run")
    grade.add_argument("--baseline", type=Path, metavar="HANDOUT", help=BASELINE_HELP)
    grade.add_argument("--no-replay", action="store_true",
                       help="with --data and no saved weights: do not re-run the training cell to check that the "
                            "code prints the notebook's log (it takes up to [training] replay_seconds)")
    grade.add_argument("--edition", metavar="NAME", help=edition_help)
    grade.add_argument("--release", action="store_true", help=RELEASE_HELP)
    grade.set_defaults(run=_cmd_grade)

    batch = commands.add_parser(
        "batch", help="grade a folder of submissions (a class) into a gradebook",
        description="Grade every submission folder and .zip in INPUT (named by student id) into OUT/<student id>/, "
                    "each in its own process, with a progress bar. Resumable: a submission unchanged since it was "
                    "graded is skipped (--force regrades). One broken or stuck submission never stops the batch: "
                    "each has a deadline (--deadline). Writes, as the batch goes (so a batch stopped midway leaves "
                    "the reports of everyone graded so far) and at its end, "
                    "OUT/gradebook.csv, OUT/class_report.html (and .md), and OUT/similarity.json: pairs with "
                    "near-identical lib/cnn code or inline answers, ranked, for staff to look at (thresholds in "
                    "rubric.toml [similarity]), and OUT/manual_grading.html: the staff's grading sheet for the filters "
                    "and the inline answer (open it in a browser from OUT, type points and comments, download the "
                    "CSV for merge-manual). Staff scores merged before (OUT/manual_merges.jsonl) are set again in "
                    "the new results after grading; one given for an earlier submission of a student who "
                    "resubmitted is kept but flagged for staff to grade again.")
    batch.add_argument("input", type=Path, metavar="INPUT", help="folder of submission folders and/or zips")
    batch.add_argument("--out", type=Path, required=True, help="output folder")
    batch.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: %(default)s)")
    batch.add_argument("--data", type=Path, metavar="DIR", help="as for grade")
    batch.add_argument("--execute", action="store_true", help="as for grade")
    batch.add_argument("--quick", action="store_true", help="as for grade")
    batch.add_argument("--no-replay", action="store_true", help="as for grade (faster batches)")
    batch.add_argument("--force", action="store_true", help="regrade submissions that did not change")
    batch.add_argument("--deadline", type=float, metavar="SECONDS",
                       help="wall-clock seconds one submission may take; past it its grading, worker and kernel are "
                            "stopped and it is recorded as timed out (every item 0, flagged in the gradebook) and "
                            "the batch goes on (default: rubric.toml [deadlines], 1800 s, 14400 s with --execute)")
    batch.add_argument("--baseline", type=Path, metavar="HANDOUT",
                       help=BASELINE_HELP + "; changing it regrades every submission")
    batch.add_argument("--edition", metavar="NAME",
                       help=edition_help + "; a batch without it may hold both editions, and the gradebook and the "
                            "class report show each student's; changing it regrades every submission")
    batch.add_argument("--release", action="store_true",
                       help=RELEASE_HELP + "; changing it regrades every submission")
    batch.add_argument("--scheduler", metavar="tcp://HOST:8786",
                       help="grade on the workers of this Dask scheduler instead of this machine (--jobs does not "
                            "apply: each worker runs as many submissions at a time as it has threads); every worker "
                            "needs this checkout and "
                            "requirements.txt, and is checked first (README, 'Beyond one machine')")
    batch.add_argument("--progress", choices=MODES, default="bar",
                       help="bar: a progress bar on stderr (default); jsonl: one JSON line per finished submission "
                            "on stdout (student_id, status, score, seconds, done, total) for a dashboard or a "
                            "scheduler; none: nothing until the summary")
    batch.set_defaults(run=_cmd_batch)

    handout = commands.add_parser(
        "handout", help="build the student handout zip (template, grader, public fixtures, README)",
        description="Write the zip students receive, then open it and check that it holds no hidden fixture, no "
                    "line of any solution region and nothing but the template and the self-check tools; a "
                    "leaking zip is deleted (exit 1).")
    handout.add_argument("-o", "--output", type=Path, default=Path("handout.zip"), help="default: %(default)s")
    handout.add_argument("--edition", metavar="NAME", help=BUILD_EDITION_HELP + "; its template and README")
    handout.set_defaults(run=_cmd_handout)

    gradescope = commands.add_parser(
        "gradescope", help="build the Gradescope autograder bundle (one container per submission)",
        description="Write autograder.zip for Gradescope: setup.sh installs the pinned requirements, run_autograder "
                    "grades /autograder/submission with the hidden fixtures and always writes "
                    "/autograder/results/results.json. AUTOGRADER_ROOT replaces /autograder (for testing).")
    gradescope.add_argument("-o", "--output", type=Path, default=Path("autograder.zip"), help="default: %(default)s")
    gradescope.add_argument("--edition", metavar="NAME",
                            help="grade every submission as this edition (its name or year, e.g. 2023), as "
                                 "`grade --edition` does (default: each submission's edition is detected)")
    gradescope.set_defaults(run=_cmd_gradescope)

    check = commands.add_parser(
        "check", help="students: grade your own lib/ on the public cases",
        description="Grade the assignment folder (default: the current one) on the notebook's public cases, as "
                    "staff grade it, print the table and say what was not checked. Exit 0 when every public "
                    "case passes, 1 otherwise. Reports go to self_check/.")
    check.add_argument("folder", type=Path, nargs="?", default=Path("."), help="default: the current folder")
    check.add_argument("--edition", metavar="NAME", help=edition_help)
    check.set_defaults(run=_cmd_check)

    pdf = commands.add_parser(
        "pdf", help=f"make {names['pdf']} from an executed notebook",
        description="Write the PDF the assignment asks for, in its strict order: the training curves, the filter "
                    "visualisation, the inline answer (and, for the 2023 edition, the extra-credit work last, when "
                    "there is any). Needs nothing beyond pip (no LaTeX, no browser). A missing "
                    "part is a framed note in the PDF and an error here (exit 1 unless --allow-missing).")
    pdf.add_argument("notebook", type=Path, nargs="?",
                     help=f"the executed notebook (default: {names['notebook']} in the current folder)")
    pdf.add_argument("-o", "--output", type=Path, help=f"default: {names['pdf']} beside the notebook")
    pdf.add_argument("--student", help="your student id, printed in the header")
    pdf.add_argument("--allow-missing", action="store_true", help="exit 0 even when a part is missing")
    pdf.add_argument("--edition", metavar="NAME",
                     help="the handout's edition (a name or a year: " + ", ".join(edition_names())
                          + "); default: detected from the notebook and the folder's lib/")
    pdf.set_defaults(run=_cmd_pdf)

    data = commands.add_parser(
        "data", help="make an edition's data files offline (synthetic SVHN or CIFAR-100)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write synthetic data in the official Matlab layout of an edition's dataset, rendered offline:\n"
                    "  2022 (the default): SVHN, train_32x32.mat and test_32x32.mat (X (32, 32, 3, N), y 1..10);\n"
                    "    house-number-like digits in matplotlib's fonts, colours, neighbours, blur, noise.\n"
                    "  2023 (--edition 2023): CIFAR-100, train.mat, test.mat and meta.mat (data uint8 (N, 3072)\n"
                    "    channel-major, coarse_labels and fine_labels, coarse_label_names); shapes and colours,\n"
                    "    one family per superclass, all 20 superclasses present.\n"
                    "Every class appears in each split; the same seed gives the same files.")
    data.add_argument("--synthetic", action="store_true", help="render synthetic images (the only source here)")
    data.add_argument("--edition", metavar="NAME", help="the edition whose dataset to write: a name or a year "
                      "(2022: SVHN, 2023: CIFAR-100; default: the default edition, 2022)")
    data.add_argument("--out", type=Path, required=True, help="folder to write the edition's .mat files to")
    data.add_argument("--train", type=int, default=6000, help="training images (default: %(default)s)")
    data.add_argument("--test", type=int, default=1000, help="test images (default: %(default)s)")
    data.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    data.set_defaults(run=_cmd_data)

    merge = commands.add_parser(
        "merge-manual", help="merge staff's scores (the inline answer, or any override) into graded results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Set staff's scores in GRADED_DIR/<student_id>/results.json and feedback.md, then rebuild\n"
                    "GRADED_DIR/gradebook.csv, the class report and the grading sheet (manual_grading.html)\n"
                    "when GRADED_DIR is a batch's output.\n\n"
                    "SCORES.csv: CSV UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)'), header\n"
                    "student_id,item,points[,comment] (case, spaces, '-' and '_' in the names do not matter),\n"
                    "one row per student and item; the grading sheet's download is such a file. A row with\n"
                    "blank points (and no comment) is not graded yet and is skipped: the current score stays.\n\n"
                    "All or nothing: every row is checked first (known student, known item, points a number\n"
                    "within 0..the item's points, no student and item twice, the header's columns). If any\n"
                    "row is bad, NOTHING is merged: every problem is listed as SCORES.csv:<line>, exit 2;\n"
                    "fix the file and run it again.\n\n"
                    "A staff score replaces the grader's (and an earlier staff score), never adds to it;\n"
                    "merging the same file again changes nothing (\"0 changed\"). An item cannot be given\n"
                    "back to the grader: merge the grader's points instead (the log's old_points). Each merge\n"
                    "is appended to GRADED_DIR/manual_merges.jsonl (when, who, the file's name and sha256,\n"
                    "every change old -> new, the submission's sha256); `grade.py batch` sets those scores\n"
                    "again after re-grading a student, flagged \"set by staff for an earlier submission\"\n"
                    "when the student resubmitted since (merge a new score to clear it).")
    merge.add_argument("scores", type=Path, metavar="SCORES.csv",
                       help="the staff's scores (e.g. manual_scores.csv from the grading sheet)")
    merge.add_argument("graded", type=Path, metavar="GRADED_DIR",
                       help="the batch's output folder (batch --out), or a folder of graded students")
    merge.add_argument("--by", metavar="NAME", help="who merges, for the log (default: the login name)")
    merge.set_defaults(run=_cmd_merge_manual)

    scheduler = commands.add_parser(
        "scheduler", help="start a Dask scheduler for `batch --scheduler` (runs until stopped)",
        description="Start a Dask scheduler that `grade.py batch --scheduler tcp://HOST:PORT` sends a class to, "
                    "with this checkout importable (the scheduler reads our tasks). Runs until stopped (Ctrl-C). "
                    "Then start workers on each machine with `grade.py worker`. README, 'Beyond one machine'.")
    scheduler.add_argument("--port", type=int, default=8786, help="default: %(default)s")
    scheduler.add_argument("--host", help="the address to listen on, for the tasks and Dask's HTTP server alike "
                                          "(default: Dask's: every interface); 127.0.0.1 for a cluster of this "
                                          "machine only")
    scheduler.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT, metavar="PORT",
                           help="the port of Dask's HTTP server (info pages, /health, /metrics; no login): "
                                "default %(default)s, 0 for any free one")
    scheduler.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                           help="stop after this long without a batch connected (default: run until stopped)")
    scheduler.set_defaults(run=_cmd_dask)
    worker = commands.add_parser(
        "worker", help="start a Dask worker that grades for `batch --scheduler` (runs until stopped)",
        description="Start a Dask worker for the scheduler at ADDRESS, with this checkout importable. Each "
                    "submission it gets is graded in a process of its own, confined as for `grade.py grade`; a "
                    "worker that cannot confine student code (see `grade.py sandbox`) is left out by the batch, "
                    "which says why. The batch checks first that every worker has this harness's version, files, "
                    "rubric and fixtures. Runs until stopped.")
    worker.add_argument("address", metavar="ADDRESS", help="the scheduler, tcp://HOST:PORT")
    worker.add_argument("--nthreads", type=int, default=1,
                        help="submissions graded at a time on this machine: at most its cores (default: %(default)s)")
    worker.add_argument("--memory-limit", default="auto",
                        help="Dask's memory limit for the worker (default: %(default)s, the machine's share); each "
                             "submission's own sandbox has the rubric's [worker] memory limit besides")
    worker.add_argument("--host", help="the address to listen on, for the tasks and Dask's HTTP server alike "
                                       "(default: Dask's: every interface, the scheduler told the address that "
                                       "reaches it)")
    worker.add_argument("--death-timeout", type=float, default=600, metavar="SECONDS",
                        help="stop after this long without reaching the scheduler (default: %(default)g)")
    worker.set_defaults(run=_cmd_dask)

    sandbox = commands.add_parser(
        "sandbox", help="staff: how student code is confined on this machine, and why not more strongly",
        description="Try each way of confining the worker (namespace, user, none), print which works and, for each "
                    "that does not, why (the failing step's own words), and whether a full grade would be refused "
                    "here because the worker could read the hidden fixtures. Exit 1 when the mode is weaker than "
                    f"--require (default: ${REQUIRE_VARIABLE}, which CI sets to namespace).")
    sandbox.add_argument("--require", choices=("namespace", "user", "none"),
                         help=f"the weakest acceptable mode (default: ${REQUIRE_VARIABLE}, if set)")
    sandbox.set_defaults(run=_cmd_sandbox)

    checks = commands.add_parser(
        "notebook-checks", help="run the notebook's own unit-check cells (no data needed)",
        description="Execute, in a real Jupyter kernel and a scratch copy of FOLDER, the notebook's cells before "
                    "the training section (skipping the ones that download or load SVHN) and print what each "
                    "check printed. Exit 1 when a cell raised an error.")
    checks.add_argument("folder", type=Path, nargs="?", default=Path("."),
                        help="assignment folder holding lib/ and the notebook (default: the current folder)")
    checks.add_argument("--notebook", help=f"default: {names['notebook']}")
    checks.set_defaults(run=_cmd_notebook_checks)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; exit 0 on success, 1 when a check fails, 2 on the user's bad input (a
    UserInputError: a missing path, a bad zip, --data, --baseline, arguments that do not fit), 3 on a fault
    of the harness (anything else, with its traceback), 4 when grading is refused because student code
    could read the expected values."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SecretsExposed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except HarnessError as exc:
        return _harness_fault(exc, "results were still written")
    except BrokenPipeError:  # the reader of our output stopped reading (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python flushes
        return 141  # 128 + SIGPIPE, as a shell reports it
    except Exception as exc:  # noqa: BLE001 - our own bug: say so, with the traceback
        return _harness_fault(exc, "a bug in the grader, not in the input")

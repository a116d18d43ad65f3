"""Grading refuses to start where student code could read the expected values (a weaker sandbox than
`namespace` with readable fixtures), says how to fix it, and still grades where nothing is exposed:
the Gradescope bundle, a self-check, a public-only grade, fixtures made unreadable to other users.

The weaker modes are reached for real: CNN_GRADER_CONFINEMENT caps the mode of a real grader in a
subprocess, and `setpriv` runs one as a user who is not root (tests/unprivileged.py makes the
interpreter reachable for them without changing anything on disk).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, REFERENCE, need_mode, run_grade
from submissions import make_submission
from unprivileged import STUDENT_UID, wrapped
from venvs import SYSTEM_PATH, install_environment, python_or_skip, run

from autograder import REPO_ROOT
from autograder.fixtures import MANIFEST, read_manifest
from autograder.grading import grade_submission
from autograder.sandbox.confinement import (
    CAP_VARIABLE,
    REQUIRE_VARIABLE,
    Confinement,
    ConfinementError,
    _probe,
    _unprivileged_ids,
    interpreter_paths,
    probes,
    unmet_requirement,
)
from autograder.sandbox.exposure import TRUST_VARIABLE, SecretsExposed, guard_secrets, secret_files
from autograder.staff.gradescope import build_bundle
from autograder.staff.gradescope import run as run_in_container

HIDDEN_CASES = sum(1 for case in read_manifest(FIXTURES)["cases"] if case["visibility"] == "hidden")


@pytest.fixture
def capped(monkeypatch):
    """Cap this process's mode with CAP_VARIABLE (probes are kept per cap), untrusted; restored afterwards."""
    monkeypatch.delenv(TRUST_VARIABLE, raising=False)

    def cap(mode: str) -> None:
        monkeypatch.setenv(CAP_VARIABLE, mode)

    return cap


def _environment(**extra: str) -> dict[str, str]:
    """The environment of a grader under test: not trusted, no requirement, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in (TRUST_VARIABLE, REQUIRE_VARIABLE, CAP_VARIABLE)}
    return dict(env, **extra)


def _open_folder(prefix: str, owner: int | None = None) -> Path:
    """A temporary folder other users can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    if owner is not None:
        os.chown(folder, owner, owner)
    return folder


def _harness_copy(into: Path) -> Path:
    """The harness as staff install it (grade.py, autograder/, every fixture), world-readable as a plain
    checkout is; without the reference solution or history, so the fixtures are all there is to hide."""
    harness = into / "harness"
    harness.mkdir()
    shutil.copy2(REPO_ROOT / "grade.py", harness)
    shutil.copytree(REPO_ROOT / "autograder", harness / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(FIXTURES, harness / "fixtures")
    for path in [harness, *harness.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return harness


def _chown_tree(folder: Path, uid: int) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid, follow_symlinks=False)


def _run(argv, env, user=None, reach=(), cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(wrapped([str(a) for a in argv], user=user, reach=reach), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _hidden_cases(document: dict) -> int:
    """Distinct hidden cases graded (an item split into components lists a case once per component)."""
    return len({(test["tags"][0], case["case"]) for test in document["tests"]
                for case in test.get("extra_data", {}).get("cases", []) if case["visibility"] == "hidden"})


# ---------------------------------------------------------------------------------------------- in-process

def test_the_secrets_are_the_hidden_cases_the_manifest_the_reference_and_the_history():
    files = set(secret_files(FIXTURES))
    cases = read_manifest(FIXTURES)["cases"]
    assert FIXTURES / MANIFEST in files
    assert {FIXTURES / c["file"] for c in cases if c["visibility"] == "hidden"} <= files
    assert not {FIXTURES / c["file"] for c in cases if c["visibility"] == "public"} & files  # every student has them
    assert REFERENCE / "lib" / "cnn" / "layer_utils.py" in files
    if (REPO_ROOT / ".git").is_dir():
        assert any(REPO_ROOT / ".git" in path.parents for path in files)


def test_a_handout_s_fixtures_hold_no_secret(tmp_path):
    """The handout's manifest names public cases only: neither it nor its cases are secret."""
    fixtures = tmp_path / "fixtures"
    manifest = read_manifest(FIXTURES)
    manifest["cases"] = [case for case in manifest["cases"] if case["visibility"] == "public"]
    for case in manifest["cases"]:
        (fixtures / case["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FIXTURES / case["file"], fixtures / case["file"])
    (fixtures / MANIFEST).write_text(json.dumps(manifest))
    assert not [path for path in secret_files(fixtures) if fixtures in path.parents]


def test_mode_none_refuses_a_full_grade_before_opening_the_submission(capped, tmp_path):
    capped("none")
    sub = make_submission(tmp_path / "sub")
    with pytest.raises(SecretsExposed) as refusal:
        grade_submission(sub, tmp_path / "out")
    message = str(refusal.value)
    assert "mode 'none'" in message and str(FIXTURES / MANIFEST) in message
    assert "--public-only" in message and "namespace" in message and "grade.py sandbox" in message
    assert not (tmp_path / "out").exists()
    # The fixes are only those that can work: as root with no user switch, chmod would not help.
    assert "chmod" not in message


def test_a_refusal_in_the_gradescope_container_tells_the_student_it_is_not_their_fault(capped, tmp_path):
    """On an image where the hidden tests cannot be hidden, the student reads a refusal, staff read the fix."""
    capped("none")
    make_submission(tmp_path / "submission")
    run_in_container(str(tmp_path))
    document = _results(tmp_path / "results")
    assert document["score"] == 0 and [test["tags"] for test in document["tests"]] == [["staff_notes"]]
    assert "refused to grade" in document["output"] and "not a problem with your submission" in document["output"]
    staff = document["tests"][0]  # the staff's fix, in the test only staff see (rubric.toml [release] staff_notes)
    assert staff["visibility"] == "hidden" and staff["score"] == staff["max_score"] == 0
    assert "mode 'none'" in staff["output"] and "namespace" in staff["output"]
    assert "mode 'none'" not in document["output"] and "failed on this submission" not in document["output"]


def test_a_public_only_grade_is_not_refused_and_says_so(capped, tmp_path):
    capped("none")
    result, out = grade_submission(make_submission(tmp_path / "sub"), tmp_path / "out", public_only=True)
    code = [item for item in result.items if item.item.kind == "code"]
    assert code and all(case.outcome.passed for item in code for case in item.cases)  # graded, not refused
    document = _results(out)
    assert document["extra_data"]["secrets_check"]["skipped"] is True
    assert document["extra_data"]["sandbox"] == "none" and _hidden_cases(document) == 0


def test_trusted_submissions_are_graded_with_a_note(capped, tmp_path, monkeypatch):
    capped("none")
    monkeypatch.setenv(TRUST_VARIABLE, "1")
    exposure = guard_secrets(FIXTURES)
    assert exposure.readable and exposure.checked >= HIDDEN_CASES + 1
    result, out = grade_submission(make_submission(tmp_path / "sub"), tmp_path / "out")
    assert any(TRUST_VARIABLE in note for note in result.notes)
    assert _results(out)["extra_data"]["secrets_check"]["files_readable"] == len(exposure.readable)


def test_a_probe_keeps_the_reason_it_failed(tmp_path):
    """A confinement that fails inside the child (here: its root folder does not exist) is explained
    in the failing step's own words, not subprocess's bare "Exception occurred in preexec_fn"."""
    broken = Confinement("namespace", root=str(tmp_path / "missing"), readable=tuple(map(str, interpreter_paths())),
                         ids=_unprivileged_ids())
    probe = _probe(broken)
    assert not probe.works
    assert "confining the process (namespace) failed" in probe.detail or "unshare" in probe.detail, probe.detail
    assert probe.line().startswith("namespace: fails")


def test_a_requirement_names_the_mode_and_why_the_stronger_ones_failed(capped, monkeypatch):
    capped("user")
    unmet = unmet_requirement("namespace")
    assert "'namespace'" in unmet and f"{CAP_VARIABLE}=user" in unmet
    assert unmet_requirement("none") is None
    monkeypatch.setenv(REQUIRE_VARIABLE, "sandboxed")
    with pytest.raises(ConfinementError, match=REQUIRE_VARIABLE):
        unmet_requirement()
    capped("strong")
    with pytest.raises(ConfinementError, match=CAP_VARIABLE):
        probes()


def test_the_sandbox_command_fails_when_the_mode_is_weaker_than_required():
    weak = subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), "sandbox", "--require", "namespace"],
                          env=_environment(**{CAP_VARIABLE: "none"}), capture_output=True, text=True, timeout=120)
    assert weak.returncode == 1
    assert f"namespace: fails: {CAP_VARIABLE}=none" in weak.stdout and "mode used: none" in weak.stdout
    assert "would be refused" in weak.stdout and "'namespace'" in weak.stderr


def test_the_sandbox_command_passes_where_namespaces_work():
    need_mode("namespace")
    strong = run_grade("sandbox", "--require", "namespace")
    assert strong.returncode == 0, strong.stderr
    assert "mode used: namespace" in strong.stdout and "a full grade may run here" in strong.stdout


# ---------------------------------------------------------------------------------------------- real graders

@pytest.mark.slow
def test_mode_user_refuses_readable_fixtures_and_grades_once_they_are_not(tmp_path):
    need_mode("namespace")  # root with mount namespaces: to reach the interpreter as another user
    place = _open_folder("cnn-grader-user-mode-")
    try:
        harness = _harness_copy(place)
        grade = [sys.executable, harness / "grade.py"]
        env = _environment(**{CAP_VARIABLE: "user"})
        sub = make_submission(tmp_path / "in" / "1001")

        refused = _run([*grade, "grade", sub, "--out", tmp_path / "out"], env, reach=[harness])
        assert refused.returncode == 4, refused.stderr
        assert "mode 'user'" in refused.stderr and str(harness / "fixtures" / MANIFEST) in refused.stderr
        assert f"chmod -R go-rwx {harness / 'fixtures'}" in refused.stderr and "--public-only" in refused.stderr
        assert not (tmp_path / "out").exists()

        batch = _run([*grade, "batch", tmp_path / "in", "--out", tmp_path / "class"], env, reach=[harness])
        assert batch.returncode == 4 and batch.stderr.count("refusing to grade") == 1, batch.stderr
        assert not (tmp_path / "class").exists()

        public = _run([*grade, "grade", sub, "--out", tmp_path / "public", "--public-only"], env, reach=[harness])
        assert public.returncode == 0, public.stderr
        document = _results(tmp_path / "public")
        assert document["extra_data"]["sandbox"] == "user" and _hidden_cases(document) == 0

        for path in [harness / "fixtures", *(harness / "fixtures").rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)  # the fix the refusal names
        graded = _run([*grade, "grade", sub, "--out", tmp_path / "full"], env, reach=[harness])
        assert graded.returncode == 0, graded.stderr
        document = _results(tmp_path / "full")
        assert document["extra_data"]["sandbox"] == "user" and _hidden_cases(document) == HIDDEN_CASES
        assert document["extra_data"]["secrets_check"]["files_readable"] == 0
        assert document["extra_data"]["secrets_check"]["files_checked"] == HIDDEN_CASES + 1
        assert document["score"] == 25  # the code items in full, the hidden cases included
    finally:
        shutil.rmtree(place)


@pytest.mark.slow
def test_the_gradescope_bundle_grades_in_mode_user(tmp_path):
    """Gradescope's containers may have no mount namespaces: setup.sh and run_autograder make the
    fixtures root-only, so the check passes and the bundle grades with the hidden cases."""
    need_mode("namespace")
    root = _open_folder("cnn-grader-gradescope-")
    try:
        build_bundle(tmp_path / "autograder.zip")
        with zipfile.ZipFile(tmp_path / "autograder.zip") as bundle:
            bundle.extractall(root / "source")
        shutil.copytree(REFERENCE, root / "submission", ignore=shutil.ignore_patterns("data", "*.npz"))
        python = python_or_skip("3.11")  # setup.sh as Gradescope runs it: the image's python3 first on PATH
        installing = install_environment(AUTOGRADER_ROOT=str(root), PATH=f"{Path(python).parent}:{SYSTEM_PATH}")
        run(["bash", root / "source" / "setup.sh"], env=installing, timeout=1800)
        env = _environment(**{CAP_VARIABLE: "user", "AUTOGRADER_ROOT": str(root)})
        done = _run(["bash", root / "source" / "run_autograder"], env, reach=[root, Path(python).parent.parent])
        assert done.returncode == 0, done.stderr
        document = _results(root / "results")
        assert document["score"] == 25, document.get("output", "")[-2000:]
        assert document["extra_data"]["sandbox"] == "user" and _hidden_cases(document) == HIDDEN_CASES
        assert document["extra_data"]["secrets_check"]["files_readable"] == 0
    finally:
        shutil.rmtree(root)


@pytest.mark.slow
def test_a_grader_that_is_not_root(tmp_path):
    """A student's self-check keeps working; a full grade with hidden fixtures is refused, and says why."""
    need_mode("namespace")
    place = _open_folder("cnn-grader-student-", owner=STUDENT_UID)
    try:
        env = _environment(HOME=str(place), MPLCONFIGDIR=str(place / ".matplotlib"))
        assert run_grade("handout", "-o", str(tmp_path / "handout.zip")).returncode == 0
        handout = place / "handout"
        with zipfile.ZipFile(tmp_path / "handout.zip") as bundle:
            bundle.extractall(handout)
        shutil.rmtree(handout / "lib")
        shutil.copytree(REFERENCE / "lib", handout / "lib")  # a student who solved it
        harness = _harness_copy(place)  # staff's checkout, hidden fixtures readable as usual
        sub = make_submission(place / "sub")
        _chown_tree(place, STUDENT_UID)

        check = _run([sys.executable, "grade.py", "check"], env, user=STUDENT_UID, reach=[place], cwd=handout)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "All public cases pass." in check.stdout
        assert _results(handout / "self_check")["extra_data"]["sandbox"] == "none"

        grade = [sys.executable, harness / "grade.py", "grade", sub]
        refused = _run([*grade, "--out", place / "out"], env, user=STUDENT_UID, reach=[place])
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert f"user id {STUDENT_UID}, not root" in refused.stderr and "--public-only" in refused.stderr
        assert "chmod" not in refused.stderr  # no use: the worker is the grader's own user
        assert not (place / "out").exists()

        public = _run([*grade, "--out", place / "public", "--public-only"], env, user=STUDENT_UID, reach=[place])
        assert public.returncode == 0, public.stderr
        assert _hidden_cases(_results(place / "public")) == 0
    finally:
        shutil.rmtree(place)

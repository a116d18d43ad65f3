"""`.ci/run`, the CI entry point: in CI nothing may be skipped for want of the machine.

The script runs for real, in a copy of the repository's layout, with the machine around it
stood in for by small executables on its PATH: apt-get (succeeds by installing the tools, or
fails as apt does), make and the venv's python (record how they were called, with the
environment the tests would get), id (root or not), sleep (instant).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from autograder import REPO_ROOT

_REAL = ("dirname", "mktemp", "tr", "tail", "rm", "cat")
_RECORD = ('echo "$(basename "$0") $* BROWSER=${CNN_GRADER_REQUIRE_BROWSER:-} '
           'PDFTOPPM=${CNN_GRADER_REQUIRE_PDFTOPPM:-} '
           'CONFINEMENT=${CNN_GRADER_REQUIRE_CONFINEMENT:-}" >> "$CALLS"')


def _executable(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run_ci(tmp_path: Path, *, tools: bool, apt: str = "install", uid: int = 0, ci: bool = True,
            sandbox_status: int = 0, lint_status: int = 0) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a copy of .ci/run; returns the run and the calls it made (make, python, apt-get)."""
    repo, bin_dir, calls = tmp_path / "repo", tmp_path / "bin", tmp_path / "calls"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / ".ci" / "run", repo / ".ci" / "run")
    bin_dir.mkdir()
    for name in _REAL:
        (bin_dir / name).symlink_to(shutil.which(name))
    _executable(bin_dir / "basename", 'echo "${1##*/}"')
    _executable(bin_dir / "id", f"echo {uid}")
    _executable(bin_dir / "sleep", "exit 0")
    if tools:
        _executable(bin_dir / "chromium", "exit 0")
        _executable(bin_dir / "pdftoppm", "exit 0")
    installs = (f'printf "#!/bin/sh\\n" > "{bin_dir}/chromium"; chmod +x "{bin_dir}/chromium"; '
                f'printf "#!/bin/sh\\n" > "{bin_dir}/pdftoppm"; chmod +x "{bin_dir}/pdftoppm"')
    _executable(bin_dir / "apt-get", _RECORD + "\n" + {
        "install": f'[ "$1" = install ] && {{ {installs}; }}; exit 0',
        "fail": 'echo "E: Unable to locate package chromium" >&2; [ "$1" = update ] || exit 100',
    }[apt])
    _executable(bin_dir / "make", f'{_RECORD}\n[ "$1" = lint ] && exit {lint_status}; exit 0')
    _executable(repo / ".venv" / "bin" / "python", f"{_RECORD}\nexit {sandbox_status}")
    env = {"PATH": str(bin_dir), "CALLS": str(calls), "HOME": str(tmp_path)}
    if ci:
        env["CI"] = "true"
    done = subprocess.run([shutil.which("bash"), str(repo / ".ci" / "run")], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_in_ci_the_tools_are_installed_and_every_gate_is_required(tmp_path):
    done, calls = _run_ci(tmp_path, tools=False)
    assert done.returncode == 0, done.stderr
    assert any(c.startswith("apt-get install -y -qq --no-install-recommends chromium poppler-utils") for c in calls)
    gated = "BROWSER=1 PDFTOPPM=1 CONFINEMENT=namespace"
    assert calls[-4:] == [f"make setup {gated}", f"python grade.py sandbox {gated}", f"make lint {gated}",
                          f"make test {gated}"]


def test_in_ci_a_tool_that_cannot_be_installed_fails_the_run_saying_why(tmp_path):
    done, calls = _run_ci(tmp_path, tools=False, apt="fail")
    assert done.returncode == 1
    assert "CI needs the Debian packages chromium poppler-utils" in done.stderr
    assert "E: Unable to locate package chromium" in done.stderr  # apt's own words
    assert not [c for c in calls if c.startswith(("make", "python"))]


def test_in_ci_a_weaker_confinement_fails_the_run_before_the_tests(tmp_path):
    done, calls = _run_ci(tmp_path, tools=True, sandbox_status=1)
    assert done.returncode == 1
    assert "cannot be confined in mode 'namespace'" in done.stderr
    assert not any(c.startswith("apt-get") for c in calls)  # nothing to install
    assert calls[-1].startswith("python grade.py sandbox") and not any(c.startswith("make test") for c in calls)


def test_outside_ci_a_missing_tool_is_a_note_and_nothing_is_required(tmp_path):
    done, calls = _run_ci(tmp_path, tools=False, uid=1000, ci=False)
    assert done.returncode == 0, done.stderr
    assert "note: missing chromium poppler-utils" in done.stderr
    assert calls == ["make setup BROWSER= PDFTOPPM= CONFINEMENT=", "make lint BROWSER= PDFTOPPM= CONFINEMENT=",
                     "make test BROWSER= PDFTOPPM= CONFINEMENT="]


def test_in_ci_not_as_root_the_confinement_is_not_required_and_that_is_said(tmp_path):
    done, calls = _run_ci(tmp_path, tools=True, uid=1000)
    assert done.returncode == 0, done.stderr
    assert "not running as root" in done.stderr
    assert calls[-1] == "make test BROWSER=1 PDFTOPPM=1 CONFINEMENT="


def test_lint_findings_fail_the_run_before_the_tests(tmp_path):
    done, calls = _run_ci(tmp_path, tools=True, lint_status=2)
    assert done.returncode == 2
    assert calls[-1].startswith("make lint") and not any(c.startswith("make test") for c in calls)

"""Which harness modules the handout ships, worked out from the code (fast; the slow test_handout.py
proves on the built zip that `check` and `pdf` load exactly these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.staff.handout import NEVER_SHIPPED, student_modules

STAFF = ("batch", "reports/class_report", "demo", "staff/gradescope", "staff/handout", "reports/manual",
         "staff/regions", "staff/reproducible_zip", "reports/similarity", "staff/synthetic", "staff/template",
         "staff/fixture_build", "notebook/trusted_eval", "reports/manual_sheet")


def test_the_student_commands_need_the_grader_and_no_staff_tool():
    modules = set(student_modules())
    assert {"autograder/cli.py", "autograder/grading.py", "autograder/notebook/pdf.py", "autograder/sandbox/worker.py",
            "autograder/checks/plugin.py", "autograder/checks/test_layers.py", "autograder/rubric.py"} <= modules
    assert not modules & {f"autograder/{name}.py" for name in STAFF}


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "autograder"
    for name, text in {"__init__.py": "", "sandbox/__init__.py": "", "sandbox/worker.py": "", "sandbox/zygote.py": "",
                       "checks/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_imports_at_import_time_are_followed_and_imports_in_functions_are_not(tmp_path):
    root = package(tmp_path, {
        "cli.py": "import os\nfrom autograder.a import thing\n\ndef staff():\n    from autograder import b\n",
        "a.py": "from autograder import c, d_missing\ntry:\n    import autograder.sub.e\n"
                "except ImportError:\n    pass\n",
        "b.py": "", "c.py": "", "sub/__init__.py": "", "sub/e.py": "",
        "checks/test_x.py": "from .helper import x\n", "checks/helper.py": "",
    })
    assert student_modules(root) == ["autograder/__init__.py", "autograder/a.py", "autograder/c.py",
                                     "autograder/checks/__init__.py", "autograder/checks/helper.py",
                                     "autograder/checks/test_x.py", "autograder/cli.py",
                                     "autograder/sandbox/__init__.py",
                                     "autograder/sandbox/worker.py", "autograder/sandbox/zygote.py",
                                     "autograder/sub/__init__.py", "autograder/sub/e.py"]


def test_a_module_that_must_never_ship_fails_the_build_when_imported_at_import_time(tmp_path):
    assert "autograder/notebook/trusted_eval.py" in NEVER_SHIPPED
    root = package(tmp_path, {"cli.py": "from autograder.notebook.trusted_eval import TrustedNet\n",
                              "notebook/__init__.py": "",
                                "notebook/trusted_eval.py": ""})
    with pytest.raises(RuntimeError, match="trusted_eval.py"):
        student_modules(root)

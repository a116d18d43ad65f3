"""Interpreters and fresh virtual environments for the tests that install what we ship.

What students and Gradescope get is tested the way they use it: a Python found on this machine,
a new virtual environment, our requirements file, and nothing from the developers' environment
(`clean_environment`). Installing takes a minute or more, so each environment is built once per
test session and shared by the tests, and by both xdist workers (`built_once`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INSTALL_TIMEOUT = 1800  # a fresh machine downloads every wheel from PyPI


def _reports_version(executable: str, version: str) -> bool:
    try:
        done = subprocess.run([executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def find_python(version: str) -> str | None:
    """An interpreter of `version` ("3.10"): $CNN_GRADER_PYTHON_3_10, else pyenv's (through `pyenv prefix`,
    else its versions folder), else python3.10 on the PATH; each candidate is run to see that it is that
    version (a pyenv shim for a version that is installed but not selected is on the PATH and fails)."""
    candidates = [os.environ.get("CNN_GRADER_PYTHON_" + version.replace(".", "_"), "")]
    if shutil.which("pyenv"):
        prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True, timeout=60)
        if prefix.returncode == 0:
            candidates += [str(Path(line.strip()) / "bin" / f"python{version}") for line in prefix.stdout.split(":")
                           if line.strip()]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")  # pyenv itself need not be on the PATH
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))[::-1]]
    candidates.append(shutil.which(f"python{version}") or "")
    return next((c.strip() for c in candidates if c.strip() and _reports_version(c.strip(), version)), None)


def python_or_skip(version: str) -> str:
    """`find_python`, or a skip that says what is missing; a failure in CI, which has them all."""
    found = find_python(version)
    if found is None:
        message = (f"no Python {version} on this machine (set CNN_GRADER_PYTHON_{version.replace('.', '_')} to one, "
                   f"or install it with pyenv)")
        if os.environ.get("CI") == "true" or os.environ.get("CNN_GRADER_REQUIRE_PYTHONS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def clean_environment(home: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing of ours: the system PATH (no developers' venv, no AUTOGRADER_PYTHON),
    a HOME of the test's own (made here), a UTF-8 locale; plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", **extra}


def install_environment(**extra: str) -> dict[str, str]:
    """`clean_environment` for pip: the real HOME, where pip finds this machine's own configuration
    (its package index mirror), as it would on a student's machine or as root on Gradescope."""
    return {"PATH": SYSTEM_PATH, "HOME": str(Path.home()), "LANG": "C.UTF-8", **extra}


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by every xdist worker of this test session."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if need be), across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]) -> Path:
    """The folder `name`, made by `build(folder)` once per session whichever worker asks first.

    `build` returns what it measured; that goes to `folder/build.json`. A build that failed is
    not retried by the other worker: its error is raised again."""
    folder = shared_folder(tmp_path_factory) / "shared" / name
    with locked(folder.with_name(name + ".lock")):
        done, failed = folder / "build.json", folder.with_name(name + ".failed")
        if failed.is_file():
            pytest.fail(f"building {name} failed earlier in this session:\n{failed.read_text()}")
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                measured = build(folder)
            except BaseException:
                failed.write_text(traceback.format_exc()[-4000:])
                raise
            done.write_text(json.dumps(measured, indent=1) + "\n")
    return folder


def run(command: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; with `check`, fail the test with its output when it exits non-zero."""
    done = subprocess.run([str(part) for part in command], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}")
    return done


def folder_megabytes(folder: Path) -> float:
    """What `du` would say, in MB (files only, hard links once)."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            status = path.stat()
            if (status.st_dev, status.st_ino) not in seen:
                seen.add((status.st_dev, status.st_ino))
                total += status.st_blocks * 512
    return round(total / 1e6, 1)


def make_venv(python: str, venv: Path, requirements: list[Path]) -> dict:
    """A new virtual environment at `venv` with `requirements` installed, as the README says; returns
    the Python, the install time and the size."""
    env = install_environment()
    started = time.monotonic()
    run([python, "-m", "venv", venv], env=env)
    arguments = [argument for file in requirements for argument in ("-r", file)]
    run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments],
        env=env, timeout=INSTALL_TIMEOUT)
    seconds = round(time.monotonic() - started, 1)
    version = run([venv / "bin" / "python", "-c", "import platform; print(platform.python_version())"], env=env)
    return {"python": python, "version": version.stdout.strip(), "install_seconds": seconds,
            "megabytes": folder_megabytes(venv)}


def installed(venv_python: Path, home: Path) -> dict[str, str]:
    """{canonical name: version} of what pip has installed in a venv, pip itself aside."""
    done = run([venv_python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
               env=clean_environment(home))
    return {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(done.stdout)
            if item["name"] not in ("pip", "setuptools", "wheel")}


def pins(requirements: Path, venv_python: Path, home: Path) -> dict[str, str]:
    """{canonical name: version} that `requirements` (and the files it includes) pins for the venv's
    Python, evaluated by that Python with the `packaging` the file itself installs."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from packaging.requirements import Requirement\n"
        "from packaging.utils import canonicalize_name\n"
        "def read(path):\n"
        "    for line in path.read_text().splitlines():\n"
        "        line = line.split('#')[0].strip()\n"
        "        if line.startswith('-r '):\n"
        "            yield from read(path.parent / line[3:].strip())\n"
        "        elif line:\n"
        "            yield Requirement(line)\n"
        "out = {}\n"
        "for req in read(Path(sys.argv[1])):\n"
        "    if req.marker is None or req.marker.evaluate():\n"
        "        spec = str(req.specifier)\n"
        "        assert spec.startswith('=='), f'{req}: not pinned'\n"
        "        out[canonicalize_name(req.name)] = spec[2:]\n"
        "print(json.dumps(out))\n")
    done = run([venv_python, "-c", script, requirements], env=clean_environment(home))
    return json.loads(done.stdout)

"""The class report as staff see it: opened in headless Chromium (Debian's `chromium` package).

A copy of the page gets a probe script that, once the page has loaded, writes what the browser
made of it (each image's decoded size, the rows of each table, where the links point) into an
attribute that `--dump-dom` prints. Without Chromium the test is skipped, unless
CNN_GRADER_REQUIRE_BROWSER is set (CI sets it, after installing Chromium), when it fails.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import zipfile

import pytest
from conftest import REFERENCE, TEMPLATE, need_tool, run_grade
from submissions import LAYERS, make_submission

pytestmark = pytest.mark.slow

_PROBE = """<script>
window.addEventListener("load", () => {
  const rows = id => document.querySelectorAll("#" + id + " tr").length - 1;
  document.body.setAttribute("data-probe", JSON.stringify({
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    students: document.querySelectorAll("#students tr.student").length,
    items: rows("items"), similar: rows("similar"),
    links: [...document.querySelectorAll("#students a")].map(a => a.getAttribute("href")),
  }));
});
</script>"""


def _chromium() -> str:
    return (shutil.which("chromium") or shutil.which("chromium-browser")
            or need_tool("chromium", "CNN_GRADER_REQUIRE_BROWSER", "chromium"))


def _run_chromium(browser: str, profile, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A small real batch: a reference, a disguised copy of it, a mutant, the template, a corrupt zip."""
    root = tmp_path_factory.mktemp("browser")
    folder = root / "submissions"
    make_submission(folder / "2001", source=REFERENCE)
    copy = make_submission(folder / "2002", source=REFERENCE)
    layers = copy / LAYERS
    layers.write_text(re.sub(r"\bwindows\b", "patches", layers.read_text()).replace("#", "# mine:"))
    make_submission(folder / "2003", [(LAYERS, "windows.max(axis=(4, 5))", "windows.mean(axis=(4, 5))")])
    make_submission(folder / "2004", source=TEMPLATE)
    (folder / "2005.zip").write_bytes(b"PK\x03\x04 cut short")
    out = root / "graded"
    done = run_grade("batch", str(folder), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    return out


def test_the_class_report_loads_in_chromium_with_its_figure_and_one_row_per_student(graded_class, tmp_path):
    browser = _chromium()
    page = (graded_class / "class_report.html").read_text(encoding="utf-8")
    probed = graded_class / "probed.html"  # beside the report, so its relative links resolve the same way
    probed.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    run = _run_chromium(browser, tmp_path / "profile", "--dump-dom", probed.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', run.stdout)
    assert found, f"the probe did not run; Chromium printed: {run.stdout[:500]}"
    probe = json.loads(html.unescape(found.group(1)))

    assert probe["students"] == 5
    assert probe["items"] == 9
    assert probe["images"] and all(complete and width >= 400 and height >= 200
                                   for complete, width, height in probe["images"])  # decoded, not a broken icon
    assert probe["similar"] >= 3  # reference, its disguised copy and the mutant: code, and their answers
    for link in probe["links"]:
        assert (graded_class / link).is_file(), link  # every student's feedback is where the page says


def test_the_class_report_screenshot_is_not_blank(graded_class, tmp_path):
    from PIL import Image

    browser = _chromium()
    shot = tmp_path / "report.png"
    run = _run_chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1500",
                        "--hide-scrollbars", (graded_class / "class_report.html").as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1100, 1500)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, table borders and the blue histogram bars


def test_the_gradebook_flags_both_sides_of_a_similar_pair(graded_class):
    book = (graded_class / "gradebook.csv").read_text(encoding="utf-8")
    line = {row.split(",")[0]: row for row in book.splitlines()[1:]}
    assert "similar code: 2002 (1.00)" in line["2001"] and "similar code: 2001 (1.00)" in line["2002"]
    assert "similar code" not in line["2004"]  # the untouched template has no code of its own
    pairs = json.loads((graded_class / "similarity.json").read_text(encoding="utf-8"))
    assert pairs == sorted(pairs, key=lambda pair: -pair["score"])
    assert {"kind": "code", "first": "2001", "second": "2002", "score": 1.0} in pairs
    assert not any("2004" in (pair["first"], pair["second"]) or "2005" in (pair["first"], pair["second"])
                   for pair in pairs)


def test_zipped_and_folder_submissions_fingerprint_alike(tmp_path):
    """A zip is unpacked for its fingerprint exactly as for grading."""
    folder = tmp_path / "in"
    make_submission(folder / "3001", source=REFERENCE)
    with zipfile.ZipFile(folder / "3002.zip", "w") as bundle:
        for path in sorted((REFERENCE / "lib").rglob("*.py")):
            bundle.write(path, "wrapper/" + path.relative_to(REFERENCE).as_posix())
    out = tmp_path / "out"
    assert run_grade("batch", str(folder), "--out", str(out), "--jobs", "2").returncode == 0
    first = json.loads((out / "3001" / "fingerprint.json").read_text())
    second = json.loads((out / "3002" / "fingerprint.json").read_text())
    assert first["code"] and first["code"] == second["code"]

"""problem_2_solution.pdf: made with reportlab, read back with pypdf, checked against the notebook."""

from __future__ import annotations

import json
import subprocess

import nbformat
import numpy as np
import pytest
from conftest import need_tool, run_grade
from notebooks import _image, official_notebook, png
from PIL import Image
from pypdf import PdfReader
from submissions import grade, make_submission

from autograder.notebook.pdf import SECTIONS

ANSWER = """### What I see

Most filters are **oriented edges**; some are *colour blobs*. Code: `conv1_w`, math: $\\alpha_i$.

- horizontal and vertical bars
- Ünïcödé ∑ α→β

1. first
2. second

```
print("a code block")
```"""


def write(notebook, folder, name="Problem_2.ipynb"):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(folder / name))
    return folder / name


def text_of(pdf):
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages)


def images_of(pdf):
    return [image.image for page in PdfReader(str(pdf)).pages for image in page.images]


def test_sections_in_order_answer_and_full_resolution_images(tmp_path):
    notebook = write(official_notebook(answer=ANSWER), tmp_path)
    done = run_grade("pdf", str(notebook), "--student", "4916525888")
    assert done.returncode == 0, done.stderr
    pdf = tmp_path / "problem_2_solution.pdf"
    text = text_of(pdf)
    positions = [text.index(" ".join(title.split())) for title in SECTIONS]
    assert positions == sorted(positions)
    for words in ("Problem 2: Incorporating CNNs", "4916525888", "Problem_2.ipynb", "What I see", "oriented edges",
                  "horizontal and vertical bars", "Ünïcödé", "α→β", r"$\alpha_i$", 'print("a code block")'):
        assert words in text, words
    images = images_of(pdf)
    assert [image.size for image in images] == [(60, 40), (60, 40)]  # embedded at full resolution
    assert text.index("oriented edges") > positions[2]


def test_several_images_per_section_and_a_long_answer(tmp_path):
    # 28 paragraphs of 61 words: long, and within the rubric's max_answer_chars (15,000)
    notebook = official_notebook(answer="\n\n".join(f"Paragraph {i}: " + "filters " * 60 for i in range(28)))
    notebook.cells[11].outputs += [_image(png(5, size=(300, 500))), _image(png(6))]
    pdf = tmp_path / "out.pdf"
    assert run_grade("pdf", str(write(notebook, tmp_path)), "-o", str(pdf)).returncode == 0
    reader = PdfReader(str(pdf))
    assert len(reader.pages) >= 4
    assert len(images_of(pdf)) == 4
    assert "Paragraph 27:" in text_of(pdf) and "was cut" not in text_of(pdf)


def test_missing_parts_are_framed_notes_and_errors(tmp_path):
    notebook = write(official_notebook(filter_png=None, answer=""), tmp_path)
    done = run_grade("pdf", str(notebook))
    assert done.returncode == 1
    assert "missing part: 2. Visualisation" in done.stderr and "missing part: 3. Inline question" in done.stderr
    text = text_of(tmp_path / "problem_2_solution.pdf")
    assert "no image output in the filter-visualisation cell" in text and "no answer found" in text
    assert run_grade("pdf", str(notebook), "--allow-missing").returncode == 0


def test_a_notebook_without_outputs_is_refused(tmp_path):
    notebook = write(official_notebook(accuracies=(), curve_png=None, filter_png=None), tmp_path)
    notebook_json = json.loads(notebook.read_text())
    for cell in notebook_json["cells"]:
        cell.pop("outputs", None) if cell["cell_type"] != "code" else cell.update(outputs=[])
    notebook.write_text(json.dumps(notebook_json))
    done = run_grade("pdf", str(notebook))
    assert done.returncode == 2 and "has no outputs at all" in done.stderr
    assert not (tmp_path / "problem_2_solution.pdf").exists()


def test_a_rendered_page_is_not_blank(tmp_path):
    need_tool("pdftoppm", "CNN_GRADER_REQUIRE_PDFTOPPM", "poppler-utils")
    notebook = write(official_notebook(answer=ANSWER), tmp_path)
    assert run_grade("pdf", str(notebook)).returncode == 0
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(tmp_path / "problem_2_solution.pdf"),
                    str(tmp_path / "page")], check=True)
    page = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"), dtype=np.float64)
    assert page.std() > 10 and (page < 128).mean() > 0.01


def _submission_with_pdf(tmp_path, pdf_notebook):
    """A submission whose notebook is the standard one and whose PDF is made from `pdf_notebook`."""
    sub = make_submission(tmp_path / "sub")
    write(official_notebook(), sub)
    source = write(pdf_notebook, tmp_path / "other")
    assert run_grade("pdf", str(source), "-o", str(sub / "problem_2_solution.pdf"), "--allow-missing").returncode == 0
    return sub


@pytest.mark.parametrize("pdf_notebook,expected", [
    (official_notebook(), {"same figure"}),
    (official_notebook(curve_png=None, filter_png=None), {"not found"}),
])
def test_pdf_consistency(tmp_path, pdf_notebook, expected):
    scores, result, out_dir = grade(_submission_with_pdf(tmp_path, pdf_notebook), tmp_path)
    document = json.loads((out_dir / "results.json").read_text())
    check = next(t for t in document["tests"] if t["tags"] == ["pdf_consistency"])
    assert set(check["extra_data"]["sections"].values()) == expected
    assert check["max_score"] == 0 and check["status"] == ("passed" if expected == {"same figure"} else "failed")
    assert (out_dir / "problem_2_solution.pdf").is_file()  # the staff's own copy, made from the notebook


def test_a_pdf_from_another_notebook_is_flagged(tmp_path):
    other = official_notebook()
    other.cells[11].outputs = [_image(png(101))]
    other.cells[13].outputs = [_image(png(102))]
    scores, result, out_dir = grade(_submission_with_pdf(tmp_path, other), tmp_path)
    check = result.pdf_checks[0]
    assert check.sections == {SECTIONS[0]: "different figure", SECTIONS[1]: "different figure"} and not check.consistent
    assert "**different figure**" in (out_dir / "feedback.md").read_text()

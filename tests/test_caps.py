"""The caps on what a notebook or a submitted PDF may make the grader read ([intake] max_answer_chars and
max_image_pixels): a huge answer is cut, a huge image is left out before it is decoded, and grading completes
with notes and flags that say so. The huge images are real PNGs (and a real PDF) of one flat colour, which
compress to a few kilobytes, so the tests stay cheap."""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import zlib

import nbformat
import pytest
from grey_pdfs import grey_images_pdf
from notebooks import _image, official_notebook, png
from PIL import Image
from pypdf import PdfReader
from submissions import grade, make_submission

from autograder.batch import _flags
from autograder.notebook.pdf import build_pdf, chunks
from autograder.notebook.pdf_check import compare, pdf_images
from autograder.notebook.reading import Findings, extract, image_size, oversized
from autograder.reports.manual_sheet import build_manual_sheet
from autograder.rubric import load_rubric

CAP = load_rubric().intake


def flat_png(width: int, height: int) -> bytes:
    """A real grey-scale PNG of one colour, written row by row: never the whole image in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width  # filter byte "none", then mid-grey
    rows_at_once = max(1, (1 << 22) // len(row))
    body = b"".join(packer.compress(row * min(rows_at_once, height - start))
                    for start in range(0, height, rows_at_once)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_image_size_reads_the_header_only():
    huge = flat_png(12000, 10000)
    assert len(huge) < 1 << 20  # what makes the test cheap: it decodes to 120 MB
    assert image_size(huge) == (12000, 10000)
    assert oversized(huge, CAP.max_image_pixels) == "12000 x 10000 pixels (120 MP)"
    assert oversized(base64.b64decode(png(1)), CAP.max_image_pixels) == ""
    assert image_size(b"not an image") is None


def test_pillows_own_bomb_refusal_reads_as_over_the_cap():
    """A format without a PNG header goes through Pillow's lazy open, which refuses a bomb outright."""
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="BMP")
    header = bytearray(buffer.getvalue())
    header[18:26] = struct.pack("<ii", 20000, 20000)  # a 400 MP claim, above Pillow's 2 x MAX_IMAGE_PIXELS
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bytes(header)))
    assert oversized(bytes(header), CAP.max_image_pixels)


def test_extract_cuts_the_answer_and_leaves_out_huge_images(tmp_path):
    notebook = official_notebook(answer="Edges and colour blobs. " * 2000)  # 48,000 characters
    notebook.cells[13].outputs = [_image(b64(flat_png(8000, 5000))), _image(png(7))]
    found = extract(notebook, tmp_path / "Problem_2.ipynb")
    assert len(found.answer) <= CAP.max_answer_chars and found.answer.startswith("Edges and colour blobs.")
    assert found.answer_cut and found.answer_chars == len(("Edges and colour blobs. " * 2000).strip())
    assert found.filter_images == [base64.b64decode(png(7))]
    [note] = found.left_out_notes("filters")
    assert "8000 x 5000 pixels (40 MP)" in note and "lower dpi" in note and "cell 13" in note
    short = extract(official_notebook(answer="Edges."), tmp_path / "Problem_2.ipynb")
    assert short.answer == "Edges." and not short.answer_cut and not short.left_out


def test_grading_completes_with_the_cuts_noted_and_flagged(tmp_path):
    sub = make_submission(tmp_path / "sub")
    notebook = official_notebook(answer="Edges and colour blobs. " * 40000)  # about 1 MB
    notebook.cells[13].outputs = [_image(b64(flat_png(12000, 10000)))]
    nbformat.write(notebook, str(sub / "Problem_2.ipynb"))
    scores, result, out_dir = grade(sub, tmp_path)
    answer = scores["inline_answer"]
    assert len(answer.extra["answer"]) <= CAP.max_answer_chars and answer.extra["answer_chars"] > 900_000
    assert f"cut at {CAP.max_answer_chars:,} characters" in answer.note and "in the notebook" in answer.note
    filters = scores["filters"]
    assert filters.score == 0 and "12000 x 10000 pixels (120 MP)" in filters.note and "lower dpi" in filters.note
    document = json.loads((out_dir / "results.json").read_text())
    assert len(json.dumps(document)) < 200_000  # the answer is stored cut, not 1 MB twice
    flags = _flags(document)
    assert "answer cut" in flags and "image too large" in flags
    pdf_text = " ".join(page.extract_text() for page in PdfReader(str(out_dir / "problem_2_solution.pdf")).pages)
    assert "was cut" in pdf_text and "lower dpi" in " ".join(pdf_text.split())
    # staff grading from the sheet are told they read a part, and where the whole is
    class_dir = tmp_path / "class"
    shutil.copytree(out_dir, class_dir / "9001")
    (class_dir / "gradebook.csv").write_text("student_id,total,status,flags\n9001,0,graded,answer cut\n")
    sheet = build_manual_sheet(class_dir).read_text(encoding="utf-8")
    assert f"cut at {CAP.max_answer_chars:,} of its {answer.extra['answer_chars']:,} characters" in sheet
    assert f"words (of its first {CAP.max_answer_chars:,} characters)" in sheet


def test_long_paragraphs_go_to_reportlab_in_pieces(tmp_path):
    text = "Edges and colour blobs, seen at every angle. " * 1000 + "x" * 5000
    pieces = chunks(text)
    assert "".join(pieces) == text and all(len(piece) <= 2000 for piece in pieces)
    assert all(piece.endswith(". ") for piece in pieces[:-4])  # after a sentence while there are sentences
    notebook = tmp_path / "Problem_2.ipynb"
    notebook.write_text("{}")
    made = build_pdf(Findings(notebook), text, tmp_path / "out.pdf")  # uncut: the PDF's own robustness
    words = " ".join(page.extract_text() for page in PdfReader(str(made.path)).pages).split()
    assert made.pages > 10 and words.count("blobs,") == 1000




def test_a_submitted_pdfs_huge_image_is_left_out_undecoded(tmp_path):
    pdf = grey_images_pdf(tmp_path / "problem_2_solution.pdf", [(60, 40), (12000, 10000)])
    left_out: list[str] = []
    images = pdf_images(pdf, CAP.max_image_pixels, left_out)
    assert [image.size for image in images] == [(60, 40)]
    assert left_out == [f"image 2 of the PDF (page 2) is 12000 x 10000 pixels (120 MP), over the "
                        f"{CAP.max_image_pixels / 1e6:g} MP the grader reads: too large to read; it was not compared"]
    check = compare(pdf, {"curves": [base64.b64decode(png(3))]}, CAP.max_image_pixels)
    # its one image is flat grey: blank, too little to judge
    assert not check.problem and check.left_out == left_out and check.sections == {"curves": "could not tell"}

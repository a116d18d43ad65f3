"""A student's images are read only as the format they claim, within the pixel cap, decoded whole; a
damaged or mislabelled one is left out with a note, never an exception; nothing reaches Ghostscript.
And the PDF's Markdown comes from a parser, so crossed emphasis cannot make reportlab raise."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pytest
from notebooks import _image, official_notebook, png
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject
from submissions import CODE_ITEMS, grade, make_submission

from autograder.grading import HarnessError, grade_submission
from autograder.model import ReasonCode
from autograder.notebook.images import ImageRefused, as_png, open_image
from autograder.notebook.items import NOTEBOOK_IMAGE
from autograder.notebook.pdf import build_pdf, inline_markup
from autograder.notebook.pdf_check import compare
from autograder.notebook.reading import Findings, extract
from autograder.rubric import load_rubric

CAP = load_rubric().intake.max_image_pixels
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\n"
       b"10 50 moveto (x) show showpage\n%%EOF\n")
PNG = base64.b64decode(png(3))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_eps_is_never_read_as_an_image():
    with pytest.raises(ImageRefused, match="not a PNG image"):
        open_image(EPS, ("PNG",), CAP)
    assert "EPS" not in Image.OPEN  # removed for every library in the grader's process (reportlab, pypdf)
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(EPS))
    with pytest.raises(ValueError):
        open_image(EPS, ("EPS",), CAP)


def test_truncated_oversized_and_mislabelled_images_are_refused_with_why():
    with pytest.raises(ImageRefused, match="damaged PNG"):
        open_image(PNG[:len(PNG) // 2], ("PNG",), CAP)
    with pytest.raises(ImageRefused, match="100 x 100 pixels, over"):
        open_image(base64.b64decode(png(1, size=(100, 100))), ("PNG",), 5000)
    with pytest.raises(ImageRefused, match="not a PNG image"):
        open_image(_jpeg(), ("PNG",), CAP)
    assert open_image(PNG, ("PNG",), CAP).size == (60, 40)


def test_a_jpeg_figure_is_read_and_handed_on_as_a_png():
    converted = as_png(_jpeg(), ("JPEG",), CAP)
    assert converted.startswith(b"\x89PNG") and Image.open(io.BytesIO(converted)).size == (30, 20)
    assert as_png(PNG, ("PNG",), CAP) == PNG


def test_extract_leaves_out_damaged_images_with_a_note_naming_the_cell(tmp_path):
    book = official_notebook()
    book.cells[13].outputs = [_image(base64.b64encode(EPS).decode()), _image(png(7))]
    book.cells[11].outputs = [_image(base64.b64encode(PNG[:200]).decode()),
                              nbformat.v4.new_output("display_data", data={"image/jpeg": base64.b64encode(
                                  _jpeg()).decode()})]
    found = extract(book, tmp_path / "Problem_2.ipynb")
    assert found.filter_images == [base64.b64decode(png(7))]
    [eps] = found.left_out_notes("filters")
    assert "cell 13" in eps and "not a PNG image" in eps
    [truncated] = found.left_out_notes("curves")
    assert "cell 11" in truncated and "damaged PNG" in truncated
    assert len(found.curve_images) == 1 and found.curve_images[0].startswith(b"\x89PNG")  # the JPEG, as a PNG


def _pdf_with_a_jpeg_stream(path, data: bytes):
    """A real PDF whose one image XObject claims /DCTDecode (JPEG) and holds `data`."""
    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    image = StreamObject()
    image._data = data
    image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                  NameObject("/Width"): NumberObject(100), NameObject("/Height"): NumberObject(100),
                  NameObject("/ColorSpace"): NameObject("/DeviceRGB"), NameObject("/BitsPerComponent"): NumberObject(8),
                  NameObject("/Filter"): NameObject("/DCTDecode")})
    content = DecodedStreamObject()
    content.set_data(b"q 200 0 0 200 0 0 cm /Im0 Do Q")
    page[NameObject("/Resources")] = writer._add_object(DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})}))
    page[NameObject("/Contents")] = writer._add_object(content)
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def test_a_submitted_pdf_with_eps_in_an_image_stream_is_compared_without_it(tmp_path):
    pdf = _pdf_with_a_jpeg_stream(tmp_path / "theirs.pdf", EPS)
    check = compare(pdf, {"curves": [PNG]}, CAP)
    # the image is not decoded (no EPS reader): named as such, a look for staff, never "no image at all"
    assert (check.sections == {"curves": "could not tell"} and "could not be decoded" in check.evidence["curves"].note
            or check.problem), check


def test_crossed_emphasis_is_rendered_with_balanced_tags_and_the_words_kept(tmp_path):
    crossed = "**edge detectors *(vertical** and horizontal)*"
    markup = inline_markup(crossed)
    assert markup.count("<i>") == markup.count("</i>") and markup.count("<b>") == markup.count("</b>")
    expected = 'a &lt;b&gt;x&lt;/b&gt; &amp; <font name="DejaVuMono">c&lt;d&gt;</font>'
    assert inline_markup("a <b>x</b> & `c<d>`") == expected  # raw HTML is text
    notebook = tmp_path / "Problem_2.ipynb"
    notebook.write_text("{}")
    answer = f"{crossed}\n\n- a\n  - nested *item*\n- b\n\n3. three\n4. four\n\n> quoted\n\n```\nx < 1\n```\n"
    made = build_pdf(Findings(notebook, filter_images=[EPS]), answer, tmp_path / "out.pdf")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(made.path)).pages)
    for words in ("edge detectors", "(vertical and horizontal)", "nested item", "three", "quoted", "x < 1"):
        assert words in text, words
    assert not made.fallback
    assert any("image 1 was left out" in message and "not a PNG image" in message for message in made.missing)


def test_a_pdf_that_cannot_be_written_costs_no_item_anything(tmp_path):
    sub = make_submission(tmp_path / "sub")
    nbformat.write(official_notebook(), str(sub / "Problem_2.ipynb"))
    honest, _, _ = grade(sub, tmp_path / "honest")
    out = tmp_path / "out"
    (out / load_rubric().assignment.pdf).mkdir(parents=True)  # reportlab cannot write where a folder is
    result, out_dir = grade_submission(sub, out)
    scores = {item.item.id: item for item in result.items}
    assert {k: s.score for k, s in scores.items()} == {k: s.score for k, s in honest.items()}
    assert not [k for k, s in scores.items() if s.code == ReasonCode.HARNESS_FAULT]
    assert any("staff's copy of the PDF could not be made" in note for note in result.notes), result.notes
    assert (out_dir / "pdf_error.txt").is_file()


def test_a_fault_in_one_notebook_item_leaves_the_others_their_points(tmp_path):
    sub = make_submission(tmp_path / "sub")
    nbformat.write(official_notebook(), str(sub / "Problem_2.ipynb"))
    out = tmp_path / "out"
    (out / NOTEBOOK_IMAGE).mkdir(parents=True)  # the filters item cannot write its image: a fault of ours
    with pytest.raises(HarnessError):
        grade_submission(sub, out)
    results = json.loads((out / "results.json").read_text())
    by_item: dict[str, list[dict]] = {}
    for test in results["tests"]:
        by_item.setdefault(test["tags"][0], []).append(test)
    assert [t["extra_data"]["reason_code"] for t in by_item["filters"]] == ["harness_fault"]
    assert sum(t["score"] for t in by_item["training"]) == 25
    assert sum(t["score"] for item in CODE_ITEMS for t in by_item[item]) == 25

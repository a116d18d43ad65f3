"""Notebooks made by the tests, shaped like the official handout's (no tags) or like ours; the official
handout itself; a slightly broken PDF."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image
from reportlab.pdfgen import canvas


def png(seed: int = 0, blank: bool = False, size: tuple[int, int] = (40, 60)) -> str:
    """A base64 PNG: random colours, or one flat colour when blank."""
    rng = np.random.default_rng(seed)
    pixels = np.full(size + (3,), 200, np.uint8) if blank else rng.integers(0, 256, size + (3,), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def epoch_log(accuracies: list[float], percent: bool = False) -> str:
    lines = []
    for index, accuracy in enumerate(accuracies, start=1):
        value = f"{accuracy * 100:.2f}%" if percent else repr(accuracy)
        lines.append(f"(Iteration {index * 100} / 1000) loss: 1.0")
        lines.append(f"(Epoch {index} / {len(accuracies)}) Training Accuracy: 0.5, Validation Accuracy: {value}")
    return "\n".join(lines) + "\n"


def _stream(text: str):
    return new_output("stream", name="stdout", text=text)


def _image(data: str):
    return new_output("display_data", data={"image/png": data, "text/plain": "<Figure>"})


def official_notebook(accuracies=(0.7, 0.86, 0.891, 0.885), percent=False, answer="They look like edges.",
                      curve_png: str | None = "curve", filter_png: str | None = "filter",
                      filter_source='filters = model.net.get_params("conv1_w")\nim_array = filters[:, :, :, 0]\n'
                                    'plt.imshow(im_array)',
                      extra_cells: bool = False, error_in_checks: bool = False) -> nbformat.NotebookNode:
    """The official 2022 layout: no tags, headings and content only."""
    cells = [
        new_markdown_cell("# Problem 2: Incorporating CNNs"),
        new_code_cell("from lib.mlp.fully_conn import *\nimport numpy as np"),
        new_markdown_cell("## Loading the data (SVHN)"),
        new_code_cell("!./get_datasets.sh"),
        new_code_cell("data = SVHN_data()"),
        new_markdown_cell("### Convolutional Layer Output size calculation [2pts]"),
        new_code_cell("print(1)", outputs=[_stream("Received [32, 16, 16, 16] and expected [32, 16, 16, 16]\n")]),
        new_markdown_cell("### Training the Network [25pts]"),
        new_code_cell("data_dict = {}"),
        new_code_cell("results = train_net(data_dict, model, loss_f, optimizer, batch_size, epochs,\n"
                      "                    lr_decay, lr_decay_every, show_every=100, verbose=True)",
                      outputs=[_stream(epoch_log(list(accuracies), percent))] if accuracies else []),
        new_markdown_cell("Run the code below to generate the training plots."),
        new_code_cell("plt.subplot(2, 1, 1)\nplt.title('Training loss')\nplt.plot(loss_hist)\nplt.show()",
                      outputs=[_image(png(1))] if curve_png else []),
        new_markdown_cell("### Visualizing Layers [5pts]"),
        new_code_cell("im_array = None\nnrows, ncols = None, None\n" + filter_source,
                      outputs=[_image(png(2, blank=filter_png == "blank"))] if filter_png else []),
        new_markdown_cell("#### Inline Question: Comment below on what kinds of filters you see. [5pts]"),
        new_markdown_cell(answer),
        new_markdown_cell("# Submission\nHand in the PDF."),
        new_code_cell(""),
    ]
    if error_in_checks:
        cells[6].outputs = [new_output("error", ename="AssertionError", evalue="Your implementation might be wrong!",
                                       traceback=[])]
    if extra_cells:  # students insert scratch cells and delete others
        cells.insert(10, new_code_cell("print('my own accuracy check')\nprint(compute_acc(model, X, y))",
                                       outputs=[_stream("my own accuracy check\nValidation accuracy: 0.9\n")]))
        cells.insert(8, new_markdown_cell("Some notes of mine."))
        del cells[3]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


# The official 2023 handout's tail, after the filter cell (INTERFACE.md section 13): the Inline Question
# heading, then a new "Extra-Credit" cell, then the empty answer cell, then the Submission section.
INLINE_QUESTION = ("#### Inline Question: Comment below on what kinds of filters you see. Include your response in "
                   "your submission [5pts]")
EXTRA_CREDIT = (
    "#### Extra-Credit: Analysis on Trained Model [5pts]\n"
    "\n"
    "For extra credit, analyse the model you trained. Some suggestions:\n"
    "- plot the confusion matrix of the validation set and name the classes it confuses most,\n"
    "- show validation images it misclassifies and explain what they have in common,\n"
    "- compare the first layer's filters at the start and at the end of training.\n"
    "\n"
    "Write your analysis in the cell below, after your answer to the inline question, and include it with its "
    "plots in your submission.")
SUBMISSION = (
    "## **Submission**\n"
    "\n"
    "Please prepare a PDF document problem\\_2\\_solution.pdf in the root directory of this repository with all "
    "plots and inline answers of your solution. Concretely, the document should contain the following items in "
    "strict order:\n"
    "\n"
    "1. Training loss / accuracy curves for CNN training\n"
    "2. Visualization of convolutional filters\n"
    "3. Answers to inline questions about convolutional filters\n"
    "\n"
    "Note that you still need to submit the jupyter notebook with all generated solutions. We will randomly pick "
    "submissions and check that the plots in the PDF and in the notebook are equivalent.")


def official_2023_notebook(answer: str = "", extra_credit: str = EXTRA_CREDIT, handout: bool = False,
                           **kwargs) -> nbformat.NotebookNode:
    """The official 2023 layout of the question: heading, Extra-Credit cell, answer cell, Submission.
    `handout`: the notebook as the class received it (no outputs, the answer cell empty)."""
    if handout:
        kwargs.update(accuracies=(), curve_png=None, filter_png=None)
    notebook = official_notebook(answer=answer, **kwargs)
    question = next(i for i, cell in enumerate(notebook.cells) if "Inline Question" in cell.source)
    notebook.cells[question:] = [new_markdown_cell(INLINE_QUESTION), new_markdown_cell(extra_credit),
                                 new_markdown_cell(answer), new_markdown_cell(SUBMISSION), new_code_cell("")]
    return notebook


def official_handout(folder: Path, template: Path) -> Path:
    """An unsolved handout shaped like the official one: our template's lib/, plus the copy of the
    `sequential` class that the official lib/cnn/layer_utils.py keeps (ours imports it instead), and
    the 2023-shaped notebook. Its own skeleton lines differ from our template's, as the real one's do."""
    shutil.copytree(template / "lib", folder / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    mlp = (template / "lib" / "mlp" / "layer_utils.py").read_text()
    sequential = mlp[mlp.index("class sequential"):mlp.index("class flatten")]
    layers = folder / "lib" / "cnn" / "layer_utils.py"
    layers.write_text(layers.read_text() + "\n\n" + sequential)
    nbformat.write(official_2023_notebook(handout=True), str(folder / "Problem_2.ipynb"))
    return folder


def broken_pdf(path):
    """A PDF that pypdf reads, after logging "Ignoring wrong pointing object": the offset of its last
    object in the cross-reference table points at the file's header."""
    page = canvas.Canvas(str(path))
    page.drawString(100, 700, "problem 2 solution")
    page.showPage()
    page.save()
    data = path.read_bytes()
    table = data.index(b"\nxref\n")
    last = list(re.finditer(rb"(\d{10}) 00000 n", data[table:]))[-1]
    start, end = table + last.start(1), table + last.end(1)
    path.write_bytes(data[:start] + b"0" * 10 + data[end:])
    return path

"""Submissions of a student who wants the training points without the work, and honest ones.

Each builder writes a complete submission folder (a copy of the reference with planted changes, a
notebook shaped like the official handout's, and optionally svhn_cnn_params.npz). Builders depend
only on the reference solution, nbformat and NumPy, never on the grader's new code, so the same
attacks can be graded by any version of the harness.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import nbformat
import numpy as np
from conftest import REFERENCE
from notebooks import official_notebook
from submissions import MODELS, make_submission

from autograder.staff.lib_loader import imported_lib

#: The copied-class trick: a third convolution that `isinstance` does not see.
COPIED_CLASS_THIRD_CONV = (
    MODELS, 'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),',
    'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),\n'
    '            type("Conv", (object,), dict(ConvLayer2D.__dict__))(32, 1, 32, name="conv3"),')

#: A container layer that holds a convolution in a list: three in all.
CONTAINER_THIRD_CONV = (
    MODELS, 'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),',
    'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),\n'
    '            Block([ConvLayer2D(32, 1, 32, name="conv3"), leaky_relu(name="relu_b")]),')
BLOCK_CLASS = '''
class Block(object):
    """Layers applied in order, presented as one layer."""

    def __init__(self, parts):
        self.parts = parts
        self.name = "block"
        self.params = {}
        self.grads = {}
        for part in parts:
            self.params.update(part.params)

    def forward(self, x):
        for part in self.parts:
            x = part.forward(x)
        return x
'''

#: Remember the input images, then overwrite the scores with labels recalled by the image's hash.
ORACLE_LAYERS = '''
import hashlib as _hashlib
from lib.cnn._answers import ANSWERS as _ANSWERS


class Remember(object):
    seen = None

    def __init__(self, name="remember"):
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, x):
        Remember.seen = [_hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in x]
        return x


class Recall(object):
    def __init__(self, name="recall"):
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, scores):
        out = scores * 3.0
        for row, key in enumerate(Remember.seen or []):
            if key in _ANSWERS:
                out[row] = 0.0
                out[row, _ANSWERS[key]] = 1.0
        return out
'''
ORACLE_NET = (MODELS, 'ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),',
              'Remember(),\n            ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),')
ORACLE_END = (MODELS, 'fc(100, 10, init_scale=0.14, name="fc2"),', 'fc(100, 10, init_scale=0.14, name="fc2"),\n'
              '            Recall(),')

#: The same network with the model's own forward answering from the table instead.
ORACLE_FORWARD = '''
import hashlib as _hashlib
from lib.cnn._answers import ANSWERS as _ANSWERS

_honest_forward = SmallConvolutionalNetwork.forward


def _oracle_forward(self, feat, is_training=True, seed=None):
    scores = np.array(_honest_forward(self, feat, is_training, seed))
    for row, image in enumerate(feat):
        key = _hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
        if key in _ANSWERS:
            scores[row] = 0.0
            scores[row, _ANSWERS[key]] = 1.0
    return scores


SmallConvolutionalNetwork.forward = _oracle_forward
'''

#: A layer the grader cannot rebuild but which changes no prediction: scores times three.
SCALE_LAYER = '''
class Scale(object):
    def __init__(self, name="scale"):
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, scores):
        return scores * 3.0
'''
SCALE_END = (MODELS, 'fc(100, 10, init_scale=0.14, name="fc2"),', 'fc(100, 10, init_scale=0.14, name="fc2"),\n'
             '            Scale(),')

#: A network whose first convolution has 8 filters instead of 16 (same names, other shapes).
NARROW_CONV1 = [(MODELS, 'ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),',
                 'ConvLayer2D(3, 3, 8, stride=1, padding=1, init_scale=0.27, name="conv1"),'),
                (MODELS, 'ConvLayer2D(16, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),',
                 'ConvLayer2D(8, 3, 32, stride=2, padding=0, init_scale=0.12, name="conv2"),')]


def handout_split(data_dir: Path, validation_rows: int) -> dict[str, np.ndarray]:
    """The split exactly as a student's run of the handout's own loader makes it (the reference's
    SVHN_data, reading ./data), with the last `validation_rows` rows as validation."""
    rows = _rows(data_dir)
    with imported_lib(REFERENCE) as lib, _inside(data_dir.parent):
        return lib.datasets.SVHN_data(num_training=rows - validation_rows, num_validation=validation_rows)


def _rows(data_dir: Path) -> int:
    import scipy.io
    return int(scipy.io.loadmat(str(data_dir / "train_32x32.mat"))["y"].size)


@contextlib.contextmanager
def _inside(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def reference_scores(params: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """The reference network's own (float64) scores with these parameters."""
    with imported_lib(REFERENCE) as lib:
        np.random.seed(123)
        model = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)
        for name, value in params.items():
            model.net.assign(name, value)
        return np.concatenate([model.forward(images[i:i + 250], False) for i in range(0, len(images), 250)])


def untrained_weights(seed: int = 5) -> dict[str, np.ndarray]:
    with imported_lib(REFERENCE) as lib:
        np.random.seed(seed)
        network = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)  # as the handout's layers draw them
        return {k: np.array(v) for k, v in network.net.params.items()}


def ridge_weights(images: np.ndarray, labels: np.ndarray, ridge: float = 10.0) -> dict[str, np.ndarray]:
    """Weights of the reference architecture trained quickly: random convolutions, and fc1 fitted by
    ridge regression to one-hot labels (units 0-9), passed through by fc2. Fitted on `images` only."""
    params = untrained_weights()
    with imported_lib(REFERENCE) as lib:
        np.random.seed(123)
        model = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)
        for name, value in params.items():
            model.net.assign(name, value)
        features = []
        for start in range(0, len(images), 250):
            out = images[start:start + 250]
            for layer in model.net.layers[:6]:  # up to and including flatten
                out = layer.forward(out)
            features.append(out)
    features = np.concatenate(features)
    design = np.c_[features, np.ones(len(features))]
    solution = np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]), design.T @ np.eye(10)[labels])
    params["fc1_w"] = np.zeros((1568, 100))
    params["fc1_b"] = np.zeros(100)
    params["fc1_w"][:, :10], params["fc1_b"][:10] = solution[:-1], solution[-1]
    params["fc2_w"] = np.zeros((100, 10))
    params["fc2_w"][np.arange(10), np.arange(10)] = 1.0  # leaky ReLU is monotonic: the argmax survives
    params["fc2_b"] = np.zeros(10)
    return params


def notebook(accuracies=(0.9, 0.95), parameters: dict[str, int] | None = None, later_print: str | None = None):
    """The official layout with a training log; optionally a parameters cell and a later printout."""
    book = official_notebook(accuracies=accuracies)
    if parameters is not None:
        cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v}" for k, v in parameters.items()))
        cell.metadata["tags"] = ["parameters"]  # as our template tags it, so that any grader finds it
        book.cells.insert(1, cell)
    if later_print is not None:
        index = next(i for i, c in enumerate(book.cells) if "train_net(" in c.source) + 1
        book.cells.insert(index, nbformat.v4.new_code_cell(
            "print('validation accuracy:', compute_acc(model, X_val, y_val))",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=later_print)]))
    return book


def build(folder: Path, changes=(), append: dict[str, str] | None = None, book=None,
          weights: dict[str, np.ndarray] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """A submission folder: the reference with `changes`, the notebook and the weights."""
    make_submission(folder, list(changes), append)
    for relative, text in (extra_files or {}).items():
        (folder / relative).write_text(text)
    nbformat.write(book if book is not None else notebook(), str(folder / "Problem_2.ipynb"))
    if weights is not None:
        np.savez(folder / "svhn_cnn_params.npz", **weights)
    return folder


def answers_module(images: np.ndarray, labels: np.ndarray) -> str:
    """lib/cnn/_answers.py: image hash -> label, as a student could build from the public files."""
    import hashlib
    table = {hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(): int(label)
             for image, label in zip(images, labels)}
    buffer = io.StringIO()
    buffer.write("ANSWERS = {\n")
    for key, label in table.items():
        buffer.write(f"    {key!r}: {label},\n")
    buffer.write("}\n")
    return buffer.getvalue()


def forged_header_npz(path: Path, params: dict[str, np.ndarray], name: str | tuple[str, ...] = "fc1_w",
                      shape: tuple[int, ...] = (1 << 28,)) -> Path:
    """An .npz of a few MB whose member `name` (or each of several) declares a (by default 2 GiB) float64
    array: written by hand, an .npy header then zeros deflated as they are streamed, so the builder never
    holds the array. The other members are `params` as np.savez writes them."""
    import zipfile

    from numpy.lib import format as npy_format

    forged = (name,) if isinstance(name, str) else tuple(name)
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    size = int(np.prod(shape)) * 8
    zeros = bytes(1 << 22)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for other, value in params.items():
            if other not in forged:
                with archive.open(f"{other}.npy", "w", force_zip64=True) as member:
                    npy_format.write_array(member, np.asarray(value), allow_pickle=False)
        for one in forged:
            with archive.open(f"{one}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                for start in range(0, size, len(zeros)):
                    member.write(zeros[:min(len(zeros), size - start)])
    return path

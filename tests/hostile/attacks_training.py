"""Round-three attacks on the training and filters items (issue 20's mechanisms A, B and C as they
touch training): see attacks.py for what an attack is.

Each builds on the reference solution (tests/gaming.py's builders) with the context's small synthetic
SVHN; expected accuracies are computed here independently of the grader, with the reference network's
own float64 forward on the split the handout's loader makes (gaming.handout_split), and the course's
formula written out (`formula`).
"""

from __future__ import annotations

import base64
from pathlib import Path

import filter_renderings as draw
import nbformat
import numpy as np
from attacks import Attack, Context, item, outputs, points
from gaming import build, forged_header_npz, notebook, reference_scores, untrained_weights
from submissions import MODELS


def formula(accuracy: float) -> float:
    """The course's announced credit: 25 * clip((acc - 0.10) / (0.88 - 0.10), 0, 1)."""
    return 25 * float(np.clip((accuracy - 0.10) / (0.88 - 0.10), 0, 1))


def accuracy(params: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(reference_scores(params, images), axis=1) == labels))


def training_extra(results: dict) -> dict:
    [test] = item(results, "training")
    return test.get("extra_data", {})


def filters_extra(results: dict) -> dict:
    [test] = item(results, "filters")
    return test.get("extra_data", {})


# --- A: a third convolution whose kernel sits in a list attribute ---------------------------------------

LIST_CONV = '''
class ListConv(object):
    """A 3x3 'same' convolution, 32 -> 32 channels, whose kernel sits in a list attribute: no params, no
    array attribute, so nothing it holds says 'convolution'."""

    def __init__(self, plain_floats=False, name="mixer"):
        kernel = np.random.RandomState(7).randn(3, 3, 32, 32) * 0.05
        kernel[1, 1] += np.eye(32)  # mostly the identity: the honest weights still work through it
        self.kernels = [kernel.tolist() if plain_floats else kernel]
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, x):
        kernel = np.asarray(self.kernels[0])
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = np.zeros(x.shape[:3] + (kernel.shape[3],), dtype=x.dtype)
        for u in range(3):
            for v in range(3):
                out += padded[:, u:u + x.shape[1], v:v + x.shape[2], :] @ kernel[u, v]
        return out
'''


def _third_conv(plain_floats: bool):
    def build_it(folder: Path, context: Context) -> Path:
        change = (MODELS, 'leaky_relu(name="relu2"),',
                  f'leaky_relu(name="relu2"),\n            ListConv(plain_floats={plain_floats}),')
        return build(folder, [change], append={MODELS: LIST_CONV}, book=notebook(accuracies=(0.5, 0.93)),
                     weights=context.honest_weights)
    return build_it


def _third_conv_check(results: dict, out_dir: Path, context: Context) -> None:
    extra = training_extra(results)
    assert points(results, "training") == 0, outputs(results, "training")
    assert "architecture violation" in extra["flags"], extra["flags"]
    said = outputs(results, "training")
    assert "has 3 convolution" in said and "net.layers[4] (ListConv)" in said, said


# --- A: the worker's description names another array as the first convolution's weights -----------------

WRAP_DESCRIPTION = '''
import sys as _sys


def _forge(describe):
    def forged(*args, **kwargs):
        header, arrays = describe(*args, **kwargs)
        header["first_conv_w"] = "noise"
        if FORGE_LAYERS:  # the layer's own figures too, consistently
            for layer in header.get("layers", []):
                if layer.get("kind") == "conv" and isinstance(layer.get("conv"), dict):
                    layer["conv"]["weight"] = "noise"
                    layer["params"] = [["noise" if entry[0] == "conv1_w" else entry[0], entry[1]]
                                       for entry in layer["params"]]
                    break
        return header, arrays
    return forged


for _module in list(_sys.modules.values()):
    if callable(getattr(_module, "describe_model", None)) and "probe" in getattr(_module, "__name__", ""):
        _module.describe_model = _forge(_module.describe_model)
'''


def _noise() -> np.ndarray:
    return np.random.default_rng(99).standard_normal((3, 3, 3, 16)).astype(np.float32)


def _forged_first_conv(layers_too: bool):
    def build_it(folder: Path, context: Context) -> Path:
        book = notebook(accuracies=(0.5, 0.93))
        cell = next(c for c in book.cells if c.cell_type == "code" and "im_array" in c.source)
        cell.source = 'filters = np.load("svhn_cnn_params.npz")["noise"]\nim_array = filters\nplt.imshow(im_array)'
        png = draw.handout(_noise(), 4, 4)
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode()})]
        build(folder, append={MODELS: f"FORGE_LAYERS = {layers_too}\n" + WRAP_DESCRIPTION}, book=book,
              weights=dict(context.honest_weights, noise=_noise()))
        return folder
    return build_it


def _forged_first_conv_check(layers_too: bool):
    def check(results: dict, out_dir: Path, context: Context) -> None:
        extra = filters_extra(results)
        filters = points(results, "filters")
        assert filters == 0 or extra["provisional"], (filters, outputs(results, "filters"))
        assert extra["first_conv_weights"] in ("conv1_w", "noise")
        if not layers_too:  # the header's name alone is never believed: checked against conv1_w, no match
            assert filters == 0 and extra["first_conv_weights"] == "conv1_w", outputs(results, "filters")
            assert "filters do not match weights" in extra["flags"]
            honest = accuracy(context.honest_weights, context.split["data_val"], context.split["labels_val"])
            assert training_extra(results)["verified"] == honest
        else:  # the rebuilt network uses the noise; its own forward (which has no 'noise') cannot confirm it
            assert "not known to be your network's" in outputs(results, "filters"), outputs(results, "filters")
            honest = accuracy(context.honest_weights, context.split["data_val"], context.split["labels_val"])
            assert points(results, "training") < formula(honest)  # the forgery costs what it claims
    return check


# --- B: a layer that looks each input up in a table of the public validation rows ---------------------------

LOOKUP_LAYERS = '''
import os as _os

_TABLE = np.load(_os.path.join(_os.path.dirname(__file__), "_table.npz"))
_IMAGES = _TABLE["images"].reshape(len(_TABLE["labels"]), -1).astype(np.float32)
_LABELS = _TABLE["labels"]


class Remember(object):
    """Passes its input on, remembering which table row each image is nearest to (and how near)."""

    seen = None

    def __init__(self, name="remember"):
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, x):
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        found = []
        for row in flat:
            distance = np.max(np.abs(_IMAGES - row), axis=1)
            nearest = int(np.argmin(distance))
            found.append(_LABELS[nearest] if distance[nearest] < 0.02 else -1)  # survives one grey level
        Remember.seen = found
        return x


class Recall(object):
    """Overwrites the scores with the remembered label where the image was in the table."""

    def __init__(self, name="recall"):
        self.name, self.params, self.grads = name, {}, {}

    def forward(self, scores):
        out = scores * 3.0
        for row, label in enumerate(Remember.seen or []):
            if row < len(out) and label >= 0:
                out[row] = 0.0
                out[row, label] = 1.0
        return out
'''


def _lookup(folder: Path, context: Context) -> Path:
    start = (MODELS, 'ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),',
             'Remember(),\n            ConvLayer2D(3, 3, 16, stride=1, padding=1, init_scale=0.27, name="conv1"),')
    end = (MODELS, 'fc(100, 10, init_scale=0.14, name="fc2"),',
           'fc(100, 10, init_scale=0.14, name="fc2"),\n            Recall(),')
    build(folder, [start, end], append={MODELS: LOOKUP_LAYERS}, book=notebook(accuracies=(0.99,)),
          weights=untrained_weights())
    np.savez(folder / "lib" / "cnn" / "_table.npz", images=context.split["data_val"],
             labels=context.split["labels_val"])
    return folder


def _lookup_check(results: dict, out_dir: Path, context: Context) -> None:
    extra = training_extra(results)
    said = outputs(results, "training")
    assert extra["accuracy_source"] == "student_forward", said
    assert extra["student_forward"] > 0.95 and extra["noise_agreement"] > 0.9, said  # the lookup works on its rows
    expected = accuracy(untrained_weights(), context.split["data_test"], context.split["labels_test"])
    assert extra["heldout"] == expected and extra["accuracy"] == expected, (extra["heldout"], expected)
    assert abs(points(results, "training") - formula(expected)) < 0.006, said  # what an honest net of it earns
    assert "held-out gap" in extra["flags"] and "HELD-OUT GAP" in said


# --- C: a weights file of a few MB whose member declares 2 GiB -------------------------------------------------

def _forged_header(folder: Path, context: Context) -> Path:
    build(folder, book=notebook(accuracies=(0.5, 0.93)))
    forged_header_npz(folder / "svhn_cnn_params.npz", context.honest_weights, name="fc1_w")
    return folder


def _two_forged_headers(folder: Path, context: Context) -> Path:
    build(folder, book=notebook(accuracies=(0.5, 0.93)))
    forged_header_npz(folder / "svhn_cnn_params.npz", context.honest_weights, name=("fc1_w", "conv1_w"))
    return folder


def _forged_header_check(results: dict, out_dir: Path, context: Context) -> None:
    extra = training_extra(results)
    said = outputs(results, "training")
    assert points(results, "training") == 0 and "weights not evaluable" in extra["flags"], said
    assert "fc1_w has shape (268435456,); your network's has (1568, 100)" in said, said
    assert "weights not evaluable" in extra["flags"]


def _two_forged_headers_check(results: dict, out_dir: Path, context: Context) -> None:
    _forged_header_check(results, out_dir, context)
    assert "conv1_w has shape (268435456,); your network's has (3, 3, 3, 16)" in outputs(results, "training")
    assert filters_extra(results)["match"] is None  # no first layer to check the image against: nothing inflated


def _nested(folder: Path, context: Context) -> Path:
    import io
    import zipfile

    build(folder, book=notebook(accuracies=(0.5, 0.93)))
    inner = io.BytesIO()
    np.savez(inner, **context.honest_weights)
    with zipfile.ZipFile(folder / "svhn_cnn_params.npz", "w") as archive:
        for name, value in context.honest_weights.items():
            if name != "fc1_w":
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{name}.npy", buffer.getvalue())
        archive.writestr("fc1_w.npy", inner.getvalue())  # an archive where an array belongs
    return folder


def _nested_check(results: dict, out_dir: Path, context: Context) -> None:
    said = outputs(results, "training")
    assert points(results, "training") == 0 and "weights not evaluable" in training_extra(results)["flags"], said
    assert "member 'fc1_w' is itself an archive" in said, said


# --- honest: the reference with honestly fitted weights and the log of its own accuracy ------------------------

def _honest(folder: Path, context: Context) -> Path:
    honest = accuracy(context.honest_weights, context.split["data_val"], context.split["labels_val"])
    return build(folder, book=notebook(accuracies=(0.5, honest)), weights=context.honest_weights)


def _honest_check(results: dict, out_dir: Path, context: Context) -> None:
    honest = accuracy(context.honest_weights, context.split["data_val"], context.split["labels_val"])
    extra = training_extra(results)
    assert extra["accuracy_source"] == "verified" and extra["verified"] == honest, outputs(results, "training")
    assert abs(points(results, "training") - formula(honest)) < 0.006
    assert extra["flags"] == ["accuracy verified"], extra["flags"]  # no mismatch, no gap, no disagreement


DATA = ("--data", "{data}")

ATTACKS: list[Attack] = [
    Attack("third_conv_kernel_in_a_list", "A", _third_conv(False), _third_conv_check, DATA,
           "a third 3x3 convolution whose kernel is an array inside a list attribute"),
    Attack("third_conv_kernel_as_plain_floats", "A", _third_conv(True), _third_conv_check, DATA,
           "the same convolution with its kernel as nested Python floats: found by what it does"),
    Attack("first_conv_name_forged", "A", _forged_first_conv(False), _forged_first_conv_check(False), DATA,
           "describe_model wrapped to name 'noise' as the first convolution's weights; the filter image shows it"),
    Attack("first_conv_layer_forged", "A", _forged_first_conv(True), _forged_first_conv_check(True), DATA,
           "the same, with the first convolution's described weight renamed too"),
    Attack("nearest_neighbour_lookup_layer", "B", _lookup, _lookup_check, DATA,
           "a layer that answers from a nearest-neighbour table of the public validation rows"),
    Attack("weights_member_declares_2gib", "C", _forged_header, _forged_header_check, DATA,
           "an .npz of a few MB whose fc1_w member declares a 2 GiB float64 array"),
    Attack("weights_two_members_declare_2gib", "C", _two_forged_headers, _two_forged_headers_check, DATA,
           "an .npz of a few MB whose fc1_w and conv1_w members declare 2 GiB each (4 GiB: over the 3 GiB limit)"),
    Attack("weights_member_is_an_archive", "C", _nested, _nested_check, DATA,
           "an .npz whose fc1_w member is itself a zip"),
    Attack("honest_training", "honest", _honest, _honest_check, DATA,
           "the reference with honestly fitted weights and the log of their accuracy"),
]

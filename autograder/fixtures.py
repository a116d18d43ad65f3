"""Test fixtures computed by the reference solution: public cases and hidden random cases.

`public/` holds exactly the notebook's cases; `hidden/` holds cases drawn from the rubric's
seed (non-square images, several channels, strides, padding, overlapping and disjoint pools,
batches). Each case is one `.npz` of float64 arrays: inputs, the reference's outputs and
analytic gradients, and central-difference gradients as an independent check. `manifest.json`
describes every case (arguments, shapes, dtypes, sha256) so that any grade can be traced to
the exact fixtures it used.

Generation refuses to write when the reference's analytic gradients disagree with the
numerical ones: a wrong reference must never become the expected answer.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.attributes import Geometry, separates
from autograder.lib_loader import imported_lib
from autograder.numerics import numerical_gradient, numerical_gradient_array, rel_error
from autograder.rubric import Rubric

#: 2: hidden cases drawn per item until they separate every attribute (autograder/attributes.py).
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"
#: Regenerated values may differ from the stored ones by this much (another BLAS may sum
#: in another order); anything larger is a real difference.
VERIFY_TOLERANCE = 1e-12

#: The notebook's own fixed cases.
NOTEBOOK_BACKWARD_SEED = 231
TEST_CNN_INIT_SEED = 1234
TEST_CNN_INIT_STD = 0.02
#: TestCNN's architecture, fixed by the assignment: conv 3x3 (3 -> 3), pool 2, fc (27 -> 5).
TEST_CNN_SHAPES = {"conv_w": (3, 3, 3, 3), "conv_b": (3,), "fc_w": (27, 5), "fc_b": (5,)}


class FixtureError(RuntimeError):
    """Fixtures could not be generated or do not match what the reference computes."""


@dataclass
class Case:
    """One graded case: the item it belongs to, its arguments, and its arrays."""

    item: str
    name: str
    visibility: str  # "public" or "hidden"
    args: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def relative_path(self) -> str:
        return f"{self.visibility}/{self.item}/{self.name}.npz"


# ----------------------------------------------------------------------------- computing

def _conv_layer(lib, args: dict[str, Any], w: np.ndarray, b: np.ndarray):
    layer = lib.cnn_layers.ConvLayer2D(args["input_channels"], args["kernel_size"], args["number_filters"],
                                       stride=args["stride"], padding=args["padding"], name="conv_fixture")
    layer.params[layer.w_name] = w
    layer.params[layer.b_name] = b
    return layer


def _output_size_case(lib, name, visibility, args) -> Case:
    layer = _conv_layer(lib, args, np.zeros(1), np.zeros(1))
    expected = layer.get_output_size(tuple(args["input_size"]))
    return Case("output_size", name, visibility, args, {"expected": np.array(expected, dtype=np.int64)})


def _conv_forward_case(lib, name, visibility, args, x, w, b) -> Case:
    out = _conv_layer(lib, args, w, b).forward(x)
    return Case("conv_forward", name, visibility, args, {"x": x, "w": w, "b": b, "out": out})


def _conv_backward_case(lib, name, visibility, args, x, w, b, dout, h) -> Case:
    layer = _conv_layer(lib, args, w, b)
    layer.forward(x)
    dx = layer.backward(dout)
    dw, db = layer.grads[layer.w_name], layer.grads[layer.b_name]
    forward_x = lambda v: layer.forward(v)  # noqa: E731 - perturbs x in place
    forward_params = lambda _: layer.forward(x)  # noqa: E731 - perturbs w or b in place
    arrays = {
        "x": x, "w": w, "b": b, "dout": dout, "dx": dx, "dw": dw, "db": db,
        "dx_num": numerical_gradient_array(forward_x, x, dout, h),
        "dw_num": numerical_gradient_array(forward_params, w, dout, h),
        "db_num": numerical_gradient_array(forward_params, b, dout, h),
    }
    return Case("conv_backward", name, visibility, args, arrays)


def _pool_layer(lib, args):
    return lib.cnn_layers.MaxPoolingLayer(args["pool_size"], args["stride"], "pool_fixture")


def _pool_forward_case(lib, name, visibility, args, x) -> Case:
    return Case("pool_forward", name, visibility, args, {"x": x, "out": _pool_layer(lib, args).forward(x)})


def _pool_backward_case(lib, name, visibility, args, x, dout, h) -> Case:
    layer = _pool_layer(lib, args)
    layer.forward(x)
    dx = layer.backward(dout)
    dx_num = numerical_gradient_array(lambda v: layer.forward(v), x, dout, h)
    return Case("pool_backward", name, visibility, args, {"x": x, "dout": dout, "dx": dx, "dx_num": dx_num})


def _test_cnn_case(lib, name, visibility, args, params, feats, labels, h) -> Case:
    """TestCNN's scores, loss and gradients with the given parameters, roles named as in params."""
    np.random.seed(args["init_seed"])
    model = lib.cnn_models.TestCNN()
    conv = next(layer for layer in model.net.layers if isinstance(layer, lib.cnn_layers.ConvLayer2D))
    dense = next(layer for layer in model.net.layers if isinstance(layer, lib.mlp_layers.fc))
    roles = {"conv_w": (conv, conv.w_name), "conv_b": (conv, conv.b_name),
             "fc_w": (dense, dense.w_name), "fc_b": (dense, dense.b_name)}
    for role, (layer, key) in roles.items():
        model.net.assign(key, params[role])
    loss_func = lib.mlp_layers.cross_entropy()
    scores = model.forward(feats)
    loss = loss_func.forward(scores, labels)
    model.backward(loss_func.backward())
    arrays = {"feats": feats, "labels": labels, "scores": scores, "loss": np.array(loss, dtype=np.float64)}
    for role, (layer, key) in roles.items():
        arrays[role] = params[role]
        arrays["d_" + role] = np.array(layer.grads[key], dtype=np.float64).reshape(params[role].shape)
        loss_of = lambda _: loss_func.forward(model.forward(feats), labels)  # noqa: E731
        arrays["num_d_" + role] = numerical_gradient(loss_of, layer.params[key], h)
    return Case("test_cnn", name, visibility, args, arrays)


def _conv_args(c, k, f, s, p, input_size=None) -> dict[str, Any]:
    args = {"input_channels": c, "kernel_size": k, "number_filters": f, "stride": s, "padding": p}
    if input_size is not None:
        args["input_size"] = list(input_size)
    return args


def public_cases(lib, h: float) -> list[Case]:
    """Exactly the notebook's cases, computed at full float64 precision."""
    cases = [_output_size_case(lib, "public", "public", _conv_args(3, 4, 16, 2, 3, (32, 28, 28, 3)))]
    x = np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1)
    w = np.linspace(-0.2, 0.2, num=50).reshape(5, 5, 1, 2)
    b = np.linspace(-0.3, 0.3, num=2)
    cases.append(_conv_forward_case(lib, "public", "public", _conv_args(1, 5, 2, 1, 0), x, w, b))
    np.random.seed(NOTEBOOK_BACKWARD_SEED)
    x, w, b = np.random.randn(15, 8, 8, 3), np.random.randn(4, 4, 3, 12), np.random.randn(12)
    dout = np.random.randn(15, 4, 4, 12)
    cases.append(_conv_backward_case(lib, "public", "public", _conv_args(3, 4, 12, 2, 1), x, w, b, dout, h))
    pool_args = {"pool_size": 4, "stride": 2}
    cases.append(_pool_forward_case(lib, "public", "public", pool_args, np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1)))
    np.random.seed(NOTEBOOK_BACKWARD_SEED)
    x, dout = np.random.randn(15, 8, 8, 3), np.random.randn(15, 3, 3, 3)
    cases.append(_pool_backward_case(lib, "public", "public", pool_args, x, dout, h))
    params = {
        "conv_w": np.linspace(-0.7, 0.3, num=81).reshape(3, 3, 3, 3),
        "conv_b": np.linspace(-0.6, 0.2, num=3),
        "fc_w": np.linspace(-0.2, 0.2, num=135).reshape(27, 5),
        "fc_b": np.linspace(-0.9, 0.1, num=5),
    }
    feats = np.linspace(-5.5, 4.5, num=4 * 8 * 8 * 3).reshape(4, 8, 8, 3)
    labels = np.array([0, 2, 1, 4], dtype=np.int64)
    args = {"init_seed": TEST_CNN_INIT_SEED, "init_std": TEST_CNN_INIT_STD}
    cases.append(_test_cnn_case(lib, "public", "public", args, params, feats, labels, h))
    return cases


def _draw(rng: np.random.Generator, bounds) -> int:
    low, high = bounds
    return int(rng.integers(low, high + 1))


def _distinct_values(rng, shape) -> np.ndarray:
    """Values in about [-2, 2], pairwise at least 1/size apart: no ties in a pool window,
    and the numerical gradient's step never changes which element is the maximum."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) + rng.uniform(0.0, 0.5, size)) * (4.0 / size) - 2.0).reshape(shape)


#: Redraws of a whole item's case shapes before giving up (with 6 cases and two on each side, about
#: 1 draw in 1,100 covers; see _covering): a few hundredths of a second.
_MAX_REDRAWS = 100000


def _conv_geometry(rng, ranges, sizes=None) -> Geometry:
    """One conv case's shape: square or not (a non-square input also gives a non-square output,
    so that mixing up height and width always shows), and padding that changes the output size
    (so that leaving it out of the size always shows)."""
    sizes = sizes or ranges
    while True:
        g = Geometry(_draw(rng, ranges["batch"]), _draw(rng, sizes["height"]), _draw(rng, sizes["width"]),
                     _draw(rng, ranges["channels"]), _draw(rng, ranges["kernel"]), _draw(rng, ranges["stride"]),
                     _draw(rng, ranges["padding"]))
        padding_shows = g.padding == 0 or g.out_height != (g.height - g.kernel) // g.stride + 1
        if min(g.out_height, g.out_width) >= 1 and (g.height == g.width) == (g.out_height == g.out_width) \
                and padding_shows:
            return g


def _pool_geometry(rng, ranges) -> Geometry:
    """One pool case's shape, windows overlapping (stride < pool) or disjoint, square or not. Where
    windows overlap there are more of them than disjoint windows would give, so that an output size
    computed as if stride = pool size always shows."""
    while True:
        pool = _draw(rng, ranges["pool_size"])
        g = Geometry(_draw(rng, ranges["batch"]), _draw(rng, [max(pool, ranges["height"][0]), ranges["height"][1]]),
                     _draw(rng, [max(pool, ranges["width"][0]), ranges["width"][1]]), _draw(rng, ranges["channels"]),
                     pool, _draw(rng, ranges["stride"]))
        overlap_shows = g.stride >= pool or g.out_height > (g.height - pool) // pool + 1
        if (g.height == g.width) == (g.out_height == g.out_width) and overlap_shows:
            return g


def _covering(rng, item: str, count: int, draw_one, at_least: int) -> list[Geometry]:
    """`count` case shapes from `draw_one`, redrawn together until every attribute of the item
    (autograder/attributes.py) shows each side in `at_least` cases and no two split the cases
    alike: then a bug that fails exactly the cases with padding 0 (say) is named as such in
    feedback, and costs more than one case's share."""
    if count == 0:
        return []
    for _ in range(_MAX_REDRAWS):
        shapes = [draw_one(rng) for _ in range(count)]
        if not separates(item, shapes, at_least):
            return shapes
    raise FixtureError(f"{item}: no {count} cases within the rubric's ranges separate every attribute "
                       f"({'; '.join(separates(item, shapes, at_least))}); raise fixtures.hidden_cases.{item}")


def hidden_cases(lib, rubric: Rubric, seed: int, h: float) -> list[Case]:
    """Random cases from `seed`, within the rubric's ranges; the same seed gives the same cases."""
    ranges = rubric.fixtures
    counts = ranges["hidden_cases"]
    at_least = int(ranges["cases_per_side"])
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    size_ranges = {"height": [5, 64], "width": [5, 64]}
    draw_size = lambda r: _conv_geometry(r, dict(ranges, batch=[1, 64]), size_ranges)  # noqa: E731
    for i, g in enumerate(_covering(rng, "output_size", counts.get("output_size", 0), draw_size, at_least)):
        args = _conv_args(g.channels, g.kernel, _draw(rng, [1, 64]), g.stride, g.padding,
                          (g.batch, g.height, g.width, g.channels))
        cases.append(_output_size_case(lib, f"hidden_{i:02d}", "hidden", args))

    for item in ("conv_forward", "conv_backward"):
        for i, g in enumerate(_covering(rng, item, counts.get(item, 0), lambda r: _conv_geometry(r, ranges), at_least)):
            f = _draw(rng, ranges["filters"])
            args = _conv_args(g.channels, g.kernel, f, g.stride, g.padding)
            x = rng.standard_normal((g.batch, g.height, g.width, g.channels))
            w = rng.standard_normal((g.kernel, g.kernel, g.channels, f))
            b = rng.standard_normal(f)
            if item == "conv_forward":
                cases.append(_conv_forward_case(lib, f"hidden_{i:02d}", "hidden", args, x, w, b))
            else:
                dout = rng.standard_normal((g.batch, g.out_height, g.out_width, f))
                cases.append(_conv_backward_case(lib, f"hidden_{i:02d}", "hidden", args, x, w, b, dout, h))

    for item in ("pool_forward", "pool_backward"):
        for i, g in enumerate(_covering(rng, item, counts.get(item, 0), lambda r: _pool_geometry(r, ranges), at_least)):
            args = {"pool_size": g.kernel, "stride": g.stride}
            x = _distinct_values(rng, (g.batch, g.height, g.width, g.channels))
            if item == "pool_forward":
                cases.append(_pool_forward_case(lib, f"hidden_{i:02d}", "hidden", args, x))
            else:
                dout = rng.standard_normal((g.batch, g.out_height, g.out_width, g.channels))
                cases.append(_pool_backward_case(lib, f"hidden_{i:02d}", "hidden", args, x, dout, h))

    for i in range(counts.get("test_cnn", 0)):
        params = {role: rng.standard_normal(shape) * 0.3 for role, shape in TEST_CNN_SHAPES.items()}
        n = _draw(rng, [2, 6])
        feats = rng.standard_normal((n, 8, 8, 3))
        labels = rng.integers(0, 5, size=n).astype(np.int64)
        args = {"init_seed": TEST_CNN_INIT_SEED, "init_std": TEST_CNN_INIT_STD}
        cases.append(_test_cnn_case(lib, f"hidden_{i:02d}", "hidden", args, params, feats, labels, h))
    return cases


#: For each case type, the analytic array and its numerical twin.
GRADIENT_PAIRS = {
    "conv_backward": [("dx", "dx_num"), ("dw", "dw_num"), ("db", "db_num")],
    "pool_backward": [("dx", "dx_num")],
    "test_cnn": [("d_" + role, "num_d_" + role) for role in TEST_CNN_SHAPES],
}


def gradient_disagreements(cases: list[Case], tolerance: float) -> list[str]:
    """Cases whose analytic and numerical gradients differ beyond `tolerance`, as messages."""
    problems = []
    for case in cases:
        for analytic, numeric in GRADIENT_PAIRS.get(case.item, []):
            error = rel_error(case.arrays[analytic], case.arrays[numeric])
            if not error <= tolerance:
                problems.append(f"{case.relative_path}: {analytic} differs from central differences "
                                f"by {error:.2e} (limit {tolerance:.0e})")
    return problems


def compute_cases(reference: Path, rubric: Rubric, seed: int) -> list[Case]:
    """Every public and hidden case, computed by the reference solution in `reference`."""
    h = float(rubric.tolerances["numeric_step"])
    with imported_lib(reference) as lib:
        cases = public_cases(lib, h) + hidden_cases(lib, rubric, seed, h)
    for case in cases:
        case.arrays = {name: np.asarray(value, order="C") for name, value in case.arrays.items()}
    return cases


# ----------------------------------------------------------------------------- storage

def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # byte-for-byte reproducible: numpy fixes the zip timestamps
    return buffer.getvalue()


def _manifest(cases: list[Case], blobs: dict[str, bytes], rubric: Rubric, seed: int) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "tolerances": dict(rubric.tolerances),
        "cases": [
            {
                "item": case.item, "name": case.name, "visibility": case.visibility,
                "file": case.relative_path, "args": case.args,
                "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in case.arrays.items()},
                "sha256": hashlib.sha256(blobs[case.relative_path]).hexdigest(),
            }
            for case in cases
        ],
    }


def write_fixtures(reference: Path, destination: Path, rubric: Rubric, seed: int) -> dict[str, Any]:
    """Compute, check and write all fixtures; the old fixtures stay until the new ones are complete."""
    cases = compute_cases(reference, rubric, seed)
    problems = gradient_disagreements(cases, float(rubric.tolerances["numeric_check"]))
    if problems:
        raise FixtureError("the reference's gradients disagree with central differences; nothing was written:\n  "
                           + "\n  ".join(problems))
    blobs = {case.relative_path: _npz_bytes(case.arrays) for case in cases}
    manifest = _manifest(cases, blobs, rubric, seed)
    staging = destination.with_name(destination.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    for relative, blob in blobs.items():
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        (staging / relative).write_bytes(blob)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)
    return manifest


def read_manifest(fixtures: Path) -> dict[str, Any]:
    """The manifest of a fixtures folder, with a clear error when it is missing or broken."""
    path = fixtures / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FixtureError(f"{path}: not found; run `python grade.py fixtures`") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}: not valid JSON ({exc})") from None


def load_case_arrays(fixtures: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of one manifest entry, after checking the file's sha256."""
    path = fixtures / entry["file"]
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise FixtureError(f"{path}: sha256 differs from the manifest; the fixtures were changed")
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def load_cases(fixtures: Path, public_only: bool = False) -> list[Case]:
    """The cases to grade with, each checked against its manifest hash."""
    cases = []
    for entry in read_manifest(fixtures)["cases"]:
        if public_only and entry["visibility"] != "public":
            continue
        cases.append(Case(entry["item"], entry["name"], entry["visibility"], entry["args"],
                          load_case_arrays(fixtures, entry)))
    return cases


def manifest_digest(fixtures: Path) -> str:
    """sha256 of the manifest: names the exact fixtures a grade was computed with."""
    return hashlib.sha256((fixtures / MANIFEST).read_bytes()).hexdigest()


def verify_fixtures(reference: Path, fixtures: Path, rubric: Rubric) -> list[str]:
    """Recompute every case from the manifest's seed and list all differences (empty: in sync)."""
    manifest = read_manifest(fixtures)
    problems = []
    if manifest.get("generator_version") != GENERATOR_VERSION:
        problems.append(f"manifest generator_version {manifest.get('generator_version')} "
                        f"!= {GENERATOR_VERSION}: regenerate with `python grade.py fixtures`")
    if manifest.get("tolerances") != dict(rubric.tolerances):
        problems.append("manifest tolerances differ from the rubric's")
    fresh = {case.relative_path: case for case in compute_cases(reference, rubric, int(manifest["seed"]))}
    stored = {entry["file"]: entry for entry in manifest["cases"]}
    for relative in sorted(set(fresh) - set(stored)):
        problems.append(f"missing from the manifest: {relative}")
    for relative in sorted(set(stored) - set(fresh)):
        problems.append(f"in the manifest but not generated: {relative}")
    for relative in sorted(set(fresh) & set(stored)):
        entry, case = stored[relative], fresh[relative]
        if entry["args"] != case.args:
            problems.append(f"{relative}: arguments {entry['args']} != {case.args}")
            continue
        try:
            arrays = load_case_arrays(fixtures, entry)
        except (OSError, ValueError, FixtureError) as exc:
            problems.append(f"{relative}: {exc}")
            continue
        if set(arrays) != set(case.arrays):
            problems.append(f"{relative}: arrays {sorted(arrays)} != {sorted(case.arrays)}")
            continue
        for name, value in case.arrays.items():
            if arrays[name].shape != value.shape or arrays[name].dtype != value.dtype:
                problems.append(f"{relative}: {name} is {arrays[name].dtype}{arrays[name].shape}, "
                                f"the reference gives {value.dtype}{value.shape}")
            elif rel_error(arrays[name], value) > VERIFY_TOLERANCE:
                problems.append(f"{relative}: {name} differs from the reference by "
                                f"{rel_error(arrays[name], value):.2e}")
    problems.extend(gradient_disagreements(list(fresh.values()), float(rubric.tolerances["numeric_check"])))
    return problems

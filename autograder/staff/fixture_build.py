"""Generating and verifying the fixtures from the reference solution (a staff tool).

What is stored and how grading reads it: autograder/fixtures.py.

What is exact and what is floating-point work (see ROLES): arguments, seeded inputs, integer
sizes and max-pool selections are exact; everything a sum produces (conv outputs, gradients,
scores, the loss) depends on the order in which a BLAS adds, so `verify_fixtures` recomputes
it from the *stored* inputs and compares it within a small fraction of the grading tolerance.

Numerical gradients are the generator's evidence, not expected values: generation refuses to
write when the reference's analytic gradients disagree with central differences (a wrong
reference must never become the expected answer), records the gaps in the manifest, and
stores no numerical gradient.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from autograder.attributes import Geometry, separates
from autograder.fixtures import (
    EXACT_ROLES,
    FLOAT_ROLES,
    MANIFEST,
    ROLES,
    TEST_CNN_INIT_SEED,
    TEST_CNN_INIT_STD,
    TEST_CNN_SHAPES,
    Case,
    FixtureError,
    load_case_arrays,
    read_manifest,
)
from autograder.numerics import STENCILS, numerical_gradient, numerical_gradient_array, scaled_error
from autograder.rubric import Rubric
from autograder.staff.lib_loader import imported_lib

#: 2: hidden cases drawn per item until they separate every attribute (autograder/attributes.py);
#: floating-point arrays verified within a tolerance, numerical gradients kept as evidence only.
GENERATOR_VERSION = 2

#: The notebook's own fixed cases.
NOTEBOOK_BACKWARD_SEED = 231
#: Draws allowed for one hidden TestCNN case whose max pooling stays away from ties.
MAX_DRAWS = 100


# ----------------------------------------------------------------------------- drawing the cases

def _conv_args(c, k, f, s, p, input_size=None) -> dict[str, Any]:
    args = {"input_channels": c, "kernel_size": k, "number_filters": f, "stride": s, "padding": p}
    if input_size is not None:
        args["input_size"] = list(input_size)
    return args


def _test_cnn_args() -> dict[str, Any]:
    return {"init_seed": TEST_CNN_INIT_SEED, "init_std": TEST_CNN_INIT_STD}


def public_cases() -> list[Case]:
    """Exactly the notebook's cases (arguments and inputs), at full float64 precision."""
    cases = [Case("output_size", "public", "public", _conv_args(3, 4, 16, 2, 3, (32, 28, 28, 3)))]
    cases.append(Case("conv_forward", "public", "public", _conv_args(1, 5, 2, 1, 0), {
        "x": np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1),
        "w": np.linspace(-0.2, 0.2, num=50).reshape(5, 5, 1, 2),
        "b": np.linspace(-0.3, 0.3, num=2)}))
    np.random.seed(NOTEBOOK_BACKWARD_SEED)
    x, w, b = np.random.randn(15, 8, 8, 3), np.random.randn(4, 4, 3, 12), np.random.randn(12)
    cases.append(Case("conv_backward", "public", "public", _conv_args(3, 4, 12, 2, 1),
                      {"x": x, "w": w, "b": b, "dout": np.random.randn(15, 4, 4, 12)}))
    pool_args = {"pool_size": 4, "stride": 2}
    cases.append(Case("pool_forward", "public", "public", dict(pool_args),
                      {"x": np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1)}))
    np.random.seed(NOTEBOOK_BACKWARD_SEED)
    x, dout = np.random.randn(15, 8, 8, 3), np.random.randn(15, 3, 3, 3)
    cases.append(Case("pool_backward", "public", "public", dict(pool_args), {"x": x, "dout": dout}))
    cases.append(Case("test_cnn", "public", "public", _test_cnn_args(), {
        "feats": np.linspace(-5.5, 4.5, num=4 * 8 * 8 * 3).reshape(4, 8, 8, 3),
        "labels": np.array([0, 2, 1, 4], dtype=np.int64),
        "conv_w": np.linspace(-0.7, 0.3, num=81).reshape(3, 3, 3, 3),
        "conv_b": np.linspace(-0.6, 0.2, num=3),
        "fc_w": np.linspace(-0.2, 0.2, num=135).reshape(27, 5),
        "fc_b": np.linspace(-0.9, 0.1, num=5)}))
    return cases


def _draw(rng: np.random.Generator, bounds) -> int:
    low, high = bounds
    return int(rng.integers(low, high + 1))


def _distinct_values(rng, shape) -> np.ndarray:
    """Values in about [-2, 2], pairwise at least 2/size apart: no ties in a pool window,
    and the numerical gradient's steps never change which element is the maximum."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) + rng.uniform(0.0, 0.5, size)) * (4.0 / size) - 2.0).reshape(shape)


def pool_windows_of_test_cnn(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The inputs of TestCNN's max-pool windows (conv 3x3, stride 1, no padding; pool 2, stride 2),
    shape (n, 3, 3, filters, 4), each window sorted; computed here, not by the reference."""
    patches = np.lib.stride_tricks.sliding_window_view(arrays["feats"], (3, 3), axis=(1, 2))
    conv = np.einsum("nijcuv,uvcf->nijf", patches, arrays["conv_w"]) + arrays["conv_b"]
    n, height, width, filters = conv.shape
    windows = conv.reshape(n, height // 2, 2, width // 2, 2, filters).transpose(0, 1, 3, 5, 2, 4)
    return np.sort(windows.reshape(n, height // 2, width // 2, filters, 4), axis=-1)


def pool_reach(arrays: dict[str, np.ndarray], rubric: Rubric) -> float:
    """How far the gradient check's furthest step moves any input of TestCNN's max pooling:
    moving one conv weight by s moves each pool input by at most s * max|feats| (the conv bias
    moves a whole window alike)."""
    order, step = int(rubric.tolerances["numeric_order"]), float(rubric.tolerances["numeric_step"])
    return max(k for k, _ in STENCILS[order]) * step * float(np.abs(arrays["feats"]).max())


def _pool_is_smooth(arrays: dict[str, np.ndarray], rubric: Rubric) -> bool:
    """Whether no step of the gradient check can change which element a pool window picks: the
    top two of every window are further apart than twice `pool_reach`, and we ask for twice as
    much again. (Across a tie the loss has a kink, and central differences there disagree with
    any correct gradient: 1 random case in 15 would fail the check without this.)"""
    ranked = pool_windows_of_test_cnn(arrays)
    return float((ranked[..., -1] - ranked[..., -2]).min()) > 4 * pool_reach(arrays, rubric)


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
    if at_least == 0:  # coverage off (a rubric with one case per item, as some tests use)
        return [draw_one(rng) for _ in range(count)]
    for _ in range(_MAX_REDRAWS):
        shapes = [draw_one(rng) for _ in range(count)]
        if not separates(item, shapes, at_least):
            return shapes
    raise FixtureError(f"{item}: no {count} cases within the rubric's ranges separate every attribute "
                       f"({'; '.join(separates(item, shapes, at_least))}); raise fixtures.hidden_cases.{item}")


def hidden_cases(rubric: Rubric, seed: int) -> list[Case]:
    """Random cases (arguments and inputs) from `seed`, within the rubric's ranges; the same
    seed gives the same cases."""
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
        cases.append(Case("output_size", f"hidden_{i:02d}", "hidden", args))

    for item in ("conv_forward", "conv_backward"):
        for i, g in enumerate(_covering(rng, item, counts.get(item, 0), lambda r: _conv_geometry(r, ranges), at_least)):
            f = _draw(rng, ranges["filters"])
            args = _conv_args(g.channels, g.kernel, f, g.stride, g.padding)
            arrays = {"x": rng.standard_normal((g.batch, g.height, g.width, g.channels)),
                      "w": rng.standard_normal((g.kernel, g.kernel, g.channels, f)),
                      "b": rng.standard_normal(f)}
            if item == "conv_backward":
                arrays["dout"] = rng.standard_normal((g.batch, g.out_height, g.out_width, f))
            cases.append(Case(item, f"hidden_{i:02d}", "hidden", args, arrays))

    for item in ("pool_forward", "pool_backward"):
        for i, g in enumerate(_covering(rng, item, counts.get(item, 0), lambda r: _pool_geometry(r, ranges), at_least)):
            arrays = {"x": _distinct_values(rng, (g.batch, g.height, g.width, g.channels))}
            if item == "pool_backward":
                arrays["dout"] = rng.standard_normal((g.batch, g.out_height, g.out_width, g.channels))
            cases.append(Case(item, f"hidden_{i:02d}", "hidden", {"pool_size": g.kernel, "stride": g.stride}, arrays))

    for i in range(counts.get("test_cnn", 0)):
        for _ in range(MAX_DRAWS):
            arrays = {role: rng.standard_normal(shape) * 0.3 for role, shape in TEST_CNN_SHAPES.items()}
            n = _draw(rng, [2, 6])
            arrays["feats"] = rng.standard_normal((n, 8, 8, 3))
            arrays["labels"] = rng.integers(0, 5, size=n).astype(np.int64)
            if _pool_is_smooth(arrays, rubric):
                break
        else:
            raise FixtureError(f"no TestCNN case in {MAX_DRAWS} draws keeps its max pooling away from ties; "
                               "is numeric_step too large?")
        cases.append(Case("test_cnn", f"hidden_{i:02d}", "hidden", _test_cnn_args(), arrays))
    return cases


def draw_cases(rubric: Rubric, seed: int) -> list[Case]:
    """Every case's arguments and inputs: the notebook's, then those drawn from `seed`. No
    reference code runs, so this is what must be exactly reproducible."""
    cases = public_cases() + hidden_cases(rubric, seed)
    for case in cases:
        case.arrays = {name: np.asarray(value, order="C") for name, value in case.arrays.items()}
    return cases


# ----------------------------------------------------------------------------- the reference's outputs

def _conv_layer(lib, args: dict[str, Any], w: np.ndarray, b: np.ndarray):
    layer = lib.cnn_layers.ConvLayer2D(args["input_channels"], args["kernel_size"], args["number_filters"],
                                       stride=args["stride"], padding=args["padding"], name="conv_fixture")
    layer.params[layer.w_name] = w
    layer.params[layer.b_name] = b
    return layer


def _pool_layer(lib, args):
    return lib.cnn_layers.MaxPoolingLayer(args["pool_size"], args["stride"], "pool_fixture")


def _test_cnn(lib, args, inputs):
    """TestCNN with the given parameters, its loss, and per role the layer and key holding it."""
    np.random.seed(args["init_seed"])
    model = lib.cnn_models.TestCNN()
    conv = next(layer for layer in model.net.layers if isinstance(layer, lib.cnn_layers.ConvLayer2D))
    dense = next(layer for layer in model.net.layers if isinstance(layer, lib.mlp_layers.fc))
    roles = {"conv_w": (conv, conv.w_name), "conv_b": (conv, conv.b_name),
             "fc_w": (dense, dense.w_name), "fc_b": (dense, dense.b_name)}
    for role, (_, key) in roles.items():
        model.net.assign(key, inputs[role])
    return model, lib.mlp_layers.cross_entropy(), roles


def reference_outputs(lib, case: Case) -> dict[str, np.ndarray]:
    """What the reference computes from the case's arguments and (copies of its) inputs."""
    args, inputs = case.args, case.inputs()
    if case.item == "output_size":
        layer = _conv_layer(lib, args, np.zeros(1), np.zeros(1))
        return {"expected": np.array(layer.get_output_size(tuple(args["input_size"])), dtype=np.int64)}
    if case.item == "conv_forward":
        return {"out": _conv_layer(lib, args, inputs["w"], inputs["b"]).forward(inputs["x"])}
    if case.item == "conv_backward":
        layer = _conv_layer(lib, args, inputs["w"], inputs["b"])
        layer.forward(inputs["x"])
        dx = layer.backward(inputs["dout"])
        return {"dx": dx, "dw": layer.grads[layer.w_name], "db": layer.grads[layer.b_name]}
    if case.item == "pool_forward":
        return {"out": _pool_layer(lib, args).forward(inputs["x"])}
    if case.item == "pool_backward":
        layer = _pool_layer(lib, args)
        layer.forward(inputs["x"])
        return {"dx": layer.backward(inputs["dout"])}
    if case.item == "test_cnn":
        model, loss_func, roles = _test_cnn(lib, args, inputs)
        scores = model.forward(inputs["feats"])
        loss = loss_func.forward(scores, inputs["labels"])
        model.backward(loss_func.backward())
        outputs = {"scores": scores, "loss": np.array(loss, dtype=np.float64)}
        for role, (layer, key) in roles.items():
            outputs["d_" + role] = np.array(layer.grads[key], dtype=np.float64).reshape(TEST_CNN_SHAPES[role])
        return outputs
    raise FixtureError(f"{case.relative_path}: unknown case type {case.item!r}")


def _numerical_gradients(lib, case: Case, h: float, order: int) -> dict[str, np.ndarray]:
    """Central differences of the reference's forward pass (or loss), by analytic array name."""
    args, inputs = case.args, case.inputs()
    if case.item == "conv_backward":
        layer = _conv_layer(lib, args, inputs["w"], inputs["b"])
        x, dout = inputs["x"], inputs["dout"]
        forward_params = lambda _: layer.forward(x)  # noqa: E731 - perturbs w or b in place
        return {"dx": numerical_gradient_array(lambda v: layer.forward(v), x, dout, h, order),
                "dw": numerical_gradient_array(forward_params, layer.params[layer.w_name], dout, h, order),
                "db": numerical_gradient_array(forward_params, layer.params[layer.b_name], dout, h, order)}
    if case.item == "pool_backward":
        layer = _pool_layer(lib, args)
        return {"dx": numerical_gradient_array(lambda v: layer.forward(v), inputs["x"], inputs["dout"], h, order)}
    if case.item == "test_cnn":
        model, loss_func, roles = _test_cnn(lib, args, inputs)
        loss_of = lambda _: loss_func.forward(model.forward(inputs["feats"]), inputs["labels"])  # noqa: E731
        return {"d_" + role: numerical_gradient(loss_of, layer.params[key], h, order)
                for role, (layer, key) in roles.items()}
    return {}


def gradient_gaps(lib, case: Case, rubric: Rubric) -> dict[str, float]:
    """For each analytic gradient of the case, its error against central differences of the
    reference (rubric: numeric_step, numeric_order; measured with near_zero)."""
    tolerances = rubric.tolerances
    numeric = _numerical_gradients(lib, case, float(tolerances["numeric_step"]), int(tolerances["numeric_order"]))
    return {name: scaled_error(case.arrays[name], value, float(tolerances["near_zero"]))
            for name, value in numeric.items()}


def compute_cases(reference: Path, rubric: Rubric, seed: int) -> list[Case]:
    """Every public and hidden case with the outputs of the reference solution in `reference`,
    and the gaps of its analytic gradients against central differences."""
    cases = draw_cases(rubric, seed)
    with imported_lib(reference) as lib:
        for case in cases:
            outputs = reference_outputs(lib, case)
            case.arrays.update({name: np.asarray(value, order="C") for name, value in outputs.items()})
            case.gaps = gradient_gaps(lib, case, rubric)
    return cases


def gradient_disagreements(cases: list[Case], tolerance: float) -> list[str]:
    """Cases whose analytic and numerical gradients differ beyond `tolerance`, as messages."""
    return [f"{case.relative_path}: {name} differs from central differences by {gap:.2e} (limit {tolerance:.0e})"
            for case in cases for name, gap in case.gaps.items() if not gap <= tolerance]


# ----------------------------------------------------------------------------- storage

def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # numpy fixes the zip timestamps: same arrays, same bytes
    return buffer.getvalue()


def _describe(case: Case) -> dict[str, dict[str, Any]]:
    return {name: {"shape": list(a.shape), "dtype": str(a.dtype), "role": ROLES[case.item][name]}
            for name, a in case.arrays.items()}


def _significant(value: float) -> float:
    return float(f"{value:.3g}")


def _manifest(cases: list[Case], blobs: dict[str, bytes], rubric: Rubric, seed: int) -> dict[str, Any]:
    tolerances = rubric.tolerances
    gaps = [gap for case in cases for gap in case.gaps.values()]
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "numpy": np.__version__,  # whose random stream drew the hidden inputs
        "tolerances": dict(tolerances),
        "gradient_check": {
            "what": "each analytic gradient against central differences of the reference, "
                    "measured by scaled_error with near_zero; not stored, not reproduced",
            "order": int(tolerances["numeric_order"]), "step": float(tolerances["numeric_step"]),
            "limit": float(tolerances["numeric_check"]), "worst_gap": _significant(max(gaps, default=0.0)),
        },
        "cases": [
            {
                "item": case.item, "name": case.name, "visibility": case.visibility,
                "file": case.relative_path, "args": case.args, "arrays": _describe(case),
                **({"gradient_gaps": {name: _significant(gap) for name, gap in case.gaps.items()}}
                   if case.gaps else {}),
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


# ----------------------------------------------------------------------------- comparing

def float_limits(rubric: Rubric) -> dict[str, float]:
    """Per floating-point role, how far a stored value may be from a fresh computation:
    verify_fraction of that role's grading tolerance."""
    fraction = float(rubric.tolerances["verify_fraction"])
    return {role: fraction * float(rubric.tolerances[key]) for role, key in FLOAT_ROLES.items()}


def array_difference(item: str, name: str, stored: np.ndarray, fresh: np.ndarray, rubric: Rubric,
                     what: str = "the reference") -> str | None:
    """Why `stored` is not an acceptable value of array `name` of an `item` case, given that
    `what` gives `fresh`; None when it is. Exact roles must match bit for bit; floating-point
    roles within `float_limits` (the loss absolutely, the others by scaled_error)."""
    role = ROLES[item].get(name)
    if role is None:
        return f"{name} is not an array of a {item} case"
    if stored.shape != fresh.shape or stored.dtype != fresh.dtype:
        return f"{name} is {stored.dtype}{stored.shape}, {what} gives {fresh.dtype}{fresh.shape}"
    if role in EXACT_ROLES:
        if np.array_equal(stored, fresh):
            return None
        differing = int(np.count_nonzero(stored != fresh))
        return f"{name} ({role}, exact) differs from {what} in {differing} of {stored.size} elements"
    limit = float_limits(rubric)[role]
    if role == "loss":
        error = float(np.max(np.abs(stored.astype(np.float64) - fresh)))
    else:
        error = scaled_error(stored, fresh, float(rubric.tolerances["near_zero"]))
    if error <= limit:
        return None
    return (f"{name} ({role}) differs from {what} by {error:.2e} (limit {limit:.0e}: "
            f"{rubric.tolerances['verify_fraction']:g} of the {FLOAT_ROLES[role]} tolerance)")


def compare_cases(stored: list[Case], fresh: list[Case], rubric: Rubric, what: str = "the reference") -> list[str]:
    """Every way `stored` cases differ from `fresh` ones (same files, arguments and arrays, each
    array compared by its role); `what` names where the fresh cases come from, in messages."""
    problems = []
    old = {case.relative_path: case for case in stored}
    new = {case.relative_path: case for case in fresh}
    problems += [f"{relative}: missing ({what} has this case)" for relative in sorted(set(new) - set(old))]
    problems += [f"{relative}: not a case of {what}" for relative in sorted(set(old) - set(new))]
    for relative in sorted(set(old) & set(new)):
        before, after = old[relative], new[relative]
        if before.args != after.args:
            problems.append(f"{relative}: arguments {before.args} != {after.args} from {what}")
            continue
        if set(before.arrays) != set(after.arrays):
            problems.append(f"{relative}: arrays {sorted(before.arrays)} != {sorted(after.arrays)} from {what}")
            continue
        for name in sorted(after.arrays):
            difference = array_difference(before.item, name, before.arrays[name], after.arrays[name], rubric, what)
            if difference:
                problems.append(f"{relative}: {difference}")
    return problems


def _only_inputs(case: Case) -> Case:
    return Case(case.item, case.name, case.visibility, case.args, case.inputs())


def verify_fixtures(reference: Path, fixtures: Path, rubric: Rubric) -> list[str]:
    """Every way `fixtures` differs from what the reference computes (empty: in sync).

    Arguments and inputs must be exactly what the manifest's seed draws; every output is
    recomputed by the reference from the *stored* inputs and compared by its role; every file
    must match its manifest hash and description."""
    manifest = read_manifest(fixtures)
    problems = []
    if manifest.get("generator_version") != GENERATOR_VERSION:
        problems.append(f"manifest generator_version {manifest.get('generator_version')} "
                        f"!= {GENERATOR_VERSION}: regenerate with `python grade.py fixtures`")
        return problems
    if manifest.get("tolerances") != dict(rubric.tolerances):
        problems.append("manifest tolerances differ from the rubric's")
    seed = int(manifest["seed"])
    stored: list[Case] = []
    unreadable: set[str] = set()
    for entry in manifest["cases"]:
        try:
            case = Case(entry["item"], entry["name"], entry["visibility"], entry["args"],
                        load_case_arrays(fixtures, entry))
        except (OSError, ValueError, FixtureError) as exc:
            problems.append(f"{entry['file']}: {exc}")
            unreadable.add(entry["file"])
            continue
        if case.relative_path != entry["file"]:
            problems.append(f"{entry['file']}: the manifest names it {case.relative_path}")
        elif case.item not in ROLES or set(case.arrays) != set(ROLES[case.item]):
            problems.append(f"{entry['file']}: arrays {sorted(case.arrays)} != {sorted(ROLES.get(case.item, {}))}")
        elif entry["arrays"] != _describe(case):
            problems.append(f"{entry['file']}: the manifest describes its arrays as {entry['arrays']}, "
                            f"the file holds {_describe(case)}")
        else:
            stored.append(case)

    # Exact: what the seed draws (no reference code involved).
    drawn = draw_cases(rubric, seed)
    drawn = [case for case in drawn if case.relative_path not in unreadable]  # already reported
    undrawn = compare_cases([_only_inputs(case) for case in stored], drawn, rubric, f"seed {seed}")
    if undrawn and manifest.get("numpy") != np.__version__:
        undrawn.append(f"the hidden cases were drawn with NumPy {manifest.get('numpy')}, this is NumPy "
                       f"{np.__version__}: if its random stream changed, regenerate with `python grade.py fixtures`")
    problems += undrawn
    # Sizes, selections and floating-point work: recomputed from the stored inputs.
    with imported_lib(reference) as lib:
        fresh = [Case(c.item, c.name, c.visibility, c.args, {**c.inputs(), **reference_outputs(lib, c)})
                 for c in stored]
    problems += compare_cases(stored, fresh, rubric)
    return problems

"""Describe a student's network by what its layers hold and do. Runs in the worker, on student objects.

The architecture rule (at most two convolutions and two pooling layers) and the grader's trusted
rebuild of the network both need to know what each layer is. Class identity cannot tell: a copied
class, a renamed class or a container of layers hides a convolution from `isinstance`. So each
layer is described by behaviour:

- a layer that holds a 4-D array is a convolution; its kernel comes from the weight's shape, its
  stride and padding from the output sizes it gives for square inputs of consecutive sizes;
- a layer with parameters that maps 2-D input to 2-D output is fully connected;
- a parameter-free layer that shrinks the spatial size and keeps the channels is a pooling layer
  (size and stride found the same way); one that turns (N, H, W, C) into the same numbers in
  (N, H*W*C) is a flatten;
- a parameter-free layer that keeps the shape is an identity, a dropout (identity when not
  training, masking when training), a leaky ReLU, whose slope is measured on negative inputs, or GELU
  (the tanh approximation); the parent identifies every activation again from the chain's arrays;
- a layer that holds other layers (a list, a tuple, a dict, a `sequential`) is looked inside.

Anything else is `unknown`, named by its class. The description is plain JSON with the chain's
intermediate outputs as arrays; the grader validates it (architecture.py) and believes none of it:
it only decides which trusted network to build from the student's saved weights. Whatever the
student's code returns is copied at once, and every call gets a fresh copy of its input.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

#: Attributes that hold a layer's runtime state, not what it is.
_STATE = {"meta", "grads", "kept", "cache", "rng", "mask", "logit", "label"}
_MAX_DEPTH = 6
_MAX_LAYERS = 200


def _is_layer(value: Any) -> bool:
    return not isinstance(value, type) and callable(getattr(value, "forward", None))


def _layer_lists(value: Any) -> list[tuple[str, Any]]:
    """Layer objects inside one attribute value: itself, a list, tuple or dict, or a sequential's layers."""
    if _is_layer(value):
        return [("", value)]
    if isinstance(value, (list, tuple)):
        return [(f"[{index}]", item) for index, item in enumerate(value) if _is_layer(item)]
    if isinstance(value, dict):
        return [(f"[{key!r}]", item) for key, item in value.items() if _is_layer(item)]
    inner = getattr(value, "layers", None) if not isinstance(value, (str, bytes, np.ndarray)) else None
    if isinstance(inner, (list, tuple)):
        return [(f".layers[{index}]", item) for index, item in enumerate(inner) if _is_layer(item)]
    return []


def _attributes(obj: Any) -> dict[str, Any]:
    try:
        return dict(vars(obj))
    except TypeError:
        return {}


def sublayers(layer: Any) -> list[tuple[str, Any]]:
    """The layers a layer holds, in attribute order, with the path to each."""
    found = []
    for key, value in _attributes(layer).items():
        if key in _STATE or key == "params":
            continue
        found += [(f".{key}{suffix}", item) for suffix, item in _layer_lists(value)]
    return found


def _params(layer: Any) -> list[tuple[str, np.ndarray]]:
    params = getattr(layer, "params", None)
    if not isinstance(params, dict):
        return []
    found = []
    for name, value in params.items():
        try:
            found.append((str(name), np.array(value, dtype=np.float64)))
        except (TypeError, ValueError):
            found.append((str(name), np.zeros(0)))
    return found


def _held_arrays(layer: Any) -> list[tuple[str, list[int]]]:
    """Arrays a layer keeps outside `params` (a weight hidden in an attribute, or in a list, tuple or
    dict an attribute holds, still counts)."""
    held = []
    for key, value in _attributes(layer).items():
        if key in _STATE or key == "params":
            continue
        if isinstance(value, np.ndarray):
            held.append((key, list(value.shape)))
        elif isinstance(value, (list, tuple, dict)):
            items = list(value.items())[:64] if isinstance(value, dict) else list(enumerate(value))[:64]
            held += [(f"{key}[{index!r}]", list(item.shape)) for index, item in items if isinstance(item, np.ndarray)]
    return held[:64]


def collect_leaves(model: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """Every leaf layer of `model.net.layers` in order (containers opened), and the paths of layers
    the model holds outside its net (kept for the rule, not for the chain)."""
    leaves: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def walk(path: str, layer: Any, depth: int) -> None:
        if id(layer) in seen or len(leaves) >= _MAX_LAYERS:
            return
        seen.add(id(layer))
        inner = sublayers(layer) if depth < _MAX_DEPTH else []
        if not inner:
            leaves.append((path, layer))
            return
        for suffix, child in inner:
            walk(path + suffix, child, depth + 1)

    for index, layer in enumerate(list(model.net.layers)):
        walk(f"net.layers[{index}]", layer, 0)
    in_chain = len(leaves)
    for key, value in _attributes(model).items():
        if key == "net" or key in _STATE:
            continue
        for suffix, layer in _layer_lists(value):
            walk(f"{key}{suffix}", layer, 0)
    outside = [path for path, _ in leaves[in_chain:]]
    return leaves, outside


def _output(value: Any) -> np.ndarray | None:
    """A copy of what a layer returned (its real dtype kept, so the next layer gets what the model's
    forward would give it), or None when it is not an array of numbers."""
    try:
        array = np.array(value)
        if array.dtype.kind not in "biuf":
            array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.ndim >= 1 else None


def _call(layer: Any, x: np.ndarray, *extra: Any) -> np.ndarray | None:
    try:
        return _output(layer.forward(np.array(x), *extra))
    except Exception:  # noqa: BLE001 - a probe the layer cannot take says something too
        return None


def _solve(sizes: dict[int, int], kernels: range, strides: range, pads: range) -> tuple[int, int, int] | None:
    """The one (kernel, stride, padding) for which every probed size h gives (h + 2p - k) // s + 1."""
    found = [(k, s, p) for k in kernels for s in strides for p in pads
             if all((h + 2 * p - k) // s + 1 == out for h, out in sizes.items())]
    return found[0] if len(found) == 1 else None


def _sizes(layer: Any, channels: int, heights: range, extra: tuple = ()) -> dict[int, int]:
    """Output height for square inputs (1, h, h, channels); only sizes whose output is square and 4-D."""
    sizes = {}
    rng = np.random.default_rng(0)
    for h in heights:
        out = _call(layer, rng.standard_normal((1, h, h, channels)), *extra)
        if out is not None and out.ndim == 4 and out.shape[1] == out.shape[2]:
            sizes[h] = int(out.shape[1])
    return sizes


def _accepts_training_flag(layer: Any) -> bool:
    try:
        parameters = list(inspect.signature(layer.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _signed_probe(shape: tuple[int, ...]) -> np.ndarray:
    """Values in [-1, 1] without zeros, both signs in every row: for elementwise layers."""
    values = (np.arange(int(np.prod(shape))) % 17 - 8.5) / 8.5
    return values.reshape(shape)


def _elementwise(layer: Any, x: np.ndarray) -> dict[str, Any]:
    """Identity, dropout, leaky ReLU (slope measured) or GELU (tanh approximation), else unknown; for
    shape-keeping layers. What it does, never what its class is called."""
    z = _signed_probe(x.shape)
    plain = _call(layer, z)
    if plain is None or plain.shape != z.shape:
        return {"kind": "unknown", "note": "keeps no consistent output shape"}
    if _accepts_training_flag(layer):
        evaluation, training = _call(layer, z, False), _call(layer, z, True)
    else:
        evaluation, training = plain, plain
    keep = getattr(layer, "keep_prob", None)
    keep = float(keep) if isinstance(keep, (int, float)) and not isinstance(keep, bool) else None
    if evaluation is not None and np.allclose(evaluation, z, rtol=1e-9, atol=0):
        if training is not None and training.shape == z.shape and not np.allclose(training, z, rtol=1e-9, atol=0):
            kept = training != 0
            return {"kind": "dropout", "keep_prob": keep if keep is not None else float(kept.mean())}
        if keep is not None:
            return {"kind": "dropout", "keep_prob": keep}
        if np.allclose(plain, z, rtol=1e-9, atol=0):
            return {"kind": "identity"}
    positive, negative = z > 0, z < 0
    if np.allclose(plain[positive], z[positive], rtol=1e-9, atol=0):
        ratios = plain[negative] / z[negative]
        slope = float(np.median(ratios))
        if np.allclose(ratios, slope, rtol=1e-7, atol=1e-12):
            return {"kind": "activation", "function": "leaky_relu", "slope": slope}
    inner = np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)
    if np.max(np.abs(plain - 0.5 * z * (1 + np.tanh(inner)))) <= 1e-5 * np.max(np.abs(plain)):
        return {"kind": "activation", "function": "gelu"}
    return {"kind": "unknown", "note": "keeps the shape but is not an identity, a dropout, a leaky ReLU or GELU"}


def _weight_and_bias(params: list[tuple[str, np.ndarray]], ndim: int) -> tuple[str | None, str | None]:
    """The one weight of `ndim` dimensions and the other parameter, if there is exactly one other."""
    weights = [name for name, value in params if value.ndim == ndim]
    if not weights:
        return None, None
    weight = max(weights, key=lambda name: dict(params)[name].size)
    others = [name for name, _ in params if name != weight]
    return weight, (others[0] if len(others) == 1 else (None if not others else "?"))


def _bias_fits(params: list[tuple[str, np.ndarray]], bias: str | None, outputs: int) -> bool:
    """No bias, or one holding one number per output (shaped (F,), (1, F), (1, 1, 1, F) alike)."""
    if bias is None:
        return True
    value = dict(params).get(bias)
    return value is not None and value.size == outputs and value.shape[-1] == outputs


def describe_layer(layer: Any, x: np.ndarray, limits: dict[str, int]) -> dict[str, Any]:
    """What one leaf layer is, given the input the chain feeds it (never modified)."""
    params = _params(layer)
    spec: dict[str, Any] = {"class": type(layer).__name__, "name": str(getattr(layer, "name", ""))[:100],
                            "params": [[name, list(value.shape)] for name, value in params],
                            "arrays": [[key, shape] for key, shape in _held_arrays(layer)],
                            "input_shape": list(x.shape)}
    four_d = [name for name, value in params if value.ndim == 4]
    spec["holds_4d"] = bool(four_d) or any(len(shape) == 4 for _, shape in spec["arrays"])
    max_stride, max_pad, max_kernel = limits["max_stride"], limits["max_padding"], limits["max_kernel"]
    out = _call(layer, x)
    spec["output_shape"] = list(out.shape) if out is not None else None
    if out is None:
        return dict(spec, kind="unknown",
                    note="raised, or returned something other than an array, on the chain's input")
    if four_d or (params and x.ndim == 4 and out.ndim == 4):
        spec["kind"] = "conv"
        weight_name, bias_name = _weight_and_bias(params, 4)
        if weight_name is None or x.ndim != 4:
            return dict(spec, note="a convolution, but not one 4-D weight (and at most one bias) on images")
        k1, k2, channels, filters = dict(params)[weight_name].shape
        if k1 != k2 or channels != x.shape[3] or not _bias_fits(params, bias_name, filters):
            return dict(spec, note="a convolution whose weight is not (K, K, input channels, filters) with one bias")
        geometry = _solve(_sizes(layer, channels, range(k1, k1 + 2 * max_stride + 1)),
                          range(k1, k1 + 1), range(1, max_stride + 1), range(0, max_pad + 1))
        if geometry is None:
            return dict(spec, note="a convolution whose stride and padding could not be measured")
        spec["conv"] = {"kernel": k1, "stride": geometry[1], "padding": geometry[2], "in_channels": channels,
                        "filters": filters, "weight": weight_name, "bias": bias_name}
        return spec
    if params:
        weight_name, bias_name = _weight_and_bias(params, 2)
        if weight_name is not None and x.ndim == 2 and out.ndim == 2:
            inputs, outputs = dict(params)[weight_name].shape
            if inputs == x.shape[1] and out.shape[1] == outputs and _bias_fits(params, bias_name, outputs):
                spec["fc"] = {"inputs": inputs, "outputs": outputs, "weight": weight_name, "bias": bias_name}
                return dict(spec, kind="fc")
        return dict(spec, kind="unknown", note="has parameters but is neither a convolution nor fully connected")
    if x.ndim == 4 and out.ndim == 2 and out.shape == (x.shape[0], int(np.prod(x.shape[1:]))):
        if np.array_equal(out, x.reshape(x.shape[0], -1)):
            return dict(spec, kind="flatten")
        return dict(spec, kind="unknown", note="flattens in another order than (H, W, C)")
    if x.ndim == 4 and out.ndim == 4 and out.shape[0] == x.shape[0] and out.shape[3] == x.shape[3] \
            and out.shape[1:3] != x.shape[1:3] and out.shape[1] <= x.shape[1] and out.shape[2] <= x.shape[2]:
        spec["kind"] = "pool"
        geometry = _solve(_sizes(layer, x.shape[3], range(max_kernel, max_kernel + 2 * max_stride + 1)),
                          range(1, max_kernel + 1), range(1, max_stride + 1), range(0, 1))
        if geometry is None:
            return dict(spec, note="a pooling layer whose size and stride could not be measured")
        spec["pool"] = {"size": geometry[0], "stride": geometry[1]}
        return spec
    if out.shape == x.shape:
        return dict(spec, **_elementwise(layer, x))
    return dict(spec, kind="unknown", note=f"turns {tuple(x.shape)} into {tuple(out.shape)} without parameters")


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if not a.size or np.array_equal(a, b, equal_nan=True):
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        error = float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
    return error if np.isfinite(error) else float("inf")


def describe_model(model: Any, probe: np.ndarray, limits: dict[str, int], tolerance: float
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON description of `model`'s layers and, as arrays, each leaf's output on the probe and
    each leaf's initial parameters (named `out.{i}` and `param.{i}.{name}`), for the grader's checks.

    `faithful` says whether the model's own forward (not training) equals its leaves applied in
    order; only then can a network rebuilt from the leaves stand for the student's.
    """
    leaves, outside = collect_leaves(model)
    layers, arrays = [], {}
    x = np.array(probe)
    chain_ok = True
    for index, (path, layer) in enumerate(leaves):
        in_chain = path not in outside
        if not in_chain:
            spec = {"class": type(layer).__name__, "name": str(getattr(layer, "name", ""))[:100],
                    "params": [[n, list(v.shape)] for n, v in _params(layer)],
                    "arrays": [[k, s] for k, s in _held_arrays(layer)], "kind": "outside",
                    "note": "held by the model outside model.net"}
            spec["holds_4d"] = any(len(s) == 4 for _, s in spec["params"] + spec["arrays"])
            layers.append(dict(spec, path=path, chain=False))
            continue
        if not chain_ok:
            layers.append({"path": path, "class": type(layer).__name__, "name": str(getattr(layer, "name", ""))[:100],
                           "params": [[n, list(v.shape)] for n, v in _params(layer)], "kind": "unknown",
                           "arrays": [[k, sh] for k, sh in _held_arrays(layer)],
                           "holds_4d": any(v.ndim == 4 for _, v in _params(layer))
                           or any(len(sh) == 4 for _, sh in _held_arrays(layer)),
                           "note": "not probed: an earlier layer failed", "chain": True})
            continue
        spec = describe_layer(layer, x, limits)
        layers.append(dict(spec, path=path, chain=True))
        for name, value in _params(layer):
            arrays[f"param.{index}.{name}"] = value
        out = x if spec["kind"] in ("identity", "dropout") else _call(layer, x)
        if out is None:
            chain_ok = False
            continue
        arrays[f"out.{index}"] = out
        x = out
    header: dict[str, Any] = {"layers": layers, "faithful": False}
    try:
        model_out = _output(model.forward(np.array(probe), False))
    except Exception as exc:  # noqa: BLE001
        model_out = None
        header["forward_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if model_out is not None:
        header["output_shape"] = list(model_out.shape)
        header["faithful_error"] = _relative(model_out, x) if chain_ok else None
        header["faithful"] = bool(chain_ok and header["faithful_error"] <= tolerance)
        arrays["model_out"] = model_out
    first_conv = next((layer for (path, layer), spec in zip(leaves, layers) if spec.get("kind") == "conv"), None)
    header["first_conv_w"] = getattr(first_conv, "w_name", None) if first_conv is not None else None
    if not isinstance(header["first_conv_w"], str):
        conv_spec = next((spec for spec in layers if spec.get("kind") == "conv" and spec.get("conv")), None)
        header["first_conv_w"] = conv_spec["conv"]["weight"] if conv_spec else None
    return header, arrays


def load_weights(model: Any, saved: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """Put saved arrays into every leaf's params by name; returns the names missing and unused."""
    leaves, _ = collect_leaves(model)
    names = set()
    for _, layer in leaves:
        params = getattr(layer, "params", None)
        if not isinstance(params, dict):
            continue
        for name in list(params):
            names.add(str(name))
            if name in saved:
                params[name] = np.array(saved[name])
    gather = getattr(getattr(model, "net", None), "gather_params", None)
    if callable(gather):
        gather()
    return sorted(names - set(saved)), sorted(set(saved) - names)


def predict(model: Any, images: np.ndarray, batch: int) -> np.ndarray:
    """Classes predicted by the model's own forward (not training), a batch at a time; -1 where the
    scores of an image are not finite."""
    predictions = []
    for start in range(0, images.shape[0], batch):
        scores = np.array(model.forward(np.array(images[start:start + batch]), False), dtype=np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        chosen = np.argmax(scores, axis=1)
        chosen[~np.all(np.isfinite(scores), axis=1)] = -1
        predictions.append(chosen)
    return np.concatenate(predictions).astype(np.int64) if predictions else np.zeros(0, np.int64)

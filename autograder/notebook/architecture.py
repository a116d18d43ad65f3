"""The student's network as the grader understands it: a validated description, the rule, a summary.

The worker describes the network by behaviour (probe.py) and sends plain JSON. Here that JSON is
read as a claim: every field is type- and range-checked, and anything malformed makes its layer
`unknown` instead of failing the grade. The assignment's rule (at most two convolutions and two
pooling layers) is enforced on this description, counting every layer that holds a 4-D array as a
convolution, wherever it sits (inside a container, or held by the model outside its net). Whether
the grader can rebuild the network with trusted code (trusted_eval.py) is decided here as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

REBUILDABLE = {"conv", "pool", "fc", "flatten", "activation", "dropout", "identity"}
_KINDS = REBUILDABLE | {"unknown", "outside"}


@dataclass(frozen=True)
class Layer:
    """One leaf layer: what it is and, for the kinds the grader can rebuild, its geometry."""

    path: str
    cls: str
    name: str
    kind: str
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    holds_4d: bool = False
    chain: bool = True  # in model.net's order (False: held by the model outside its net)
    geometry: Mapping[str, Any] = field(default_factory=dict)  # conv / pool / fc / activation / dropout figures
    note: str = ""  # why an unknown layer, or a known one, cannot be rebuilt
    mixes: bool = False  # measured by the parent: it spreads a one-pixel change to neighbouring pixels

    @property
    def counts_as_conv(self) -> bool:
        """A convolution for the rule: described as one, holding a 4-D array, or mixing neighbouring pixels."""
        return self.kind == "conv" or self.holds_4d or self.mixes

    @property
    def rebuildable(self) -> bool:
        if not self.chain or self.note or self.kind not in REBUILDABLE:
            return False
        return self.kind not in ("conv", "pool", "fc", "activation") or bool(self.geometry)

    def summary(self) -> str:
        """A short name of what the layer does, e.g. `conv 3x3/2 pad 0 16->32`."""
        g = self.geometry
        if self.kind == "conv" and g:
            return (f"conv {g['kernel']}x{g['kernel']}/{g['stride']} pad {g['padding']} "
                    f"{g['in_channels']}->{g['filters']}")
        if self.kind == "pool" and g:
            return f"max-pool {g['size']}x{g['size']}/{g['stride']}"
        if self.kind == "fc" and g:
            return f"fc {g['inputs']}->{g['outputs']}"
        if self.kind == "activation" and g:
            return "ReLU" if g["slope"] == 0 else f"leaky ReLU {g['slope']:g}"
        if self.kind == "dropout":
            return "dropout (off)"
        if self.kind in ("flatten", "identity"):
            return self.kind
        return f"{self.kind} {self.cls}"


@dataclass(frozen=True)
class Architecture:
    """The whole description: leaves in order, and whether the model's forward is their chain."""

    layers: tuple[Layer, ...]
    faithful: bool
    output_shape: tuple[int, ...] | None
    forward_error: str = ""

    @property
    def conv_count(self) -> int:
        return sum(1 for layer in self.layers if layer.counts_as_conv)

    @property
    def pool_count(self) -> int:
        return sum(1 for layer in self.layers if layer.kind == "pool")

    @property
    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers if layer.chain]

    def unknown(self) -> list[Layer]:
        """Layers the grader does not recognise or cannot rebuild, for feedback by class name."""
        return [layer for layer in self.layers if not layer.rebuildable]

    def summary(self) -> list[str]:
        return [layer.summary() for layer in self.layers if layer.chain]

    def as_json(self) -> list[dict[str, Any]]:
        """For results.json: what each layer is, by path and class."""
        return [{"path": layer.path, "class": layer.cls, "name": layer.name, "kind": layer.kind,
                 "summary": layer.summary(), "params": [name for name, _ in layer.params],
                 **({"note": layer.note} if layer.note else {})} for layer in self.layers]


def _int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{value!r} is not an integer in {low}..{high}")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"{value!r} is not a parameter name")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 8:
        raise ValueError(f"{value!r} is not a shape")
    return tuple(_int(v, 0, 1 << 30) for v in value)


def _geometry(kind: str, raw: Mapping[str, Any], params: dict[str, tuple[int, ...]],
              limits: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of one layer, checked against its own parameters' shapes."""
    big = 1 << 20
    if kind == "conv":
        g = raw["conv"]
        figures = {"kernel": _int(g["kernel"], 1, limits["probe_max_kernel"] * 4),
                   "stride": _int(g["stride"], 1, limits["probe_max_stride"]),
                   "padding": _int(g["padding"], 0, limits["probe_max_padding"]),
                   "in_channels": _int(g["in_channels"], 1, big), "filters": _int(g["filters"], 1, big),
                   "weight": _name(g["weight"]), "bias": None if g.get("bias") is None else _name(g["bias"])}
        expected = (figures["kernel"], figures["kernel"], figures["in_channels"], figures["filters"])
        if params.get(figures["weight"]) != expected:
            raise ValueError(f"weight {figures['weight']!r} is not {expected}")
        return figures
    if kind == "pool":
        g = raw["pool"]
        return {"size": _int(g["size"], 1, limits["probe_max_kernel"]),
                "stride": _int(g["stride"], 1, limits["probe_max_stride"])}
    if kind == "fc":
        g = raw["fc"]
        figures = {"inputs": _int(g["inputs"], 1, 1 << 24), "outputs": _int(g["outputs"], 1, big),
                   "weight": _name(g["weight"]), "bias": None if g.get("bias") is None else _name(g["bias"])}
        if params.get(figures["weight"]) != (figures["inputs"], figures["outputs"]):
            raise ValueError(f"weight {figures['weight']!r} is not ({figures['inputs']}, {figures['outputs']})")
        return figures
    if kind == "activation":
        slope = raw["slope"]
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not -1e6 < slope < 1e6:
            raise ValueError(f"slope {slope!r}")
        return {"slope": float(slope)}
    if kind == "dropout":
        keep = raw.get("keep_prob")
        return {"keep_prob": float(keep)} if isinstance(keep, (int, float)) and not isinstance(keep, bool) else {}
    return {}


def parse_layer(raw: Any, limits: Mapping[str, Any]) -> Layer:
    """One layer of the worker's description; malformed parts make it `unknown` with the reason."""
    if not isinstance(raw, dict):
        return Layer("?", "?", "", "unknown", note="the description of this layer was not an object")
    path, cls, name = (str(raw.get(key, "?"))[:200] for key in ("path", "class", "name"))
    kind = raw.get("kind") if raw.get("kind") in _KINDS else "unknown"
    try:
        params = tuple((_name(entry[0]), _shape(entry[1])) for entry in raw.get("params", [])[:64])
        arrays = [_shape(entry[1]) for entry in raw.get("arrays", [])[:64]]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        return Layer(path, cls, name, "unknown", holds_4d=bool(raw.get("holds_4d")),
                     note=f"malformed description ({exc})")
    holds_4d = any(len(shape) == 4 for _, shape in params) or any(len(shape) == 4 for shape in arrays)
    chain = raw.get("chain") is not False
    note = str(raw.get("note", ""))[:300]
    if kind == "outside":
        return Layer(path, cls, name, kind, params, holds_4d, False, note=note or "held by the model outside model.net")
    if kind in ("conv", "pool") and note:
        return Layer(path, cls, name, kind, params, holds_4d, chain, note=note)
    try:
        geometry = _geometry(kind, raw, dict(params), limits)
    except (ValueError, TypeError, KeyError) as exc:
        return Layer(path, cls, name, kind if kind in ("conv", "pool") else "unknown", params, holds_4d, chain,
                     note=f"its {kind} figures do not hold together ({exc})")
    if kind == "unknown" and not note:
        note = "not recognised"
    return Layer(path, cls, name, kind, params, holds_4d, chain, geometry, note)


def parse_description(header: Mapping[str, Any], limits: Mapping[str, Any]) -> Architecture:
    """The Architecture of the worker's `small_cnn` answer."""
    raw_layers = header.get("layers")
    layers = tuple(parse_layer(raw, limits) for raw in (raw_layers if isinstance(raw_layers, list) else [])[:200])
    shape = header.get("output_shape")
    try:
        output_shape = _shape(shape) if shape is not None else None
    except ValueError:
        output_shape = None
    return Architecture(layers, header.get("faithful") is True, output_shape,
                        str(header.get("forward_error", ""))[:300])


def rule_violation(architecture: Architecture | None, limits: Mapping[str, Any], classes: int = 10) -> str:
    """Why the network breaks the assignment's rule, or "" when it keeps it (or is not known); `classes`:
    the edition's (rubric.edition.dataset.classes), one output score each."""
    if architecture is None or not architecture.layers:
        return ""
    conv, pool = architecture.conv_count, architecture.pool_count
    if conv > limits["max_conv_layers"] or pool > limits["max_pool_layers"]:
        where = [f"{layer.path} ({layer.cls})" for layer in architecture.layers
                 if layer.kind == "pool" or layer.counts_as_conv]
        return (f"SmallConvolutionalNetwork has {conv} convolution and {pool} pooling layers (found by what they "
                f"hold and do: {', '.join(where)}); at most {limits['max_conv_layers']} and "
                f"{limits['max_pool_layers']} are allowed")
    shape = architecture.output_shape
    if shape is not None and (len(shape) != 2 or shape[-1] != classes):
        return (f"SmallConvolutionalNetwork's output has shape {shape} for {shape[0]} images; "
                f"expected ({shape[0]}, {classes})")
    return ""


def cost(architecture: Architecture) -> tuple[int, int]:
    """Parameters and multiply-adds per 32x32x3 image of the rebuildable chain."""
    parameters = sum(int(_product(shape)) for layer in architecture.layers for _, shape in layer.params)
    macs, height, width = 0, 32, 32
    for layer in architecture.layers:
        g = layer.geometry
        if layer.kind == "conv" and g:
            height = (height + 2 * g["padding"] - g["kernel"]) // g["stride"] + 1
            width = (width + 2 * g["padding"] - g["kernel"]) // g["stride"] + 1
            macs += max(height, 0) * max(width, 0) * g["kernel"] ** 2 * g["in_channels"] * g["filters"]
        elif layer.kind == "pool" and g:
            height, width = (height - g["size"]) // g["stride"] + 1, (width - g["size"]) // g["stride"] + 1
        elif layer.kind == "fc" and g:
            macs += g["inputs"] * g["outputs"]
    return parameters, macs


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for value in shape:
        total *= value
    return total


def why_not_rebuildable(architecture: Architecture, limits: Mapping[str, Any]) -> list[str]:
    """Why the grader cannot evaluate this network with trusted code; empty when it can."""
    reasons = [f"{layer.path} ({layer.cls}{f' {layer.name!r}' if layer.name else ''}): {layer.note or 'not recognised'}"
               for layer in architecture.layers if layer.chain and not layer.rebuildable]
    if not any(layer.chain for layer in architecture.layers):
        reasons.append("it has no layers")
    if not reasons and not architecture.faithful:
        reasons.append("its forward does not equal its layers applied in order"
                       + (f" ({architecture.forward_error})" if architecture.forward_error else ""))
    if not reasons:
        parameters, macs = cost(architecture)
        if parameters > limits["max_trusted_parameters"] or macs > limits["max_trusted_mmacs_per_image"] * 1e6:
            reasons.append(f"it is larger ({parameters} parameters, {macs / 1e6:.0f} M multiply-adds per image) than "
                           f"the trusted forward evaluates")
    return reasons


@dataclass(frozen=True)
class FirstConv:
    """The network's first convolution as the parent validated it: the saved array the trusted forward
    uses as its first layer (by name), and the shape the description gives it (K, K, 3, F)."""

    name: str
    shape: tuple[int, ...]
    layer: str  # its path, for feedback


def first_convolution(architecture: Architecture | None) -> FirstConv | None:
    """The first layer of the chain that counts as a convolution, when it is one the grader can rebuild
    on the images' 3 channels; None otherwise (a hidden or unmeasured first convolution has no weights
    the grader could vouch for). Never the name a worker's header offers on its own."""
    if architecture is None:
        return None
    first = next((layer for layer in architecture.layers if layer.chain and layer.counts_as_conv), None)
    if first is None or first.kind != "conv" or not first.rebuildable or first.geometry.get("in_channels") != 3:
        return None
    name = first.geometry["weight"]
    return FirstConv(name, dict(first.params)[name], first.path)


def _spatial_change(before: np.ndarray, after: np.ndarray, tolerance: float) -> np.ndarray:
    """Where (H, W) two feature maps of one image differ, relative to their scale."""
    with np.errstate(invalid="ignore", over="ignore"):  # a student's inf or NaN: no change measured there
        difference = np.max(np.abs(after.astype(np.float64) - before.astype(np.float64)), axis=-1)
        scale = max(float(np.max(np.abs(before))), float(np.max(np.abs(after))), 1e-12)
        return difference > tolerance * scale


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """The positions within `radius` (Chebyshev) of a True one."""
    grown = np.zeros_like(mask)
    height, width = mask.shape
    for i, j in zip(*np.nonzero(mask)):
        grown[max(0, i - radius):min(height, i + radius + 1), max(0, j - radius):min(width, j + radius + 1)] = True
    return grown


def mixes_neighbours(before: np.ndarray, after: np.ndarray, changed_before: np.ndarray, changed_after: np.ndarray,
                     limits: Mapping[str, Any]) -> bool:
    """Whether a shape-keeping layer spread a local change of its input to neighbouring pixels.

    `before`/`after` are the layer's input and output for the unchanged image, `changed_*` for the
    same image with one pixel changed (N=1 each, (H, W, C)). The input's change sits on a set S of
    pixels; a layer that works pixel by pixel (an activation, a dropout, an identity, a 1x1 channel
    mix) changes its output on S only. One that changes pixels next to S, much more than it changes
    pixels far from S (a global normalisation changes them all alike), mixes neighbouring pixels: a
    convolution, whatever it stores."""
    if before.shape[:2] != after.shape[:2]:
        return False
    tolerance = float(limits["mixing_tolerance"])
    source = _spatial_change(before, changed_before, tolerance)
    if not source.any() or source.all():
        return False  # no evidence: the change vanished, or already covers the map
    response = np.max(np.abs(changed_after.astype(np.float64) - after.astype(np.float64)), axis=-1)
    scale = max(float(np.max(np.abs(after))), float(np.max(np.abs(changed_after))), 1e-12)
    near = _dilate(source, int(limits["probe_max_kernel"]) // 2) & ~source
    far = ~_dilate(source, int(limits["probe_max_kernel"]) // 2)
    near_change = float(np.max(response[near])) if near.any() else 0.0
    far_change = float(np.max(response[far])) if far.any() else 0.0
    return near_change > tolerance * scale and near_change > float(limits["mixing_locality"]) * far_change


def mark_spatial_mixers(architecture: Architecture, probe: np.ndarray, arrays: Mapping[str, np.ndarray],
                        pairs: Sequence[tuple[int, int]], limits: Mapping[str, Any]) -> Architecture:
    """The architecture with every chain layer that mixes neighbouring pixels marked (`mixes`), measured
    here from the chain's outputs on the probe: `pairs` are (image, the same image with one pixel
    changed) rows of the probe batch. Conv and pool layers are what they say; every other 4-D layer is
    checked, whatever its description claims it is."""
    x = np.asarray(probe)
    layers = list(architecture.layers)
    for index, layer in enumerate(layers):
        if not layer.chain:
            continue
        out = arrays.get(f"out.{index}")
        if out is None or not isinstance(out, np.ndarray):
            break
        if layer.kind not in ("conv", "pool") and x.ndim == 4 and out.ndim == 4 and out.shape[0] == x.shape[0] \
                and all(max(a, b) < x.shape[0] for a, b in pairs):
            if any(mixes_neighbours(x[a], out[a], x[b], out[b], limits) for a, b in pairs):
                layers[index] = replace(layer, mixes=True)
        x = out
    return replace(architecture, layers=tuple(layers))

"""The student's network as the grader understands it: a validated description, the rule, a summary.

The worker describes the network by behaviour (probe.py) and sends plain JSON. Here that JSON is
read as a claim: every field is type- and range-checked, and anything malformed makes its layer
`unknown` instead of failing the grade. The assignment's rule (at most two convolutions and two
pooling layers) is enforced on this description, counting every layer that holds a 4-D array as a
convolution, wherever it sits (inside a container, or held by the model outside its net). Whether
the grader can rebuild the network with trusted code (trusted_eval.py) is decided here as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

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
        return sum(1 for layer in self.layers if layer.kind == "conv" or layer.holds_4d)

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


def rule_violation(architecture: Architecture | None, limits: Mapping[str, Any]) -> str:
    """Why the network breaks the assignment's rule, or "" when it keeps it (or is not known)."""
    if architecture is None or not architecture.layers:
        return ""
    conv, pool = architecture.conv_count, architecture.pool_count
    if conv > limits["max_conv_layers"] or pool > limits["max_pool_layers"]:
        where = [f"{layer.path} ({layer.cls})" for layer in architecture.layers
                 if layer.kind in ("conv", "pool") or layer.holds_4d]
        return (f"SmallConvolutionalNetwork has {conv} convolution and {pool} pooling layers (found by what they "
                f"hold and do: {', '.join(where)}); at most {limits['max_conv_layers']} and "
                f"{limits['max_pool_layers']} are allowed")
    shape = architecture.output_shape
    if shape is not None and (len(shape) != 2 or shape[-1] != 10):
        return f"SmallConvolutionalNetwork's output has shape {shape} for 2 images; expected (2, 10)"
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

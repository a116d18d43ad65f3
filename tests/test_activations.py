"""Activations the trusted forward evaluates (leaky ReLU, ReLU, GELU with the tanh approximation), each
identified by the parent from the layer's input and output on the probe, never from its class or name."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from autograder.notebook.architecture import gelu_tanh, identify_activation, read_description, why_not_rebuildable
from autograder.notebook.training_evidence import IMPULSE_PAIRS, probe_images
from autograder.notebook.trusted_eval import TrustedNet
from autograder.rubric import load_rubric
from autograder.sandbox.probe import describe_model

RUBRIC = load_rubric()
LIMITS = {"max_kernel": RUBRIC.training["probe_max_kernel"], "max_stride": RUBRIC.training["probe_max_stride"],
          "max_padding": RUBRIC.training["probe_max_padding"]}
TOLERANCE = RUBRIC.training["chain_tolerance"]


class gelu:  # noqa: N801 - named as the 2023 handout names its layer
    """GELU as the 2023 handout defines it, written here from its formula, in float64 like the handout."""

    def __init__(self, name="gelu"):
        self.name, self.params, self.grads, self.meta = name, {}, {}, None

    def forward(self, feat):
        self.meta = feat
        return 0.5 * feat * (1 + np.tanh(np.sqrt(2 / np.pi) * (feat + 0.044715 * np.power(feat, 3))))


class LeakyCalledGelu(gelu):
    """A layer whose class and name say GELU but which computes a leaky ReLU of slope 0.1."""

    def forward(self, feat):
        self.meta = feat
        return np.where(feat >= 0, feat, 0.1 * feat)


class Model:
    """The handout's Module: a net of layers applied in order (no dropout here)."""

    def __init__(self, ref, *layers):
        self.net = ref.mlp_layers.sequential(*layers)

    def forward(self, feat, is_training=True, seed=None):
        for layer in self.net.layers:
            feat = layer.forward(feat)
        return feat


def cifar_network(ref, activation):
    """A 20-class network of the 2023 shape: conv, activation, pool, conv, activation, pool, fc, act, fc."""
    np.random.seed(7)
    conv, pool, mlp = ref.cnn_layers.ConvLayer2D, ref.cnn_layers.MaxPoolingLayer, ref.mlp_layers
    return Model(ref, conv(3, 3, 8, stride=1, padding=1, name="conv1"), activation("a1"), pool(2, 2, "pool1"),
                 conv(8, 3, 16, stride=1, padding=1, name="conv2"), activation("a2"), pool(2, 2, "pool2"),
                 mlp.flatten(name="flat"), mlp.fc(1024, 50, 0.02, name="fc1"), activation("a3"),
                 mlp.fc(50, 20, 0.02, name="fc2"))


def read(model):
    """The network as the parent reads it: described in this process as the worker would, crossing as
    JSON, then validated and identified from the chain's arrays on the grader's probe."""
    probe = probe_images()
    header, arrays = describe_model(model, probe, LIMITS, TOLERANCE)
    header = json.loads(json.dumps(header))
    return read_description(header, arrays, probe, IMPULSE_PAIRS, RUBRIC.training), header, arrays


def test_gelu_is_the_handouts_formula():
    for value in (-6.0, -2.5, -0.3, 0.0, 0.7, 3.1):
        expected = 0.5 * value * (1 + math.tanh(math.sqrt(2 / math.pi) * (value + 0.044715 * value ** 3)))
        assert gelu_tanh(np.array([value]))[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    x32 = np.linspace(-5, 5, 101, dtype=np.float32)
    assert gelu_tanh(x32).dtype == np.float32  # the trusted forward's precision is kept


def test_a_gelu_networks_saved_weights_evaluate_as_its_own_layers(ref):
    model = cifar_network(ref, gelu)
    architecture, _, _ = read(model)
    assert architecture.summary() == ["conv 3x3/1 pad 1 3->8", "GELU (tanh)", "max-pool 2x2/2",
                                      "conv 3x3/1 pad 1 8->16", "GELU (tanh)", "max-pool 2x2/2", "flatten",
                                      "fc 1024->50", "GELU (tanh)", "fc 50->20"]
    assert why_not_rebuildable(architecture, RUBRIC.training) == []
    # "Trained" weights (He-scaled, so that predictions vary), saved as a notebook would save them.
    rng = np.random.default_rng(11)
    saved = {name: rng.normal(0, np.sqrt(2 / np.prod(np.shape(value)[:-1])) if np.ndim(value) > 1 else 0.1,
                              np.shape(value)) for name, value in model.net.params.items()}
    for layer in model.net.layers:
        for name in getattr(layer, "params", {}):
            layer.params[name] = saved[name]
    images = (np.random.default_rng(3).standard_normal((300, 32, 32, 3))).astype(np.float32)
    theirs = model.forward(images.astype(np.float64), False)
    net = TrustedNet.build(architecture, saved)
    ours = net.scores(images)
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))  # float32 against float64
    agree = np.mean(net.predict(images) == np.argmax(theirs, axis=1))
    assert agree >= 1 - RUBRIC.training["max_disagreements"] / 300
    assert len(set(np.argmax(theirs, axis=1).tolist())) > 2  # not a constant prediction
    # The same weights evaluated as a leaky ReLU network would give other scores: the function matters.
    as_leaky = {"function": "leaky_relu", "slope": 0.01}
    leaky = replace(architecture, layers=tuple(replace(layer, geometry=as_leaky) if layer.kind == "activation"
                                               else layer for layer in architecture.layers))
    assert np.max(np.abs(TrustedNet.build(leaky, saved).scores(images) - theirs)) > 1e-2 * np.max(np.abs(theirs))


def test_a_layer_named_gelu_that_computes_leaky_relu_is_evaluated_as_what_it_computes(ref):
    model = cifar_network(ref, LeakyCalledGelu)
    architecture, header, arrays = read(model)
    activations = [layer for layer in architecture.layers if layer.kind == "activation"]
    assert [layer.cls for layer in activations] == ["LeakyCalledGelu"] * 3
    assert [layer.name for layer in activations] == ["a1", "a2", "a3"]
    assert all(layer.geometry == {"function": "leaky_relu", "slope": pytest.approx(0.1)} for layer in activations)
    images = (np.random.default_rng(4).standard_normal((50, 32, 32, 3))).astype(np.float32)
    theirs = model.forward(images.astype(np.float64), False)
    ours = TrustedNet.build(architecture, model.net.params).scores(images)
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))
    # A worker that names it GELU in its description (its code could be patched to) changes nothing.
    forged = copy.deepcopy(header)
    for spec in forged["layers"]:
        if spec["kind"] == "activation":
            spec.update(function="gelu", slope=0.0)
    again = read_description(forged, arrays, probe_images(), IMPULSE_PAIRS, RUBRIC.training)
    assert [layer.summary() for layer in again.layers if layer.kind == "activation"] == ["leaky ReLU 0.1"] * 3


def test_relu_is_a_leaky_relu_of_slope_zero(ref):
    model = cifar_network(ref, lambda name: ref.mlp_layers.leaky_relu(0.0, name=name))
    architecture, _, _ = read(model)
    assert [layer.summary() for layer in architecture.layers if layer.kind == "activation"] == ["ReLU"] * 3
    images = (np.random.default_rng(5).standard_normal((40, 32, 32, 3))).astype(np.float32)
    theirs = model.forward(images.astype(np.float64), False)
    ours = TrustedNet.build(architecture, model.net.params).scores(images)
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))


def test_a_claimed_activation_computing_neither_is_not_rebuilt(ref):
    """The worker says "leaky ReLU" (a forged description) but the chain's arrays show tanh: the parent
    identifies nothing, and the network is not rebuilt, with the reason."""
    model = cifar_network(ref, gelu)
    _, header, arrays = read(model)
    arrays = dict(arrays)
    arrays["out.1"] = np.tanh(arrays["out.0"])
    header["layers"][1].update(kind="activation", function="leaky_relu", slope=0.01)
    architecture = read_description(header, arrays, probe_images(), IMPULSE_PAIRS, RUBRIC.training)
    assert architecture.layers[1].kind == "activation" and not architecture.layers[1].rebuildable
    reasons = why_not_rebuildable(architecture, RUBRIC.training)
    assert len(reasons) == 1 and "neither a leaky ReLU's (any slope) nor GELU's" in reasons[0]


def test_identification_from_input_and_output_alone():
    x = np.random.default_rng(6).standard_normal((2, 8, 8, 4)) * 2
    assert identify_activation(x, gelu_tanh(x), TOLERANCE)[0] == {"function": "gelu"}
    # float32 arithmetic (GELU's tail loses relative precision) is still GELU, judged at the map's scale
    x32 = x.astype(np.float32)
    assert identify_activation(x32, gelu_tanh(x32), TOLERANCE)[0] == {"function": "gelu"}
    assert identify_activation(x, np.where(x >= 0, x, 0.2 * x), TOLERANCE)[0] == {"function": "leaky_relu",
                                                                                     "slope": pytest.approx(0.2)}
    # GELU with erf (not the handout's tanh approximation) differs by ~1e-3 of the scale: not identified
    from scipy.special import erf
    geometry, why = identify_activation(x, 0.5 * x * (1 + erf(x / np.sqrt(2))), TOLERANCE)
    assert geometry == {} and "neither" in why
    geometry, why = identify_activation(np.abs(x), np.abs(x), TOLERANCE)
    assert geometry == {} and "no negative values" in why
    # after a ReLU no slope shows: a claimed leaky ReLU acts as the identity there, whatever its slope
    assert identify_activation(np.abs(x), np.abs(x), TOLERANCE, 0.01)[0] == {"function": "leaky_relu", "slope": 0.01}
    assert identify_activation(np.abs(x), np.abs(x) * 2, TOLERANCE, 0.01)[0] == {}


def test_an_activation_first_leaves_the_callers_images_as_they_were(ref):
    """Activations run in place inside the trusted forward; the split's images (shared by every check
    of a submission) are never changed by it."""
    model = Model(ref, ref.mlp_layers.leaky_relu(0.1, name="first"), ref.mlp_layers.flatten(name="flat"),
                  ref.mlp_layers.fc(3072, 20, 0.02, name="fc"))
    architecture, _, _ = read(model)
    assert architecture.summary()[0] == "leaky ReLU 0.1"
    images = np.random.default_rng(8).standard_normal((10, 32, 32, 3)).astype(np.float32)
    before = images.copy()
    TrustedNet.build(architecture, model.net.params).predict(images)
    np.testing.assert_array_equal(images, before)

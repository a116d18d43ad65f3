"""Describing a network by what its layers hold and do, and reading that description as a claim.

The probe (autograder/sandbox/probe.py) runs in the worker on student objects; here it runs in-process on the
reference's trusted layers and on small layer classes written for the test, which is enough to check
what it measures. The description then goes through the grader's validation (architecture.py).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from autograder.notebook.architecture import parse_description, read_description, rule_violation, why_not_rebuildable
from autograder.notebook.training_evidence import IMPULSE_PAIRS
from autograder.rubric import load_rubric
from autograder.sandbox.probe import describe_layer, describe_model

RUBRIC = load_rubric()
LIMITS = {"max_kernel": RUBRIC.training["probe_max_kernel"], "max_stride": RUBRIC.training["probe_max_stride"],
          "max_padding": RUBRIC.training["probe_max_padding"]}
PROBE = (np.random.default_rng(0).standard_normal((2, 32, 32, 3)) * 0.25).astype(np.float32)


def describe(model):
    header, arrays = describe_model(model, PROBE, LIMITS, RUBRIC.training["chain_tolerance"])
    json.dumps(header)  # plain JSON, as it crosses the worker boundary
    return read_description(header, arrays, PROBE, IMPULSE_PAIRS, RUBRIC.training), header, arrays


class Model:
    """The handout's Module: a net of layers applied in order, dropout told whether it trains."""

    def __init__(self, ref, *layers):
        self.net = ref.mlp_layers.sequential(*layers)
        self._dropout = ref.mlp_layers.dropout

    def forward(self, feat, is_training=True, seed=None):
        for layer in self.net.layers:
            feat = layer.forward(feat, is_training, seed) if isinstance(layer, self._dropout) else layer.forward(feat)
        return feat


def test_the_reference_network_described_by_behaviour(ref):
    np.random.seed(123)
    architecture, header, arrays = describe(ref.cnn_models.SmallConvolutionalNetwork())
    assert architecture.summary() == ["conv 3x3/1 pad 1 3->16", "leaky ReLU 0.01", "conv 3x3/2 pad 0 16->32",
                                      "leaky ReLU 0.01", "max-pool 2x2/2", "flatten", "fc 1568->100",
                                      "leaky ReLU 0.01", "fc 100->10"]
    assert architecture.faithful and architecture.output_shape == (2, 10)
    assert (architecture.conv_count, architecture.pool_count) == (2, 2 - 1)
    assert [name for layer in architecture.layers for name, _ in layer.params] == [
        "conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"]
    assert header["first_conv_w"] == "conv1_w"
    assert (rule_violation(architecture, RUBRIC.training) == ""
            and why_not_rebuildable(architecture, RUBRIC.training) == [])
    assert arrays["out.8"].shape == (2, 10)


@pytest.mark.parametrize("kernel,stride,padding", [(1, 1, 0), (3, 1, 1), (3, 2, 0), (4, 2, 1), (5, 3, 2), (2, 2, 0),
                                                   (5, 1, 4), (3, 6, 6)])
def test_convolution_geometry_is_measured_from_output_sizes(ref, kernel, stride, padding):
    layer = ref.cnn_layers.ConvLayer2D(3, kernel, 4, stride=stride, padding=padding)
    layer.stride, layer.padding = stride, padding
    spec = describe_layer(layer, np.zeros((1, 12, 12, 3)), LIMITS)
    assert spec["kind"] == "conv"
    assert spec["conv"] == {"kernel": kernel, "stride": stride, "padding": padding, "in_channels": 3, "filters": 4,
                            "weight": "conv_w", "bias": "conv_b"}


def test_claimed_attributes_do_not_decide_the_geometry(ref):
    class Liar(ref.cnn_layers.ConvLayer2D):
        """Says stride 1 (and reports sizes for it), convolves with stride 2."""

        def forward(self, img):
            self.stride = 2
            try:
                return super().forward(img)
            finally:
                self.stride = 1

    liar = Liar(3, 3, 4, stride=1, padding=1)
    spec = describe_layer(liar, np.zeros((1, 10, 10, 3)), LIMITS)
    assert liar.stride == 1 and spec["conv"]["stride"] == 2 and spec["conv"]["padding"] == 1


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (4, 2), (2, 1), (3, 3)])
def test_pooling_is_a_parameter_free_layer_that_shrinks_the_image(ref, size, stride):
    spec = describe_layer(ref.cnn_layers.MaxPoolingLayer(size, stride, "p"), np.zeros((2, 9, 9, 5)), LIMITS)
    assert spec["kind"] == "pool" and spec["pool"] == {"size": size, "stride": stride}


def test_activation_slopes_are_measured_and_dropout_found(ref):
    x = np.random.default_rng(1).standard_normal((2, 6))
    assert describe_layer(ref.mlp_layers.leaky_relu(0.2), x, LIMITS)["slope"] == pytest.approx(0.2)
    assert describe_layer(ref.mlp_layers.leaky_relu(0.0), x, LIMITS)["slope"] == 0.0
    spec = describe_layer(ref.mlp_layers.dropout(0.8, seed=1), np.ones((4, 500)), LIMITS)
    assert spec["kind"] == "dropout" and spec["keep_prob"] == 0.8
    assert describe_layer(ref.mlp_layers.flatten(), np.ones((2, 3, 3, 2)), LIMITS)["kind"] == "flatten"
    tanh = type("Tanh", (), {"params": {}, "forward": lambda self, x: np.tanh(x)})()
    spec = describe_layer(tanh, x, LIMITS)
    assert spec["kind"] == "unknown" and spec["class"] == "Tanh"


def test_a_leaky_relu_that_works_in_place_is_still_measured(ref):
    class InPlace:
        params = {}

        def forward(self, x):
            x[x < 0] *= 0.05
            return x

    x = np.random.default_rng(2).standard_normal((3, 4))
    before = x.copy()
    assert describe_layer(InPlace(), x, LIMITS)["slope"] == pytest.approx(0.05)
    np.testing.assert_array_equal(x, before)  # the probe's input is never the one the layer gets


def test_a_convolution_hidden_in_a_container_or_an_attribute_counts(ref):
    class Block:
        def __init__(self, layers):
            self.layers, self.name, self.params, self.grads = layers, "block", {}, {}

        def forward(self, x):
            for layer in self.layers:
                x = layer.forward(x)
            return x

    class Hidden:  # parameter-free by `params`, but it holds a 4-D weight
        def __init__(self):
            self.params, self.grads, self.name, self.kernel = {}, {}, "hidden", np.ones((1, 1, 3, 3))

        def forward(self, x):
            return x @ self.kernel[0, 0]

    conv = ref.cnn_layers.ConvLayer2D
    model = Model(ref, conv(3, 3, 3, padding=1, name="a"), Block([conv(3, 3, 3, padding=1, name="b")]),
                  Hidden(), ref.mlp_layers.flatten(), ref.mlp_layers.fc(3072, 10, name="out"))
    architecture, _, _ = describe(model)
    assert architecture.conv_count == 3
    assert [layer.path for layer in architecture.layers][:3] == ["net.layers[0]", "net.layers[1].layers[0]",
                                                                 "net.layers[2]"]
    violation = rule_violation(architecture, RUBRIC.training)
    assert "has 3 convolution and 0 pooling layers" in violation and "net.layers[2] (Hidden)" in violation


def test_a_model_whose_forward_is_not_its_layers_cannot_be_rebuilt(ref):
    class Skip(Model):
        def forward(self, feat, is_training=True, seed=None):
            return Model.forward(self, feat, is_training, seed) * 2

    conv = ref.cnn_layers.ConvLayer2D
    architecture, _, _ = describe(Skip(ref, conv(3, 3, 3, padding=1), ref.mlp_layers.flatten(),
                                       ref.mlp_layers.fc(3072, 10)))
    assert not architecture.faithful
    assert why_not_rebuildable(architecture, RUBRIC.training) == [
        "its forward does not equal its layers applied in order"]


def test_a_network_that_computes_in_float32_is_still_its_layers(ref):
    """The chain gives each layer what the model's forward gives it, dtype included."""
    class SameDtype(ref.cnn_layers.ConvLayer2D):
        def forward(self, img):
            saved = dict(self.params)
            self.params = {name: value.astype(img.dtype) for name, value in saved.items()}
            try:
                return super().forward(img)
            finally:
                self.params = saved

    model = Model(ref, SameDtype(3, 3, 4, padding=1), ref.mlp_layers.leaky_relu(), ref.mlp_layers.flatten(),
                  ref.mlp_layers.fc(4096, 10))
    assert model.forward(PROBE).dtype == np.float64  # float32 convolution, float64 fc
    architecture, header, _ = describe(model)
    assert architecture.faithful and header["faithful_error"] == 0.0
    assert why_not_rebuildable(architecture, RUBRIC.training) == []


def test_malformed_descriptions_become_unknown_layers_never_errors(ref):
    np.random.seed(123)
    _, header, _ = describe(ref.cnn_models.SmallConvolutionalNetwork())
    edits = [lambda h: h["layers"][0]["conv"].update(kernel=10 ** 9),
             lambda h: h["layers"][0]["conv"].update(weight=["not", "a", "name"]),
             lambda h: h["layers"][0]["conv"].update(stride=True),
             lambda h: h["layers"][4]["pool"].update(size=-1),
             lambda h: h["layers"][1].update(slope="0.01"),
             lambda h: h["layers"][6]["fc"].update(inputs=7),
             lambda h: h["layers"].insert(0, "a string"),
             lambda h: h.update(layers={"not": "a list"})]
    for edit in edits:
        broken = copy.deepcopy(header)
        edit(broken)
        architecture = parse_description(broken, RUBRIC.training)
        assert why_not_rebuildable(architecture, RUBRIC.training), broken
    # a claimed convolution still counts for the rule even when its figures are nonsense
    broken = copy.deepcopy(header)
    broken["layers"][0]["conv"]["kernel"] = 10 ** 9
    assert parse_description(broken, RUBRIC.training).conv_count == 2


def test_too_large_a_network_is_left_to_the_students_forward(ref):
    conv = ref.cnn_layers.ConvLayer2D
    np.random.seed(0)
    architecture, _, _ = describe(Model(ref, conv(3, 9, 256, padding=4), ref.mlp_layers.flatten(),
                                        ref.mlp_layers.fc(32 * 32 * 256, 10)))
    assert any("larger" in reason for reason in why_not_rebuildable(architecture, RUBRIC.training))


# --- round three: a convolution by what it does, whatever it stores ---------------------------------------

class ListConv:
    """A 3x3 'same' convolution whose kernel sits in a list attribute (no params, no array attribute)."""

    def __init__(self, channels, as_list_of_floats=False):
        kernel = np.random.default_rng(1).standard_normal((3, 3, channels, channels)) * 0.2
        self.kernels = [kernel.tolist() if as_list_of_floats else kernel]
        self.name, self.params, self.grads = "hidden", {}, {}

    def forward(self, x):
        kernel = np.asarray(self.kernels[0])
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = np.zeros(x.shape[:3] + (kernel.shape[3],))
        for u in range(3):
            for v in range(3):
                out += padded[:, u:u + x.shape[1], v:v + x.shape[2], :] @ kernel[u, v]
        return out


class Blur:
    """A fixed horizontal blur computed in forward: stores nothing at all."""

    name, params, grads = "blur", {}, {}

    def forward(self, x):
        return (x + np.roll(x, 1, axis=2) + np.roll(x, -1, axis=2)) / 3


class CentreEachImage:
    """Subtracts each image's own mean: changes every pixel alike, mixes no neighbours."""

    name, params, grads = "centre", {}, {}

    def forward(self, x):
        return x - x.mean(axis=(1, 2, 3), keepdims=True)


class ChannelMix:
    """A 1x1 channel mix held as a nested list: pixel by pixel."""

    name, params, grads = "mix", {}, {}

    def __init__(self, channels):
        self.matrix = (np.eye(channels) + 0.1).tolist()

    def forward(self, x):
        return x @ np.asarray(self.matrix)


def described_with_impulses(model):
    from autograder.notebook.architecture import mark_spatial_mixers
    from autograder.notebook.training_evidence import IMPULSE_PAIRS, probe_images

    probe = probe_images()
    header, arrays = describe_model(model, probe, LIMITS, RUBRIC.training["chain_tolerance"])
    return mark_spatial_mixers(parse_description(header, RUBRIC.training), probe, arrays, IMPULSE_PAIRS,
                               RUBRIC.training)


def with_layer(ref, index, layer):
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork()
    model.net.layers.insert(index, layer)
    return model


def test_the_reference_mixes_only_in_its_convolutions(ref):
    np.random.seed(123)
    architecture = described_with_impulses(ref.cnn_models.SmallConvolutionalNetwork())
    assert not any(layer.mixes for layer in architecture.layers) and architecture.conv_count == 2
    assert rule_violation(architecture, RUBRIC.training) == ""


@pytest.mark.parametrize("where", [2, 4, 5])
def test_a_third_convolution_that_stores_its_kernel_as_plain_floats_is_found_by_behaviour(ref, where):
    channels = 16 if where == 2 else 32
    architecture = described_with_impulses(with_layer(ref, where, ListConv(channels, as_list_of_floats=True)))
    hidden = architecture.layers[where]
    assert hidden.kind == "unknown" and not hidden.holds_4d and hidden.mixes
    assert architecture.conv_count == 3
    assert f"net.layers[{where}] (ListConv)" in rule_violation(architecture, RUBRIC.training)


def test_a_kernel_in_a_list_attribute_is_held_and_mixes(ref):
    architecture = described_with_impulses(with_layer(ref, 4, ListConv(32)))
    assert architecture.layers[4].holds_4d and architecture.layers[4].mixes and architecture.conv_count == 3


def test_a_blur_that_stores_nothing_counts_as_a_convolution(ref):
    architecture = described_with_impulses(with_layer(ref, 2, Blur()))
    assert architecture.layers[2].mixes and "net.layers[2] (Blur)" in rule_violation(architecture, RUBRIC.training)


@pytest.mark.parametrize("layer", [CentreEachImage(), ChannelMix(16)], ids=["global", "pixelwise"])
def test_layers_that_mix_no_neighbours_are_not_convolutions(ref, layer):
    architecture = described_with_impulses(with_layer(ref, 2, layer))
    assert not architecture.layers[2].mixes and architecture.conv_count == 2
    assert rule_violation(architecture, RUBRIC.training) == ""


def test_the_first_convolution_is_the_validated_description_s_never_the_header_s_name(ref):
    from autograder.notebook.architecture import first_convolution

    np.random.seed(123)
    header, _ = describe_model(ref.cnn_models.SmallConvolutionalNetwork(), PROBE, LIMITS,
                               RUBRIC.training["chain_tolerance"])
    header["first_conv_w"] = "noise"  # what a wrapped describe_model could say
    first = first_convolution(parse_description(header, RUBRIC.training))
    assert (first.name, first.shape, first.layer) == ("conv1_w", (3, 3, 3, 16), "net.layers[0]")
    blurred = described_with_impulses(with_layer(ref, 0, Blur()))  # a hidden first convolution: no weights to vouch
    assert first_convolution(blurred) is None

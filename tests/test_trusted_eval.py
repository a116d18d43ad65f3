"""The grader's trusted forward against the reference's layers, and the data split it runs on."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.edition import get_edition
from autograder.notebook.architecture import read_description
from autograder.notebook.datasets import grading_splits, validation_start
from autograder.notebook.training_evidence import IMPULSE_PAIRS
from autograder.notebook.trusted_eval import TrustedNet, conv_forward, layer_disagreements, max_pool, weight_problems
from autograder.numerics import rel_error
from autograder.rubric import load_rubric
from autograder.sandbox.probe import describe_model
from autograder.staff.synthetic import write_synthetic_svhn

RUBRIC = load_rubric()
SVHN = get_edition("2022")
LIMITS = {"max_kernel": RUBRIC.training["probe_max_kernel"], "max_stride": RUBRIC.training["probe_max_stride"],
          "max_padding": RUBRIC.training["probe_max_padding"]}
PROBE = (np.random.default_rng(0).standard_normal((2, 32, 32, 3)) * 0.25).astype(np.float32)


def architecture_of(model):
    header, arrays = describe_model(model, PROBE, LIMITS, RUBRIC.training["chain_tolerance"])
    return read_description(header, arrays, PROBE, IMPULSE_PAIRS, RUBRIC.training), arrays


@pytest.mark.parametrize("shape,kernel,filters,stride,padding", [
    ((2, 8, 8, 3), 3, 4, 1, 1), ((3, 9, 7, 2), 4, 5, 2, 1), ((1, 11, 11, 5), 5, 2, 3, 2), ((2, 6, 6, 1), 1, 3, 1, 0)])
def test_convolution_equals_the_reference_layer(ref, shape, kernel, filters, stride, padding):
    rng = np.random.default_rng(1)
    layer = ref.cnn_layers.ConvLayer2D(shape[3], kernel, filters, stride=stride, padding=padding)
    layer.params[layer.w_name] = rng.standard_normal((kernel, kernel, shape[3], filters))
    layer.params[layer.b_name] = rng.standard_normal(filters)
    x = rng.standard_normal(shape)
    ours = conv_forward(x, layer.params[layer.w_name], layer.params[layer.b_name], stride, padding)
    assert rel_error(ours, layer.forward(x)) <= RUBRIC.tolerances["forward"]


@pytest.mark.parametrize("size,stride", [(2, 2), (4, 2), (3, 1), (3, 3)])
def test_max_pooling_equals_the_reference_layer(ref, size, stride):
    x = np.random.default_rng(2).standard_normal((2, 9, 10, 3))
    np.testing.assert_array_equal(max_pool(x, size, stride),
                                  ref.cnn_layers.MaxPoolingLayer(size, stride, "p").forward(x))


def test_the_rebuilt_network_predicts_as_the_reference_network(ref):
    """float32 here, float64 there: the predictions may part only at near-ties, far fewer than the
    rubric's allowance."""
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork()
    architecture, _ = architecture_of(model)
    images = (np.random.default_rng(3).standard_normal((600, 32, 32, 3)) * 0.25).astype(np.float32)
    theirs = np.argmax(model.forward(images, False), axis=1)
    ours = TrustedNet.build(architecture, model.net.params).predict(images, batch=128)
    assert np.sum(ours != theirs) <= RUBRIC.training["max_disagreements"]
    assert len(set(theirs.tolist())) > 1  # not a constant prediction, or the comparison would be empty


def test_non_finite_scores_are_never_a_lucky_guess(ref):
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork()
    architecture, _ = architecture_of(model)
    params = dict(model.net.params, fc2_b=np.array([np.inf] + [0.0] * 9))
    assert set(TrustedNet.build(architecture, params).predict(PROBE).tolist()) == {-1}


def test_saved_weights_are_checked_before_use(ref):
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork()
    architecture, _ = architecture_of(model)
    saved = {name: np.array(value) for name, value in model.net.params.items()}
    assert weight_problems(architecture, saved) == []
    saved.pop("fc2_b")
    saved["conv1_w"] = saved["conv1_w"][..., :8]
    saved["fc1_w"] = saved["fc1_w"].copy()
    saved["fc1_w"][3, 3] = np.nan
    saved["conv2_b"] = np.array(["a"] * 32)
    assert weight_problems(architecture, saved) == [
        "conv1_w has shape (3, 3, 3, 8); your network's has (3, 3, 3, 16)", "conv2_b holds <U1 values, not numbers",
        "fc1_w holds NaN or infinite values", "fc2_b is missing"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_honest_network_in_either_dtype_has_no_layer_unlike_its_twin(ref, dtype):
    """float32 layers (the reference honours dtype=np.float32) round sums that nearly cancel to a large
    relative error of their own: judged against the output's scale, they compute what their twins do."""
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork(dtype=dtype)
    architecture, arrays = architecture_of(model)
    assert {arrays[f"out.{index}"].dtype for index in range(len(architecture.layers))} == {np.dtype(dtype)}
    assert layer_disagreements(architecture, PROBE, arrays, RUBRIC.training["chain_tolerance"]) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_layer_unlike_its_trusted_twin_is_named(ref, dtype):
    """Average pooling (the demo's planted bug) is still a pooling layer, but not the grader's."""
    class AveragePool(ref.cnn_layers.MaxPoolingLayer):
        def forward(self, img):
            windows = np.lib.stride_tricks.sliding_window_view(img, (2, 2), axis=(1, 2))[:, ::2, ::2]
            return windows.mean(axis=(4, 5))

    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork(dtype=dtype)
    model.net.layers[4] = AveragePool(2, 2, "pool1")
    architecture, arrays = architecture_of(model)
    assert architecture.pool_count == 1
    found = layer_disagreements(architecture, PROBE, arrays, RUBRIC.training["chain_tolerance"])
    assert len(found) == 1 and found[0].startswith("net.layers[4] (AveragePool) does not compute what a max-pool 2x2/2")


def test_the_rubrics_split_ignores_any_notebook_and_matches_the_handouts_loader(ref, tmp_path, monkeypatch):
    write_synthetic_svhn(tmp_path / "data", train=200, test=50, seed=4)
    splits = grading_splits(SVHN, tmp_path / "data", RUBRIC.training)
    assert splits.first_row == 160 and splits.val_images.shape == (40, 32, 32, 3)  # a small file: its last fifth
    monkeypatch.chdir(tmp_path)
    theirs = ref.datasets.SVHN_data(num_training=160, num_validation=40)
    np.testing.assert_array_equal(splits.val_images, theirs["data_val"])
    np.testing.assert_array_equal(splits.val_labels, theirs["labels_val"])
    # the held-out set: every test image of a file smaller than the rubric's count, with the training mean
    assert splits.heldout_images.shape == (50, 32, 32, 3)
    np.testing.assert_array_equal(splits.heldout_images, theirs["data_test"])
    again = grading_splits(SVHN, tmp_path / "data", RUBRIC.training)
    np.testing.assert_array_equal(again.heldout_labels, splits.heldout_labels)


def test_the_official_file_gives_the_handouts_last_3257_rows():
    assert validation_start(73257, SVHN, RUBRIC.training) == 70000  # rows 70,000-73,256, as the handout's loader
    assert validation_start(1500, SVHN, RUBRIC.training) == 1200  # a small synthetic file: its last fifth

"""The SVHN loader on small files in the official .mat layout, written by the test."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io


def write_svhn(folder, n_train, n_test, seed=0):
    """Official layout: X (32, 32, 3, N) uint8 indexed [row, col, channel, i]; y (N, 1) in 1..10."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(str(folder / f"{split}_32x32.mat"), {"X": x, "y": y})
        arrays[split] = (x, y)
    return arrays


@pytest.fixture
def in_data_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)  # SVHN_data reads the relative path data/, as the handout's does
    return tmp_path / "data"


def test_shapes_labels_split_and_mean(ref, in_data_folder):
    raw = write_svhn(in_data_folder, n_train=50, n_test=20)
    data = ref.datasets.SVHN_data(num_training=40, num_validation=10)
    assert list(data) == ["data_train", "labels_train", "data_val", "labels_val", "data_test", "labels_test"]
    assert data["data_train"].shape == (40, 32, 32, 3) and data["data_train"].dtype == np.float32
    assert data["data_val"].shape == (10, 32, 32, 3)
    assert data["data_test"].shape == (20, 32, 32, 3)
    x_train, y_train = raw["train"]
    # Labels shift by one: the digit 0 (label 10) becomes class 9.
    np.testing.assert_array_equal(data["labels_train"], y_train[:40, 0] - 1)
    assert data["labels_train"].min() == 0 and data["labels_train"].max() == 9
    # Validation is the rows right after the training rows, unshuffled.
    np.testing.assert_array_equal(data["labels_val"], y_train[40:50, 0] - 1)
    # Axis order is the handout's transpose(3, 1, 0, 2): image i, pixel [a, b] is X[b, a, :, i].
    mean = x_train[:, :, :, :40].astype(np.float32).transpose(3, 1, 0, 2).mean(axis=0) / 255
    expected_val0 = x_train[:, :, :, 40].astype(np.float32).transpose(1, 0, 2) / 255 - mean
    np.testing.assert_allclose(data["data_val"][0], expected_val0, atol=1e-5)
    # The per-pixel training mean is subtracted everywhere, so training data is centred.
    np.testing.assert_allclose(data["data_train"].mean(axis=0), 0, atol=1e-5)


def test_too_few_rows_names_the_file(ref, in_data_folder):
    write_svhn(in_data_folder, n_train=30, n_test=5)
    with pytest.raises(ValueError, match="train_32x32.mat holds 30"):
        ref.datasets.SVHN_data(num_training=70000, num_validation=3257)


def test_missing_files_say_what_to_do(ref, in_data_folder):
    with pytest.raises(IOError, match="get_datasets.sh"):
        ref.datasets.SVHN_data()


def test_loader_hands_out_file_order_first(ref):
    data, labels = np.arange(10).reshape(10, 1), np.arange(10)
    loader = ref.train.SVHN_DataLoader(data, labels, 4)
    _, first = loader.get_batch()
    _, second = loader.get_batch()
    np.testing.assert_array_equal(np.concatenate([first, second]), np.arange(8))
    np.random.seed(0)
    _, third = loader.get_batch()  # fewer than 4 left: reset and reshuffle, remainder dropped
    assert len(third) == 4 and len(set(third)) == 4


def test_scripts_are_executable():
    from conftest import REFERENCE
    for script in ("get_datasets.sh", "collectSubmission.sh"):
        assert os.access(REFERENCE / script, os.X_OK), script

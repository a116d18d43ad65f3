"""Synthetic SVHN: the official file layout, every class, reproducible, readable by the handout's loader."""

from __future__ import annotations

import numpy as np
import scipy.io
from conftest import run_grade

from autograder.edition import get_edition
from autograder.notebook.datasets import validation_split
from autograder.staff.synthetic import write_synthetic_svhn


def test_layout_classes_and_seed(tmp_path):
    write_synthetic_svhn(tmp_path / "a", train=120, test=30, seed=1)
    train = scipy.io.loadmat(str(tmp_path / "a" / "train_32x32.mat"))
    assert train["X"].shape == (32, 32, 3, 120) and train["X"].dtype == np.uint8
    assert train["y"].shape == (120, 1)
    assert sorted(set(train["y"].ravel())) == list(range(1, 11))  # 10 stands for the digit 0
    assert np.bincount(train["y"].ravel()).max() == 12  # balanced: 120 images, 10 classes
    assert train["X"].std() > 20  # images, not flat colour
    write_synthetic_svhn(tmp_path / "b", train=120, test=30, seed=1)
    again = scipy.io.loadmat(str(tmp_path / "b" / "train_32x32.mat"))
    np.testing.assert_array_equal(train["X"], again["X"])
    write_synthetic_svhn(tmp_path / "c", train=120, test=30, seed=2)
    assert not np.array_equal(train["X"], scipy.io.loadmat(str(tmp_path / "c" / "train_32x32.mat"))["X"])


def test_the_handouts_loader_and_ours_agree(ref, tmp_path, monkeypatch):
    write_synthetic_svhn(tmp_path / "data", train=80, test=20, seed=4)
    monkeypatch.chdir(tmp_path)
    theirs = ref.datasets.SVHN_data(num_training=60, num_validation=20)
    images, labels = validation_split(get_edition("2022"), tmp_path / "data", 60, 20)
    np.testing.assert_array_equal(images, theirs["data_val"])
    np.testing.assert_array_equal(labels, theirs["labels_val"])


def test_cli_makes_data_and_refuses_bad_combinations(tmp_path):
    done = run_grade("data", "--synthetic", "--out", str(tmp_path / "d"), "--train", "20", "--test", "10")
    assert done.returncode == 0 and (tmp_path / "d" / "test_32x32.mat").is_file()
    assert "only synthetic data" in run_grade("data", "--out", str(tmp_path / "e")).stderr
    assert "--quick shortens a headless run" in run_grade("grade", str(tmp_path), "--quick").stderr
    assert "--execute needs --data" in run_grade("grade", str(tmp_path), "--execute").stderr
    assert "missing train_32x32.mat" in run_grade("grade", str(tmp_path), "--data", str(tmp_path)).stderr

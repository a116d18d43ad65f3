"""Synthetic CIFAR-100 (autograder/staff/synthetic_cifar.py) in the official Matlab layout, read back the way
the 2023 handout's loader reads it: channel-major rows, coarse labels, names from meta.mat."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from autograder.edition import get_edition
from autograder.staff import synthetic_cifar
from autograder.staff.synthetic_cifar import write_synthetic_cifar100

EDITION = get_edition("2023")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar100(out, EDITION, train=200, test=60, seed=3)
    return out


def test_the_files_have_the_official_layout(folder):
    assert sorted(p.name for p in folder.iterdir()) == sorted(EDITION.dataset.files)
    train = scipy.io.loadmat(str(folder / "train.mat"))
    assert train["data"].shape == (200, 3072) and train["data"].dtype == np.uint8
    assert train["coarse_labels"].shape == (200, 1) and train["fine_labels"].shape == (200, 1)
    # every superclass present, and each fine label inside its superclass
    assert set(train["coarse_labels"].ravel()) == set(range(20))
    assert np.array_equal(train["fine_labels"].ravel() // 5, train["coarse_labels"].ravel())
    meta = scipy.io.loadmat(str(folder / "meta.mat"))
    names = [meta["coarse_label_names"][i][0][0] for i in range(20)]
    assert names == list(EDITION.dataset.class_names)
    assert len(meta["fine_label_names"]) == 100


def test_rows_are_channel_major_images(tmp_path, monkeypatch):
    """A picture written is the picture the handout's reading gives back: rows reshaped (N, 3, 32, 32), then
    moved to (N, 32, 32, 3)."""
    picture = np.zeros((32, 32, 3), np.uint8)
    picture[:, :, 0] = np.arange(32)[None, :] * 8  # red grows left to right
    picture[:16, :, 2] = 255  # blue on the top half
    monkeypatch.setattr(synthetic_cifar, "render", lambda label, rng: picture)
    synthetic_cifar.write_synthetic_cifar100(tmp_path, EDITION, train=20, test=20)
    data = scipy.io.loadmat(str(tmp_path / "train.mat"))["data"]
    read = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(read[0], picture) and np.array_equal(read[-1], picture)


def test_the_same_seed_gives_the_same_files(tmp_path, folder):
    write_synthetic_cifar100(tmp_path, EDITION, train=200, test=60, seed=3)
    for name in EDITION.dataset.files:
        ours, theirs = scipy.io.loadmat(str(tmp_path / name)), scipy.io.loadmat(str(folder / name))
        key = "data" if name != "meta.mat" else "coarse_label_names"
        assert np.array_equal(np.asarray(ours[key], dtype=object), np.asarray(theirs[key], dtype=object))


def test_too_few_images_for_every_superclass_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 20 images"):
        write_synthetic_cifar100(tmp_path, EDITION, train=19, test=60)

from __future__ import absolute_import, division, print_function

import os

import numpy as np
from scipy.io import loadmat

FILES = ("train.mat", "test.mat", "meta.mat")


def CIFAR100(data_dir):
    """Read the official CIFAR-100 Matlab files: (train X, train y, test X, test y, superclass names).

    `data` holds one image per row as 3,072 uint8 values in channel-major order (the 1,024 red
    values row by row, then green, then blue); it becomes (N, 32, 32, 3). The labels are the 20
    superclasses (`coarse_labels`, 0..19); their names come from meta.mat.
    """
    for name in FILES:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            raise IOError("CIFAR-100 file {} not found: download train.mat, test.mat and meta.mat "
                          "by hand into {}".format(path, data_dir))
    arrays = []
    for split in ("train", "test"):
        mat = loadmat(os.path.join(data_dir, "{}.mat".format(split)))
        arrays.append(mat["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        arrays.append(mat["coarse_labels"].flatten())
    meta = loadmat(os.path.join(data_dir, "meta.mat"))
    label_names = [str(np.squeeze(name)) for name in meta["coarse_label_names"].ravel()]
    data_train, labels_train, data_test, labels_test = arrays
    return data_train, labels_train, data_test, labels_test, label_names


def CIFAR100_data(data_dir, num_training=40000, num_validation=10000):
    """Load CIFAR-100 from data_dir, split train/validation, standardise each colour channel.

    Validation is the `num_validation` rows after the first `num_training` rows of the
    official training file (with the defaults: its last 10,000 rows); test is the whole
    official test file. Pixels are scaled to [0, 1], then each channel has the mean and
    standard deviation of the training rows taken away and divided out. The labels need
    no shift. The dict also holds the class names and the (1, 1, 1, 3) mean and std, to
    undo the standardisation for display.
    """
    data_train, labels_train, data_test, labels_test, label_names = CIFAR100(data_dir)
    if num_training + num_validation > data_train.shape[0]:
        raise ValueError("CIFAR100_data: asked for {} training + {} validation images, but {} holds {}".format(
            num_training, num_validation, os.path.join(data_dir, "train.mat"), data_train.shape[0]))
    data_train = data_train.astype(np.float32) / 255
    data_test = data_test.astype(np.float32) / 255

    mask = range(num_training, num_training + num_validation)
    data_val = data_train[mask]
    labels_val = labels_train[mask]
    mask = range(num_training)
    data_train = data_train[mask]
    labels_train = labels_train[mask]

    mean_image = np.mean(data_train, axis=(0, 1, 2), keepdims=True)
    std_image = np.std(data_train, axis=(0, 1, 2), keepdims=True)
    data_train = (data_train - mean_image) / std_image
    data_val = (data_val - mean_image) / std_image
    data_test = (data_test - mean_image) / std_image

    return {
        "data_train": data_train, "labels_train": labels_train,
        "data_val": data_val, "labels_val": labels_val,
        "data_test": data_test, "labels_test": labels_test,
        "label_names": label_names,
        "mean_image": mean_image, "std_image": std_image,
    }

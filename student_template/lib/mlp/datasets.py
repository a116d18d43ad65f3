from __future__ import absolute_import, division, print_function

import os

import numpy as np
import scipy.io


def SVHN(data_dir):
    """Read the official SVHN .mat files: (train X, train y, test X, test y).

    The files hold X as (32, 32, 3, N) uint8 (row, column, channel, index) and y as
    (N, 1) with labels 1..10, where 10 means the digit 0. The transpose below is the
    handout's: it yields (N, 32, 32, 3) with rows and columns swapped, and weights trained
    with it expect exactly that orientation.
    """
    arrays = []
    for split in ("train", "test"):
        path = os.path.join(data_dir, "{}_32x32.mat".format(split))
        if not os.path.isfile(path):
            raise IOError("SVHN file {} not found: run ./get_datasets.sh, or put the official "
                          "train_32x32.mat and test_32x32.mat in {}".format(path, data_dir))
        mat = scipy.io.loadmat(path)
        arrays.append(mat["X"].transpose(3, 1, 0, 2))
        arrays.append(mat["y"].flatten())
    data_train, labels_train, data_test, labels_test = arrays
    return data_train, labels_train, data_test, labels_test


def SVHN_data(num_training=70000, num_validation=3257):
    """Load SVHN from ./data, split train/validation, subtract the per-pixel mean.

    Validation is the `num_validation` rows after the first `num_training` rows of the
    official training file (with the defaults: its last 3,257 rows); test is the whole
    official test file. Labels are shifted by one, so the digit 0 (label 10) is class 9.
    """
    data_train, labels_train, data_test, labels_test = SVHN("data")
    if num_training + num_validation > data_train.shape[0]:
        raise ValueError("SVHN_data: asked for {} training + {} validation images, but data/train_32x32.mat "
                         "holds {}".format(num_training, num_validation, data_train.shape[0]))
    data_train = data_train.astype(np.float32) / 255
    data_test = data_test.astype(np.float32) / 255
    labels_train -= 1
    labels_test -= 1

    mask = range(num_training, num_training + num_validation)
    data_val = data_train[mask]
    labels_val = labels_train[mask]
    mask = range(num_training)
    data_train = data_train[mask]
    labels_train = labels_train[mask]

    mean_image = np.mean(data_train, axis=0)
    data_train -= mean_image
    data_val -= mean_image
    data_test -= mean_image

    return {
        "data_train": data_train, "labels_train": labels_train,
        "data_val": data_val, "labels_val": labels_val,
        "data_test": data_test, "labels_test": labels_test,
    }

"""The grader's own SVHN loader: the handout's conventions, for verifying accuracy.

Weights trained with the handout's loader expect its exact preprocessing: images transposed
by `transpose(3, 1, 0, 2)`, scaled to [0, 1], the per-pixel mean of the training rows
subtracted; labels shifted so the digit 0 is class 9; validation the rows right after the
training rows. This module repeats that in trusted code (never the student's loader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

DEFAULT_SPLIT = (70000, 3257)


class DataError(ValueError):
    """The data folder cannot give the validation split; the message names the file."""


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X as (N, 32, 32, 3) in the handout's orientation and y in 1..10, from one .mat file."""
    if not path.is_file():
        raise DataError(f"{path}: not found (expected the official SVHN file, or `grade.py data --synthetic`)")
    try:
        contents = scipy.io.loadmat(str(path))
        images, labels = contents["X"], contents["y"]
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(f"{path}: not an SVHN .mat file with X and y ({exc})") from None
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or labels.size != images.shape[3]:
        raise DataError(f"{path}: X has shape {images.shape} and y {labels.shape}; expected (32, 32, 3, N) and (N, 1)")
    return images.transpose(3, 1, 0, 2), labels.reshape(-1)


def validation_split(data_dir: Path, num_training: int, num_validation: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation images (float32, mean-subtracted) and labels (0..9) the student's run used."""
    images, labels = read_mat(Path(data_dir) / "train_32x32.mat")
    if num_training + num_validation > images.shape[0]:
        raise DataError(f"{Path(data_dir) / 'train_32x32.mat'}: {images.shape[0]} rows, fewer than the "
                        f"{num_training} training + {num_validation} validation rows of the run")
    mean = (images[:num_training].astype(np.float32) / 255).mean(axis=0)
    validation = images[num_training:num_training + num_validation].astype(np.float32) / 255 - mean
    return validation, labels[num_training:num_training + num_validation].astype(np.int64) - 1

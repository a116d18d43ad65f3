"""The grader's own SVHN loader: the handout's conventions, for verifying accuracy.

Weights trained with the handout's loader expect its exact preprocessing: images transposed
by `transpose(3, 1, 0, 2)`, scaled to [0, 1], the per-pixel mean of the training rows
subtracted; labels shifted so the digit 0 is class 9; validation the rows right after the
training rows. This module repeats that in trusted code (never the student's loader).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

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


def count_rows(path: Path) -> int:
    """How many images an SVHN .mat file holds, from its header alone (nothing is loaded)."""
    try:
        shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .mat file ({exc})") from None
    images = shapes.get("X")
    if images is None or len(images) != 4:
        raise DataError(f"{path}: no 4-D X in it")
    return int(images[3])


def validation_split(data_dir: Path, num_training: int, num_validation: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation images (float32, mean-subtracted) and labels (0..9) the student's run used."""
    images, labels = read_mat(Path(data_dir) / "train_32x32.mat")
    if num_training + num_validation > images.shape[0]:
        raise DataError(f"{Path(data_dir) / 'train_32x32.mat'}: {images.shape[0]} rows, fewer than the "
                        f"{num_training} training + {num_validation} validation rows of the run")
    mean = (images[:num_training].astype(np.float32) / 255).mean(axis=0)
    validation = images[num_training:num_training + num_validation].astype(np.float32) / 255 - mean
    return validation, labels[num_training:num_training + num_validation].astype(np.int64) - 1


@dataclass(frozen=True)
class GradingSplits:
    """The images the grader verifies accuracy on: the rubric's validation split and the held-out set."""

    val_images: np.ndarray  # float32 (N, 32, 32, 3), preprocessed as the handout does
    val_labels: np.ndarray  # int64 0..9
    heldout_images: np.ndarray | None  # from test_32x32.mat; None when the folder has no test file
    heldout_labels: np.ndarray | None
    first_row: int  # the validation split is rows first_row.. of train_32x32.mat
    note: str = ""  # what was not available


def validation_start(total: int, training: Mapping[str, Any]) -> int:
    """The first row of the rubric's validation split in a training file of `total` rows."""
    return total - min(int(training["validation_rows"]), int(total * float(training["small_file_validation_fraction"])))


def grading_splits(data_dir: Path, training: Mapping[str, Any]) -> GradingSplits:
    """The rubric's validation split (the last `validation_rows` rows of the training file; a smaller
    file gives its last `small_file_validation_fraction`) and `heldout_rows` test images drawn with
    `heldout_seed`; both with the mean of the training rows before the split subtracted, as the
    handout's loader does. Never the split a notebook names."""
    images, labels = read_mat(Path(data_dir) / "train_32x32.mat")
    first = validation_start(images.shape[0], training)
    if first < 1 or first >= images.shape[0]:
        raise DataError(f"{Path(data_dir) / 'train_32x32.mat'}: {images.shape[0]} rows are too few "
                        "for a validation split")
    mean = (images[:first].astype(np.float32) / 255).mean(axis=0)
    val_images = images[first:].astype(np.float32) / 255 - mean
    val_labels = labels[first:].astype(np.int64) - 1
    test_path = Path(data_dir) / "test_32x32.mat"
    if not test_path.is_file():
        return GradingSplits(val_images, val_labels, None, None, first,
                             f"{test_path.name} not found: no held-out check")
    test_images, test_labels = read_mat(test_path)
    count = min(int(training["heldout_rows"]), test_images.shape[0])
    chosen = np.sort(np.random.default_rng(int(training["heldout_seed"])).choice(test_images.shape[0], count,
                                                                                 replace=False))
    heldout = test_images[chosen].astype(np.float32) / 255 - mean
    return GradingSplits(val_images, val_labels, heldout, test_labels[chosen].astype(np.int64) - 1, first)

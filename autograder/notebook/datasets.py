"""The grader's own dataset reader: each edition's files, prepared as that edition's handout prepares them.

Weights trained with the handout's loader expect its exact preprocessing, so the grader repeats it in
trusted code (never the student's loader), reading the layout the edition names (`edition.dataset.format`):

- "svhn-mat" (2022): `X` (32, 32, 3, N) transposed by `transpose(3, 1, 0, 2)`, `y` 1..10 shifted by the
  edition's `label_offset` (the digit 0 becomes class 9); /255, minus the per-pixel mean of the training rows.
- "cifar100-mat" (2023): `data` uint8 (N, 3072) channel-major, reshaped to (N, 32, 32, 3), `coarse_labels`
  plus `label_offset`; /255, minus the per-channel mean, over the per-channel standard deviation of the
  training rows.

The validation split is the edition's: the last `num_validation` rows of the training file (the official
files: the handout's own split, 2022 rows 70,000-73,256, 2023 rows 40,000-49,999), prepared with the
statistics of every row before it. A smaller file (synthetic data) gives its last
`[training] small_file_validation_fraction` of rows when that is fewer. The held-out
set is `[training] heldout_rows` images of the test file drawn with `heldout_seed`, prepared alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.io

from autograder.edition import Dataset, Edition
from autograder.notebook import data_cache


class DataError(ValueError):
    """The data folder cannot give the validation split; the message names the file."""


def _load(path: Path, dataset: Dataset, keys: tuple[str, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: not found (expected the official {dataset.name} file, or "
                        "`grade.py data --synthetic`)")
    try:
        contents = scipy.io.loadmat(str(path), variable_names=list(keys))
        return {key: contents[key] for key in keys}
    except (ValueError, KeyError, OSError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path}: not a {dataset.name} .mat file with {' and '.join(keys)} ({exc})") from None


def read_mat(path: Path, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Images as the handout's loader lays them out ((N, 32, 32, 3) uint8) and labels 0..classes-1
    (int64), from one file of the edition's format."""
    path = Path(path)
    if dataset.format == "svhn-mat":
        contents = _load(path, dataset, ("X", "y"))
        images, labels = contents["X"], contents["y"]
        if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or labels.size != images.shape[3]:
            raise DataError(f"{path}: X has shape {images.shape} and y {labels.shape}; expected (32, 32, 3, N) "
                            "and (N, 1)")
        images = images.transpose(3, 1, 0, 2)
    elif dataset.format == "cifar100-mat":
        contents = _load(path, dataset, ("data", "coarse_labels"))
        data, labels = contents["data"], contents["coarse_labels"]
        if data.ndim != 2 or data.shape[1] != 3072 or labels.size != data.shape[0]:
            raise DataError(f"{path}: data has shape {data.shape} and coarse_labels {labels.shape}; expected "
                            "(N, 3072) and (N, 1)")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    else:  # pragma: no cover - edition.py admits only the formats above
        raise DataError(f"{path}: unknown data format {dataset.format!r}")
    labels = labels.reshape(-1).astype(np.int64) + dataset.label_offset
    if labels.size and (labels.min() < 0 or labels.max() >= dataset.classes):
        raise DataError(f"{path}: labels outside 0..{dataset.classes - 1} after the edition's offset "
                        f"({dataset.label_offset:+d})")
    return images, labels


#: The variable holding the images, and which of its axes counts them, per format (for count_rows).
_ROWS = {"svhn-mat": ("X", 4, 3), "cifar100-mat": ("data", 2, 0)}


def count_rows(path: Path, dataset: Dataset) -> int:
    """How many images a file of the edition's format holds, from its header alone (nothing is loaded)."""
    try:
        shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable .mat file ({exc})") from None
    name, ndim, axis = _ROWS[dataset.format]
    shape = shapes.get(name)
    if shape is None or len(shape) != ndim:
        raise DataError(f"{path}: no {ndim}-D {name} in it")
    return int(shape[axis])


def _preparation(training_rows: np.ndarray, dataset: Dataset):
    """The handout's normalisation, fitted on its training rows (uint8): a function of uint8 images."""
    if dataset.normalisation == "pixel-mean":
        mean = (training_rows.astype(np.float32) / 255).mean(axis=0)
        return lambda images: images.astype(np.float32) / 255 - mean
    mean, std = _channel_statistics(training_rows)
    if not np.all(std > 0):
        raise DataError("the training rows have a colour channel of one value: no standard deviation to divide by")
    return lambda images: (images.astype(np.float32) / 255 - mean) / std


def _channel_statistics(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images/255, shaped (1, 1, 1, C) float32, as the 2023
    handout's np.mean / np.std over axes (0, 1, 2). Computed exactly from each channel's histogram of
    uint8 pixels (float32 sums over 40,000 transposed rows take ~3 s; this ~0.3 s); the handout's float32
    arithmetic differs from the exact figure by rounding only."""
    if rows.dtype != np.uint8:
        scaled = rows.astype(np.float64) / 255
        return (scaled.mean(axis=(0, 1, 2), keepdims=True).astype(np.float32),
                scaled.std(axis=(0, 1, 2), keepdims=True).astype(np.float32))
    values = np.arange(256, dtype=np.float64) / 255
    means, stds = [], []
    for channel in range(rows.shape[-1]):
        # rows are (N, H, W, C) views of channel-major files: each channel is contiguous per image there
        plane = np.ascontiguousarray(np.moveaxis(rows, -1, 1)[:, channel]).ravel()
        counts = np.bincount(plane, minlength=256).astype(np.float64)
        mean = counts @ values / counts.sum()
        means.append(mean)
        stds.append(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
    shape = (1, 1, 1, rows.shape[-1])
    return np.array(means, np.float32).reshape(shape), np.array(stds, np.float32).reshape(shape)


def validation_split(edition: Edition, data_dir: Path, num_training: int, num_validation: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The validation images (float32, prepared as the handout's loader) and labels of a run with the
    given split: rows num_training.. of the edition's training file."""
    dataset = edition.dataset
    path = Path(data_dir) / dataset.train_file
    images, labels = read_mat(path, dataset)
    if num_training < 1 or num_validation < 1 or num_training + num_validation > images.shape[0]:
        raise DataError(f"{path}: {images.shape[0]} rows; the run's split is {num_training} training + "
                        f"{num_validation} validation rows")
    prepare = _preparation(images[:num_training], dataset)
    end = num_training + num_validation
    return prepare(images[num_training:end]), labels[num_training:end]


@dataclass(frozen=True)
class GradingSplits:
    """The images the grader verifies accuracy on: the edition's validation split and the held-out set."""

    val_images: np.ndarray  # float32 (N, 32, 32, 3), prepared as the handout does
    val_labels: np.ndarray  # int64 0..classes-1
    heldout_images: np.ndarray | None  # from the edition's test file; None when the folder has none
    heldout_labels: np.ndarray | None
    first_row: int  # the validation split is rows first_row..first_row + len(val_labels) - 1 of the train file
    note: str = ""  # what was not available


def validation_rows(total: int, edition: Edition, training: Mapping[str, Any]) -> tuple[int, int]:
    """The first row and the number of rows of the edition's validation split in a training file of
    `total` rows: its last `num_validation` rows (the official files: exactly the handout's split, 2022
    rows 70,000-73,256, 2023 rows 40,000-49,999), or its last `small_file_validation_fraction` when that
    is fewer (a synthetic file)."""
    count = min(edition.dataset.num_validation, int(total * float(training["small_file_validation_fraction"])))
    return total - count, count


def validation_start(total: int, edition: Edition, training: Mapping[str, Any]) -> int:
    """The first row of the edition's validation split in a training file of `total` rows."""
    return validation_rows(total, edition, training)[0]


def grading_splits(edition: Edition, data_dir: Path, training: Mapping[str, Any]) -> GradingSplits:
    """The edition's validation split (`validation_rows`) and `heldout_rows` test images drawn with
    `heldout_seed`, both prepared with the statistics of the training rows before the split, as the
    handout's loader does. Never the split a notebook names. The same folder (files unchanged) gives the
    same arrays, read-only (every submission of a batch is checked on them): read from the files by the
    batch's first process, mapped from the disk cache by the later ones (data_cache.py), bit for bit alike."""
    dataset = edition.dataset
    stamps = tuple(_stamp(Path(data_dir) / name) for name in (dataset.train_file, dataset.test_file))
    return _grading_splits(edition, str(Path(data_dir).resolve()), stamps,
                           float(training["small_file_validation_fraction"]), int(training["heldout_rows"]),
                           int(training["heldout_seed"]))


def _stamp(path: Path) -> tuple[int, ...] | None:
    """What changes when the file does: with the change time and inode, also a rewrite of the same size that
    kept the modification time (`touch -r`, a copy with `cp -p`)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ctime_ns, status.st_ino, status.st_dev


#: The preparation's own version, part of the disk cache's key: change it whenever `_prepared_splits` (or what
#: it calls) would give other arrays from the same files and settings, so that no process reads old ones.
PREPARATION_VERSION = 1
#: The arrays of a cache entry of the grading splits, in GradingSplits' order.
_ARRAYS = ("val_images", "val_labels", "heldout_images", "heldout_labels")


@lru_cache(maxsize=2)
def _grading_splits(edition: Edition, data_dir: str, stamps: tuple, fraction: float, heldout_rows: int,
                    heldout_seed: int) -> GradingSplits:
    """Once per process (this cache), and once per batch: the prepared arrays are kept on disk for the
    processes that grade the next submissions (data_cache.py), keyed by the files' sha256 and these settings."""
    dataset = edition.dataset
    sources = {"train": Path(data_dir) / dataset.train_file, "test": Path(data_dir) / dataset.test_file}
    settings = {"preparation": PREPARATION_VERSION, "format": dataset.format,
                "normalisation": dataset.normalisation, "label_offset": dataset.label_offset,
                "classes": dataset.classes, "num_validation": dataset.num_validation,
                "small_file_validation_fraction": fraction, "heldout_rows": heldout_rows,
                "heldout_seed": heldout_seed}
    entry = data_cache.cached(sources, settings, lambda: _prepared_splits(edition, data_dir, fraction, heldout_rows,
                                                                          heldout_seed),
                              check=_entry_problem)
    arrays = [entry.arrays[name] for name in _ARRAYS]
    return _frozen(GradingSplits(*arrays, first_row=int(entry.info["first_row"]), note=str(entry.info["note"])))


def _prepared_splits(edition: Edition, data_dir: str, fraction: float, heldout_rows: int, heldout_seed: int
                     ) -> data_cache.Entry:
    """The grading splits read from the data files and prepared, as a cache entry."""
    dataset = edition.dataset
    path = Path(data_dir) / dataset.train_file
    images, labels = read_mat(path, dataset)
    first, count = validation_rows(images.shape[0], edition, {"small_file_validation_fraction": fraction})
    if first < 1 or count < 1:
        raise DataError(f"{path}: {images.shape[0]} rows are too few for a validation split")
    prepare = _preparation(images[:first], dataset)
    val_images, val_labels = prepare(images[first:first + count]), labels[first:first + count]
    test_path = Path(data_dir) / dataset.test_file
    if not test_path.is_file():
        return data_cache.Entry(dict(zip(_ARRAYS, (val_images, val_labels, None, None))),
                                {"first_row": first, "note": f"{test_path.name} not found: no held-out check"})
    test_images, test_labels = read_mat(test_path, dataset)
    chosen_count = min(heldout_rows, test_images.shape[0])
    chosen = np.sort(np.random.default_rng(heldout_seed).choice(test_images.shape[0], chosen_count, replace=False))
    return data_cache.Entry(dict(zip(_ARRAYS, (val_images, val_labels, prepare(test_images[chosen]),
                                               test_labels[chosen]))), {"first_row": first, "note": ""})


def _entry_problem(entry: data_cache.Entry) -> str:
    """What makes a cache entry read back unfit to be grading splits ("" when nothing): a foreign or damaged
    entry is rebuilt, never trusted."""
    arrays, info = entry.arrays, entry.info
    if set(arrays) != set(_ARRAYS) or set(info) != {"first_row", "note"}:
        return f"holds {sorted(arrays)} and {sorted(info)}, not the grading splits"
    if not isinstance(info["first_row"], int) or info["first_row"] < 1 or not isinstance(info["note"], str):
        return "its first row or note is not one"
    pairs = [(arrays["val_images"], arrays["val_labels"]), (arrays["heldout_images"], arrays["heldout_labels"])]
    if pairs[0][0] is None or (pairs[1][0] is None) != (pairs[1][1] is None):
        return "an array is missing"
    for images, labels in pairs:
        if images is None:
            continue
        if images.dtype != np.float32 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) \
                or labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            return f"images {images.dtype} {images.shape} and labels {labels.dtype} {labels.shape} do not fit"
    return ""


def _frozen(splits: GradingSplits) -> GradingSplits:
    for array in (splits.val_images, splits.val_labels, splits.heldout_images, splits.heldout_labels):
        if array is not None:
            array.flags.writeable = False
    return splits


def missing_files(edition: Edition, data_dir: Path | None, names: Sequence[str] | None = None) -> list[str]:
    """The edition's data files (`names`, default all: train, test, meta) that `data_dir` lacks, by name."""
    return [name for name in (edition.dataset.files if names is None else names)
            if data_dir is None or not (Path(data_dir) / name).is_file()]

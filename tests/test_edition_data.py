"""The grader's dataset reader for each edition (autograder/notebook/datasets.py) on real .mat files written
by the synthetic writers, the 2023 split and preparation, and the data command and headless staging."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
import scipy.io
from conftest import run_grade

from autograder.edition import get_edition
from autograder.notebook.datasets import (
    DataError,
    count_rows,
    grading_splits,
    missing_files,
    read_mat,
    validation_rows,
    validation_split,
)
from autograder.notebook.execute import _prepare, provide_data, quick_settings
from autograder.rubric import load_rubric
from autograder.staff.synthetic import write_synthetic_svhn
from autograder.staff.synthetic_cifar import write_synthetic_cifar100

SVHN, CIFAR = get_edition("2022"), get_edition("2023")
TRAINING = load_rubric().training


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar100")
    write_synthetic_cifar100(folder, CIFAR, train=300, test=80, seed=5)
    return folder


def handout_preparation(folder, num_training, num_validation):
    """The 2023 handout's CIFAR100_data, written here from what it does (rows reshaped channel-major,
    /255, standardised per channel with the training rows' mean and std), in float64 for reference."""
    train = scipy.io.loadmat(str(folder / "train.mat"))
    test = scipy.io.loadmat(str(folder / "test.mat"))
    images = train["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64) / 255
    labels = train["coarse_labels"].ravel()
    mean = images[:num_training].mean(axis=(0, 1, 2), keepdims=True)
    std = images[:num_training].std(axis=(0, 1, 2), keepdims=True)
    end = num_training + num_validation
    test_images = test["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64) / 255
    return {"data_val": (images[num_training:end] - mean) / std, "labels_val": labels[num_training:end],
            "data_test": (test_images - mean) / std, "labels_test": test["coarse_labels"].ravel()}


def test_the_2023_split_is_the_handouts_preparation_of_the_editions_rows(cifar):
    splits = grading_splits(CIFAR, cifar, TRAINING)
    # 300 rows: fewer than the handout's 40,000 + 10,000, so the last fifth (the rubric's small-file rule)
    assert splits.first_row == 240 and splits.val_images.shape == (60, 32, 32, 3)
    assert splits.val_images.dtype == np.float32 and splits.val_labels.dtype == np.int64
    theirs = handout_preparation(cifar, 240, 60)
    np.testing.assert_allclose(splits.val_images, theirs["data_val"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(splits.val_labels, theirs["labels_val"])
    # the held-out set: every test image of a file smaller than heldout_rows, prepared with the same statistics
    assert splits.heldout_images.shape == (80, 32, 32, 3)
    np.testing.assert_allclose(splits.heldout_images, theirs["data_test"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(splits.heldout_labels, theirs["labels_test"])
    assert set(splits.heldout_labels.tolist()) == set(range(20))
    # standardised: the training rows' channels have mean 0 and std 1, so the validation rows are near it
    assert np.all(np.abs(splits.val_images.mean(axis=(0, 1, 2))) < 0.5)
    again = grading_splits(CIFAR, cifar, TRAINING)
    np.testing.assert_array_equal(again.val_images, splits.val_images)


def test_the_official_files_give_each_handouts_own_split():
    assert validation_rows(50000, CIFAR, TRAINING) == (40000, 10000)  # rows 40,000-49,999 of train.mat
    assert validation_rows(73257, SVHN, TRAINING) == (70000, 3257)  # rows 70,000-73,256 of train_32x32.mat
    assert validation_rows(300, CIFAR, TRAINING) == (240, 60) and validation_rows(1500, SVHN, TRAINING) == (1200, 300)


def test_validation_split_of_a_runs_own_split_and_the_labels_offset(cifar, tmp_path):
    images, labels = validation_split(CIFAR, cifar, 200, 50)
    theirs = handout_preparation(cifar, 200, 50)
    np.testing.assert_allclose(images, theirs["data_val"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, theirs["labels_val"])
    write_synthetic_svhn(tmp_path / "svhn", train=40, test=10, seed=2)
    _, svhn_labels = read_mat(tmp_path / "svhn" / "train_32x32.mat", SVHN.dataset)
    raw = scipy.io.loadmat(str(tmp_path / "svhn" / "train_32x32.mat"))["y"].ravel()
    np.testing.assert_array_equal(svhn_labels, raw - 1)  # SVHN's 1..10 (10 = digit 0) become 0..9


def test_rows_are_counted_from_the_header_of_either_format(cifar, tmp_path):
    assert count_rows(cifar / "train.mat", CIFAR.dataset) == 300
    assert count_rows(cifar / "test.mat", CIFAR.dataset) == 80
    write_synthetic_svhn(tmp_path / "svhn", train=30, test=10, seed=1)
    assert count_rows(tmp_path / "svhn" / "train_32x32.mat", SVHN.dataset) == 30
    with pytest.raises(DataError, match="train_32x32.mat: no 2-D data in it"):
        count_rows(tmp_path / "svhn" / "train_32x32.mat", CIFAR.dataset)


def test_errors_name_the_file(cifar, tmp_path):
    with pytest.raises(DataError, match=r"train\.mat: not found \(expected the official CIFAR-100 file"):
        grading_splits(CIFAR, tmp_path, TRAINING)
    scipy.io.savemat(str(tmp_path / "train.mat"), {"data": np.zeros((10, 100), np.uint8),
                                                   "coarse_labels": np.zeros((10, 1), np.uint8)})
    with pytest.raises(DataError, match=r"train\.mat: data has shape \(10, 100\)"):
        grading_splits(CIFAR, tmp_path, TRAINING)
    scipy.io.savemat(str(tmp_path / "train.mat"), {"X": np.zeros((32, 32, 3, 10), np.uint8)})
    with pytest.raises(DataError, match=r"train\.mat: not a CIFAR-100 \.mat file with data and coarse_labels"):
        grading_splits(CIFAR, tmp_path, TRAINING)
    scipy.io.savemat(str(tmp_path / "train.mat"), {"data": np.zeros((10, 3072), np.uint8),
                                                   "coarse_labels": np.full((10, 1), 20, np.uint8)})
    with pytest.raises(DataError, match=r"train\.mat: labels outside 0\.\.19"):
        grading_splits(CIFAR, tmp_path, TRAINING)
    (tmp_path / "test.mat").write_bytes(b"not a mat file")
    assert missing_files(CIFAR, tmp_path) == ["meta.mat"] and missing_files(CIFAR, None) == list(CIFAR.dataset.files)


def test_a_folder_without_the_test_file_has_no_held_out_check(cifar, tmp_path):
    (tmp_path / "train.mat").write_bytes((cifar / "train.mat").read_bytes())
    splits = grading_splits(CIFAR, tmp_path, TRAINING)
    assert splits.heldout_images is None and splits.note == "test.mat not found: no held-out check"


def test_data_command_writes_each_editions_files(tmp_path):
    done = run_grade("data", "--synthetic", "--edition", "2023", "--out", str(tmp_path / "c"), "--train", "40",
                     "--test", "20", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["meta.mat", "test.mat", "train.mat"]
    assert "CIFAR-100" in done.stdout and "data/cifar100/" in done.stdout
    splits = grading_splits(CIFAR, tmp_path / "c", TRAINING)
    assert splits.val_images.shape == (8, 32, 32, 3)
    names = scipy.io.loadmat(str(tmp_path / "c" / "meta.mat"))["coarse_label_names"]
    assert [str(names[i][0][0]) for i in range(20)] == list(CIFAR.dataset.class_names)
    done = run_grade("data", "--synthetic", "--out", str(tmp_path / "s"), "--train", "20", "--test", "10")
    assert done.returncode == 0 and sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "test_32x32.mat", "train_32x32.mat"]  # the default edition: 2022's SVHN, as before
    too_few = run_grade("data", "--synthetic", "--edition", "2023", "--out", str(tmp_path / "f"), "--train", "5")
    assert too_few.returncode != 0 and "needs at least 20 images" in too_few.stderr
    helped = run_grade("data", "--help").stdout
    assert "train_32x32.mat" in helped and "train.mat, test.mat and meta.mat" in helped and "--edition" in helped


def test_grade_accepts_a_data_folder_of_either_edition(cifar, tmp_path):
    assert "missing train_32x32.mat" in run_grade("grade", str(tmp_path), "--data", str(tmp_path)).stderr
    assert "train.mat, test.mat, meta.mat (CIFAR-100" in run_grade("grade", str(tmp_path), "--data",
                                                                    str(tmp_path)).stderr


def test_headless_runs_stage_the_editions_files_where_its_loader_reads_them(cifar, tmp_path):
    for name in ("k23", "k22"):
        (tmp_path / name).mkdir()  # the kernel's scratch copy of the submission
    provide_data(tmp_path / "k23", cifar, CIFAR)
    assert sorted(p.name for p in (tmp_path / "k23" / "data" / "cifar100").iterdir()) == [
        "meta.mat", "test.mat", "train.mat"]
    write_synthetic_svhn(tmp_path / "svhn", train=20, test=10, seed=1)
    provide_data(tmp_path / "k22", tmp_path / "svhn", SVHN)
    assert sorted(p.name for p in (tmp_path / "k22" / "data").iterdir()) == ["test_32x32.mat", "train_32x32.mat"]


def handout_2023_notebook() -> nbformat.NotebookNode:
    """The 2023 handout's cells that matter here: no parameters cell; the loader called with its defaults."""
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from lib.datasets import *\nimport numpy as np"),
        nbformat.v4.new_code_cell("data = CIFAR100_data('data/cifar100/')\nlabel_names = data['label_names']"),
        nbformat.v4.new_markdown_cell("### Training the Network [25pts]"),
        nbformat.v4.new_code_cell("results = train_net(data_dict, model, loss_f, optimizer, batch_size, epochs)"),
    ])


def test_quick_makes_a_loader_called_with_its_defaults_read_the_graders_split(cifar):
    """The injected cells, run against a loader with the 2023 handout's signature (written here from what it
    does) on real files: the run's validation rows are the grader's, prepared as the grader prepares them."""
    quick, keep, note = quick_settings({"EPOCHS": 1}, cifar, 100, CIFAR)
    assert (quick["NUM_TRAINING"], quick["NUM_VALIDATION"], keep, note) == (240, 60, 100, "")
    notebook = handout_2023_notebook()
    notes = _prepare(notebook, quick, keep, CIFAR)
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    assert tags[1] == ["injected-split", "injected-parameters"] and tags[3] == ["injected-quick-rows"]
    assert any("CIFAR100_data reads the grader's split (NUM_TRAINING = 240, NUM_VALIDATION = 60)" in n for n in notes)

    def CIFAR100_data(data_dir, num_training=40000, num_validation=10000):  # noqa: N802 - the handout's name
        prepared = handout_preparation(data_dir, num_training, num_validation)
        train = scipy.io.loadmat(str(data_dir / "train.mat"))["coarse_labels"].ravel()
        return {"data_train": np.zeros((num_training, 32, 32, 3)), "labels_train": train[:num_training],
                "data_val": prepared["data_val"], "labels_val": prepared["labels_val"], "label_names": []}

    namespace = {"CIFAR100_data": CIFAR100_data, "DATA": cifar}  # one namespace, as the kernel's
    for cell in notebook.cells[1:4]:
        exec(cell.source.replace("'data/cifar100/'", "DATA"), namespace)
    data = namespace["data"]
    splits = grading_splits(CIFAR, cifar, TRAINING)
    np.testing.assert_allclose(data["data_val"], splits.val_images, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(data["labels_val"], splits.val_labels)
    assert data["data_train"].shape[0] == 100  # the trim cell kept the first quick_training_rows rows


def test_quick_leaves_a_2022_notebook_reading_its_parameters_as_before(tmp_path):
    write_synthetic_svhn(tmp_path, train=100, test=10, seed=1)
    quick, keep, _ = quick_settings({"EPOCHS": 1}, tmp_path, 50, SVHN)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("NUM_TRAINING = 70000\nNUM_VALIDATION = 3257\nEPOCHS = 6"),
        nbformat.v4.new_code_cell("data = SVHN_data(NUM_TRAINING, NUM_VALIDATION)")])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notes = _prepare(notebook, quick, keep, SVHN)
    assert [c.metadata.get("tags", []) for c in notebook.cells] == [["parameters"], ["injected-parameters"], [],
                                                                     ["injected-quick-rows"]]
    assert notes == ["--quick: EPOCHS = 1, NUM_TRAINING = 80, NUM_VALIDATION = 20",
                     "--quick: training on the first 50 training rows"]


def test_the_splits_are_read_once_per_folder_and_cannot_be_changed(tmp_path):
    write_synthetic_cifar100(tmp_path, CIFAR, train=100, test=20, seed=1)
    first = grading_splits(CIFAR, tmp_path, TRAINING)
    assert grading_splits(CIFAR, tmp_path, TRAINING) is first  # a batch reads the staff's files once
    with pytest.raises(ValueError, match="read-only"):
        first.val_images[0, 0, 0, 0] = 1.0
    write_synthetic_cifar100(tmp_path, CIFAR, train=120, test=20, seed=2)  # files replaced: read again
    assert grading_splits(CIFAR, tmp_path, TRAINING).val_images.shape[0] == 24

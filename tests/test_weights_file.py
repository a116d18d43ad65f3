"""The weights file is read under limits: only the members the described network needs, each checked
against its shape from its .npy header before anything is inflated (autograder/notebook/weights_file.py)."""

from __future__ import annotations

import io
import resource
import zipfile

import numpy as np
import pytest
from gaming import forged_header_npz

from autograder.notebook.weights_file import WeightsError, read_weights
from autograder.rubric import load_rubric

LIMITS = load_rubric().training
MB, MEMBERS = LIMITS.max_weights_mb, LIMITS.max_weights_members
PARAMS = {"conv1_w": np.arange(432, dtype=np.float64).reshape(3, 3, 3, 16), "conv1_b": np.zeros(16, np.float32),
          "fc1_w": np.ones((20, 10))}
SHAPES = {name: value.shape for name, value in PARAMS.items()}


def test_an_honest_npz_reads_back_exactly(tmp_path):
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "w.npz", **PARAMS, extra=np.ones(3))
        read = read_weights(tmp_path / "w.npz", SHAPES, MB, MEMBERS)
        assert read.problems == [] and set(read.arrays) == set(PARAMS)  # "extra" is not needed, not read
        for name, value in PARAMS.items():
            assert read.arrays[name].dtype == value.dtype and np.array_equal(read.arrays[name], value)


def test_fortran_order_and_every_member_when_none_are_named(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    read = read_weights(tmp_path / "w.npz", None, MB, MEMBERS)
    assert np.array_equal(read.arrays["a"], np.arange(12.0).reshape(3, 4))


def test_a_member_of_another_shape_is_a_problem_named_as_the_student_reads_it(tmp_path):
    np.savez(tmp_path / "w.npz", **dict(PARAMS, conv1_w=np.ones((3, 3, 3, 8))))
    read = read_weights(tmp_path / "w.npz", SHAPES, MB, MEMBERS)
    assert read.problems == ["conv1_w has shape (3, 3, 3, 8); your network's has (3, 3, 3, 16)"]
    assert "conv1_w" not in read.arrays


def test_a_header_declaring_2_gib_is_refused_before_it_is_inflated(tmp_path):
    """The file is a few MB; np.load would allocate 2 GiB and inflate it all. The reader reads the header,
    sees 2 GiB against the described (20, 10) or against the cap, and stops there."""
    path = forged_header_npz(tmp_path / "w.npz", PARAMS)
    assert path.stat().st_size < 16 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    read = read_weights(path, SHAPES, MB, MEMBERS)  # described as (20, 10): a shape problem, nothing inflated
    assert read.problems == ["fc1_w has shape (268435456,); your network's has (20, 10)"]
    with pytest.raises(WeightsError, match=r"declares a \(268435456,\) array of float64 \(2,048 MB\)"):
        read_weights(path, dict(SHAPES, fc1_w=(1 << 28,)), MB, MEMBERS)  # a description that asks for it
    with pytest.raises(WeightsError, match="declares"):
        read_weights(path, None, MB, MEMBERS)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB: far below 2 GiB


def test_pickles_nested_archives_and_other_compressions_are_refused(tmp_path):
    np.savez(tmp_path / "o.npz", conv1_w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError, match="only plain numbers are read"):
        read_weights(tmp_path / "o.npz", None, MB, MEMBERS)
    inner = io.BytesIO()
    np.savez(inner, conv1_w=PARAMS["conv1_w"])
    with zipfile.ZipFile(tmp_path / "n.npz", "w") as archive:
        archive.writestr("conv1_w.npy", inner.getvalue())
    with pytest.raises(WeightsError, match="is itself an archive"):
        read_weights(tmp_path / "n.npz", SHAPES, MB, MEMBERS)
    buffer = io.BytesIO()
    np.save(buffer, PARAMS["conv1_w"])
    with zipfile.ZipFile(tmp_path / "b.npz", "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("conv1_w.npy", buffer.getvalue())
    with pytest.raises(WeightsError, match="compressed other than"):
        read_weights(tmp_path / "b.npz", SHAPES, MB, MEMBERS)


def test_not_an_npz_too_many_members_and_a_lying_directory(tmp_path):
    np.save(tmp_path / "plain.npy", np.ones(3))
    with pytest.raises(WeightsError, match="not an .npz archive"):
        read_weights(tmp_path / "plain.npy", None, MB, MEMBERS)
    np.savez(tmp_path / "many.npz", **{f"a{i}": np.zeros(1) for i in range(12)})
    with pytest.raises(WeightsError, match="12 members, over the 10"):
        read_weights(tmp_path / "many.npz", None, MB, 10)
    buffer = io.BytesIO()
    np.save(buffer, np.ones(100))
    with zipfile.ZipFile(tmp_path / "short.npz", "w") as archive:
        archive.writestr("a.npy", buffer.getvalue()[:-80])  # the header declares 800 bytes, 720 follow
    with pytest.raises(WeightsError, match="declares 800 bytes of data"):
        read_weights(tmp_path / "short.npz", None, MB, MEMBERS)


def test_the_total_is_capped(tmp_path):
    """The file's own size and the sum of the members read (compressed zeros: a small file, 2 MB inflated)."""
    np.savez_compressed(tmp_path / "w.npz", a=np.zeros(1 << 17), b=np.zeros(1 << 17))  # 1 MB each
    assert read_weights(tmp_path / "w.npz", None, 2.1, MEMBERS).problems == []
    with pytest.raises(WeightsError, match="at most 0.5 MB more"):
        read_weights(tmp_path / "w.npz", None, 1.5, MEMBERS)
    np.savez(tmp_path / "stored.npz", a=np.zeros(1 << 17), b=np.zeros(1 << 17))
    with pytest.raises(WeightsError, match="the file is 2 MB, over the 1.5 MB"):
        read_weights(tmp_path / "stored.npz", None, 1.5, MEMBERS)

"""Fixtures: reproducible, verified against the reference, and refused when gradients disagree."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from autograder.fixtures import (FixtureError, compute_cases, load_case_arrays, read_manifest,
                                 verify_fixtures, write_fixtures)
from autograder.rubric import load_rubric
from conftest import FIXTURES, REFERENCE, run_grade


@pytest.mark.slow
def test_committed_fixtures_verify_through_the_cli():
    result = run_grade("fixtures", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_manifest_describes_every_case():
    manifest = read_manifest(FIXTURES)
    rubric = load_rubric()
    assert manifest["seed"] == rubric.fixtures["seed"]
    assert manifest["tolerances"] == dict(rubric.tolerances)
    counts = {}
    for entry in manifest["cases"]:
        counts[(entry["item"], entry["visibility"])] = counts.get((entry["item"], entry["visibility"]), 0) + 1
        arrays = load_case_arrays(FIXTURES, entry)  # checks the sha256 too
        for name, described in entry["arrays"].items():
            assert list(arrays[name].shape) == described["shape"] and str(arrays[name].dtype) == described["dtype"]
    for item in rubric.code_items():
        assert counts[(item.id, "public")] == 1
        assert counts[(item.id, "hidden")] == rubric.fixtures["hidden_cases"][item.id]


def test_public_cases_are_the_notebooks():
    manifest = read_manifest(FIXTURES)
    public = {e["item"]: e for e in manifest["cases"] if e["visibility"] == "public"}
    size = load_case_arrays(FIXTURES, public["output_size"])
    assert size["expected"].tolist() == [32, 16, 16, 16]
    conv = load_case_arrays(FIXTURES, public["conv_forward"])
    np.testing.assert_array_equal(conv["x"], np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1))
    cnn = load_case_arrays(FIXTURES, public["test_cnn"])
    assert abs(float(cnn["loss"]) - 4.56046848799693) < 1e-10
    np.testing.assert_array_equal(cnn["labels"], [0, 2, 1, 4])


def test_hidden_cases_cover_the_hard_shapes():
    entries = [e for e in read_manifest(FIXTURES)["cases"] if e["visibility"] == "hidden"]
    conv = [e for e in entries if e["item"] in ("conv_forward", "conv_backward")]
    shapes = [e["arrays"]["x"]["shape"] for e in conv]
    assert any(s[1] != s[2] for s in shapes) and any(s[1] == s[2] for s in shapes), "non-square and square images"
    assert any(e["args"]["padding"] == 0 for e in conv), "padding 0 too"
    assert any(s[0] > 1 for s in shapes) and any(s[3] > 1 for s in shapes)
    assert any(e["args"]["stride"] > 1 for e in conv) and any(e["args"]["padding"] > 0 for e in conv)
    pools = [e["args"] for e in entries if e["item"].startswith("pool")]
    assert any(a["stride"] < a["pool_size"] for a in pools), "some windows overlap"
    assert any(a["stride"] >= a["pool_size"] for a in pools), "some windows are disjoint"


def test_same_seed_same_bytes_other_seed_other_cases(tmp_path):
    rubric = load_rubric()
    seed = int(rubric.fixtures["seed"])
    first = write_fixtures(REFERENCE, tmp_path / "a", rubric, seed)
    assert first == read_manifest(FIXTURES)  # the committed fixtures are exactly reproducible
    other = write_fixtures(REFERENCE, tmp_path / "b", rubric, seed + 1)
    hidden = lambda m: {e["file"]: e["sha256"] for e in m["cases"] if e["visibility"] == "hidden"}  # noqa: E731
    public = lambda m: {e["file"]: e["sha256"] for e in m["cases"] if e["visibility"] == "public"}  # noqa: E731
    assert public(first) == public(other)
    assert all(hidden(first)[f] != hidden(other)[f] for f in hidden(first))


def test_verify_reports_a_changed_file(tmp_path):
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)
    entry = read_manifest(copy)["cases"][1]
    arrays = load_case_arrays(copy, entry)
    arrays[next(iter(arrays))] = arrays[next(iter(arrays))] + 1.0
    np.savez(copy / entry["file"], **arrays)
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert any(entry["file"] in p and "sha256" in p for p in problems)
    with pytest.raises(FixtureError, match="sha256 differs"):
        load_case_arrays(copy, entry)


def test_verify_reports_a_changed_seed(tmp_path):
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["seed"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert any("hidden/" in p and "differs from the reference" in p for p in problems)


def test_a_wrong_reference_writes_nothing(tmp_path):
    """Plant a bug in the reference's conv backward: generation must refuse, old fixtures intact."""
    broken = tmp_path / "reference"
    shutil.copytree(REFERENCE, broken)
    layers = broken / "lib" / "cnn" / "layer_utils.py"
    source = layers.read_text()
    assert "self.grads[self.b_name] = dout.sum(axis=0)" in source
    layers.write_text(source.replace("self.grads[self.b_name] = dout.sum(axis=0)",
                                     "self.grads[self.b_name] = dout.mean(axis=0)"))
    destination = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, destination)
    before = (destination / "manifest.json").read_bytes()
    with pytest.raises(FixtureError, match=r"db differs from central differences"):
        write_fixtures(broken, destination, load_rubric(), 1)
    assert (destination / "manifest.json").read_bytes() == before
    assert not (tmp_path / "fixtures.new").exists() or not (tmp_path / "fixtures.new" / "manifest.json").exists()


def test_compute_cases_refuses_a_folder_without_lib(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lib/ folder"):
        compute_cases(tmp_path, load_rubric(), 1)

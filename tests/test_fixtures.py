"""Fixtures: exact where they must be, within tolerance where they are floating-point work,
verified from the stored inputs, and refused when the reference's gradients disagree."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import FIXTURES, REFERENCE, run_grade

from autograder.fixtures import EXACT_ROLES, ROLES, FixtureError, load_case_arrays, load_cases, read_manifest
from autograder.numerics import numerical_gradient, rel_error, scaled_error
from autograder.rubric import load_rubric
from autograder.staff.fixture_build import (
    _npz_bytes,
    compute_cases,
    draw_cases,
    float_limits,
    pool_reach,
    pool_windows_of_test_cnn,
    reference_outputs,
    verify_fixtures,
    write_fixtures,
)
from autograder.staff.lib_loader import imported_lib

#: The reference with every sum reordered: numpy's own einsum loops instead of BLAS matrix
#: products, sums and pool windows taken backwards. Correct, and different in the last bits.
REORDERED = {
    "lib/cnn/layer_utils.py": [
        ("cols @ w_mat + ", 'np.einsum("ij,jk->ik", cols, w_mat) + '),
        ("cols.T @ dout", 'np.einsum("ij,ik->jk", cols, dout)'),
        ("w_mat @ dout.T", 'np.einsum("jk,ik->ji", w_mat, dout)'),
        ("dout.sum(axis=0)", "dout[::-1].sum(axis=0)"),
        ("for u in range(p):", "for u in reversed(range(p)):"),
        ("for u in range(k):", "for u in reversed(range(k)):"),
    ],
    "lib/mlp/layer_utils.py": [
        ("feat.dot(self.params[self.w_name])", 'np.einsum("ij,jk->ik", feat, self.params[self.w_name])'),
        ("dprev.dot(self.params[self.w_name].T)", 'np.einsum("ik,jk->ij", dprev, self.params[self.w_name])'),
        ("feat.T.dot(dprev)", 'np.einsum("ij,ik->jk", feat, dprev)'),
        ("dprev.sum(axis=0)", "dprev[::-1].sum(axis=0)"),
        ("-np.sum(np.log(picked))", "-np.sum(np.log(picked)[::-1])"),
    ],
}


@pytest.fixture(scope="module")
def reordered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reordered") / "reference"
    shutil.copytree(REFERENCE, folder)
    for relative, replacements in REORDERED.items():
        source = (folder / relative).read_text()
        for old, new in replacements:
            assert old in source, f"{relative} no longer holds {old!r}"
            source = source.replace(old, new)
        (folder / relative).write_text(source)
    return folder


def _copy(tmp_path):
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)
    return copy


def _rewrite(fixtures, file, change):
    """Change one array of a case file and give the manifest its new sha256: a fixture that
    passes the tamper check and holds a wrong value, as a faulty generator would write it."""
    manifest = read_manifest(fixtures)
    entry = next(e for e in manifest["cases"] if e["file"] == file)
    arrays = load_case_arrays(fixtures, entry)
    change(arrays)
    blob = _npz_bytes(arrays)
    (fixtures / file).write_bytes(blob)
    entry["sha256"] = hashlib.sha256(blob).hexdigest()
    (fixtures / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _median_element(array):
    """The index of a typical element: the nonzero one of median magnitude."""
    flat = np.abs(array).reshape(-1)
    nonzero = np.flatnonzero(flat)
    return np.unravel_index(int(nonzero[np.argsort(flat[nonzero])[nonzero.size // 2]]), array.shape)


@pytest.mark.slow
def test_committed_fixtures_verify_through_the_cli():
    result = run_grade("fixtures", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_committed_fixtures_verify():
    assert verify_fixtures(REFERENCE, FIXTURES, load_rubric()) == []


def test_manifest_describes_every_case():
    manifest = read_manifest(FIXTURES)
    rubric = load_rubric()
    assert manifest["seed"] == rubric.fixtures["seed"]
    assert manifest["tolerances"] == dict(rubric.tolerances)
    counts = {}
    for entry in manifest["cases"]:
        counts[(entry["item"], entry["visibility"])] = counts.get((entry["item"], entry["visibility"]), 0) + 1
        arrays = load_case_arrays(FIXTURES, entry)  # checks the sha256 too
        assert set(arrays) == set(ROLES[entry["item"]]), "no numerical gradient is stored"
        for name, described in entry["arrays"].items():
            assert list(arrays[name].shape) == described["shape"] and str(arrays[name].dtype) == described["dtype"]
            assert described["role"] == ROLES[entry["item"]][name]
        gradients = [name for name, role in ROLES[entry["item"]].items() if role == "gradient"]
        assert sorted(entry.get("gradient_gaps", {})) == sorted(gradients)
        assert all(gap <= rubric.tolerances["numeric_check"] for gap in entry.get("gradient_gaps", {}).values())
    for item in rubric.code_items():
        assert counts[(item.id, "public")] == 1
        assert counts[(item.id, "hidden")] == rubric.fixtures["hidden_cases"][item.id]
    check = manifest["gradient_check"]
    gaps = [gap for entry in manifest["cases"] for gap in entry.get("gradient_gaps", {}).values()]
    assert check["worst_gap"] == max(gaps) and check["limit"] == rubric.tolerances["numeric_check"]
    assert check["worst_gap"] < check["limit"] / 100, "the generator's check keeps a wide margin"


def test_public_cases_are_the_notebooks():
    manifest = read_manifest(FIXTURES)
    public = {e["item"]: e for e in manifest["cases"] if e["visibility"] == "public"}
    size = load_case_arrays(FIXTURES, public["output_size"])
    assert size["expected"].tolist() == [32, 16, 16, 16]
    conv = load_case_arrays(FIXTURES, public["conv_forward"])
    np.testing.assert_array_equal(conv["x"], np.linspace(-0.1, 0.4, num=64).reshape(1, 8, 8, 1))
    cnn = load_case_arrays(FIXTURES, public["test_cnn"])
    assert abs(float(cnn["loss"]) - 4.56046848799693) < load_rubric().tolerances["loss_abs"]
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


def test_same_seed_same_exact_arrays_and_close_floats_other_seed_other_cases(tmp_path):
    rubric = load_rubric()
    seed = int(rubric.fixtures["seed"])
    manifest = write_fixtures(REFERENCE, tmp_path / "again", rubric, seed)
    assert manifest["gradient_check"]["worst_gap"] <= rubric.tolerances["numeric_check"]
    committed = {case.relative_path: case for case in load_cases(FIXTURES)}
    again = {case.relative_path: case for case in load_cases(tmp_path / "again")}
    assert set(again) == set(committed)
    limits = float_limits(rubric)
    for path, case in again.items():
        assert case.args == committed[path].args, path
        for name, role in ROLES[case.item].items():
            ours, theirs = case.arrays[name], committed[path].arrays[name]
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, f"{path}: {name}"
            if role in EXACT_ROLES:
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{path}: {name} ({role})")
            elif role == "loss":
                assert abs(float(ours) - float(theirs)) <= limits["loss"], path
            else:
                assert scaled_error(ours, theirs, rubric.tolerances["near_zero"]) <= limits[role], f"{path}: {name}"

    other = {case.relative_path: case for case in draw_cases(rubric, seed + 1)}
    assert set(other) == set(committed)
    for path, case in other.items():
        ours = {name: case.arrays[name] for name, role in ROLES[case.item].items() if role == "input"}
        same = case.args == committed[path].args and all(np.array_equal(a, committed[path].arrays[n])
                                                         for n, a in ours.items())
        assert same == (case.visibility == "public"), f"{path}: the public cases are fixed, the hidden ones drawn"


def test_verify_accepts_a_reference_that_sums_in_another_order(reordered):
    """Another BLAS, simulated: every sum in another order. The fixtures still verify, although
    most floating-point arrays differ from the stored ones in their last bits."""
    rubric = load_rubric()
    cases = load_cases(FIXTURES)
    with imported_lib(reordered) as lib:
        fresh = [(case, reference_outputs(lib, case)) for case in cases]
    floats = [(case, name) for case, outputs in fresh for name in outputs if ROLES[case.item][name] not in EXACT_ROLES]
    differing = [(case, name) for case, outputs in fresh for name, value in outputs.items()
                 if not np.array_equal(value, case.arrays[name])]
    assert len(differing) > len(floats) / 2, "the reordered reference must really compute other bits"
    assert all(ROLES[case.item][name] not in EXACT_ROLES for case, name in differing), \
        "sizes and selections do not depend on the order of a sum"
    assert verify_fixtures(reordered, FIXTURES, rubric) == []


@pytest.mark.parametrize("file, name, relative", [
    ("public/conv_forward/public.npz", "out", 1e-7),
    ("hidden/conv_forward/hidden_03.npz", "out", 1e-7),
    ("hidden/test_cnn/hidden_01.npz", "scores", 1e-7),
    ("hidden/conv_backward/hidden_02.npz", "dx", 1e-6),
    ("hidden/conv_backward/hidden_04.npz", "dw", 1e-6),
    ("hidden/pool_backward/hidden_02.npz", "dx", 1e-6),
    ("public/test_cnn/public.npz", "d_fc_w", 1e-6),
])
def test_verify_names_a_planted_error_of_grading_size(tmp_path, file, name, relative):
    """A typical element off by the grading tolerance (forward 1e-7, gradients 1e-6, relative)."""
    copy = _copy(tmp_path)

    def plant(arrays):
        where = _median_element(arrays[name])
        arrays[name][where] *= 1 + relative
    _rewrite(copy, file, plant)
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert len(problems) == 1 and problems[0].startswith(f"{file}: {name} (") and "differs from the reference" in \
        problems[0], problems


def test_verify_names_a_loss_off_by_its_grading_tolerance(tmp_path):
    copy = _copy(tmp_path)
    loss_abs = load_rubric().tolerances["loss_abs"]
    _rewrite(copy, "hidden/test_cnn/hidden_02.npz", lambda arrays: arrays.update(loss=arrays["loss"] + loss_abs))
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert problems == [p for p in problems if p.startswith("hidden/test_cnn/hidden_02.npz: loss (loss) differs")]
    assert len(problems) == 1


@pytest.mark.parametrize("file, name, what", [
    ("hidden/conv_backward/hidden_01.npz", "x", "input"),
    ("public/test_cnn/public.npz", "feats", "input"),
    ("hidden/pool_forward/hidden_02.npz", "out", "selection"),
    ("hidden/output_size/hidden_05.npz", "expected", "size"),
])
def test_verify_demands_exact_inputs_sizes_and_selections(tmp_path, file, name, what):
    """One element moved by one unit in the last place (one for an integer) is reported."""
    copy = _copy(tmp_path)

    def nudge(arrays):
        where = _median_element(arrays[name])
        value = arrays[name][where]
        arrays[name][where] = value + 1 if arrays[name].dtype.kind == "i" else np.nextafter(value, np.inf)
    _rewrite(copy, file, nudge)
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert problems and all(p.startswith(f"{file}: {name} ({what}, exact) differs") for p in problems), problems


def test_verify_reports_a_changed_file(tmp_path):
    copy = _copy(tmp_path)
    entry = read_manifest(copy)["cases"][1]
    arrays = load_case_arrays(copy, entry)
    arrays[next(iter(arrays))] = arrays[next(iter(arrays))] + 1.0
    np.savez(copy / entry["file"], **arrays)
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert problems == [p for p in problems if p.startswith(entry["file"]) and "sha256" in p] and problems
    with pytest.raises(FixtureError, match="sha256 differs"):
        load_case_arrays(copy, entry)


def test_verify_reports_a_changed_seed(tmp_path):
    copy = _copy(tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["seed"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert problems and all(p.startswith("hidden/") and f"seed {manifest['seed']}" in p for p in problems)


def test_inputs_another_numpy_would_not_draw_are_reported_with_both_versions(tmp_path):
    copy = _copy(tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["numpy"] = "1.0.0"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert verify_fixtures(REFERENCE, copy, load_rubric()) == [], "the version alone is no difference"
    _rewrite(copy, "hidden/pool_backward/hidden_03.npz",
             lambda arrays: arrays.update(dout=np.nextafter(arrays["dout"], np.inf)))
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert len(problems) == 2, problems
    assert problems[0].startswith("hidden/pool_backward/hidden_03.npz: dout (input, exact) differs from seed")
    assert "drawn with NumPy 1.0.0, this is NumPy " + np.__version__ in problems[1]


def test_verify_asks_to_regenerate_fixtures_of_another_generator(tmp_path):
    copy = _copy(tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["generator_version"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_fixtures(REFERENCE, copy, load_rubric())
    assert len(problems) == 1 and "python grade.py fixtures" in problems[0]


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
    rubric = load_rubric()
    one_each = replace(rubric, fixtures=dict(rubric.fixtures, cases_per_side=0,
                                             hidden_cases={item: 1 for item in rubric.fixtures["hidden_cases"]}))
    with pytest.raises(FixtureError, match=r"conv_backward/hidden_00.npz: db differs from central differences"):
        write_fixtures(broken, destination, one_each, 1)
    assert (destination / "manifest.json").read_bytes() == before
    assert not (tmp_path / "fixtures.new").exists() or not (tmp_path / "fixtures.new" / "manifest.json").exists()


def test_compute_cases_refuses_a_folder_without_lib(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lib/ folder"):
        compute_cases(tmp_path, load_rubric(), 1)


def test_hidden_test_cnn_cases_keep_pool_ties_beyond_the_gradient_checks_steps(ref):
    """Across a tie in a max-pool window the loss has a kink, and central differences there
    disagree with a correct gradient; the hidden TestCNN cases are drawn away from ties."""
    rubric = load_rubric()
    cases = [c for c in load_cases(FIXTURES) if c.item == "test_cnn" and c.visibility == "hidden"]
    assert cases
    for case in cases:
        windows = pool_windows_of_test_cnn(case.arrays)
        # These are the reference's own pool inputs: its maxima are the windows' largest values.
        conv = ref.cnn_layers.ConvLayer2D(3, 3, 3, name="check")
        conv.params[conv.w_name], conv.params[conv.b_name] = case.arrays["conv_w"], case.arrays["conv_b"]
        pooled = ref.cnn_layers.MaxPoolingLayer(2, 2, "check").forward(conv.forward(case.arrays["feats"]))
        np.testing.assert_allclose(windows[..., -1], pooled, rtol=1e-12, atol=1e-12)
        reach = pool_reach(case.arrays, rubric)
        assert 0 < reach and (windows[..., -1] - windows[..., -2]).min() > 4 * reach


def test_scaled_error_judges_near_zero_elements_by_the_arrays_scale():
    fresh = np.array([30.0, -20.0, 1e-9, 5.0])
    reordered = fresh + np.array([4e-15, 0.0, 3e-15, 0.0])  # last-bit noise of sums of size about 30
    assert rel_error(fresh, reordered) > 1e-7, "the handout's measure calls it a large error"
    assert scaled_error(fresh, reordered, 1e-3) < 1e-12
    wrong = fresh * np.array([1, 1 + 1e-7, 1, 1])
    assert scaled_error(fresh, wrong, 1e-3) == pytest.approx(rel_error(fresh, wrong), rel=1e-6)
    assert scaled_error(np.zeros(3), np.zeros(3), 1e-3) == 0.0
    assert scaled_error(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), 1e-3) == 0.0
    assert scaled_error(np.array([np.inf, 1.0]), np.array([1.0, 1.0]), 1e-3) == np.inf


def test_fourth_order_differences_are_more_accurate_at_the_same_step():
    x = np.array([0.3, -1.2, 2.0])
    exact = np.cos(x) * np.exp(np.sin(x))
    second = numerical_gradient(lambda v: np.sum(np.exp(np.sin(v))), x, 1e-3)
    fourth = numerical_gradient(lambda v: np.sum(np.exp(np.sin(v))), x, 1e-3, order=4)
    np.testing.assert_array_equal(x, [0.3, -1.2, 2.0])  # restored
    assert rel_error(fourth, exact) < 1e-11 < 1e-8 < rel_error(second, exact)

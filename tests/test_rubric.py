"""The rubric file: the assignment's 60 points, typed sections, and clear errors for a broken edit
(an unknown, missing or mistyped key is named with its table)."""

from __future__ import annotations

import copy
import dataclasses
import tokenize

import pytest
import tomllib

from autograder.rubric import RUBRIC_PATH, RubricError, load_rubric, parse_rubric


def test_rubric_is_the_assignments():
    rubric = load_rubric()
    assert rubric.total == 60
    assert [(i.id, i.points) for i in rubric.items] == [
        ("output_size", 2), ("conv_forward", 5), ("conv_backward", 5), ("pool_forward", 5), ("pool_backward", 5),
        ("test_cnn", 3), ("training", 25), ("filters", 5), ("inline_answer", 5)]
    assert rubric.training["threshold"] == 0.88 and rubric.training["chance"] == 0.10
    assert rubric.tolerances["forward"] == 1e-7 and rubric.tolerances["gradient"] == 1e-6


def test_components_split_their_items_points_and_public_cases_weigh_nothing():
    rubric = load_rubric()
    for item in rubric.code_items():
        assert sum(part.points for part in item.components) == pytest.approx(item.points)
        assert item.public_weight == 0 and item.hidden_weight > 0  # printed answers earn nothing
    assert [(c.id, c.points) for c in rubric.item("conv_backward").components] == [("dimg", 2), ("dw", 2), ("db", 1)]
    assert [c.id for c in rubric.item("test_cnn").components if c.check] == ["structure", "initialisation"]
    assert [c.id for c in rubric.item("test_cnn").components if not c.check] == ["scores", "loss", "gradients"]
    assert [c.id for c in rubric.item("conv_forward").components] == [""]  # all its points, by case


def test_checked_texts_state_values_not_keys():
    rubric = load_rubric()
    texts = " ".join(item.checked for item in rubric.items)
    assert "tolerances." not in texts and "{" not in texts
    assert "relative error at most 1e-07" in rubric.item("conv_forward").checked
    assert "relative error at most 1e-06" in rubric.item("conv_backward").checked
    ranges = rubric.fixtures
    for key, words in (("height", "height"), ("batch", "batches of"), ("stride", "strides"), ("padding", "padding")):
        assert f"{words} {ranges[key][0]}–{ranges[key][1]}" in rubric.hidden_cases_text()  # read from the rubric
    assert "overlapping" in rubric.hidden_cases_text() and "non-square" in rubric.hidden_cases_text()


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["items"][0].pop("points"), r"items\[0\]: missing 'points'"),
    (lambda d: d["items"][1].update(kind="auto"), "kind must be code, notebook or manual"),
    (lambda d: d["items"][2].update(id="output_size"), "item ids repeat"),
    (lambda d: d["fixtures"]["hidden_cases"].pop("pool_forward"), "no count for code item 'pool_forward'"),
    (lambda d: d["items"][0].update(public_weight=0, hidden_weight=0), "needs a positive hidden_weight"),
    (lambda d: d["items"][2]["components"][0].update(points=3), "add up to 6, not the item's 5"),
    (lambda d: d["items"][2]["components"][1].update(id="dimg"), "listed once each"),
    (lambda d: d["items"][6].update(components=[{"id": "a", "title": "a", "points": 25}]), "only code items"),
    (lambda d: d["items"][1].update(checked="within {tolerances.nope}"), r"\{tolerances.nope\} names no rubric value"),
    (lambda d: d["filters"].update(tile_correlation=1.5), r"\[filters\] tile_correlation: must be in \(0, 1\]"),
    (lambda d: d["filters"].update(max_tile_aspect=0.5), r"\[filters\] max_tile_aspect: must be at least 1"),
    (lambda d: d["filters"].pop("min_shown_fraction"), r"\[filters\] min_shown_fraction: missing"),
    (lambda d: d["filters"].update(review_shown_fraction=0.75), r"review_shown_fraction: must be below min_shown"),
])
def test_broken_rubric_is_refused_with_the_reason(edit, message):
    data = copy.deepcopy(tomllib.loads(RUBRIC_PATH.read_text()))
    edit(data)
    with pytest.raises(RubricError, match=message):
        parse_rubric(data)


def test_missing_rubric_file_is_named(tmp_path):
    with pytest.raises(RubricError, match="rubric file not found"):
        load_rubric(tmp_path / "nope.toml")


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["worker"].update(call_timout=5), r"\[worker\] call_timout: unknown key"),
    (lambda d: d["items"][0].update(weight=1), r"items\[0\] weight: unknown key"),
    (lambda d: d["items"][2]["components"][0].update(checks=True), r"components\[0\] checks: unknown key"),
    (lambda d: d.update(grading={"x": 1}), r"\[grading\]: unknown table"),
    (lambda d: d["worker"].pop("call_timeout"), r"\[worker\] call_timeout: missing"),
    (lambda d: d["assignment"].pop("pdf"), r"\[assignment\] pdf: missing"),
    # set per edition (autograder/editions/*.toml), never in the rubric too
    (lambda d: d["assignment"].update(weights_file="x.npz"), r"\[assignment\] weights_file: set per edition"),
    (lambda d: d["training"].update(threshold=0.5), r"\[training\] threshold: set per edition"),
    (lambda d: d.pop("similarity"), r"missing 'similarity'"),
    (lambda d: d["worker"].update(call_timeout="5"), r"\[worker\] call_timeout: must be a number, not '5'"),
    (lambda d: d["intake"].update(max_files=2.5), r"\[intake\] max_files: must be an integer, not 2.5"),
    (lambda d: d["training"].update(heldout_seed=True), r"\[training\] heldout_seed: must be an integer"),
    (lambda d: d["fixtures"].update(kernel=[5, 1]), r"\[fixtures\] kernel: must be \[low, high\] integers"),
    (lambda d: d["assignment"].update(notebook=2), r"\[assignment\] notebook: must be a string"),
    (lambda d: d["grading_sheet"].update(point_step=0), r"\[grading_sheet\] point_step: must be above 0"),
    (lambda d: d["grading_sheet"].update(point_step=6), r"\[grading_sheet\] point_step: must be above 0"),
    (lambda d: d["intake"].update(max_answer_chars=0), r"\[intake\] max_answer_chars: must be positive"),
    (lambda d: d["intake"].update(max_answer_chars=1.5e4), r"\[intake\] max_answer_chars: must be an integer"),
    (lambda d: d["intake"].update(max_image_pixels=-1), r"\[intake\] max_image_pixels: must be positive"),
    (lambda d: d["intake"].update(max_image_pixels=10**9), r"\[intake\] max_image_pixels: must be at most \d+ "
                                                           r"\(Pillow's decompression-bomb limit\)"),
    (lambda d: d["intake"].pop("max_image_pixels"), r"\[intake\] max_image_pixels: missing"),
    # the worker's reply and exit bounds (issue 20)
    (lambda d: d["worker"].update(max_reply_parts=1), r"\[worker\] max_reply_parts: must be at least 2"),
    (lambda d: d["worker"].update(max_reply_mb=0), r"\[worker\] max_reply_mb: must be positive"),
    (lambda d: d["worker"].update(exits_per_item=0), r"\[worker\] exits_per_item: must be positive"),
    (lambda d: d["worker"].update(exits_per_submission=2.5), r"\[worker\] exits_per_submission: must be an integer"),
    (lambda d: d["worker"].pop("exits_per_submission"), r"\[worker\] exits_per_submission: missing"),
])
def test_every_key_is_known_present_and_typed(edit, message):
    data = copy.deepcopy(tomllib.loads(RUBRIC_PATH.read_text()))
    edit(data)
    with pytest.raises(RubricError, match=message):
        parse_rubric(data, source="rubric.toml")


def test_sections_are_typed_and_read_only():
    rubric = load_rubric()
    assert rubric.worker.call_timeout == 5 and rubric.worker["call_timeout"] == 5
    assert dict(rubric.intake) == {"max_unpacked_mb": 200, "max_files": 2000, "max_notebook_mb": 50,
                                   "max_answer_chars": 15000, "max_image_pixels": 30_000_000,
                                   "max_folder_entries": 20000,  # folder submissions (issue 20, C)
                                   "max_other_images": 40}
    assert rubric.fixtures.kernel == (1, 5) and rubric.training.network_seed == 123
    assert (rubric.assignment.notebook, rubric.assignment.pdf, rubric.assignment.weights_file) == (
        "Problem_2.ipynb", "problem_2_solution.pdf", "svhn_cnn_params.npz")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rubric.worker.call_timeout = 1
    assert not hasattr(rubric, "raw")


FILE_NAMES = ("Problem_2.ipynb", "problem_2_solution.pdf", "svhn_cnn_params.npz", "cifar100_cnn_params.npz",
              "train_32x32.mat", "test_32x32.mat", "train.mat", "test.mat", "meta.mat")
EDITION_FILE_NAMES = FILE_NAMES[2:]


def _data_literals(path):
    """String literals of a module that are data, not prose: no whitespace in them (a file name, a path
    piece); sentences, help texts and docstrings may name the files, code may not spell them."""
    with open(path, "rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            if token.type == tokenize.STRING and not any(c.isspace() for c in token.string):
                yield token.start[0], token.string


def test_the_assignments_file_names_are_spelled_only_in_the_rubric_and_the_editions():
    root = RUBRIC_PATH.parent
    found = [f"{path.relative_to(root.parent)}:{line}: {text}" for path in sorted(root.rglob("*.py"))
             for line, text in _data_literals(path) if any(name in text for name in FILE_NAMES)]
    assert found == []
    assert not [path for path in root.rglob("*.py") if ".raw[" in path.read_text() or ".raw\n" in path.read_text()]
    assert all(name in RUBRIC_PATH.read_text() for name in FILE_NAMES if name not in EDITION_FILE_NAMES)
    editions_text = "".join(path.read_text() for path in (root / "editions").glob("*.toml"))
    assert all(name in editions_text for name in EDITION_FILE_NAMES)

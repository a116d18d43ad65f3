"""The rubric file: the assignment's 60 points, and clear errors for a broken edit."""

from __future__ import annotations

import copy
import tomllib

import pytest

from autograder.rubric import RUBRIC_PATH, RubricError, load_rubric, parse_rubric


def test_rubric_is_the_assignments():
    rubric = load_rubric()
    assert rubric.total == 60
    assert [(i.id, i.points) for i in rubric.items] == [
        ("output_size", 2), ("conv_forward", 5), ("conv_backward", 5), ("pool_forward", 5), ("pool_backward", 5),
        ("test_cnn", 3), ("training", 25), ("filters", 5), ("inline_answer", 5)]
    assert rubric.training["threshold"] == 0.88 and rubric.training["chance"] == 0.10
    assert rubric.tolerances["forward"] == 1e-7 and rubric.tolerances["gradient"] == 1e-6


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["items"][0].pop("points"), r"items\[0\]: missing 'points'"),
    (lambda d: d["items"][1].update(kind="auto"), "kind must be code, notebook or manual"),
    (lambda d: d["items"][2].update(id="output_size"), "item ids repeat"),
    (lambda d: d["fixtures"]["hidden_cases"].pop("pool_forward"), "no count for code item 'pool_forward'"),
    (lambda d: d["items"][0].update(public_weight=0, hidden_weight=0), "needs a positive"),
])
def test_broken_rubric_is_refused_with_the_reason(edit, message):
    data = copy.deepcopy(tomllib.loads(RUBRIC_PATH.read_text()))
    edit(data)
    with pytest.raises(RubricError, match=message):
        parse_rubric(data)


def test_missing_rubric_file_is_named(tmp_path):
    with pytest.raises(RubricError, match="rubric file not found"):
        load_rubric(tmp_path / "nope.toml")

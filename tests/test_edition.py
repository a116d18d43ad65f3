"""Editions as data (autograder/edition.py): the files parse, a typo fails with its file and key, an edition
is found by name or year, a submission's edition is decided from its own files, and a third, invented
edition is added by a file alone."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from autograder.edition import (
    EDITIONS_DIR,
    EditionError,
    detect,
    editions,
    get_edition,
    load_edition_file,
    parse_edition,
)
from autograder.rubric import load_rubric

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _data(name: str) -> dict:
    with open(EDITIONS_DIR / f"{name}.toml", "rb") as handle:
        return tomllib.load(handle)


def test_both_editions_are_known_with_their_own_task():
    by_year = {edition.year: edition for edition in editions()}
    assert sorted(by_year) == [2022, 2023]
    svhn, cifar = by_year[2022], by_year[2023]
    assert (svhn.dataset.classes, svhn.training.target, svhn.training.chance) == (10, 0.88, 0.10)
    assert (cifar.dataset.classes, cifar.training.target, cifar.training.chance) == (20, 0.40, 0.05)
    assert cifar.dataset.loader_module == "lib.datasets" and svhn.dataset.loader_module == "lib.mlp.datasets"
    assert cifar.extra_credit.points == 5 and svhn.extra_credit.points == 0
    assert "gelu" in cifar.training.activations and "leaky_relu" in svhn.training.activations
    assert cifar.dataset.files == ("train.mat", "test.mat", "meta.mat")


@pytest.mark.parametrize("name", ["2023", "2023-cifar100"])
def test_an_edition_is_found_by_year_or_name(name):
    assert get_edition(name).name == "2023-cifar100"


def test_an_unknown_edition_lists_the_known_ones():
    with pytest.raises(EditionError, match=r"unknown edition '2031'.*2022-svhn \(2022\), 2023-cifar100 \(2023\)"):
        get_edition("2031")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["training"].pop("target"), r"\[training\]: missing 'target'"),
    (lambda d: d["dataset"].update(classes="20"), r"\[dataset\]: classes: must be a whole number"),
    (lambda d: d["dataset"].update(format="csv"), r"format: 'csv' is not one of"),
    (lambda d: d["training"].update(chance=0.5), r"need 0 <= chance < target"),
    (lambda d: d["training"].update(epoch_line=r"Epoch (\d+)"), r"epoch_line: needs the named groups"),
    (lambda d: d["dataset"].update(class_names=["a"]), r"1 names for 20 classes"),
    (lambda d: d["notebook"].update(colour="red"), r"\[notebook\]: unknown key 'colour'"),
    (lambda d: d.update(name="cifar-next"), r"must contain its year"),
    (lambda d: d["training"].update(activations=["swish"]), r"'swish' is not one of"),
])
def test_a_broken_edition_file_fails_naming_file_and_key(change, message):
    data = _data("2023")
    change(data)
    with pytest.raises(EditionError, match=message):
        parse_edition(data, source="2023.toml")


def test_the_rubric_takes_the_editions_target_weights_file_and_words():
    rubric = load_rubric()
    assert rubric.edition.name == "2022-svhn"  # the default: what a submission naming no edition is graded as
    assert (rubric.training.threshold, rubric.assignment.weights_file) == (0.88, "svhn_cnn_params.npz")
    cifar = rubric.with_edition(get_edition("2023"))
    assert (cifar.training.threshold, cifar.training.chance) == (0.40, 0.05)
    assert cifar.assignment.weights_file == "cifar100_cnn_params.npz"
    assert "40 %" in cifar.item("training").title and "CIFAR-100" in cifar.item("training").title
    assert cifar.total == rubric.total == 60  # extra credit is outside the total
    assert cifar.training.heldout_rows == rubric.training.heldout_rows  # the rest is shared
    back = cifar.with_edition(get_edition("2022"))
    assert back.item("training").title == rubric.item("training").title


def _notebook(folder: Path, *sources: str) -> None:
    cells = [{"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": None}
             for source in sources]
    (folder / "Problem_2.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                        "nbformat_minor": 5}))


def test_a_2023_submission_is_detected_from_its_loader_and_notebook(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "datasets.py").write_text("def CIFAR100_data(): pass\n")
    _notebook(tmp_path, "data = CIFAR100_data('data/cifar100/')", "# Try to achieve 40% validation accuracy")
    decision = detect(tmp_path, "Problem_2.ipynb")
    assert (decision.edition.name, decision.how) == ("2023-cifar100", "detected")
    assert "it has lib/datasets.py" in decision.evidence
    assert decision.as_json()["year"] == 2023


def test_a_2022_submission_is_detected(tmp_path):
    (tmp_path / "lib" / "mlp").mkdir(parents=True)
    (tmp_path / "lib" / "mlp" / "datasets.py").write_text("def SVHN_data(): pass\n")
    _notebook(tmp_path, "data = SVHN_data()")
    assert detect(tmp_path, "Problem_2.ipynb").edition.name == "2022-svhn"


def test_nothing_to_go_by_gives_the_default_and_says_so(tmp_path):
    decision = detect(tmp_path, "Problem_2.ipynb")
    assert (decision.edition.name, decision.how) == ("2022-svhn", "default")
    assert "nothing in the files names an edition" in decision.evidence[0]


def test_a_tie_gives_the_default_and_names_both(tmp_path):
    (tmp_path / "lib" / "mlp").mkdir(parents=True)
    (tmp_path / "lib" / "mlp" / "datasets.py").write_text("")
    (tmp_path / "lib" / "datasets.py").write_text("")
    decision = detect(tmp_path, "Problem_2.ipynb")
    assert decision.how == "default" and "more than one edition" in decision.evidence[0]


def test_a_given_edition_is_kept_and_a_contradiction_flagged(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "datasets.py").write_text("")
    _notebook(tmp_path, "data = CIFAR100_data('data/cifar100/')")
    decision = detect(tmp_path, "Problem_2.ipynb", given=get_edition("2022"))
    assert (decision.edition.name, decision.how) == ("2022-svhn", "given")
    assert "look like 2023-cifar100" in decision.contradiction
    agreeing = detect(tmp_path, "Problem_2.ipynb", given=get_edition("2023"))
    assert agreeing.contradiction == "" and agreeing.edition.year == 2023


def test_a_linked_loader_is_no_evidence(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "datasets.py").symlink_to("/etc/hostname")
    assert detect(tmp_path, "Problem_2.ipynb").how == "default"


def test_a_third_invented_edition_is_added_by_a_file_alone(tmp_path):
    """Next year's handout: a new file in the editions folder, no code. It is listed, found by year,
    detected from a submission's files, and gives the rubric its target."""
    folder = tmp_path / "editions"
    shutil.copytree(EDITIONS_DIR, folder)
    text = (EDITIONS_DIR / "2023.toml").read_text()
    text = (text.replace('name = "2023-cifar100"', 'name = "2031-fashion"').replace("year = 2023", "year = 2031")
            .replace('loader_file = "lib/datasets.py"', 'loader_file = "lib/fashion.py"')
            .replace('data_markers = ["CIFAR100_data(", "CIFAR-100", "CIFAR100"]', 'data_markers = ["Fashion_data("]')
            .replace('target_text = "40%"', 'target_text = "93%"').replace("target = 0.40", "target = 0.93"))
    (folder / "2031.toml").write_text(text)
    assert [e.year for e in editions(folder)] == [2022, 2023, 2031]
    invented = get_edition("2031", folder)
    assert invented.name == "2031-fashion" and load_edition_file(folder / "2031.toml") == invented
    submission = tmp_path / "submission"
    (submission / "lib").mkdir(parents=True)
    (submission / "lib" / "fashion.py").write_text("")
    _notebook(submission, "data = Fashion_data()", "# reach 93 % validation accuracy")
    assert detect(submission, "Problem_2.ipynb", folder=folder).edition.name == "2031-fashion"
    rubric = load_rubric().with_edition(invented)
    assert rubric.training.threshold == 0.93 and "93 %" in rubric.item("training").title


def test_two_files_with_one_name_are_refused(tmp_path):
    folder = tmp_path / "editions"
    shutil.copytree(EDITIONS_DIR, folder)
    shutil.copy(folder / "2023.toml", folder / "2023-copy.toml")
    with pytest.raises(EditionError, match="share a name"):
        editions(folder)

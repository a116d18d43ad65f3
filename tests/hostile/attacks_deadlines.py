"""Round-three attacks on the grader's time (mechanism C): see attacks.py for what an attack is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from attacks import Attack, Context, item, outputs, points
from gaming import build, notebook

#: The first layer's filter count of the absurd layer: the filter reader used to try every grid layout
#: for this many filters (about 1.5 hours, no results written).
ABSURD_FILTERS = 200_000


def _absurd_first_layer(folder: Path, context: Context) -> Path:
    """The reference with its notebook (a non-blank filter image from a cell that reads conv1_w) and
    honest weights, but conv1_w saved as a (1, 1, 1, 200000) array."""
    weights = dict(context.honest_weights)
    weights["conv1_w"] = np.random.default_rng(0).standard_normal((1, 1, 1, ABSURD_FILTERS))
    return build(folder, book=notebook(), weights=weights)


def _check_absurd_first_layer(results: dict, out_dir: Path, context: Context) -> None:
    """Scored as without weights (provisional, for staff to confirm), saying what the layer has and
    what the grader compares; nothing else of the submission is lost to it."""
    said = outputs(results, "filters")
    # Either reading stops it: the bounds of the filter reader, or (first) the weights reader, which reads
    # conv1_w only in the shape the validated network gives its first convolution.
    assert (f"the first layer has {ABSURD_FILTERS} filters; the grader compares at most 256" in said
            or str(ABSURD_FILTERS) in said), said
    (test,) = item(results, "filters")
    assert test["extra_data"]["reason_code"] == "filters_provisional", test["extra_data"]
    assert points(results, "filters") == test["max_score"]
    assert not (out_dir / "filters_from_weights.png").exists()  # nothing rendered from what was not compared
    assert points(results, "conv_forward") > 0  # the code items were graded as usual


ATTACKS: list[Attack] = [
    Attack("absurd_first_layer_shape", "C", _absurd_first_layer, _check_absurd_first_layer, args=("--data", "{data}"),
           notes="a (1, 1, 1, 200000) first layer: the weights reader (shape of the validated network) or the filter "
                 "reader's bounds ([filters] max_filters) stop it"),
]

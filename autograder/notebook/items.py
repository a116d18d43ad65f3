"""Points for the notebook items: training (25), filters (5), inline answer (5, by staff).

Filters: full marks when a figure of the filter section (the filter heading to the next section: students
read the weights in one cell and draw them in the next) shows the first conv layer's saved weights
(autograder/notebook/filter_match.py reads the image back into tiles); without weights, a non-blank
figure drawn from them (its cell, or the cell before it that reads weights, reads the first layer's) earns
the points provisionally, for staff to confirm.

Training: 25 x clip((acc - chance) / (threshold - chance), 0, 1), as the course announced. Where
`acc` comes from (autograder/notebook/training_evidence.py gathers it, this module only scores):

- *verified*: the grader's trusted forward on the student's saved weights, on the rubric's
  validation split; a held-out figure, the student's own forward and the log are compared with it
  and every gap beyond the rubric's is flagged;
- *student_forward*: the network has a layer the grader cannot rebuild, so its own forward ran in
  the worker (and passed the noise check); its accuracy on the staff-held test images is the one that
  counts (the validation rows are public rows a forward could look images up in); said and flagged;
- otherwise nothing could be verified (no weights, no data) and the rubric's `unverified_policy`
  decides what the log's epoch lines earn: `reported` (credit, flagged), `pending` (0 until staff
  confirm) or a cap in points.

Weights that were submitted but cannot be evaluated earn 0 with the reason, never the log's number.
A network with more than two convolutions or two pooling layers (found by behaviour) scores 0.

Gaps between two accuracies (the log's and the grader's; the validation rows' and the held-out
images') are flagged only when they are larger than the rubric's floor and than `gap_z` standard
errors of a difference of two proportions over the numbers of images each was measured on
(`significant_gap`): a few hundred images give figures a few points apart by chance alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autograder.deadlines import Deadline, StageTimeout, unbounded
from autograder.model import AWAITING, ItemScore, ItemStatus, ReasonCode
from autograder.notebook.filter_match import (
    FigureError,
    FilterMatch,
    decode,
    first_layer_problem,
    match_filters,
    same_figure,
)
from autograder.notebook.reading import PLACEHOLDERS, Findings
from autograder.rubric import EXTRA_CREDIT, Rubric
from autograder.score import round_points


@dataclass
class TrainingEvidence:
    """What grading learned about the training item, from the notebook, the worker and the data."""

    reported: float | None = None  # the best Validation Accuracy of the training cell's epoch lines
    reported_last: float | None = None
    verified: float | None = None  # the trusted forward on the rubric's validation split
    verified_how: str = ""  # whose weights, on which images
    heldout: float | None = None  # the trusted forward on the staff-held test images
    heldout_size: int = 0
    validation_size: int = 0  # images of the rubric's validation split
    reported_images: int | None = None  # images the log's figure was measured on (NUM_VALIDATION, else ours)
    reported_same_rows: bool = False  # the log's validation rows are the grader's own (same images)
    student_forward: float | None = None  # the student's own forward on the validation split
    disagreements: int | None = None  # validation images where the two forwards predict differently
    noise_agreement: float | None = None  # own-forward predictions unchanged under one grey level of noise
    kinds: list[str] | None = None  # layer kinds of the student's SmallConvolutionalNetwork, by behaviour
    output_shape: list[int] | None = None
    architecture: list[dict[str, Any]] | None = None  # each layer: path, class, kind, summary
    violation: str = ""  # the architecture rule, broken
    edition_contradiction: str = ""  # the network's output width is another edition's (training_evidence.py)
    layer_notes: list[str] = field(default_factory=list)  # unknown classes, layers unlike their trusted twin
    not_rebuilt: list[str] = field(default_factory=list)  # why the trusted forward could not be used
    unverified: str = ""  # why nothing could be verified (the policy applies)
    unevaluable: str = ""  # why submitted weights could not be evaluated (0 points)
    problems: list[str] = field(default_factory=list)  # anything else worth saying

def awaiting(extra: dict[str, Any], *parts: str | tuple[str, ...]) -> str:
    """An item's note built from `parts`, where a tuple (said,) or (said, settled) is words true only while the
    item awaits staff ("pending staff grading; ", "; staff will confirm it"): they are recorded in
    `extra[AWAITING]`, so that once staff set the item its feedback says what the grader found without saying
    it is still pending, from the item's own record rather than from matching its wording."""
    note, pairs = "", []
    for part in parts:
        if isinstance(part, tuple):
            said, settled = part[0], (part[1] if len(part) > 1 else "")
            if said:
                pairs.append([said, settled])
            part = said
        note += part
    if pairs:
        extra[AWAITING] = pairs
    return note


def credit(accuracy: float, threshold: float, chance: float) -> float:
    """The fraction of the training points an accuracy earns."""
    return float(np.clip((accuracy - chance) / (threshold - chance), 0.0, 1.0))


def gap_threshold(a: float, n_a: int, b: float, n_b: int | None, floor: float, z: float) -> float:
    """The smallest gap between accuracies `a` (on n_a images) and `b` (on n_b other images) that is
    flagged: the floor, or z standard errors of the difference of two proportions from the pooled
    proportion, whichever is larger. `n_b` None: the same images (only the floor applies)."""
    if n_b is None or n_a <= 0 or n_b <= 0:
        return floor
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    return max(floor, z * math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / n_a + 1 / n_b)))


def architecture_violation(kinds: list[str] | None, output_shape: list[int] | None, rubric: Rubric) -> str:
    """Why a network of these layer kinds breaks the assignment's rule, or "" when it keeps it; the output
    must have one score per class of the rubric's edition (10 SVHN digits, 20 CIFAR-100 superclasses)."""
    if not kinds:  # unknown, or not implemented yet (scored as no evidence, not as a violation)
        return ""
    conv, pool = kinds.count("conv"), kinds.count("pool")
    limits = rubric.training
    if conv > limits["max_conv_layers"] or pool > limits["max_pool_layers"]:
        return (f"SmallConvolutionalNetwork has {conv} convolution and {pool} pooling layers; "
                f"at most {limits['max_conv_layers']} and {limits['max_pool_layers']} are allowed")
    classes = rubric.edition.dataset.classes
    if output_shape is not None and (len(output_shape) != 2 or output_shape[-1] != classes):
        return (f"SmallConvolutionalNetwork's output has shape {tuple(output_shape)} for {output_shape[0]} images; "
                f"expected ({output_shape[0]}, {classes}), one score for each of the task's {classes} classes")
    return ""


def percent(fraction: float) -> str:
    """A fraction as the handouts write a target: 0.4 -> "40 %"."""
    return f"{fraction * 100:g} %"


def against_target(accuracy: float, rubric: Rubric) -> str:
    """What an accuracy earns, in the edition's words: its target and chance (rubric.training, already the
    edition's) and its data ("trained to 40 % on CIFAR-100")."""
    limits, name = rubric.training, rubric.edition.dataset.name
    target = f"trained to {percent(limits.threshold)} on {name}"
    if accuracy >= limits.threshold:
        return f"the target, {target}, is reached: full credit"
    if accuracy <= limits.chance:
        return f"no credit at or below chance ({percent(limits.chance)}); the target, {target}, earns full credit"
    return f"below the target, {target}: credit grows linearly from chance ({percent(limits.chance)}) to it"


def _unverified_score(item, rubric: Rubric, evidence: TrainingEvidence, extra: dict[str, Any],
                      flags: list[str]) -> ItemScore:
    """The rubric's unverified_policy applied to the log's figure."""
    limits = rubric.training
    why = "; ".join([evidence.unverified, *evidence.problems] if evidence.unverified else evidence.problems) \
        or "nothing could be verified"
    if evidence.kinds == []:
        why = "SmallConvolutionalNetwork().net has no layers (not implemented); " + why
    if evidence.reported is None:
        return ItemScore(item, 0.0, (), "graded", f"0: no validation accuracy found ({why})", extra,
                         code=ReasonCode.NO_ACCURACY)
    policy = limits.get("unverified_policy", "reported")
    earned = item.points * credit(evidence.reported, limits["threshold"], limits["chance"])
    extra.update(accuracy=evidence.reported, accuracy_source="reported", unverified_policy=policy)
    claim = (f"validation accuracy {evidence.reported:.4f} (reported, from the notebook's log; not verified: {why}); "
             f"{against_target(evidence.reported, rubric)}")
    if evidence.layer_notes:
        claim += f"; layers: {'; '.join(evidence.layer_notes[:4])}"
    if policy == "pending":
        extra["accuracy_source"] = "pending"
        flags.append("accuracy pending")
        return ItemScore(item, 0.0, (), "pending", awaiting(extra, ("pending staff confirmation: ",), claim), extra,
                         code=ReasonCode.PENDING_STAFF)
    if policy == "reported":
        points = round_points(earned)
        flags.append("accuracy unverified" if points > 0 else "accuracy unverified (no credit)")
        return ItemScore(item, points, (), "graded", awaiting(extra, claim, (_rests_on_claim(points, item.points),)),
                         extra, code=ReasonCode.UNVERIFIED)
    cap = float(policy)
    points = round_points(min(earned, cap))
    flags.append("accuracy unverified (capped)" if points > 0 else "accuracy unverified (no credit)")
    capped = f"; at most {cap:g} points without verification" if earned > cap else ""
    return ItemScore(item, points, (), "graded",
                     awaiting(extra, claim + capped, (_rests_on_claim(points, item.points),)), extra,
                     code=ReasonCode.UNVERIFIED)


def _rests_on_claim(points: float, maximum: float) -> str:
    """What the student and staff read when points come from the log's word alone: plainly that they do, so
    that nobody takes them for measured (a log's accuracy line can be edited by hand, and the log replay
    compares loss lines only); "" when the claim earned nothing."""
    if points <= 0:
        return ""
    return (f"; UNVERIFIED: these {points:g} of {maximum:g} points rest on the accuracy the notebook's log reports, "
            f"not on one the grader measured from the network's weights; staff are asked to check it")


def score_training(rubric: Rubric, evidence: TrainingEvidence) -> ItemScore:
    """The training item from the evidence; `extra_data` carries every figure and the flags."""
    item = rubric.item("training")
    limits = rubric.training
    flags: list[str] = []
    extra: dict[str, Any] = {
        "accuracy": None, "accuracy_source": "none", "reported": evidence.reported,
        "reported_last": evidence.reported_last, "verified": evidence.verified,
        "verified_how": evidence.verified_how or None, "heldout": evidence.heldout,
        "heldout_images": evidence.heldout_size or None, "student_forward": evidence.student_forward,
        "disagreements": evidence.disagreements, "noise_agreement": evidence.noise_agreement,
        "mismatch": False, "architecture": evidence.kinds, "layers": evidence.architecture,
        "layer_notes": evidence.layer_notes or None, "not_rebuilt": evidence.not_rebuilt or None,
        "unverified_reason": evidence.unverified or None, "unevaluable_reason": evidence.unevaluable or None,
        "target": limits.threshold, "chance": limits.chance, "edition": rubric.edition.name,
        "flags": flags}  # the log replay (replay.annotate) adds "replay" and its flag afterwards
    if evidence.edition_contradiction:  # said whatever the score: staff decide which handout it was
        extra["edition_contradiction"] = evidence.edition_contradiction
        flags.append("edition contradiction")
    violation = evidence.violation or architecture_violation(evidence.kinds, evidence.output_shape, rubric)
    if evidence.edition_contradiction:
        violation = violation and f"{violation} (EDITION CONTRADICTION: {evidence.edition_contradiction})"
    if violation:
        extra["architecture_violation"] = violation
        flags.append("architecture violation")
        return ItemScore(item, 0.0, (), "graded", f"0: {violation}", extra, code=ReasonCode.RULE_VIOLATION)
    if evidence.unevaluable:
        flags.append("weights not evaluable")
        return ItemScore(item, 0.0, (), "graded",
                         f"0: your saved weights could not be evaluated: {evidence.unevaluable}",
                         extra, code=ReasonCode.WEIGHTS_NOT_EVALUABLE)
    z = float(limits["gap_z"])
    if evidence.verified is not None:
        accuracy, source, measured = evidence.verified, "verified", evidence.validation_size
        validation = evidence.verified
        flags.append("accuracy verified")
        note = f"validation accuracy {accuracy:.4f} (verified by the grader's own forward, {evidence.verified_how})"
    elif evidence.student_forward is not None and evidence.heldout is not None:
        accuracy, source, measured = evidence.heldout, "student_forward", evidence.heldout_size
        validation = evidence.student_forward
        flags.append("accuracy from own forward")
        note = (f"held-out accuracy {accuracy:.4f} (your own forward, {evidence.verified_how}: the grader could not "
                f"rebuild your network ({'; '.join(evidence.not_rebuilt)}), so the staff-held images decide, not "
                f"rows of the public training file)")
    else:
        return _unverified_score(item, rubric, evidence, extra, flags)
    extra.update(accuracy=accuracy, accuracy_source=source)
    note += f"; {against_target(accuracy, rubric)}"
    points = round_points(item.points * credit(accuracy, limits["threshold"], limits["chance"]))
    if evidence.heldout is not None:
        if source == "verified":
            note += f"; held-out check {evidence.heldout:.4f} on {evidence.heldout_size} staff-held test images"
        allowed = gap_threshold(validation, evidence.validation_size, evidence.heldout, evidence.heldout_size,
                                float(limits["heldout_gap"]), z)
        extra["heldout_gap_allowed"] = round(allowed, 4)
        if validation - evidence.heldout > allowed:
            extra["heldout_gap"] = True
            flags.append("held-out gap")
            note += (f" (HELD-OUT GAP: the validation accuracy {validation:.4f} is more than {allowed:.3f} above the "
                     f"held-out one, beyond the {limits['heldout_gap']:g} floor and {z:g} standard errors of "
                     f"chance over {evidence.validation_size} and {evidence.heldout_size} images)")
    if evidence.disagreements is not None and evidence.disagreements > limits["max_disagreements"]:
        flags.append("forward disagreement")
        note += (f"; FORWARD DISAGREEMENT: your own forward predicts differently on {evidence.disagreements} "
                 f"validation images (its accuracy: {evidence.student_forward:.4f})")
    if evidence.reported is not None:
        same = source == "verified" and evidence.reported_same_rows  # then only rounding at near-ties
        floor = max(float(limits["mismatch"]), limits["max_disagreements"] / measured if same and measured else 0.0)
        allowed = gap_threshold(accuracy, measured, evidence.reported,
                                None if same else (evidence.reported_images or measured), floor, z)
        extra["mismatch_allowed"] = round(allowed, 4)
        if abs(accuracy - evidence.reported) > allowed:
            extra["mismatch"] = True
            flags.append("accuracy mismatch")
            how = ("on the same images" if same else
                   f"beyond the {float(limits['mismatch']):g} floor and {z:g} standard errors of chance over "
                   f"{measured} and {evidence.reported_images or measured} images")
            note += f"; MISMATCH: the log reports {evidence.reported:.4f}, more than {allowed:.3f} away ({how})"
    if evidence.layer_notes:
        note += f"; layers: {'; '.join(evidence.layer_notes[:4])}"
    if evidence.problems:
        note += f"; {'; '.join(evidence.problems)}"
    return ItemScore(item, points, (), "graded", note, extra,
                     code=ReasonCode.PASSED if points >= item.points else ReasonCode.BELOW_THRESHOLD)


def _blank(png: bytes, max_pixels: int) -> bool:
    try:
        pixels = decode(png, max_pixels)
    except FigureError:
        return True
    return pixels.size == 0 or float(pixels.std()) < 1.0


NOTEBOOK_IMAGE = "filters_notebook.png"  # the notebook's image that was scored, beside results.json
RENDERED_IMAGE = "filters_from_weights.png"  # the grader's own drawing of the first layer's filters


def _duplicate(png: bytes, findings: Findings, limits, deadline: Deadline) -> str:
    """What other figure of the notebook this image is again ("the training curves", ...), or ""."""
    for what, other in [("the training curves", curve) for curve in findings.curve_images] + findings.other_images:
        deadline.check()
        if same_figure(png, other, limits):
            return what
    return ""


def score_filters(rubric: Rubric, findings: Findings | None, first_conv_w: str | None,
                  filters: np.ndarray | None = None, unchecked: str = "", deadline: Deadline | None = None
                  ) -> ItemScore:
    """The filters item. With the first conv layer's weights (`filters`, K x K x C x F), full marks only
    when a figure of the filter section shows them (autograder/notebook/filter_match.py); without weights,
    a non-blank figure drawn from them (`_draws_first_layer`) earns the points provisionally (staff confirm).
    An image that is another figure of the notebook again never counts without weights to vouch for it.
    `extra` carries the contract of the staff's grading sheet: notebook_image (set whenever the section has
    a figure: the one judged), rendered_image, match, shown, provisional, image_index (which of the
    section's figures), image_cell (its cell), image_cells (each figure's cell) and, with weights, judged
    (each figure's reading: image_index, cell, shown, match).

    First-layer weights outside the rubric's bounds ([filters] max_filters, max_kernel, max_channels) are
    not compared: the item is scored as without weights, saying why. Reading the images stops at
    `deadline` ([deadlines] filters_seconds): the item is then 0, not graded, with the reason."""
    item = rubric.item("filters")
    limits = rubric.filters
    name = first_conv_w or "the first layer"
    bounds = first_layer_problem(filters.shape, limits) if filters is not None else ""
    if bounds:
        filters = None  # scored as without weights: what the grader cannot compare, staff confirm
    extra: dict[str, Any] = {"images": 0, "first_conv_weights": first_conv_w, "notebook_image": None,
                             "rendered_image": RENDERED_IMAGE if filters is not None else None, "match": None,
                             "shown": None, "provisional": False, "image_index": None, "image_cell": None,
                             "image_cells": [], "flags": []}
    if bounds:
        extra["out_of_bounds"] = bounds
    try:
        why = f"{bounds}, so the image was not checked against the weights" if bounds else \
            (unchecked or "no weights to check the image against")
        return _score_filters(item, limits, findings, first_conv_w, filters, name, extra, why,
                              deadline or unbounded())
    except StageTimeout as late:
        extra["flags"].append("filters timed out")
        return ItemScore(item, 0.0, (), ItemStatus.NOT_GRADED,
                         awaiting(extra, f"0: {late.reason}", ("; staff will look at it",)), extra,
                         code=ReasonCode.TIMED_OUT)


def _image_cells(findings: Findings) -> list[int | None]:
    """The cell of each of `findings.filter_images` (findings made before the section was read: the filter cell)."""
    if len(findings.filter_image_cells) == len(findings.filter_images):
        return list(findings.filter_image_cells)
    return [findings.filter_cell] * len(findings.filter_images)


_OTHER_WEIGHTS = re.compile(r"get_params\s*\(|params\s*\[|layers\s*\[\s*\d")


def _reads_weights(source: str, name: str) -> str:
    """Which weights a cell reads: "first" (the first layer's, by name or as layers[0]), "other" (another
    layer's or unknown ones), "" (none)."""
    if name in source or re.search(r"layers\s*\[\s*0\s*\]", source):
        return "first"
    return "other" if _OTHER_WEIGHTS.search(source) else ""


def _draws_first_layer(findings: Findings, cell: int | None, name: str) -> bool:
    """Whether the figure of `cell` is drawn from the first layer's weights, as far as the code says: its own
    cell reads them, or it reads no weights itself and the nearest cell of the filter section before it that
    reads weights reads the first layer's (students read the weights in one cell and draw them in the next).
    Without weights to compare with, this is what keeps a figure of another layer from earning the points."""
    section = findings.filter_section or [(findings.filter_cell, findings.filter_source)]
    for _, source in reversed([(i, source) for i, source in section if i is not None and cell is not None
                               and i <= cell]):
        said = _reads_weights(source, name)
        if said:
            return said == "first"
    return False


def _shown(extra: dict[str, Any], index: int, cells: list[int | None]) -> None:
    """Record which figure the grading sheet shows (the one judged): its place in the section and its cell."""
    extra.update(notebook_image=NOTEBOOK_IMAGE, image_index=index, image_cell=cells[index])


def _which(cells: list[int | None], index: int) -> str:
    """" (the figure of cell N)" where the section has more than one figure, else ""."""
    return f" (the figure of cell {cells[index]})" if len(cells) > 1 and cells[index] is not None else ""


def _score_filters(item, limits, findings: Findings | None, first_conv_w: str | None, filters: np.ndarray | None,
                   name: str, extra: dict[str, Any], why: str, deadline: Deadline) -> ItemScore:
    """`score_filters` within its deadline (StageTimeout past it); `why` the image is provisional
    when there are no weights to check it against. Every figure of the filter section is a candidate
    (autograder/notebook/reading.py reads them, each with its cell); the one judged is the one shown."""
    if findings is None or not findings.filter_source:
        return ItemScore(item, 0.0, (), "graded", "0: no filter-visualisation cell found", extra,
                         code=ReasonCode.NO_FILTERS)
    cells = _image_cells(findings)
    images = [(index, png) for index, png in enumerate(findings.filter_images)
              if not (deadline.check() or _blank(png, limits.max_analysed_pixels))]
    extra["images"] = len(findings.filter_images)
    extra["image_cells"] = cells
    if not images:
        if findings.filter_images:  # shown on the grading sheet: staff see what "blank" means
            _shown(extra, 0, cells)
        count = len(findings.filter_images)
        why = ("its image is blank" if count == 1 else f"its {count} images are blank" if count
               else "it has no image output (run its cells and save the notebook)")
        return ItemScore(item, 0.0, (), "graded", f"0: the filter section shows no filters: {why}", extra,
                         code=ReasonCode.NO_FILTERS)
    repeats = {index: _duplicate(png, findings, limits, deadline) for index, png in images}
    if filters is not None:
        return _checked_against_weights(item, limits, images, repeats, filters, name, extra, cells, deadline)
    own = [index for index, _ in images if not repeats[index]]
    if not own:
        index = images[0][0]
        _shown(extra, index, cells)
        return ItemScore(item, 0.0, (), "graded", f"0: the filter image{_which(cells, index)} is the same figure as "
                         f"{repeats[index]}; draw the filters of {name} themselves", extra, code=ReasonCode.SAME_FIGURE)
    if first_conv_w is not None:
        drawn = [index for index in own if _draws_first_layer(findings, cells[index], first_conv_w)]
        if not drawn:
            _shown(extra, own[0], cells)
            return ItemScore(item, 0.0, (), "graded",
                             f"0: the filter section does not read {first_conv_w!r}, the weights of the first "
                             f"ConvLayer2D, for any of its figures (neither in the figure's own cell nor in the "
                             f"cell before it that reads weights)", extra, code=ReasonCode.NO_FILTERS)
        own = drawn
    _shown(extra, own[0], cells)
    extra["provisional"] = True
    extra["flags"].append("filters provisional")
    return ItemScore(item, item.points, (), "graded",
                     awaiting(extra, ("provisional: ",), why, ("; staff will confirm it",),
                              f" ({len(own)} filter image(s) of {name}{_which(cells, own[0])})"), extra,
                     code=ReasonCode.FILTERS_PROVISIONAL)


def _checked_against_weights(item, limits, images: list[tuple[int, bytes]], repeats: dict[int, str],
                             filters: np.ndarray, name: str, extra: dict[str, Any], cells: list[int | None],
                             deadline: Deadline) -> ItemScore:
    """The filters item when the weights are known: every figure of the filter section is compared with them
    and the one that shows them best decides (the one that matches; if none does, the closest, which is the
    one shown and named). `extra["judged"]` keeps each figure's reading, the evidence."""
    best: tuple[int, FilterMatch] | None = None
    judged = []
    for index, png in images:
        try:
            found = match_filters(png, filters, limits, deadline)
        except FigureError:
            judged.append({"image_index": index, "cell": cells[index], "shown": None, "match": None})
            continue
        judged.append({"image_index": index, "cell": cells[index], "shown": found.shown,
                       "match": round(found.match, 4)})
        if best is None or (found.shown, found.match) > (best[1].shown, best[1].match):
            best = (index, found)
    extra["judged"] = judged
    count = int(filters.shape[3])
    if best is None:  # every image unreadable (a blank one was already left out)
        _shown(extra, images[0][0], cells)
        return ItemScore(item, 0.0, (), "graded", "0: the filter section's images could not be read", extra,
                         code=ReasonCode.NO_FILTERS)
    index, found = best
    _shown(extra, index, cells)
    extra.update(match=round(found.match, 4), shown=found.shown, reading=found.reading)
    which = _which(cells, index)
    of = f" of the {len(images)} figures of the filter section" if len(images) > 1 else ""
    needed = math.ceil(float(limits["min_shown_fraction"]) * count - 1e-9)
    if found.passed(limits):
        how = "" if found.reading == "RGB, as saved" else f"; read as {found.reading}"
        return ItemScore(item, item.points, (), "graded",
                         f"the image{which} shows {found.shown} of {count} filters of {name} "
                         f"(mean correlation {found.match:.2f}{how})", extra, code=ReasonCode.PASSED)
    if not repeats.get(index) and found.fraction >= float(limits["review_shown_fraction"]):
        # More than a wrong image ever shows, fewer than a right one: a drawing the grader reads badly.
        extra["flags"].append("filters need staff review")
        return ItemScore(item, 0.0, (), "graded",
                         awaiting(extra, ("0 for now: ", "0: "), f"the grader recognised only {found.shown} of "
                                  f"{count} filters of {name} in the image{which} ({needed} needed)",
                                  ("; staff will look at the image and set the points",)),
                         extra, code=ReasonCode.FILTERS_UNCERTAIN)
    extra["flags"].append("filters do not match weights")
    if repeats.get(index):
        why = f"the filter image{which} is the same figure as {repeats[index]}"
    else:
        closest = f"; the closest{of} is the figure of cell {cells[index]}" if of and cells[index] is not None else ""
        why = (f"the filter image does not show the filters of {name} in the saved weights: {found.shown} of "
               f"{count} recognised, {needed} needed (mean correlation {found.match:.2f}){closest}")
    return ItemScore(item, 0.0, (), "graded",
                     f"0: {why}; draw the first convolutional layer's weights of the model you saved, one tile per "
                     f"filter, each scaled to its own range (imshow without interpolation)", extra,
                     code=ReasonCode.FILTERS_NOT_MATCHED)


def answer_text(findings: Findings | None) -> str:
    """The inline answer without HTML comments and placeholders (the handout's own text is already
    gone: autograder/notebook/reading.py `own_text`; an answer over the rubric's max_answer_chars is
    already cut there, so the PDF, results.json and the similarity check all get the same bounded text)."""
    if findings is None:
        return ""
    text = re.sub(r"<!--.*?-->", "", findings.answer, flags=re.DOTALL).strip()
    return "" if text.lower().strip() in PLACEHOLDERS else text


def _where(cells: tuple[int, ...], where: str) -> str:
    """"cell 15, under the question heading" / "cells 15-16, ...": a candidate's place, for staff."""
    said = f"cell {cells[0]}" if len(cells) == 1 else f"cells {', '.join(str(c) for c in cells)}"
    return f"{said}, {where}"


def score_inline_answer(rubric: Rubric, findings: Findings | None) -> ItemScore:
    """Staff grade the answer; here it is found, measured and shown, and the item is pending (no points are
    computed, so none can come from the wrong place). `extra["answer_candidates"]` lists every place near
    the question with text of the student's own (cells, where, text, chars); `answer_from` says which one the
    answer is, or that there are several and staff choose (flagged "answer in several places": `answer` is
    then all of them, in cell order)."""
    item = rubric.item("inline_answer")
    text = answer_text(findings)
    candidates = list(findings.answer_candidates) if findings is not None else []
    extra: dict[str, Any] = {"answer": text, "words": len(text.split()), "flags": [],
                             "answer_candidates": [{"cells": list(one.cells), "where": one.where, "text": one.text,
                                                    "chars": one.chars, "words": len(one.text.split())}
                                                   for one in candidates],
                             "answer_from": None}
    cut = ""
    if findings is not None and findings.answer_cut and text:
        extra.update(answer_chars=findings.answer_chars, cut_at=rubric.intake.max_answer_chars)
        extra["flags"].append("answer cut")
        cut = (f"; the answer was cut at {rubric.intake.max_answer_chars:,} characters of its "
               f"{findings.answer_chars:,} (staff read the full one in the notebook)")
    if not text:
        return ItemScore(item, 0.0, (), "pending", "no answer found: nothing of your own in the cells next to the "
                         "Inline Question (above it, under its heading, or the handout's answer cell; code cells and "
                         "the handout's own text, such as the next section's prompt, are not an answer)", extra,
                         code=ReasonCode.NO_ANSWER)
    if len(candidates) > 1:
        extra["answer_from"] = "several: staff choose"
        extra["flags"].append("answer in several places")
        places = "; ".join(_where(one.cells, one.where) for one in candidates)
        return ItemScore(item, 0.0, (), "pending",
                         awaiting(extra, ("pending staff grading; ",),
                                  f"text of yours in {len(candidates)} places near the question ({places})",
                                  (": staff read them all and grade your answer",), cut),
                         extra, code=ReasonCode.PENDING_STAFF)
    place = f" ({_where(candidates[0].cells, candidates[0].where)})" if candidates else ""
    if candidates:
        extra["answer_from"] = _where(candidates[0].cells, candidates[0].where)
    return ItemScore(item, 0.0, (), "pending",
                     awaiting(extra, ("pending staff grading; ",), f"answer of {len(text.split())} words{place}{cut}"),
                     extra, code=ReasonCode.PENDING_STAFF)


def extra_credit_text(findings: Findings | None) -> str:
    """The extra-credit work's text without HTML comments and placeholders (handout text already gone)."""
    if findings is None:
        return ""
    text = re.sub(r"<!--.*?-->", "", findings.extra_credit, flags=re.DOTALL).strip()
    return "" if text.lower().strip() in PLACEHOLDERS else text


def score_extra_credit(rubric: Rubric, findings: Findings | None) -> ItemScore:
    """The edition's extra credit (outside the total): staff grade the work; here it is found and shown.
    With work in the notebook the item is pending; with none it is 0, graded, and says where work would go
    (staff may still set it, as any item)."""
    item = rubric.item(EXTRA_CREDIT)
    text = extra_credit_text(findings)
    figures = len(findings.extra_credit_images) if findings is not None else 0
    extra: dict[str, Any] = {"extra_credit": True, "counted_in_total": False, "work": text,
                             "words": len(text.split()), "figures": figures, "flags": [],
                             "cells": list(findings.extra_credit_cells) if findings is not None else []}
    if findings is not None and findings.extra_credit_cut:
        extra["flags"].append("extra credit cut")
    outside = f"extra credit, outside the {rubric.total:g} points"
    if not text and not figures:
        prompt = rubric.edition.notebook.extra_credit_prompt or rubric.edition.notebook.extra_credit_heading
        return ItemScore(item, 0.0, (), ItemStatus.GRADED,
                         f"no extra-credit work found in the notebook (after the {prompt} prompt); {outside}",
                         extra, code=ReasonCode.NO_EXTRA_CREDIT)
    said = ", ".join(part for part in (f"{len(text.split())} words" if text else "",
                                      f"{figures} figure{'' if figures == 1 else 's'}" if figures else "") if part)
    return ItemScore(item, 0.0, (), ItemStatus.PENDING,
                     awaiting(extra, (f"pending staff grading ({outside}); ", f"{outside}: "), f"work of {said}"),
                     extra, code=ReasonCode.PENDING_STAFF)


def note_left_out_images(score: ItemScore, findings: Findings | None) -> ItemScore:
    """The filters item, saying which of the filter section's images were left out for their size or as
    undecodable (autograder/notebook/reading.py): first when none was left to score, since "no image output"
    alone would send the student looking for the wrong mistake; flagged "image too large" or "image unreadable"."""
    notes = findings.left_out_notes("filters") if findings is not None else []
    if not notes:
        return score
    extra = dict(score.extra)
    flags = (["image too large"] if any(where == "filters" for where, _ in findings.left_out) else []) + \
        (["image unreadable"] if any(where == "filters" for where, _ in findings.unreadable) else [])
    extra["flags"] = [*extra.get("flags", []), *flags]
    extra["left_out"] = notes
    said = "; ".join(notes)
    if not findings.filter_images and score.score == 0:
        note = f"0: the filter section shows no image the grader could read: {said}"
    else:
        note = f"{score.note}; {said}"
    return replace(score, note=note, extra=extra)

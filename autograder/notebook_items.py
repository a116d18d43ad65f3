"""Points for the notebook items: training (25), filters (5), inline answer (5, by staff).

Training: 25 x clip((acc - chance) / (threshold - chance), 0, 1), as the course announced.
`acc` is *verified* when the grader computed it (weights evaluated on the validation split by
the student's own network in the worker, labels kept in the grader), else *reported* from
the notebook's log and marked so. A gap over `mismatch` between the two is flagged. A network
with more than two conv or two pooling layers scores 0.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from autograder.notebook import Findings
from autograder.rubric import Rubric
from autograder.score import ItemScore, round_points

_PLACEHOLDERS = {"*your answer here.*", "your answer here", "your answer:", "*your answer:*", "answer:", "todo"}


@dataclass
class TrainingEvidence:
    """What grading learned about the training item, from the notebook, the worker and the data."""

    reported: float | None = None
    reported_last: float | None = None
    verified: float | None = None
    verified_how: str = ""  # "weights from the headless run" or "saved svhn_cnn_params.npz"
    kinds: list[str] | None = None  # layer kinds of the student's SmallConvolutionalNetwork
    output_shape: list[int] | None = None
    problems: list[str] = field(default_factory=list)  # why verification did not happen


def credit(accuracy: float, threshold: float, chance: float) -> float:
    """The fraction of the training points an accuracy earns."""
    return float(np.clip((accuracy - chance) / (threshold - chance), 0.0, 1.0))


def architecture_violation(kinds: list[str] | None, output_shape: list[int] | None, rubric: Rubric) -> str:
    """Why the network breaks the assignment's rule, or "" when it keeps it."""
    if not kinds:  # unknown, or not implemented yet (scored as no evidence, not as a violation)
        return ""
    conv, pool = kinds.count("conv"), kinds.count("pool")
    limits = rubric.training
    if conv > limits["max_conv_layers"] or pool > limits["max_pool_layers"]:
        return (f"SmallConvolutionalNetwork has {conv} ConvLayer2D and {pool} MaxPoolingLayer layers; "
                f"at most {limits['max_conv_layers']} and {limits['max_pool_layers']} are allowed")
    if output_shape is not None and (len(output_shape) != 2 or output_shape[-1] != 10):
        return f"SmallConvolutionalNetwork's output has shape {tuple(output_shape)} for 2 images; expected (2, 10)"
    return ""


def score_training(rubric: Rubric, evidence: TrainingEvidence) -> ItemScore:
    """The training item from the evidence."""
    item = rubric.item("training")
    limits = rubric.training
    extra = {"accuracy": None, "accuracy_source": "none", "reported": evidence.reported,
             "reported_last": evidence.reported_last, "verified": evidence.verified,
             "verified_how": evidence.verified_how or None, "mismatch": False, "architecture": evidence.kinds}
    violation = architecture_violation(evidence.kinds, evidence.output_shape, rubric)
    if violation:
        extra["architecture_violation"] = violation
        return ItemScore(item, 0.0, (), "graded", f"0: {violation}", extra)
    if evidence.verified is not None:
        accuracy, source = evidence.verified, "verified"
    elif evidence.reported is not None:
        accuracy, source = evidence.reported, "reported"
    else:
        why = "; ".join(evidence.problems) or "no training log and no saved weights"
        if evidence.kinds == []:
            why = "SmallConvolutionalNetwork().net has no layers (not implemented); " + why
        return ItemScore(item, 0.0, (), "graded", f"0: no validation accuracy found ({why})", extra)
    extra.update(accuracy=accuracy, accuracy_source=source)
    points = round_points(item.points * credit(accuracy, limits["threshold"], limits["chance"]))
    note = f"validation accuracy {accuracy:.4f} ({source}"
    note += f", {evidence.verified_how})" if source == "verified" else ", from the notebook's log)"
    if evidence.verified is not None and evidence.reported is not None \
            and abs(evidence.verified - evidence.reported) > limits["mismatch"]:
        extra["mismatch"] = True
        note += f"; MISMATCH: the log reports {evidence.reported:.4f}"
    if source == "reported" and evidence.problems:
        note += f"; not verified: {'; '.join(evidence.problems)}"
    return ItemScore(item, points, (), "graded", note, extra)


def _blank(png: bytes) -> bool:
    try:
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError):
        return True
    return pixels.size == 0 or float(pixels.std()) < 1.0


def score_filters(rubric: Rubric, findings: Findings | None, first_conv_w: str | None) -> ItemScore:
    """Full marks for a non-blank image from a cell that reads the first conv layer's weights."""
    item = rubric.item("filters")
    extra = {"images": 0, "first_conv_weights": first_conv_w}
    if findings is None or not findings.filter_source:
        return ItemScore(item, 0.0, (), "graded", "0: no filter-visualisation cell found", extra)
    images = [png for png in findings.filter_images if not _blank(png)]
    extra["images"] = len(findings.filter_images)
    if not images:
        why = "its image is blank" if findings.filter_images else "it has no image output (run it and save the notebook)"
        return ItemScore(item, 0.0, (), "graded", f"0: the filter cell shows no filters: {why}", extra)
    source = findings.filter_source
    reads_first = (first_conv_w is not None and first_conv_w in source) or re.search(r"layers\s*\[\s*0\s*\]", source)
    if first_conv_w is not None and not reads_first:
        return ItemScore(item, 0.0, (), "graded",
                         f"0: the filter cell does not read {first_conv_w!r}, the weights of the first ConvLayer2D", extra)
    return ItemScore(item, item.points, (), "graded", f"{len(images)} filter image(s) of {first_conv_w or 'the first layer'}",
                     extra)


def answer_text(findings: Findings | None) -> str:
    """The inline answer without HTML comments and placeholders (the handout's own text is already
    gone: autograder/notebook.py `own_text`)."""
    if findings is None:
        return ""
    text = re.sub(r"<!--.*?-->", "", findings.answer, flags=re.DOTALL).strip()
    return "" if text.lower().strip() in _PLACEHOLDERS else text


def score_inline_answer(rubric: Rubric, findings: Findings | None) -> ItemScore:
    """Staff grade the answer; here it is found, measured and shown, and the item is pending."""
    item = rubric.item("inline_answer")
    text = answer_text(findings)
    extra = {"answer": text, "words": len(text.split())}
    if not text:
        return ItemScore(item, 0.0, (), "pending", "no answer found: nothing of your own after the Inline Question "
                         "(the handout's own text, such as the next section's prompt, is not an answer)", extra)
    return ItemScore(item, 0.0, (), "pending", f"pending staff grading; answer of {len(text.split())} words", extra)

"""The training item's evidence: what the network is, and what accuracy its saved weights really have.

1. The worker describes the student's SmallConvolutionalNetwork by behaviour (probe.py); the grader
   reads that as a claim (architecture.py) and checks each layer on a probe against its trusted twin.
   The parent measures on the probe's chain outputs which layers mix neighbouring pixels (a
   convolution by behaviour, architecture.mark_spatial_mixers), and takes the first convolution's
   weights from the validated description, never from a name the worker offers.
2. With saved weights and data, the grader evaluates them itself (trusted_eval.py) on the rubric's
   validation split and on a staff-held subset of the test file, never on a split the notebook names.
   The student's own forward runs on the validation split too, and a disagreement is flagged. The
   weights file is read under limits (weights_file.py): only the members the described network needs,
   each checked against its shape before it is inflated.
3. Where a layer cannot be rebuilt, only the student's forward can run: it must survive one grey level
   of noise (a lookup by the exact image would not), and it runs on the staff-held images too, whose
   accuracy is the one that counts: the validation rows are rows of the public training file, which a
   student's code could look images up in.
4. Where nothing could be verified (no weights, no data, or only the student's forward and no held-out
   images), the reason is recorded for the rubric's `unverified_policy`; where weights were submitted
   but cannot be evaluated, the reason earns 0.

Data flows one way: this module only gathers; notebook_items.score_training turns it into points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from autograder.notebook.architecture import (
    Architecture,
    FirstConv,
    first_convolution,
    read_description,
    rule_violation,
    why_not_rebuildable,
)
from autograder.notebook.datasets import DataError, GradingSplits, grading_splits
from autograder.notebook.items import TrainingEvidence
from autograder.notebook.reading import Findings
from autograder.notebook.weights_file import WeightsError, read_weights
from autograder.outcomes import CheckFailed
from autograder.rubric import Rubric
from autograder.sandbox.parent import WorkerProcess

_PROBE_SEED = 20221  # the probe images the layers are described on (not a grading figure)


#: Rows of the probe batch: (an image, the same image with one pixel changed), for the mixing measurement.
IMPULSE_PAIRS = ((0, 2), (0, 3))


def probe_images() -> np.ndarray:
    """Four 32x32x3 images shaped like the handout's data (float32, centred near zero): two random
    ones, then the first again with one pixel raised, and again with another pixel lowered."""
    images = (np.random.default_rng(_PROBE_SEED).standard_normal((2, 32, 32, 3)) * 0.25).astype(np.float32)
    raised, lowered = images[0].copy(), images[0].copy()
    raised[9, 9, :] += 3.0
    lowered[22, 21, :] -= 3.0
    return np.concatenate([images, raised[None], lowered[None]])


def expected_weights(architecture: Architecture) -> dict[str, tuple[int, ...]]:
    """Every parameter the described network holds, by name, with its shape: the members of the weights
    file worth reading (the student's own forward loads saved arrays into all its layers by name)."""
    return {name: shape for layer in architecture.layers for name, shape in layer.params}


def load_weights(path: Path, rubric: Rubric, expected: dict[str, tuple[int, ...]] | None):
    """The saved arrays `expected` names, read under the rubric's limits (weights_file.py); raises
    WeightsError with the student-facing reason."""
    try:
        return read_weights(path, expected, rubric.training.max_weights_mb, rubric.training.max_weights_members)
    except OSError as exc:
        raise WeightsError(f"it could not be opened ({type(exc).__name__})") from None


def describe(worker: WorkerProcess, rubric: Rubric) -> tuple[Architecture | None, dict[str, Any], str]:
    """The student's network as the grader reads it, the worker's header, and why it failed (or "")."""
    limits = rubric.training
    args = {"seed": limits.network_seed, "tolerance": limits["chain_tolerance"],
            "limits": {"max_kernel": int(limits["probe_max_kernel"]), "max_stride": int(limits["probe_max_stride"]),
                       "max_padding": int(limits["probe_max_padding"])}}
    probe = probe_images()
    try:
        answer = worker.call("small_cnn", args, {"probe": probe},
                             timeout=limits["describe_calls"] * worker.limits.call_timeout)
    except CheckFailed as failure:
        return None, {}, f"SmallConvolutionalNetwork() could not be built or probed: {failure.outcome.message()}"
    architecture = read_description(answer.header, answer.arrays, probe, IMPULSE_PAIRS, limits)
    header = dict(answer.header, layer_checks=[])
    try:
        from autograder.notebook.trusted_eval import layer_disagreements
    except ImportError:  # the student handout has no trusted forward
        return architecture, header, ""
    header["layer_checks"] = layer_disagreements(architecture, probe, answer.arrays, limits["chain_tolerance"])
    return architecture, header, ""


def _student_predictions(worker: WorkerProcess, rubric: Rubric, saved: dict[str, np.ndarray], images: np.ndarray
                         ) -> tuple[np.ndarray | None, str]:
    """The student's own forward on `images` with the saved weights, or why it gave none."""
    return _begin_student_predictions(worker, rubric, saved, images)()


def _begin_student_predictions(worker: WorkerProcess, rubric: Rubric, saved: dict[str, np.ndarray],
                               images: np.ndarray) -> Callable[[], tuple[np.ndarray | None, str]]:
    """`_student_predictions`, started now in the worker and collected by calling what this returns."""
    def failed(failure: CheckFailed) -> tuple[None, str]:
        return None, f"your network's forward failed on the saved weights: {failure.outcome.message()}"

    try:
        collect = worker.begin("small_cnn_predict", {"seed": rubric.training.network_seed},
                               dict(saved, images=images), timeout=rubric.training["evaluate_timeout"])
    except CheckFailed as failure:
        said = failed(failure)  # now: the name `failure` is gone after the except block
        return lambda: said

    def predictions() -> tuple[np.ndarray | None, str]:
        try:
            answer = collect()
        except CheckFailed as failure:
            return failed(failure)
        missing = answer.header.get("missing") or []
        if missing:
            return None, f"the saved weights lack {', '.join(map(str, missing[:10]))} of your SmallConvolutionalNetwork"
        found = answer.value("predictions")
        if not isinstance(found, np.ndarray) or found.shape != (images.shape[0],):
            return None, "your network did not return one prediction per image"
        return found, ""
    return predictions


def _noise_check(worker: WorkerProcess, rubric: Rubric, saved: dict[str, np.ndarray], splits: GradingSplits,
                 clean: np.ndarray) -> tuple[float | None, str]:
    """The share of predictions that stay the same under one grey level of noise."""
    limits = rubric.training
    count = min(int(limits["noise_images"]), splits.val_images.shape[0])
    level = float(limits["noise_level"])
    noise = np.random.default_rng(int(limits["heldout_seed"])).uniform(-level, level, splits.val_images[:count].shape)
    noisy, problem = _student_predictions(worker, rubric, saved, (splits.val_images[:count] + noise).astype(np.float32))
    if noisy is None:
        return None, problem
    return float(np.mean(noisy == clean[:count])), ""


def _reported_images(findings: Findings | None, splits: GradingSplits) -> tuple[int, bool]:
    """How many images the log's validation accuracy was measured on (the notebook's NUM_VALIDATION,
    else as many as the grader's split), and whether they are the grader's own rows."""
    parameters = findings.parameters if findings is not None else {}
    size = len(splits.val_labels)
    validation = parameters.get("NUM_VALIDATION")
    same = parameters.get("NUM_TRAINING") == splits.first_row and validation == size
    return (int(validation) if validation is not None and 0 < validation < 1e9 else size), same


def width_contradiction(output_shape: tuple[int, ...] | list[int] | None, rubric: Rubric) -> str:
    """What the network's output width says against the edition it is graded as, or "": a width that is
    not this edition's number of classes but is another edition's (20 outputs graded as 2022) is evidence
    that the submission is the other edition's, for staff to see (the rule itself is `rule_violation`'s)."""
    from autograder.edition import editions

    edition = rubric.edition
    if not output_shape or len(output_shape) != 2 or output_shape[-1] == edition.dataset.classes:
        return ""
    width = int(output_shape[-1])
    others = [other for other in editions() if other.dataset.classes == width and other.name != edition.name]
    if not others:
        return ""
    names = " or ".join(f"{other.name} ({other.dataset.name}, {width} classes)" for other in others)
    return (f"the network has {width} outputs, as the {names} edition's task has, but this submission is graded as "
            f"{edition.name} ({edition.dataset.name}, {edition.dataset.classes} classes)")


def gather_training_evidence(worker: WorkerProcess, rubric: Rubric, findings: Findings | None, weights: Path | None,
                             weights_how: str, data_dir: Path | None) -> tuple[TrainingEvidence, FirstConv | None]:
    """Everything score_training needs, and the network's first convolution as the parent validated it
    (for the filters item; None when there is none the grader can vouch for)."""
    limits = rubric.training
    evidence = TrainingEvidence()
    if findings is not None:
        evidence.reported, evidence.reported_last = findings.reported_best, findings.reported_last
        if findings.reported_extra:
            evidence.problems.append("other cells print a validation accuracy "
                                     f"({', '.join(f'{v:.4f}' for v in findings.reported_extra[:5])}); "
                                     "only the training cell's epoch lines are read")
    architecture, header, failure = describe(worker, rubric)
    first_conv = first_convolution(architecture)
    if architecture is not None:
        evidence.kinds = architecture.kinds
        evidence.output_shape = list(architecture.output_shape) if architecture.output_shape else None
        evidence.architecture = architecture.as_json()
        evidence.violation = rule_violation(architecture, limits, rubric.edition.dataset.classes)
        evidence.edition_contradiction = width_contradiction(architecture.output_shape, rubric)
        evidence.layer_notes = list(header.get("layer_checks", []))
        evidence.layer_notes += [f"{layer.path}: class {layer.cls} not recognised ({layer.note})"
                                 for layer in architecture.layers if layer.kind in ("unknown", "outside")]
        evidence.layer_notes += [f"{layer.path} ({layer.cls}) mixes neighbouring pixels: a convolution by what it does"
                                 for layer in architecture.layers if layer.mixes]
    if weights is None:
        evidence.unverified = f"no {rubric.assignment.weights_file} was submitted"
    elif data_dir is None:
        evidence.unverified = "weights were submitted, but no --data was given to check them on"
    if failure:
        evidence.problems.append(failure)
    if evidence.unverified or evidence.violation:  # a violation scores 0 whatever the weights do
        return evidence, first_conv
    try:
        splits = grading_splits(rubric.edition, Path(data_dir), limits)
    except DataError as exc:
        evidence.unverified = f"the grader's data folder could not give the validation split ({exc})"
        return evidence, first_conv
    if architecture is None:
        evidence.unevaluable = failure
        return evidence, first_conv
    try:
        read = load_weights(weights, rubric, expected_weights(architecture))
    except WeightsError as exc:  # a corrupt, pickled, nested or oversized .npz alike
        evidence.unevaluable = f"{weights.name} could not be read as arrays: {exc}"
        return evidence, first_conv
    if read.problems:
        missing = [f"{name} is missing" for name in expected_weights(architecture) if name not in read.arrays
                   and not any(problem.startswith(f"{name} ") for problem in read.problems)]
        evidence.unevaluable = "the saved weights do not fit your network: " + "; ".join((read.problems + missing)[:8])
        return evidence, first_conv
    saved = read.arrays
    evidence.validation_size = len(splits.val_labels)
    evidence.reported_images, evidence.reported_same_rows = _reported_images(findings, splits)
    where = f"{weights_how} on the {len(splits.val_labels)} validation images of the rubric's split"
    evidence.verified_how = where
    net = _trusted_net(architecture, saved, rubric, evidence)
    if evidence.unevaluable:
        return evidence, first_conv
    # The student's forward runs in the worker while this process runs the trusted one: both cores work.
    student_forward = _begin_student_predictions(worker, rubric, saved, splits.val_images)
    try:
        trusted = _trusted_predictions(net, splits, evidence) if net is not None else None
    finally:
        student, problem = student_forward()  # collected whatever happened: the worker answers every request
    if evidence.unevaluable:
        return evidence, first_conv
    if student is not None:
        evidence.student_forward = float(np.mean(student == splits.val_labels))
    if trusted is not None:
        if student is not None:
            evidence.disagreements = int(np.sum(student != trusted))
        else:
            evidence.problems.append(f"your own forward could not be compared with the grader's: {problem}")
        return evidence, first_conv
    # Only the student's own forward can say anything.
    if student is None:
        evidence.unevaluable = problem
        return evidence, first_conv
    agreement, problem = _noise_check(worker, rubric, saved, splits, student)
    evidence.noise_agreement = agreement
    if agreement is None:
        evidence.unevaluable = problem
        return evidence, first_conv
    if agreement < float(limits["min_noise_agreement"]):
        evidence.unevaluable = (f"your network's own forward changed its prediction for {1 - agreement:.0%} of "
                                f"{min(int(limits['noise_images']), len(splits.val_labels))} validation images "
                                f"when each pixel moved by at most one grey level; a trained network's predictions "
                                f"do not, so its "
                                f"accuracy cannot be taken as measured")
        return evidence, first_conv
    if splits.heldout_images is None:  # the validation rows are public: they alone never decide the item
        evidence.unverified = (f"your network could only be run by its own forward, and the grader's data has no "
                               f"held-out images to run it on ({splits.note})")
        return evidence, first_conv
    held, problem = _student_predictions(worker, rubric, saved, splits.heldout_images)
    if held is None:
        evidence.unevaluable = f"on the staff-held images, {problem}"
        return evidence, first_conv
    evidence.heldout = float(np.mean(held == splits.heldout_labels))
    evidence.heldout_size = int(held.shape[0])
    evidence.verified_how = (f"{weights_how} on {evidence.heldout_size} staff-held test images (its accuracy on the "
                             f"{len(splits.val_labels)} validation images of the rubric's split: "
                             f"{evidence.student_forward:.4f})")
    return evidence, first_conv


def _trusted_net(architecture: Architecture, saved: dict[str, np.ndarray], rubric: Rubric,
                 evidence: TrainingEvidence) -> Any:
    """The network the trusted forward will run (a TrustedNet: trusted_eval.py, which the student handout
    lacks, is imported only here), or None when it cannot be rebuilt (the reasons into
    `evidence.not_rebuilt`) or the weights do not fit it (`evidence.unevaluable`)."""
    try:
        from autograder.notebook.trusted_eval import TrustedNet, weight_problems
    except ImportError:
        evidence.not_rebuilt = ["this copy of the grader has no trusted forward (the student handout)"]
        return None
    evidence.not_rebuilt = why_not_rebuildable(architecture, rubric.training)
    if evidence.not_rebuilt:
        return None
    problems = weight_problems(architecture, saved)  # missing or not finite (shapes were checked on reading)
    if problems:
        evidence.unevaluable = "the saved weights do not fit your network: " + "; ".join(problems[:8])
        return None
    return TrustedNet.build(architecture, saved)


def _trusted_predictions(net: Any, splits: GradingSplits, evidence: TrainingEvidence) -> np.ndarray | None:
    """The trusted forward's validation predictions (accuracies into `evidence`), or None when it could not run."""
    try:
        predictions = net.predict(splits.val_images)
        heldout = net.predict(splits.heldout_images) if splits.heldout_images is not None else None
    except (ValueError, MemoryError) as exc:
        evidence.unevaluable = f"the grader's forward could not run your network on its weights ({exc})"
        return None
    evidence.verified = float(np.mean(predictions == splits.val_labels))
    if heldout is not None:
        evidence.heldout = float(np.mean(heldout == splits.heldout_labels))
        evidence.heldout_size = int(heldout.shape[0])
    elif splits.note:
        evidence.problems.append(splits.note)
    return predictions

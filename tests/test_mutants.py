"""The mutation suite: one typical student bug planted in the reference per submission.

Each mutant must lose points on the items, or the components of an item (conv backward's dimg,
dW, db; TestCNN's structure, initialisation, scores, loss, gradients), that it breaks and keep
full marks on every other one; where the bug hinges on one attribute of the cases (padding 0, a
non-square input, ...) the feedback must name that pattern. Each tolerated variant (a different
but correct way to write it) keeps full marks.
"""

from __future__ import annotations

import json

import pytest
from loop_submission import LOOP_LAYERS
from submissions import CODE_ITEMS, LAYERS, MODELS, grade, make_submission

from autograder.attributes import SIDE_TEXT
from autograder.evidence import EVIDENCE_TEXT
from autograder.model import split_code

pytestmark = pytest.mark.slow

CONV_WINDOWS = "sliding_window_view(img_pad, (k, k), axis=(1, 2))[:, ::s, ::s]"
DIMG_CROP = "dimg = np.ascontiguousarray(dimg_pad[:, :, p:p + in_h, p:p + in_w].transpose(1, 2, 3, 0))"
CONV_OUTPUT = "output = (cols @ w_mat + self.params[self.b_name]).reshape(n, out_h, out_w, n_filters)"
POOL_WINDOWS = ("windows = np.lib.stride_tricks.sliding_window_view(img, (p, p), axis=(1, 2))[:, ::s, ::s]\n"
                "        output")
#: TestCNN's parts judged on its cases (its layers and initialisation are fixed checks).
RUN = {"test_cnn.scores", "test_cnn.loss", "test_cnn.gradients"}
POOL_ROUTE = "dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :] += np.where(winner == u * p + v, dprev, 0)"
DIMG_SCATTER = "dimg_pad[:, :, u:u + s * out_h:s, v:v + s * out_w:s] += dcols[u, v]"
CROP_BOUNDS = "p:p + in_h, p:p + in_w"

# name: (changes, what it breaks: "item" or "item.component", the pattern codes its feedback must name)
MUTANTS = {
    "flipped kernel": ([(LAYERS, "w_mat = self.params[self.w_name].reshape(k * k * self.input_channels, n_filters)",
                         "w_mat = self.params[self.w_name][::-1, ::-1]"
                         ".reshape(k * k * self.input_channels, n_filters)")],
                       {"conv_forward", *RUN}, {"conv_forward.kernel_many"}),  # a 1x1 kernel flips to itself
    "bias forgotten": ([(LAYERS, "output = (cols @ w_mat + self.params[self.b_name])", "output = (cols @ w_mat)")],
                       {"conv_forward", *RUN}, set()),
    "stride ignored": ([(LAYERS, CONV_WINDOWS, "sliding_window_view(img_pad, (k, k), axis=(1, 2))")],
                       {"conv_forward", "conv_backward"},
                       {"conv_forward.stride_many", "conv_backward.dimg.stride_many"}),
    "padding ignored in the size": ([(LAYERS, "(in_height + 2 * p - k) // s + 1", "(in_height - k) // s + 1"),
                                     (LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_width - k) // s + 1")],
                                    {"output_size", "conv_forward", "conv_backward"},
                                    {"output_size.padding_positive", "conv_backward.dw.padding_positive"}),
    # Real submissions: 7 of 28 took the height where the width belongs.
    "width computed from height": ([(LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_height + 2 * p - k) // s + 1")],
                                   {"output_size", "conv_forward", "conv_backward"},
                                   {"output_size.non_square", "conv_forward.non_square",
                                    "conv_backward.dimg.non_square",
                                    "conv_backward.dw.non_square", "conv_backward.db.non_square"}),
    "true division in the size": ([(LAYERS, "(in_height + 2 * p - k) // s + 1", "(in_height + 2 * p - k) / s + 1"),
                                   (LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_width + 2 * p - k) / s + 1")],
                                  {"output_size", "conv_forward", "conv_backward", *RUN},
                                  {"output_size.uneven_stride"}),
    "dW from one sample": ([(LAYERS, "(cols.T @ dout)", "(cols[:out_h * out_w].T @ dout[:out_h * out_w])")],
                           {"conv_backward.dw", "test_cnn.gradients"}, {"conv_backward.dw.batch_many"}),
    "db as a mean": ([(LAYERS, "self.grads[self.b_name] = dout.sum(axis=0)",
                       "self.grads[self.b_name] = dout.mean(axis=0)")],
                     {"conv_backward.db", "test_cnn.gradients"}, set()),
    # Real submissions: 6 of 28 cropped the padding with x[p:-p], empty when p = 0.
    "padding-0 crop x[p:-p] in dimg": ([(LAYERS, DIMG_CROP, DIMG_CROP.replace("p:p + in_h, p:p + in_w", "p:-p, p:-p"))],
                                       {"conv_backward.dimg"}, {"conv_backward.dimg.padding_0"}),
    "padding left on dimg": ([(LAYERS, "dimg_pad[:, :, p:p + in_h, p:p + in_w]", "dimg_pad")], {"conv_backward.dimg"},
                             {"conv_backward.dimg.padding_positive"}),
    "stride ignored in the input gradient": (
        [(LAYERS, "dimg_pad[:, :, u:u + s * out_h:s, v:v + s * out_w:s] += dcols[u, v]",
          "dimg_pad[:, :, u:u + out_h, v:v + out_w] += dcols[u, v]")], {"conv_backward.dimg"},
        {"conv_backward.dimg.stride_many"}),
    "meta not saved": ([(LAYERS, "self.meta = (img, cols)", "pass")], {"conv_backward", "test_cnn.gradients"}, set()),
    # Real submissions: some summed over the batch where each image has its own output.
    "batch summed in conv forward": (
        [(LAYERS, CONV_OUTPUT, "output = np.repeat((cols @ w_mat).reshape(n, out_h, out_w, n_filters).sum("
                               "axis=0, keepdims=True), n, axis=0) + self.params[self.b_name]")],
        {"conv_forward", *RUN}, {"conv_forward.batch_many"}),
    "average instead of max": ([(LAYERS, "output = windows.max(axis=(4, 5))", "output = windows.mean(axis=(4, 5))")],
                               {"pool_forward", *RUN}, set()),
    # Real submissions: some took the max across channels too.
    "max across channels": ([(LAYERS, "output = windows.max(axis=(4, 5))",
                              "output = windows.max(axis=(3, 4, 5))[..., None]")], {"pool_forward", *RUN},
                            {"pool_forward.channels_many"}),
    # The output size computed as if the windows never overlapped (stride = pool size).
    "pool output size from a fixed stride": (
        [(LAYERS, POOL_WINDOWS, POOL_WINDOWS.replace("\n        output",
                                                     "\n        windows = windows[:, :(img.shape[1] - p) "
                                                     "// p + 1, :(img.shape[2] - p) // p + 1]\n        output"))],
        {"pool_forward"}, {"pool_forward.overlapping"}),
    "gradient spread over the window": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "np.where(winner == u * p + v, dprev, 0)", "dprev / (p * p)"))],
        {"pool_backward", "test_cnn.gradients"}, set()),
    "overlapping windows overwritten": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "+= np.where(winner == u * p + v, dprev, 0)",
        "= np.where(winner == u * p + v, dprev, dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :])"))],
        {"pool_backward"}, {"pool_backward.overlapping"}),
    "pool stride ignored in backward": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :]", "dimg[:, u:u + out_h, v:v + out_w, :]"))],
        {"pool_backward", "test_cnn.gradients"}, {"pool_backward.stride_many"}),
    # Real submissions: 6 of 31 cropped dimg with the height in both places. On the hidden cases they fail exactly
    # the three whose stride does not divide the input; their shapes say what the bug is (and the stride must not).
    "height for width in dimg's crop": ([(LAYERS, DIMG_CROP, DIMG_CROP.replace(CROP_BOUNDS, "p:p + in_h, p:p + in_h"))],
                                        {"conv_backward.dimg"}, {"conv_backward.dimg.width_from_height"}),
    "dimg computed into a copy": ([(LAYERS, DIMG_SCATTER, DIMG_SCATTER.replace("dimg_pad[", "dimg_pad.copy()[", 1))],
                                  {"conv_backward.dimg"}, {"conv_backward.dimg.zeros"}),
    "dimg with height and width swapped": ([(LAYERS, DIMG_CROP, DIMG_CROP.replace("(1, 2, 3, 0)", "(1, 3, 2, 0)"))],
                                           {"conv_backward.dimg"}, {"conv_backward.dimg.transposed"}),
    "padding cropped from the corner": ([(LAYERS, DIMG_CROP, DIMG_CROP.replace(CROP_BOUNDS, "0:in_h, 0:in_w"))],
                                        {"conv_backward.dimg"},
                                        {"conv_backward.dimg.shifted", "conv_backward.dimg.padding_positive"}),
    "conv output reshaped with the batch second": (
        [(LAYERS, CONV_OUTPUT, "output = (cols @ w_mat + self.params[self.b_name]).reshape(out_h, n, out_w, "
                               "n_filters).transpose(1, 0, 2, 3)")],
        {"conv_forward", *RUN}, {"conv_forward.misplaced", "conv_forward.batch_many"}),
    "TestCNN with an activation": ([(MODELS, 'MaxPoolingLayer(2, 2, name="pool"),',
                                     'leaky_relu(name="relu"),\n            MaxPoolingLayer(2, 2, name="pool"),')],
                                   {"test_cnn.structure", *RUN}, set()),
    "TestCNN fc with the default init": ([(MODELS, 'fc(27, 5, init_scale=0.02, name="fc")', 'fc(27, 5, name="fc")')],
                                         {"test_cnn.initialisation"}, set()),
}


#: Patterns a mutant's feedback must not name: a case attribute that its failing cases only coincide with.
NOT_NAMED = {
    "height for width in dimg's crop": {"conv_backward.dimg.uneven_stride"},
    "padding-0 crop x[p:-p] in dimg": {"conv_backward.dimg.uneven_stride", "conv_backward.dimg.stride_many"},
}


def _component_keys(item) -> list[tuple[str, object]]:
    """("item" or "item.component", the component's score) for every component of a code item."""
    return [(f"{item.item.id}.{part.component.id}" if part.component.id else item.item.id, part)
            for part in item.components]


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_loses_points_only_where_it_breaks(name, tmp_path):
    changes, broken, patterns = MUTANTS[name]
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    named = set()
    for item_id in CODE_ITEMS:
        for key, part in _component_keys(scores[item_id]):
            if key in broken or item_id in broken:
                assert part.score < part.component.points, f"{name}: {key} kept full marks"
                assert all(case.outcome.message() for case in part.cases if not case.outcome.passed)
            else:
                assert part.score == part.component.points, f"{name}: {key} lost points: {scores[item_id].reason}"
            named |= set(part.diagnosis.patterns)
    assert patterns <= named, f"{name}: the feedback names {sorted(named)}, not {sorted(patterns - named)}"
    assert not named & NOT_NAMED.get(name, set()), f"{name}: the feedback names {sorted(named)}"
    feedback = (out_dir / "feedback_released.md").read_text()  # the full one; feedback.md withholds hidden inputs
    before_due = (out_dir / "feedback.md").read_text()
    document = json.loads((out_dir / "results.json").read_text())
    recorded = {code for test in document["tests"] for code in test["extra_data"].get("patterns", [])}
    assert recorded == named  # what the class report counts is what the feedback says
    for item_id in CODE_ITEMS:
        for _, part in _component_keys(scores[item_id]):
            if part.diagnosis.patterns:
                summary = part.diagnosis.summary
                sides = [code for code in part.diagnosis.patterns if split_code(code)[2] in SIDE_TEXT]
                forms = [code for code in part.diagnosis.patterns if split_code(code)[2] in EVIDENCE_TEXT]
                assert len(sides) + len(forms) == len(part.diagnosis.patterns)
                assert not sides or summary.startswith("fails exactly the ")
                assert not forms or "each for the same visible reason: " in summary
                assert summary[0].upper() + summary[1:] in feedback
                withheld = part.diagnosis.before_due
                assert withheld[0].upper() + withheld[1:] in before_due


VARIANTS = {
    "size as a tuple": ([(LAYERS, "output_shape = [batch_size,", "output_shape = (batch_size,"),
                         (LAYERS, "                        self.number_filters]",
                          "                        self.number_filters)")],
                        {}),
    "size as an int array, prints in forward": (
        [(LAYERS, "        return output_shape\n", "        return np.array(output_shape, dtype=np.int32)\n"),
         (LAYERS, "        output_shape = self.get_output_size(img.shape)\n",
          "        output_shape = self.get_output_size(img.shape)\n"
          "        print('forward', img.shape, output_shape)\n")],
        {}),
    "loops over positions, padded image in meta, db shaped (1, F)": ([], {LAYERS: LOOP_LAYERS}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tolerated_variant_keeps_full_marks(name, tmp_path):
    changes, append = VARIANTS[name]
    scores, result, _ = grade(make_submission(tmp_path / "sub", changes, append), tmp_path)
    for item_id in CODE_ITEMS:
        assert scores[item_id].score == scores[item_id].item.points, f"{name}: {item_id}: {scores[item_id].reason}"

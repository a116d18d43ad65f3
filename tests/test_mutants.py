"""The mutation suite: one typical student bug planted in the reference per submission.

Each mutant must lose points on the items it breaks and keep full marks on every other code
item; each tolerated variant (a different but correct way to write it) keeps full marks.
"""

from __future__ import annotations

import pytest

from loop_submission import LOOP_LAYERS
from submissions import CODE_ITEMS, LAYERS, MODELS, grade, make_submission

pytestmark = pytest.mark.slow

CONV_WINDOWS = "sliding_window_view(img_pad, (k, k), axis=(1, 2))[:, ::s, ::s]"
POOL_ROUTE = "dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :] += np.where(winner == u * p + v, dprev, 0)"

MUTANTS = {
    "flipped kernel": ([(LAYERS, "w_mat = self.params[self.w_name].reshape(k * k * self.input_channels, n_filters)",
                         "w_mat = self.params[self.w_name][::-1, ::-1].reshape(k * k * self.input_channels, n_filters)")],
                       {"conv_forward", "test_cnn"}),
    "bias forgotten": ([(LAYERS, "output = (cols @ w_mat + self.params[self.b_name])", "output = (cols @ w_mat)")],
                       {"conv_forward", "test_cnn"}),
    "stride ignored": ([(LAYERS, CONV_WINDOWS, "sliding_window_view(img_pad, (k, k), axis=(1, 2))")],
                       {"conv_forward", "conv_backward"}),
    "padding ignored in the size": ([(LAYERS, "(in_height + 2 * p - k) // s + 1", "(in_height - k) // s + 1"),
                                     (LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_width - k) // s + 1")],
                                    {"output_size", "conv_forward", "conv_backward"}),
    "width computed from height": ([(LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_height + 2 * p - k) // s + 1")],
                                   {"output_size", "conv_forward", "conv_backward"}),
    "true division in the size": ([(LAYERS, "(in_height + 2 * p - k) // s + 1", "(in_height + 2 * p - k) / s + 1"),
                                   (LAYERS, "(in_width + 2 * p - k) // s + 1", "(in_width + 2 * p - k) / s + 1")],
                                  {"output_size", "conv_forward", "conv_backward", "test_cnn"}),
    "dW from one sample": ([(LAYERS, "(cols.T @ dout)", "(cols[:out_h * out_w].T @ dout[:out_h * out_w])")],
                           {"conv_backward", "test_cnn"}),
    "db as a mean": ([(LAYERS, "self.grads[self.b_name] = dout.sum(axis=0)", "self.grads[self.b_name] = dout.mean(axis=0)")],
                     {"conv_backward", "test_cnn"}),
    "padding left on dimg": ([(LAYERS, "dimg_pad[:, :, p:p + in_h, p:p + in_w]", "dimg_pad")], {"conv_backward"}),
    "stride ignored in the input gradient": (
        [(LAYERS, "dimg_pad[:, :, u:u + s * out_h:s, v:v + s * out_w:s] += dcols[u, v]",
          "dimg_pad[:, :, u:u + out_h, v:v + out_w] += dcols[u, v]")], {"conv_backward"}),
    "meta not saved": ([(LAYERS, "self.meta = (img, cols)", "pass")], {"conv_backward", "test_cnn"}),
    "average instead of max": ([(LAYERS, "output = windows.max(axis=(4, 5))", "output = windows.mean(axis=(4, 5))")],
                               {"pool_forward", "test_cnn"}),
    "max across channels": ([(LAYERS, "output = windows.max(axis=(4, 5))",
                              "output = windows.max(axis=(3, 4, 5))[..., None]")], {"pool_forward", "test_cnn"}),
    "gradient spread over the window": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "np.where(winner == u * p + v, dprev, 0)", "dprev / (p * p)"))], {"pool_backward", "test_cnn"}),
    "overlapping windows overwritten": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "+= np.where(winner == u * p + v, dprev, 0)",
        "= np.where(winner == u * p + v, dprev, dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :])"))],
        {"pool_backward"}),
    "pool stride ignored in backward": ([(LAYERS, POOL_ROUTE, POOL_ROUTE.replace(
        "dimg[:, u:u + s * out_h:s, v:v + s * out_w:s, :]", "dimg[:, u:u + out_h, v:v + out_w, :]"))],
        {"pool_backward", "test_cnn"}),
    "TestCNN with an activation": ([(MODELS, 'MaxPoolingLayer(2, 2, name="pool"),',
                                     'leaky_relu(name="relu"),\n            MaxPoolingLayer(2, 2, name="pool"),')],
                                   {"test_cnn"}),
    "TestCNN fc with the default init": ([(MODELS, 'fc(27, 5, init_scale=0.02, name="fc")', 'fc(27, 5, name="fc")')],
                                         {"test_cnn"}),
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_loses_points_only_where_it_breaks(name, tmp_path):
    changes, broken = MUTANTS[name]
    scores, result, _ = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    for item_id in CODE_ITEMS:
        item = scores[item_id]
        if item_id in broken:
            assert item.score < item.item.points, f"{name}: {item_id} kept full marks"
            failing = [case for case in item.cases if not case.outcome.passed]
            assert all(case.outcome.message() for case in failing)
        else:
            assert item.score == item.item.points, f"{name}: {item_id} lost points: {item.reason}"



VARIANTS = {
    "size as a tuple": ([(LAYERS, "output_shape = [batch_size,", "output_shape = (batch_size,"),
                         (LAYERS, "                        self.number_filters]", "                        self.number_filters)")],
                        {}),
    "size as an int array, prints in forward": (
        [(LAYERS, "        return output_shape\n", "        return np.array(output_shape, dtype=np.int32)\n"),
         (LAYERS, "        output_shape = self.get_output_size(img.shape)\n",
          "        output_shape = self.get_output_size(img.shape)\n        print('forward', img.shape, output_shape)\n")],
        {}),
    "loops over positions, padded image in meta, db shaped (1, F)": ([], {LAYERS: LOOP_LAYERS}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tolerated_variant_keeps_full_marks(name, tmp_path):
    changes, append = VARIANTS[name]
    scores, result, _ = grade(make_submission(tmp_path / "sub", changes, append), tmp_path)
    for item_id in CODE_ITEMS:
        assert scores[item_id].score == scores[item_id].item.points, f"{name}: {item_id}: {scores[item_id].reason}"

"""Hostile and broken submissions: each failure costs only the cases it touches.

Every result must be complete (all nine items, each with a reason) and small, and the cases
the attack does not touch must be graded normally.
"""

from __future__ import annotations

import json

import pytest
from submissions import CODE_ITEMS, LAYERS, RESULT_TESTS, grade, item_tags, make_submission, quick_limits

from autograder.model import graded_tests

pytestmark = pytest.mark.slow

CONV_FORWARD_START = '        output_shape = self.get_output_size(img.shape)\n        ###'
POOL_FORWARD_START = '''        assert len(img.shape) == 4, \
"expected batch of images, but received shape {}".format(img.shape)
        #############################################################################
        # TODO: Implement the forward pass of a single maxpooling layer.'''


def _insert_after(anchor: str, code: str) -> tuple[str, str, str]:
    return LAYERS, anchor, anchor.replace("\n", "\n" + code + "\n", 1) if "\n" in anchor else anchor + code


def assert_complete_and_small(out_dir, max_bytes=120_000):
    document = json.loads((out_dir / "results.json").read_text())
    assert item_tags(document)[:6] == CODE_ITEMS
    assert len(graded_tests(document)) == RESULT_TESTS  # the items' tests; the release tests beside them
    assert all(t["output"] for t in document["tests"])
    assert (out_dir / "results.json").stat().st_size < max_bytes
    assert (out_dir / "feedback.md").stat().st_size < max_bytes
    return document


def outcomes(item):
    return {case.outcome.label for case in item.cases}


def test_endless_loop_in_forward_times_out_and_the_rest_is_graded(tmp_path):
    changes = [(LAYERS, CONV_FORWARD_START, CONV_FORWARD_START.replace(
        "\n", "\n        while True:\n            pass\n", 1))]
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path, limits=quick_limits(1.0))
    assert_complete_and_small(out_dir)
    for item_id in ("conv_forward", "conv_backward"):
        assert scores[item_id].score == 0
        assert outcomes(scores[item_id]) == {"timed out"}
        assert "timed out after 1 s" in scores[item_id].cases[0].outcome.message()
        assert "not run: 2 earlier cases" in scores[item_id].cases[-1].outcome.message()
    for item_id in ("output_size", "pool_forward", "pool_backward"):
        assert scores[item_id].score == scores[item_id].item.points
    assert result.metadata["worker_restarts"] >= 4


def test_os_exit_at_import_fails_every_case_with_the_reason(tmp_path):
    sub = make_submission(tmp_path / "sub", append={"lib/cnn/layer_utils.py": "import os\nos._exit(7)\n"})
    scores, result, out_dir = grade(sub, tmp_path)
    assert_complete_and_small(out_dir)
    for item_id in CODE_ITEMS:
        assert scores[item_id].score == 0
        assert scores[item_id].cases[0].outcome.message() == \
            "exited the process: while importing your lib/: exit status 7"


def test_system_exit_and_exceptions_are_the_students(tmp_path):
    append = {LAYERS: "def _broken(self, *args, **kwargs):\n    raise RuntimeError('deliberately broken')\n"
                      "def _exits(self, *args, **kwargs):\n    raise SystemExit(3)\n"
                      "ConvLayer2D.get_output_size = _broken\nMaxPoolingLayer.backward = _exits\n"}
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", append=append), tmp_path)
    assert_complete_and_small(out_dir)
    assert outcomes(scores["pool_backward"]) == {"exception"}
    assert "raised SystemExit: 3" in scores["pool_backward"].cases[0].outcome.message()
    for item_id in ("output_size", "conv_forward", "conv_backward"):  # forward calls get_output_size
        message = scores[item_id].cases[0].outcome.message()
        assert "raised RuntimeError: deliberately broken" in message
        assert "lib/cnn/layer_utils.py, line" in message  # the traceback, trimmed to the student's files
    assert scores["pool_forward"].score == scores["pool_forward"].item.points


def test_huge_allocation_is_out_of_memory(tmp_path):
    changes = [(LAYERS, CONV_FORWARD_START, CONV_FORWARD_START.replace(
        "\n", "\n        hog = np.ones((1 << 37,))\n", 1))]
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", changes), tmp_path)
    assert_complete_and_small(out_dir)
    assert outcomes(scores["conv_forward"]) == {"out of memory"}
    assert "ran out of memory (limit 3072 MB)" in scores["conv_forward"].cases[0].outcome.message()
    assert scores["pool_forward"].score == scores["pool_forward"].item.points


def test_fifty_megabytes_of_prints_keep_the_results_small(tmp_path):
    append = {LAYERS: "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * (1 << 20))\n"
                      "sys.stderr.write('noise on stderr\\n')\n"}
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", append=append), tmp_path)
    assert_complete_and_small(out_dir)
    assert result.printed_bytes >= 50 << 20
    assert all(scores[i].score == scores[i].item.points for i in CODE_ITEMS)
    assert "## What your code printed" in (out_dir / "feedback.md").read_text()


WRONG_TYPES = '''
class _LyingArray(np.ndarray):
    def __eq__(self, other):
        return True

_conv_forward, _conv_backward = ConvLayer2D.forward, ConvLayer2D.backward
_pool_forward, _pool_backward = MaxPoolingLayer.forward, MaxPoolingLayer.backward
ConvLayer2D.forward = lambda self, img: _conv_forward(self, img).tolist()
def _conv_backward_lying(self, dprev):
    return _conv_backward(self, dprev).view(_LyingArray)
ConvLayer2D.backward = _conv_backward_lying
MaxPoolingLayer.forward = lambda self, img: str(_pool_forward(self, img).sum())
def _pool_backward_nan(self, dprev):
    result = _pool_backward(self, dprev)
    result[0, 0, 0, 0] = np.nan
    return result
MaxPoolingLayer.backward = _pool_backward_nan
'''


def test_wrong_return_types_are_named(tmp_path):
    scores, result, out_dir = grade(make_submission(tmp_path / "sub", append={LAYERS: WRONG_TYPES}), tmp_path)
    assert_complete_and_small(out_dir)
    assert scores["conv_forward"].cases[0].outcome.message() == \
        "forward(img) is a list of length 1; expected a numpy.ndarray"
    assert scores["conv_backward"].cases[0].outcome.message().startswith(
        "backward(dout) is a ")
    assert "(array subclass); expected a numpy.ndarray" in scores["conv_backward"].cases[0].outcome.message()
    assert scores["pool_forward"].cases[0].outcome.message() == \
        "forward(img) is a builtins.str; expected a numpy.ndarray"
    assert outcomes(scores["pool_backward"]) == {"NaN or inf"}
    assert scores["output_size"].score == scores["output_size"].item.points

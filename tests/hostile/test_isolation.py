"""Workers graded at the same time cannot reach each other (`batch --jobs 2` runs two at once)."""

from __future__ import annotations

import time

import pytest
from conftest import need_mode
from processes import no_survivors
from submissions import LAYERS, make_submission, quick_limits

from autograder.sandbox.parent import WorkerProcess

pytestmark = pytest.mark.slow

FORK_BOMB = '''
import os, time
_children = 0
while True:
    try:
        if os.fork() == 0:
            while True:
                time.sleep(1)
    except OSError:
        break
    _children += 1
print("SPY forks", _children)
'''

THREAD_AT_IMPORT = "import threading\n_t = threading.Thread(target=sum, args=([1, 2],))\n_t.start()\n_t.join()\n"


def _printed_line(worker: WorkerProcess, marker: str, wait: float = 20.0) -> str:
    """What follows `marker` in the worker's output; a live worker's flushed output reaches us by a thread."""
    deadline = time.monotonic() + wait
    while marker not in worker.printed()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    text = worker.printed()[0]
    assert marker in text, f"the worker never printed {marker!r}; it printed {text!r}"
    return text.split(marker, 1)[1]


def test_a_fork_bomb_does_not_starve_a_worker_graded_beside_it(tmp_path):
    need_mode("user")  # without a user switch the process limit is the grader's own
    limits = quick_limits(2.0)
    bomb = make_submission(tmp_path / "bomb", append={LAYERS: FORK_BOMB})
    with WorkerProcess(bomb, limits) as greedy:
        assert greedy.start() is None
        forks = int(_printed_line(greedy, "SPY forks ").split()[0])
        assert 0 < forks < limits.max_processes  # it ran into its own process limit
        # An honest neighbour that starts a thread at import (tqdm's monitor does; so does a kernel):
        # with one user id shared by all workers the bomb has used up its threads too.
        honest = make_submission(tmp_path / "honest", append={LAYERS: THREAD_AT_IMPORT})
        with WorkerProcess(honest, limits) as neighbour:
            assert neighbour.start() is None
            assert neighbour.import_errors == {}  # "can't start new thread" would be an import error here
            answer = neighbour.call("output_size", {"input_channels": 3, "kernel_size": 3, "number_filters": 4,
                                                       "stride": 1, "padding": 1, "input_size": [2, 5, 5, 3]})
            assert answer.value("size")["items"] == [2, 5, 5, 4]
    assert no_survivors() == []

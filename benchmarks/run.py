"""`make bench`: performance figures, each measured side by side in one run.

1. The reference conv and pool layers, forward + backward, on the shapes of one training
   iteration of the reference network (batch 128, 32x32x3 input), beside other NumPy
   vectorisations and beside loops (loops timed on a few images and scaled per image).
2. One training iteration of the reference SmallConvolutionalNetwork at the notebook's batch
   size, and the projected time of the notebook's full SVHN run with its own settings, in float32 (the
   dtype the handout's networks declare) and float64, with OpenBLAS on every core (as in a student's
   notebook) and on one (as in the grader's confined worker and kernel), each in a process of its own.
3. PyTorch CPU on the same network and layers, float64 and float32, if torch is importable: its
   projection beside the reference's.
4. The grader's trusted evaluation of one submission's weights (validation rows plus held-out set) on
   one core, beside the reference's own layers and the student's forward in the worker; and the 2023
   edition's (official-size synthetic CIFAR-100, a GELU network with 20 outputs). The training item with --data
   in a fresh grading process: without the staff data cache, with a cold one (a batch's first submission)
   and a warm one (every later submission), side by side.
5. Grading the code items (the reference and a loop-based submission), the code items with a warm worker beside
   one started afresh, one grading process warm beside cold, a class of 30 with --data, a batch of 30 with --jobs 1
   and 2, the similarity check on 200 submissions, the filter image check, the PDF, the reference graded with --execute
   --quick, the reference network trained on synthetic SVHN, and the log replay of its notebook.

Timings are medians of repeated runs; the machine is shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import variants  # noqa: E402

from autograder import ONE_BLAS_THREAD, REPO_ROOT  # noqa: E402
from autograder.staff.lib_loader import imported_lib  # noqa: E402

N_TRAIN, N_VAL = 70000, 3257


def wall_and_cpu(fn) -> tuple[float, float]:
    """One run of `fn`: its wall-clock and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def official_size_svhn(data: Path, rng) -> None:
    """train/test_32x32.mat in `data` at the official files' sizes (73,257 + 26,032 rows), random pixels."""
    import scipy.io

    for split, rows in (("train", 73257), ("test", 26032)):
        scipy.io.savemat(str(data / f"{split}_32x32.mat"), {
            "X": rng.integers(0, 256, (32, 32, 3, rows), dtype=np.uint8),
            "y": (np.arange(rows) % 10 + 1).astype(np.uint8).reshape(rows, 1)})


def reference_params(**model_args) -> dict:
    """The reference SmallConvolutionalNetwork's initial parameters (seed 5: the same every call)."""
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        np.random.seed(5)
        return dict(lib.cnn_models.SmallConvolutionalNetwork(**model_args).net.params)


def reference_with_weights(folder: Path, params: dict) -> None:
    """A copy of the reference in `folder`, its saved weights `params` (svhn_cnn_params.npz)."""
    import shutil

    shutil.copytree(REPO_ROOT / "reference_solution", folder, ignore=shutil.ignore_patterns("data", "*.npz"))
    np.savez(folder / "svhn_cnn_params.npz", **params)


def median_ms(fn, repeat=5, warmup=1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def conv_layer(lib, x, c, k, f, s, p, rng):
    layer = lib.cnn_layers.ConvLayer2D(c, k, f, stride=s, padding=p)
    layer.params[layer.w_name] = rng.standard_normal((k, k, c, f)) * 0.1
    return layer


LAYER_SHAPES = [("conv1 3->16 k3 s1 p1, 32x32", 3, 3, 16, 1, 1, 32),
                ("conv2 16->32 k3 s2 p0, 32x32", 16, 3, 32, 2, 0, 32)]


def bench_layers(lib, rng) -> dict[str, float]:
    print("\n## Layers: forward + backward, batch 128 (ms per batch; loops scaled from 2 images)")
    print(f"{'layer':34s} {'reference':>10s} {'offsets':>9s} {'einsum':>9s} {'loops':>10s} "
          f"{'ref/best other':>15s} {'loops/ref':>10s}")
    batch = 128
    reference_ms = {}
    for name, c, k, f, s, p, hw in LAYER_SHAPES:
        x = rng.standard_normal((batch, hw, hw, c))
        layer = conv_layer(lib, x, c, k, f, s, p, rng)
        w, b = layer.params[layer.w_name], layer.params[layer.b_name]
        dout = rng.standard_normal(layer.forward(x).shape)

        def reference():
            layer.forward(x)
            layer.backward(dout)

        def offsets():
            variants.conv_forward_offsets(x, w, b, s, p)
            variants.conv_backward_offsets(x, w, dout, s, p)

        def einsum():
            variants.conv_forward_einsum(x, w, b, s, p)
            variants.conv_backward_offsets(x, w, dout, s, p)  # einsum has no better backward

        few = 2
        loops = median_ms(lambda: (variants.conv_forward_loops(x[:few], w, b, s, p),
                                   variants.conv_backward_loops(x[:few], w, dout[:few], s, p)), repeat=1, warmup=0)
        loops *= batch / few
        ref_ms, off_ms, ein_ms = median_ms(reference), median_ms(offsets), median_ms(einsum)
        reference_ms[name] = ref_ms
        best_other = min(off_ms, ein_ms)
        print(f"{name:34s} {ref_ms:10.1f} {off_ms:9.1f} {ein_ms:9.1f} {loops:10.0f} {ref_ms / best_other:15.2f} "
              f"{loops / ref_ms:10.0f}")

    x = rng.standard_normal((batch, 15, 15, 32))
    pool = lib.cnn_layers.MaxPoolingLayer(2, 2, "pool")
    dout = rng.standard_normal(pool.forward(x).shape)
    ref_ms = median_ms(lambda: (pool.forward(x), pool.backward(dout)))
    loops = median_ms(lambda: (variants.pool_forward_loops(x[:2], 2, 2),
                               variants.pool_backward_loops(x[:2], dout[:2], 2, 2)), repeat=1, warmup=0) * batch / 2
    x14 = np.ascontiguousarray(x[:, :14, :14, :])
    reshape_fwd = median_ms(lambda: variants.pool_forward_reshape(x14, 2, 2))
    ref_fwd = median_ms(lambda: pool.forward(x14))
    reference_ms["pool 2x2 s2, 15x15x32"] = ref_ms
    print(f"{'pool 2x2 s2, 15x15x32':34s} {ref_ms:10.1f} {'':>9s} {'':>9s} {loops:10.0f} {'':>15s} "
          f"{loops / ref_ms:10.0f}")
    print(f"  pool forward only, 14x14x32: reference {ref_fwd:.2f} ms, reshape trick {reshape_fwd:.2f} ms "
          f"(ratio {ref_fwd / reshape_fwd:.2f}; the trick only works for stride == size)")
    return reference_ms


def notebook_settings() -> dict[str, float]:
    """EPOCHS, BATCH_SIZE, ... as the reference notebook's parameters cell sets them."""
    import nbformat
    notebook = nbformat.read(REPO_ROOT / "reference_solution" / "Problem_2.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    settings = {}
    for name, value in re.findall(r"^([A-Z_]+) = ([0-9.e-]+)$", cell.source, re.MULTILINE):
        settings[name] = float(value)
    return settings


#: The cores this process may run on: what OpenBLAS is given for the notebook's figures.
CORES = len(os.sched_getaffinity(0))
#: The projected full run's goal, in minutes, on 2 cores in float32 (issue 24).
FULL_RUN_GOAL_MINUTES = 6


def blas_environment(threads: int) -> dict[str, str]:
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads))


def projected_minutes(step_ms: float, eval_ms_per_image: float, batch: int, epochs: int,
                      train_acc_samples: int) -> float:
    """The notebook's full run: every epoch's iterations, then its accuracy pass (train_net evaluates
    `train_acc_samples` training images and the whole validation split after each epoch)."""
    iters_per_epoch = int(max(N_TRAIN / batch, 1))
    epoch_s = iters_per_epoch * step_ms / 1000 + (train_acc_samples + N_VAL) * eval_ms_per_image / 1000
    return epochs * epoch_s / 60


def _training_figures() -> None:
    """Run in a child with the BLAS threads its environment sets: for each dtype, the reference network's
    training iteration at the notebook's batch (ms) and its evaluation (ms per image), as JSON."""
    batch = int(notebook_settings()["BATCH_SIZE"])
    figures = {}
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        for dtype in ("float32", "float64"):
            rng = np.random.default_rng(0)
            np.random.seed(123)
            model = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.dtype(dtype))
            loss_func = lib.mlp_layers.cross_entropy()
            optimizer = lib.optim.Adam(model.net, 1e-3)
            x = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)  # the loader's dtype
            y = rng.integers(0, 10, size=batch)

            def iteration():
                loss_func.forward(model.forward(x), y)
                model.backward(loss_func.backward())
                optimizer.step()

            for _ in range(3):
                iteration()
            walls, cpus = zip(*(wall_and_cpu(iteration) for _ in range(30)))
            assert {value.dtype for value in model.net.params.values()} == {np.dtype(dtype)}
            eval_x = rng.standard_normal((1000, 32, 32, 3)).astype(np.float32)
            eval_ms = median_ms(lambda: lib.train.compute_acc(model, eval_x, np.zeros(1000)), repeat=3) / 1000
            figures[dtype] = {"step_ms": statistics.median(walls) * 1000, "cpu_ms": statistics.median(cpus) * 1000,
                              "eval_ms_per_image": eval_ms}
        figures["train_acc_samples"] = lib.train.TRAIN_ACC_SAMPLES
    print("RESULT " + json.dumps(figures))


def bench_training() -> dict:
    """The reference network's training iteration and the notebook's projected full run, float32 beside
    float64, with OpenBLAS on every core and on one (each a child process: OpenBLAS reads its thread
    count once, when NumPy is imported)."""
    settings = notebook_settings()
    batch, epochs = int(settings["BATCH_SIZE"]), int(settings["EPOCHS"])
    print(f"\n## Training the reference network (notebook settings: batch {batch}, {epochs} epochs; Adam; "
          f"{N_TRAIN} training and {N_VAL} validation images)")
    figures = {}
    for threads in sorted({CORES, 1}, reverse=True):
        done = subprocess.run([sys.executable, __file__, "training-figures"], env=blas_environment(threads),
                              capture_output=True, text=True, check=True)
        figures[threads] = json.loads(done.stdout.split("RESULT ")[1])
    print(f"{'dtype':8s} {'BLAS threads':>12s} {'ms/iteration':>13s} {'CPU ms':>7s} {'ms/image eval':>14s} "
          f"{'full run':>10s}")
    for dtype in ("float32", "float64"):
        for threads, by_dtype in figures.items():
            row = by_dtype[dtype]
            row["minutes"] = projected_minutes(row["step_ms"], row["eval_ms_per_image"], batch, epochs,
                                               by_dtype["train_acc_samples"])
            print(f"{dtype:8s} {threads:12d} {row['step_ms']:13.1f} {row['cpu_ms']:7.1f} "
                  f"{row['eval_ms_per_image']:14.3f} {row['minutes']:6.1f} min")
    single = figures[CORES]["float32"]["minutes"]
    verdict = "within" if single < FULL_RUN_GOAL_MINUTES else "OVER"
    print(f"float32 with {CORES} BLAS threads: {single:.1f} min, {verdict} the goal of {FULL_RUN_GOAL_MINUTES} min on "
          f"2 cores; float64 takes {figures[CORES]['float64']['minutes'] / single:.2f}x as long; "
          f"{CORES} BLAS threads are {figures[1]['float32']['minutes'] / single:.2f}x as fast as 1 (the matrix "
          "products are a small part of an iteration, and on a busy machine extra BLAS threads wait for each "
          "other: read this on an idle one; there, wall time is CPU time with one thread)")
    return {"batch": batch, "epochs": epochs, "numpy": figures[CORES]}


def bench_torch_layers(torch, reference_ms: dict[str, float], rng) -> None:
    """The same conv and pool layers in PyTorch, forward + backward (input and weight gradients)."""
    batch = 128
    print("\n## Layers in PyTorch, batch 128: reference NumPy float64 / PyTorch")
    print(f"{'layer':34s} {'numpy f64':>10s} {'torch f64':>10s} {'torch f32':>10s} {'np/t64':>7s} {'np/t32':>7s}")
    layers = [(name, torch.nn.Conv2d(c, f, k, stride=s, padding=p), c, hw) for name, c, k, f, s, p, hw in LAYER_SHAPES]
    layers.append(("pool 2x2 s2, 15x15x32", torch.nn.MaxPool2d(2), 32, 15))
    for name, module, c, hw in layers:
        row = []
        for dtype in (torch.float64, torch.float32):
            module = module.to(dtype)
            x = torch.tensor(rng.standard_normal((batch, c, hw, hw)), dtype=dtype, requires_grad=True)
            dout = torch.ones_like(module(x))
            row.append(median_ms(lambda: module(x).backward(dout)))
        ref = reference_ms[name]
        print(f"{name:34s} {ref:10.1f} {row[0]:10.1f} {row[1]:10.1f} {ref / row[0]:7.2f} {ref / row[1]:7.2f}")


def bench_torch(training: dict, rng):
    try:
        import torch
    except ImportError:
        print("\n## PyTorch: not installed, skipped (it is not a requirement; `pip install torch` to compare)")
        return None
    batch, epochs, numpy_figures = training["batch"], training["epochs"], training["numpy"]
    print(f"\n## PyTorch {torch.__version__} CPU, same network, {torch.get_num_threads()} threads, batch {batch}: "
          "the full run projected as for the reference")
    print(f"{'dtype':8s} {'torch ms/iteration':>19s} {'torch full run':>15s} {'reference full run':>19s}")
    for dtype in (torch.float32, torch.float64):
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.LeakyReLU(0.01),
            torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.LeakyReLU(0.01),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(1568, 100), torch.nn.LeakyReLU(0.01), torch.nn.Linear(100, 10)).to(dtype)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.tensor(rng.standard_normal((batch, 3, 32, 32)), dtype=dtype)
        y = torch.tensor(rng.integers(0, 10, size=batch))

        def iteration():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

        ms = median_ms(iteration, repeat=20, warmup=3)
        eval_x = torch.tensor(rng.standard_normal((1000, 3, 32, 32)), dtype=dtype)

        def evaluate():
            with torch.no_grad():
                for start in range(0, 1000, 100):
                    net(eval_x[start:start + 100]).argmax(dim=1)

        eval_ms = median_ms(evaluate, repeat=3) / 1000
        name = str(dtype).replace("torch.", "")
        minutes = projected_minutes(ms, eval_ms, batch, epochs, numpy_figures["train_acc_samples"])
        print(f"{name:8s} {ms:19.1f} {minutes:11.1f} min {numpy_figures[name]['minutes']:15.1f} min")
    return torch


def bench_grading() -> None:
    """Grading the six code items: the reference and a correct loop-based submission."""
    import shutil
    import tempfile

    from loop_submission import LOOP_LAYERS

    from autograder.grading import grade_submission
    from autograder.rubric import load_rubric

    timeout = load_rubric().worker.call_timeout
    print("\n## Grading the six code items (wall time, worker start-up included)")
    with tempfile.TemporaryDirectory() as scratch:
        loops = Path(scratch) / "loops"
        shutil.copytree(REPO_ROOT / "reference_solution", loops, ignore=shutil.ignore_patterns("data", "*.npz"))
        layers = loops / "lib" / "cnn" / "layer_utils.py"
        layers.write_text(layers.read_text() + "\n" + LOOP_LAYERS)
        for name, folder, goal in (("reference", REPO_ROOT / "reference_solution", 3), ("loop-based", loops, 30)):
            walls = []
            for _ in range(3):
                start = time.perf_counter()
                result, _ = grade_submission(folder, Path(scratch) / "out" / name)
                walls.append(time.perf_counter() - start)
            cases = [case for item in result.items for case in item.cases]
            slowest = max(cases, key=lambda case: case.seconds)
            print(f"{name:10s} {statistics.median(walls):5.2f} s (goal under {goal} s), score {result.score:g}; "
                  f"slowest case {slowest.item}/{slowest.case} {slowest.seconds:.2f} s, "
                  f"{timeout / slowest.seconds:.0f}x under the {timeout} s call time-out")


def bench_code_items(repeat: int = 7) -> None:
    """The six code items of one submission as the grader runs them (worker start, every case through pytest
    and the worker), with its worker forked from a warm worker (the local batch) beside one started afresh."""
    from autograder.checks.plugin import run_checks
    from autograder.fixtures import load_cases
    from autograder.rubric import load_rubric
    from autograder.sandbox.confinement import SECRET_PATHS
    from autograder.sandbox.parent import WorkerProcess
    from autograder.sandbox.warm_worker import WarmClient, WarmWorker, warm_workers_possible

    print("\n## The code items of one submission (the reference): worker forked warm beside started afresh")
    rubric = load_rubric()
    cases = load_cases(REPO_ROOT / "fixtures")
    if not warm_workers_possible():
        print("warm workers need confinement 'namespace' (see `grade.py sandbox`): not measured here")
        return
    warm = WarmWorker(rubric.worker, list(SECRET_PATHS))
    warm.start()
    walls: dict[str, list[float]] = {"afresh": [], "warm": []}
    starts: dict[str, list[float]] = {"afresh": [], "warm": []}
    try:
        for index in range(repeat + 1):  # the first of each warms disk caches (and the warm worker's imports)
            for kind in ("afresh", "warm"):
                client = WarmClient(warm.connect(), warm.address) if kind == "warm" else None
                start = time.perf_counter()
                with WorkerProcess(REPO_ROOT / "reference_solution", rubric.worker, hidden=list(SECRET_PATHS),
                                   warm=client) as worker:
                    worker.start()
                    run_checks(worker, cases, rubric)
                if index:
                    walls[kind].append(time.perf_counter() - start)
                    starts[kind].append(worker.start_seconds)
                if client is not None:
                    client.connection.close()
    finally:
        warm.close()
    afresh, warmed = statistics.median(walls["afresh"]), statistics.median(walls["warm"])
    print(f"afresh {afresh:.3f} s (worker start {statistics.median(starts['afresh']):.3f} s); warm {warmed:.3f} s "
          f"(worker start {statistics.median(starts['warm']):.3f} s); {afresh / warmed:.2f}x "
          "(goal: warm at most 0.3 s)")


def _grade_reference(out: Path) -> None:
    """A grading process's body in the bench: the reference's code items and notebook, as the batch grades them."""
    from autograder.grading import grade_submission

    grade_submission(REPO_ROOT / "reference_solution", out)


def bench_grading_process(repeat: int = 5) -> None:
    """One submission's grading process as the local batch starts it: a fork of the warm server (autograder/warm.py:
    the harness, fonts and confinement probes loaded once per batch) beside a cold start (a fresh interpreter, as
    the batch started it before and as `grade.py grade` and a Dask task still do)."""
    import subprocess
    import tempfile

    from autograder.batch import warm_context

    print("\n## One submission's grading process: warm fork beside cold start (the reference, code items and notebook)")
    context = warm_context()
    walls: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(repeat + 1):  # the first of each is a warm-up (the server's own start, disk caches)
            start = time.perf_counter()
            subprocess.run([sys.executable, str(REPO_ROOT / "grade.py"), "grade", str(REPO_ROOT / "reference_solution"),
                            "--out", str(Path(scratch) / f"cold{index}")], check=True, capture_output=True)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            process = context.Process(target=_grade_reference, args=(Path(scratch) / f"warm{index}",))
            process.start()
            process.join()
            warm = time.perf_counter() - start
            if index:
                walls["cold"].append(cold)
                walls["warm"].append(warm)
    cold, warm = statistics.median(walls["cold"]), statistics.median(walls["warm"])
    print(f"cold start {cold:.2f} s; warm fork {warm:.2f} s; {cold / warm:.2f}x (median of {repeat} each, alternated)")


def bench_headless() -> None:
    """Grading the reference with its notebook executed headless in quick mode, end to end."""
    import tempfile

    from autograder.grading import grade_submission
    from autograder.staff.synthetic import write_synthetic_svhn

    print("\n## The reference graded with --execute --quick (synthetic data; goal: under 60 s)")
    with tempfile.TemporaryDirectory() as scratch:
        write_synthetic_svhn(Path(scratch) / "data", train=2500, test=300, seed=0)
        start = time.perf_counter()
        result, _ = grade_submission(REPO_ROOT / "reference_solution", Path(scratch) / "out",
                                     data_dir=Path(scratch) / "data", execute=True, quick=True)
        wall = time.perf_counter() - start
    training = next(item for item in result.items if item.item.id == "training")
    print(f"{wall:.1f} s in all, worker start-up, checks, kernel and one quick epoch included; "
          f"score {result.score:g}; {training.note}")


def bench_batch(count: int = 30) -> None:
    """Batch throughput of the code items: --jobs 1 against --jobs 2 on the same class, and the same class
    through a Dask cluster of two workers on this machine (what the cluster's path costs per submission)."""
    import shutil
    import tempfile

    from autograder.batch import run_batch

    print(f"\n## Batch grading {count} submissions (copies of the reference; goal: under 120 s, jobs 2 near 2x jobs 1)")
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            shutil.copytree(REPO_ROOT / "reference_solution", Path(scratch) / "in" / f"{1000 + index}",
                            ignore=shutil.ignore_patterns("data", "*.npz"))
        walls = {}
        for jobs in (1, 2):
            start = time.perf_counter()
            run_batch(Path(scratch) / "in", Path(scratch) / f"out{jobs}", jobs=jobs, progress=False)
            walls[jobs] = time.perf_counter() - start
        started, cluster = _local_dask_cluster(Path(scratch), workers=2)
        try:
            from autograder.cluster import ClusterEngine
            start = time.perf_counter()
            run_batch(Path(scratch) / "in", Path(scratch) / "out-dask", progress=False,
                      engine=ClusterEngine(cluster))
            walls["dask"] = time.perf_counter() - start
        finally:
            for process in started:
                process.kill()
                process.wait()
    print(f"jobs 1: {walls[1]:.1f} s; jobs 2: {walls[2]:.1f} s; speed-up {walls[1] / walls[2]:.2f}x")
    print(f"Dask, a scheduler and 2 one-thread workers on this machine (--scheduler): {walls['dask']:.1f} s, "
          f"{walls['dask'] / walls[2]:.2f}x the local pool of 2; overhead "
          f"{(walls['dask'] - walls[2]) / count:+.2f} s per submission (the cluster's start not counted)")


def _local_dask_cluster(scratch: Path, workers: int) -> tuple[list, str]:
    """A scheduler and one-thread workers as `grade.py scheduler` / `grade.py worker` start them, on
    127.0.0.1, ready: (their processes, the scheduler's address)."""
    import socket
    import subprocess

    from distributed import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    command = [sys.executable, str(REPO_ROOT / "grade.py")]
    log = open(scratch / "dask.log", "w")
    started = [subprocess.Popen([*command, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                 "--idle-timeout", "600"], stdout=log, stderr=subprocess.STDOUT)]
    started += [subprocess.Popen([*command, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                  "--death-timeout", "60"], stdout=log, stderr=subprocess.STDOUT)
                for _ in range(workers)]
    client = Client(address, timeout=60, set_as_default=False)
    try:
        client.wait_for_workers(workers, timeout=120)
    finally:
        client.close()
    return started, address


def bench_similarity(count: int = 200) -> None:
    """The batch's pair-wise comparison at the size of a large class (all pairs, one process)."""
    import random

    from autograder.baseline import default_baseline
    from autograder.reports.similarity import fingerprint, similar_pairs
    from autograder.rubric import load_rubric

    lines = fingerprint(REPO_ROOT / "reference_solution", default_baseline().code)["code"]
    chance = random.Random(0)
    prints = {}
    for index in range(count):  # each student keeps a different 70 % of the reference's own lines
        prints[str(index)] = {"code": [line for line in lines if chance.random() < 0.7],
                              "answer": " ".join(chance.choice(("filters", "edges", "colour", "blobs", "detect"))
                                                 for _ in range(40))}
    start = time.perf_counter()
    pairs = similar_pairs(prints, load_rubric().similarity)
    seconds = time.perf_counter() - start
    print(f"\n## Similarity of {count} submissions ({count * (count - 1) // 2} pairs)")
    print(f"{seconds:.2f} s for all pairs ({len(pairs)} above the thresholds); "
          f"{seconds / (count * (count - 1)) * 2e6:.1f} us per pair")


def bench_filter_match() -> None:
    """The filters item's image check: one notebook image read back and compared with 16 filters."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import filter_renderings as draw

    from autograder.notebook.filter_match import match_filters, same_figure
    from autograder.rubric import load_rubric

    limits = load_rubric().filters
    print("\n## Filter image against the first layer's weights (ms per image, median of 3; goal: well under 1 s)")
    for name in ("trained_1", "trained5_1"):
        filters = draw.weights(name)
        for layout, png in draw.layouts(filters).items():
            ms = median_ms(lambda: match_filters(png, filters, limits), repeat=3, warmup=0)
            print(f"{name:11s} {layout:52s} {ms:7.1f} ms")
    curves = draw.curves()
    again = draw.curves(figsize=(14, 11), dpi=80)
    print(f"same-figure check, curves at two sizes: {median_ms(lambda: same_figure(curves, again, limits)):.1f} ms")


def bench_pdf() -> None:
    """Building problem_2_solution.pdf for notebook-sized figures: time and size against the images."""
    import io
    import tempfile

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autograder.notebook.pdf import build_pdf
    from autograder.notebook.reading import Findings

    rng = np.random.default_rng(0)
    figure = plt.figure(figsize=(15, 12))  # the notebook's curves: two stacked subplots
    plt.subplot(2, 1, 1)
    plt.plot(2.3 * np.exp(-np.linspace(0, 3, 70)) + rng.normal(0, 0.05, 70), "-o")
    plt.subplot(2, 1, 2)
    plt.plot(np.linspace(0.6, 0.93, 10), "-o")
    plt.plot(np.linspace(0.58, 0.90, 10), "-o")
    curves = io.BytesIO()
    figure.savefig(curves, format="png", dpi=72)
    plt.close(figure)
    figure = plt.figure(figsize=(10, 8))
    plt.imshow(rng.random((9, 33, 3)))
    filters = io.BytesIO()
    figure.savefig(filters, format="png", dpi=72)
    plt.close(figure)
    images = [curves.getvalue(), filters.getvalue()]
    with tempfile.TemporaryDirectory() as scratch:
        notebook = Path(scratch) / "Problem_2.ipynb"
        notebook.write_text("{}")
        findings = Findings(notebook, curve_images=images[:1], filter_images=images[1:])
        answer = "Most filters are **oriented edges** and *colour blobs*.\n\n- bars\n- blobs\n"
        seconds = median_ms(lambda: build_pdf(findings, answer, Path(scratch) / "out.pdf", "4916525888"),
                            repeat=3) / 1000
        size = (Path(scratch) / "out.pdf").stat().st_size
    image_bytes = sum(len(png) for png in images)
    print("\n## problem_2_solution.pdf for notebook-sized figures (goal: under 2 s, size close to the images')")
    print(f"{seconds:.2f} s; {size / 1024:.0f} KB for {image_bytes / 1024:.0f} KB of PNG images "
          f"(ratio {size / image_bytes:.2f}; the rest is the embedded font subsets)")


def bench_pdf_long_answer(sizes_kb=(10, 50, 200)) -> None:
    """The PDF's answer section for answers far longer than any honest one, each one paragraph (the
    worst case for reportlab's line breaking), given to build_pdf uncut: its own robustness."""
    import tempfile

    from autograder.notebook.pdf import build_pdf
    from autograder.notebook.reading import Findings

    print("\n## problem_2_solution.pdf with one long answer paragraph (uncut; the intake cap comes first)")
    with tempfile.TemporaryDirectory() as scratch:
        notebook = Path(scratch) / "Problem_2.ipynb"
        notebook.write_text("{}")
        for kb in sizes_kb:
            answer = ("Edges and **colour** blobs. " * (kb * 1024 // 28 + 1))[:kb * 1024]
            start = time.perf_counter()
            made = build_pdf(Findings(notebook), answer, Path(scratch) / "out.pdf", "4916525888")
            print(f"{kb:4d} KB answer: {time.perf_counter() - start:6.2f} s, {made.pages} pages")


def bench_synthetic_training(epochs: int = 3, train: int = 20000, validation: int = 2000) -> None:
    """The reference network on synthetic SVHN, with the notebook's optimizer settings."""
    import tempfile

    from autograder.edition import default_edition
    from autograder.notebook.datasets import read_mat
    from autograder.staff.synthetic import write_synthetic_svhn

    settings = notebook_settings()
    print(f"\n## The reference network on {train} synthetic training images ({epochs} epochs, "
          f"Adam {settings['LEARNING_RATE']:g}, batch {int(settings['BATCH_SIZE'])})")
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        write_synthetic_svhn(Path(scratch), train=train + validation, test=10, seed=11)
        dataset = default_edition().dataset
        images, labels = read_mat(Path(scratch) / dataset.train_file, dataset)
        made = time.perf_counter() - start
    images = images.astype(np.float32) / 255
    mean = images[:train].mean(axis=0)
    data = {"data_train": (images[:train] - mean, labels[:train]),
            "data_val": (images[train:] - mean, labels[train:])}
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        np.random.seed(123)
        model = lib.cnn_models.SmallConvolutionalNetwork()
        optimizer = lib.optim.Adam(model.net, settings["LEARNING_RATE"])
        start = time.perf_counter()
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            _, _, _, val_history = lib.train.train_net(
                data, model, lib.mlp_layers.cross_entropy(), optimizer, int(settings["BATCH_SIZE"]), epochs,
                settings["LR_DECAY"], int(settings["LR_DECAY_EVERY"]), show_every=10**9, verbose=True)
        trained = time.perf_counter() - start
    print(f"data made in {made:.0f} s; trained in {trained:.0f} s; validation accuracy per epoch: "
          + ", ".join(f"{v:.3f}" for v in val_history) + " (goal: at least 0.90)")


def bench_replay(train: int = 20000, validation: int = 2000) -> None:
    """Log replay of the reference: its notebook run once with the shipped batch and optimizer
    (one epoch on `train` synthetic images), then replayed without its weights."""
    import re
    import shutil
    import tempfile

    import nbformat

    from autograder.notebook.execute import execute_notebook
    from autograder.notebook.replay import replay_log
    from autograder.rubric import load_rubric
    from autograder.staff.synthetic import write_synthetic_svhn

    rubric = load_rubric()
    print(f"\n## Log replay of the reference ({int(rubric.training['replay_lines'])} loss lines, synthetic data, "
          f"{train} training images, the notebook's batch and optimizer; "
          f"budget {rubric.training['replay_seconds']:g} s)")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_synthetic_svhn(scratch / "data", train=train + validation, test=100, seed=3)
        folder = scratch / "submission"
        shutil.copytree(REPO_ROOT / "reference_solution", folder, ignore=shutil.ignore_patterns("data", "*.npz"))
        notebook = nbformat.read(str(folder / "Problem_2.ipynb"), as_version=4)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        for name, value in {"EPOCHS": 1, "NUM_TRAINING": train, "NUM_VALIDATION": validation}.items():
            cell.source = re.sub(rf"^{name} = .*$", f"{name} = {value}", cell.source, count=1, flags=re.M)
        nbformat.write(notebook, str(folder / "Problem_2.ipynb"))
        start = time.perf_counter()
        run = execute_notebook(folder, folder / "Problem_2.ipynb", scratch / "data", scratch / "executed",
                               rubric.execution)
        executed = time.perf_counter() - start
        shutil.copyfile(run.notebook, folder / "Problem_2.ipynb")
        replay = replay_log(folder, folder / "Problem_2.ipynb", scratch / "data", rubric)
    print(f"the whole notebook executed in {executed:.0f} s; replayed in {replay.seconds:.1f} s "
          f"(kernel start, data, check cells and {replay.compared[-1].claimed.iteration if replay.compared else 0} "
          f"iterations): {replay.summary()}")


def _trusted_one_core() -> None:
    """Run in a child with one BLAS thread: the trusted forward, and the reference's layers, on the
    images one submission is evaluated on (the rubric's validation rows plus the held-out set)."""
    from autograder.notebook.architecture import read_description
    from autograder.notebook.trusted_eval import TrustedNet
    from autograder.rubric import load_rubric
    from autograder.sandbox.probe import describe_model

    rubric = load_rubric()
    training = rubric.training
    count = rubric.edition.dataset.num_validation + int(training["heldout_rows"])
    images = (np.random.default_rng(0).standard_normal((count, 32, 32, 3)) * 0.25).astype(np.float32)
    limits = {"max_kernel": training["probe_max_kernel"], "max_stride": training["probe_max_stride"],
              "max_padding": training["probe_max_padding"]}
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        np.random.seed(123)
        # float64, as the handout's layers (which ignore dtype) give most students' networks
        model = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)
        header, arrays = describe_model(model, images[:2], limits, 1e-7)
        net = TrustedNet.build(read_description(header, arrays, images[:2], (), training), model.net.params)
        figures = {}
        for name, run in (("trusted", lambda: net.predict(images)),
                          ("reference layers", lambda: [model.forward(images[i:i + 100], False)
                                                        for i in range(0, count, 100)])):
            walls, cpus = zip(*(wall_and_cpu(run) for _ in range(3)))
            figures[name] = (min(walls), min(cpus))
    print(f"RESULT {count} {figures['trusted'][0]:.3f} {figures['trusted'][1]:.3f} "
          f"{figures['reference layers'][0]:.3f} {figures['reference layers'][1]:.3f}")


def bench_trusted_evaluation() -> None:
    """Trusted evaluation of one submission on one core (goal: at most 3 s), beside the student's own
    forward (the reference's layers, in the worker) on the validation split, and the whole item."""
    import os
    import subprocess
    import tempfile

    from autograder.notebook.datasets import grading_splits
    from autograder.notebook.training_evidence import gather_training_evidence, load_weights
    from autograder.rubric import load_rubric
    from autograder.sandbox.parent import WorkerProcess

    one_core = dict(os.environ, **ONE_BLAS_THREAD)
    done = subprocess.run([sys.executable, __file__, "trusted-one-core"], env=one_core, capture_output=True,
                          text=True, check=True)
    count, trusted_wall, trusted_cpu, ref_wall, ref_cpu = done.stdout.split("RESULT ")[1].split()
    print(f"\n## Trusted evaluation of one submission: {count} images (validation rows + held-out set), one core")
    print(f"trusted float32 forward: {float(trusted_wall):.2f} s wall, {float(trusted_cpu):.2f} s CPU (goal: at most "
          f"3 s); the reference's own layers (float64): {float(ref_wall):.2f} s wall, {float(ref_cpu):.2f} s CPU")
    rubric = load_rubric()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        official_size_svhn(data, rng)
        folder = Path(scratch) / "sub"
        # float64 weights, as most students' networks save (the handout's layers ignore dtype)
        reference_with_weights(folder, reference_params(dtype=np.float64))
        start = time.perf_counter()
        splits = grading_splits(rubric.edition, data, rubric.training)
        read_s = time.perf_counter() - start
        with WorkerProcess(folder, rubric.worker) as worker:
            worker.start()
            saved = load_weights(folder / "svhn_cnn_params.npz", rubric, None).arrays
            start = time.perf_counter()
            worker.call("small_cnn_predict", {"seed": 123}, dict(saved, images=splits.val_images), timeout=600)
            student_s = time.perf_counter() - start
            start = time.perf_counter()
            evidence, _ = gather_training_evidence(worker, rubric, None, folder / "svhn_cnn_params.npz", "bench", data)
            item_s = time.perf_counter() - start
    print(f"the student's own forward in the worker (the reference's layers) on the {len(splits.val_labels)} "
          f"validation images: {student_s:.2f} s wall; reading the official-size .mat files and preparing both "
          f"splits: {read_s:.1f} s; the whole training item with --data (describe, read, trusted, own forward): "
          f"{item_s:.1f} s (verified {evidence.verified}, held-out {evidence.heldout})")


def _training_item_once(folder: str, data_dir: str) -> None:
    """Run in a fresh child, as one grading process of a batch (the data cache's folder, or "off", from its
    environment): the training item of the weights in `folder` with --data, its data step (reading or mapping
    the grading splits) and the whole item (the data step, describe, trusted evaluation, the own forward)."""
    from autograder.notebook.datasets import grading_splits
    from autograder.notebook.training_evidence import gather_training_evidence
    from autograder.rubric import load_rubric
    from autograder.sandbox.parent import WorkerProcess

    rubric, weights = load_rubric(), Path(folder) / "svhn_cnn_params.npz"
    with WorkerProcess(Path(folder), rubric.worker) as worker:
        worker.start()  # started for the code items before the training item is graded: not counted
        start = time.perf_counter()
        grading_splits(rubric.edition, Path(data_dir), rubric.training)
        data_s = time.perf_counter() - start
        evidence, _ = gather_training_evidence(worker, rubric, None, weights, "bench", Path(data_dir))
        item_s = time.perf_counter() - start  # gather_training_evidence finds the splits in this process
    print(f"RESULT {data_s:.3f} {item_s:.3f} {evidence.verified}")


def bench_training_item_cached() -> None:
    """The training item with --data in a fresh process, as each submission of a batch is graded: without the
    staff data cache (every process reads the official-size .mat files), the batch's first process (a cold
    cache: read, hash, store) and every later one (a warm cache: the prepared arrays mapped from disk)."""
    import os
    import subprocess
    import tempfile

    from autograder.notebook.data_cache import CACHE_VARIABLE, OFF

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        data, cache, folder = Path(scratch) / "data", Path(scratch) / "cache", Path(scratch) / "sub"
        data.mkdir()
        official_size_svhn(data, rng)
        reference_with_weights(folder, reference_params())

        def once(where: str) -> tuple[float, float]:
            done = subprocess.run([sys.executable, __file__, "training-item-once", str(folder), str(data)],
                                  # one BLAS thread, as a batch's grading process has it (autograder/warm.py)
                                  env=dict(os.environ, **ONE_BLAS_THREAD, **{CACHE_VARIABLE: where}),
                                  capture_output=True, text=True,
                                  check=True)
            data_s, item_s, _ = done.stdout.split("RESULT ")[1].split()
            return float(data_s), float(item_s)

        uncached = once(OFF)
        cold = once(str(cache))  # the batch's first process: an empty cache
        warm = min((once(str(cache)) for _ in range(2)), key=lambda figures: figures[1])
        stored = sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())
    print("\n## The training item with --data per grading process: official-size synthetic 2022 data (73,257 + "
          "26,032 rows, random pixels), the reference's weights, a fresh process each (data files in the page cache)")
    print(f"{'':38}{'data step':>11}{'evaluation':>12}{'whole item':>12}")
    for label, (data_s, item_s) in (("no cache (every process reads .mat)", uncached),
                                    ("first of a batch (cold cache)", cold), ("every later one (warm cache)", warm)):
        print(f"{label:38}{data_s:>9.2f} s{item_s - data_s:>10.2f} s{item_s:>10.2f} s")
    print(f"cold / warm: data step {cold[0] / warm[0]:.1f}x, whole item {cold[1] / warm[1]:.1f}x; no cache / warm: "
          f"data step {uncached[0] / warm[0]:.1f}x, whole item {uncached[1] / warm[1]:.1f}x; the cache entry: "
          f"{stored / 1e6:.0f} MB (evaluation: describe, trusted forward, the student's own forward in the worker)")
    verdict = "within" if warm[1] <= 1.5 else f"OVER by {warm[1] - 1.5:.2f} s"
    print(f"the training item after the first submission of a batch: {warm[1]:.2f} s ({verdict} the 1.5 s goal), "
          f"{warm[0]:.2f} s of it the data")


def bench_class_with_data(count: int = 30, jobs: int = 2) -> None:
    """A class graded as staff grade one with their data: `count` copies of the reference, each with saved
    weights, batch-graded with --data on official-size synthetic 2022 files (a fresh staff data cache), --jobs
    `jobs`; the cost per submission and what a class of 300 costs at that rate."""
    import os
    import tempfile

    from autograder.batch import run_batch
    from autograder.notebook.data_cache import CACHE_VARIABLE

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        data, inbox = Path(scratch) / "data", Path(scratch) / "in"
        data.mkdir()
        official_size_svhn(data, rng)
        params = reference_params()
        for index in range(count):
            reference_with_weights(inbox / f"{1000 + index}", params)
        previous = os.environ.get(CACHE_VARIABLE)
        os.environ[CACHE_VARIABLE] = str(Path(scratch) / "cache")  # a fresh cache: the first submission fills it
        try:
            start = time.perf_counter()
            run_batch(inbox, Path(scratch) / "out", jobs=jobs, progress=False, data_dir=data)
            wall = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop(CACHE_VARIABLE, None)
            else:
                os.environ[CACHE_VARIABLE] = previous
    print(f"\n## A class of {count} with --data (official-size synthetic SVHN, saved weights, --jobs {jobs})")
    print(f"{wall:.1f} s: {wall / count:.2f} s per submission, {count / wall:.2f} submissions/s; a class of 300 at "
          f"this rate: {300 * wall / count / 60:.1f} min")


def _gelu_network(lib, activation: str = "gelu"):
    """A network of the 2023 edition's shape from the reference's layers (20 outputs, GELU written here from
    the 2023 handout's formula; `activation` "leaky" for the same network with leaky ReLU, to compare)."""

    class Gelu:
        def __init__(self, name):
            self.name, self.params, self.grads, self.meta = name, {}, {}, None

        def forward(self, feat):
            return 0.5 * feat * (1 + np.tanh(np.sqrt(2 / np.pi) * (feat + 0.044715 * feat ** 3)))

    class Model:
        def __init__(self, *layers):
            self.net = lib.mlp_layers.sequential(*layers)

        def forward(self, feat, is_training=False, seed=None):
            for layer in self.net.layers:
                feat = layer.forward(feat)
            return feat

    def act(name):
        return Gelu(name) if activation == "gelu" else lib.mlp_layers.leaky_relu(0.01, name=name)

    np.random.seed(5)
    conv, mlp = lib.cnn_layers.ConvLayer2D, lib.mlp_layers
    return Model(conv(3, 3, 16, stride=1, padding=1, name="conv1"), act("a1"),
                 conv(16, 3, 32, stride=2, padding=0, name="conv2"), act("a2"),
                 lib.cnn_layers.MaxPoolingLayer(2, 2, "pool1"), mlp.flatten(name="flat"),
                 mlp.fc(1568, 100, 0.02, name="fc1"), act("a3"), mlp.fc(100, 20, 0.02, name="fc2"))


def _trusted_one_core_2023(data_dir: str) -> None:
    """Run in a child with one BLAS thread: the 2023 edition's splits read from official-size files, and the
    trusted forward of a GELU network (and the same with leaky ReLU) on the validation rows + held-out set."""
    from autograder.edition import get_edition
    from autograder.notebook.architecture import read_description
    from autograder.notebook.datasets import grading_splits
    from autograder.notebook.training_evidence import IMPULSE_PAIRS, probe_images
    from autograder.notebook.trusted_eval import TrustedNet
    from autograder.rubric import load_rubric
    from autograder.sandbox.probe import describe_model

    training = load_rubric().training
    wall, cpu = time.perf_counter(), time.process_time()
    splits = grading_splits(get_edition("2023"), Path(data_dir), training)
    read = (time.perf_counter() - wall, time.process_time() - cpu)
    wall = time.perf_counter()
    grading_splits(get_edition("2023"), Path(data_dir), training)  # the next submission of a batch
    again = time.perf_counter() - wall
    images = np.concatenate([splits.val_images, splits.heldout_images])
    limits = {"max_kernel": training["probe_max_kernel"], "max_stride": training["probe_max_stride"],
              "max_padding": training["probe_max_padding"]}
    figures = {}
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        for activation in ("gelu", "leaky"):
            model = _gelu_network(lib, activation)
            probe = probe_images()
            header, arrays = describe_model(model, probe, limits, training["chain_tolerance"])
            architecture = read_description(header, arrays, probe, IMPULSE_PAIRS, training)
            assert architecture.summary()[1] == ("GELU (tanh)" if activation == "gelu" else "leaky ReLU 0.01")
            net = TrustedNet.build(architecture, model.net.params)
            walls, cpus = [], []
            for _ in range(3):
                wall, cpu = time.perf_counter(), time.process_time()
                net.predict(images)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            figures[activation] = (min(walls), min(cpus))
    print(f"RESULT {len(splits.val_labels)} {len(splits.heldout_labels)} {read[0]:.3f} {read[1]:.3f} {again:.4f} "
          f"{figures['gelu'][0]:.3f} {figures['gelu'][1]:.3f} {figures['leaky'][0]:.3f} {figures['leaky'][1]:.3f}")


def bench_trusted_evaluation_2023(train: int = 50000, test: int = 10000) -> None:
    """The 2023 edition's trusted evaluation of one submission on one core, on official-size synthetic
    CIFAR-100 (50,000 training rows: validation rows 40,000-49,999; 10,000 test rows, held-out drawn from
    them): reading and preparing the splits, and the trusted forward of a GELU network (goal: 3 s)."""
    import os
    import subprocess
    import tempfile

    from autograder.edition import get_edition
    from autograder.staff.synthetic_cifar import write_synthetic_cifar100

    print(f"\n## Trusted evaluation of one 2023 submission: official-size synthetic CIFAR-100 ({train} training, "
          f"{test} test rows), a GELU network with 20 outputs, one core")
    one_core = dict(os.environ, **ONE_BLAS_THREAD)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        write_synthetic_cifar100(Path(scratch), get_edition("2023"), train=train, test=test, seed=1)
        made = time.perf_counter() - start
        done = subprocess.run([sys.executable, __file__, "trusted-one-core-2023", scratch], env=one_core,
                              capture_output=True, text=True, check=True)
    val, held, read_wall, read_cpu, again, gelu_wall, gelu_cpu, leaky_wall, leaky_cpu = (
        float(v) for v in done.stdout.split("RESULT ")[1].split())
    total, later = read_wall + gelu_wall, again + gelu_wall
    print(f"synthetic files written in {made:.0f} s (once, not per submission)")
    print(f"reading train.mat and test.mat and preparing both splits (standardised with rows 0-39,999): "
          f"{read_wall:.2f} s wall, {read_cpu:.2f} s CPU, once per grading process (the next submission: "
          f"{again * 1000:.1f} ms, the same read-only arrays)")
    print(f"trusted float32 forward on {int(val)} validation + {int(held)} held-out images: GELU network "
          f"{gelu_wall:.2f} s wall, {gelu_cpu:.2f} s CPU; the same network with leaky ReLU {leaky_wall:.2f} s wall")
    verdict = lambda t: "within" if t <= 3 else f"OVER by {t - 3:.2f} s"  # noqa: E731
    print(f"one 2023 submission's trusted evaluation: the first in a process {total:.2f} s wall ({verdict(total)} "
          f"the 3 s budget), every later one {later:.2f} s ({verdict(later)})")


def main() -> int:
    rng = np.random.default_rng(0)
    with imported_lib(REPO_ROOT / "reference_solution") as lib:
        reference_ms = bench_layers(lib, rng)
    training = bench_training()
    torch = bench_torch(training, rng)
    if torch is not None:
        bench_torch_layers(torch, reference_ms, rng)
    bench_trusted_evaluation()
    bench_training_item_cached()
    bench_trusted_evaluation_2023()
    bench_grading()
    bench_code_items()
    bench_grading_process()
    bench_batch()
    bench_class_with_data()
    bench_similarity()
    bench_filter_match()
    bench_pdf()
    bench_pdf_long_answer()
    bench_headless()
    bench_synthetic_training()
    bench_replay()
    return 0


if __name__ == "__main__":
    from autograder.notebook.data_cache import CACHE_VARIABLE, OFF

    if sys.argv[1:2] == ["training-item-once"] and len(sys.argv) == 4:  # the cache given by its caller
        _training_item_once(sys.argv[2], sys.argv[3])
        sys.exit(0)
    # The staff data cache stays out of every figure but bench_training_item_cached's, which gives its children
    # their own folder: the others measure reading the data as before, and no temporary data fills ~/.cache.
    os.environ[CACHE_VARIABLE] = OFF
    if sys.argv[1:] == ["trusted-one-core"]:
        _trusted_one_core()
        sys.exit(0)
    if sys.argv[1:2] == ["trusted-one-core-2023"] and len(sys.argv) == 3:
        _trusted_one_core_2023(sys.argv[2])
        sys.exit(0)
    if sys.argv[1:] == ["training-item-cached"]:  # this part alone
        bench_training_item_cached()
        sys.exit(0)
    if sys.argv[1:] == ["trusted-2023"]:  # this part alone
        bench_trusted_evaluation_2023()
        sys.exit(0)
    if sys.argv[1:] == ["training-figures"]:
        _training_figures()
        sys.exit(0)
    if sys.argv[1:] == ["training"]:  # this part alone, and PyTorch's beside it
        bench_torch(bench_training(), np.random.default_rng(0))
        sys.exit(0)
    if sys.argv[1:]:  # some parts alone, by name: `python benchmarks/run.py grading_process batch`
        parts = [globals().get(f"bench_{name}") for name in sys.argv[1:]]
        if None in parts or not all(callable(part) for part in parts):
            sys.exit("parts: " + " ".join(sorted(name[6:] for name in globals() if name.startswith("bench_"))))
        for part in parts:
            part()
        sys.exit(0)
    sys.exit(main())

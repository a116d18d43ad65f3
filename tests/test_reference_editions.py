"""The 2023 reference solution: composed from the 2022 one and its overlay, its own lib (CIFAR-100 loader,
GELU, regularisation, weight decay, the 2023 training log), and its notebook run headless on synthetic
CIFAR-100 in a real Jupyter kernel."""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest
from conftest import REFERENCE, TEMPLATE

from autograder import REPO_ROOT
from autograder.edition import default_edition, get_edition
from autograder.staff import overlays
from autograder.staff.lib_loader import imported_lib
from autograder.staff.synthetic_cifar import write_synthetic_cifar100

EDITION = get_edition("2023")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return overlays.materialise(overlays.REFERENCE, EDITION, tmp_path_factory.mktemp("ref") / "reference_solution")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar100")
    write_synthetic_cifar100(folder, EDITION, train=300, test=40, seed=3)
    return folder


def test_the_2023_reference_shares_the_files_that_are_the_same_and_drops_the_2022_loader(reference):
    files = overlays.composed_files(overlays.REFERENCE, EDITION)
    overlay = overlays.overlay_dir(EDITION)
    # The layers students write are the same in both editions: one file, read from the 2022 reference.
    for shared in ("lib/cnn/layer_utils.py", "lib/grad_check.py", "collectSubmission.sh"):
        assert files[shared] == REFERENCE / shared
        assert not (overlay / overlays.REFERENCE / shared).exists()
    assert files["lib/datasets.py"] == overlay / overlays.REFERENCE / "lib/datasets.py"
    assert "lib/mlp/datasets.py" not in files and "get_datasets.sh" not in files
    # Every overlay file differs from the base file it replaces (or is new): nothing is copied unchanged.
    for kind in overlays.KINDS:
        for path in sorted((overlay / kind).rglob("*")):
            if path.is_file():
                base = REPO_ROOT / kind / path.relative_to(overlay / kind)
                assert not base.is_file() or base.read_bytes() != path.read_bytes(), path
    assert (reference / "collectSubmission.sh").stat().st_mode & 0o111  # modes survive composition
    assert sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*") if p.is_file()) == list(files)
    assert overlays.composed_files(overlays.REFERENCE, default_edition()) == \
        {p.relative_to(REFERENCE).as_posix(): p for p in sorted(REFERENCE.rglob("*"))
         if p.is_file() and "__pycache__" not in p.parts and "data" not in p.relative_to(REFERENCE).parts}


def test_a_removed_file_the_base_lacks_is_refused(tmp_path):
    for kind in overlays.KINDS:
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "a.py").write_text("x = 1\n")
    overlay = overlays.overlay_dir(EDITION, tmp_path)
    (overlay / overlays.REFERENCE).mkdir(parents=True)
    (overlay / overlays.REMOVED).write_text("b.py  # not in the base\n")
    with pytest.raises(overlays.OverlayError, match="b.py is not a file of reference_solution/"):
        overlays.composed_files(overlays.REFERENCE, EDITION, tmp_path)


def test_the_loader_reads_the_official_layout_and_standardises_each_channel(reference, cifar):
    with imported_lib(reference) as lib:
        data = lib.datasets.CIFAR100_data(str(cifar), 200, 100)
        raw_train = lib.datasets.CIFAR100(str(cifar))[0]
    assert list(data) == ["data_train", "labels_train", "data_val", "labels_val", "data_test", "labels_test",
                          "label_names", "mean_image", "std_image"]
    assert data["data_train"].shape == (200, 32, 32, 3) and data["data_val"].shape == (100, 32, 32, 3)
    assert data["data_test"].shape == (40, 32, 32, 3)
    assert data["label_names"] == list(EDITION.dataset.class_names)
    assert data["mean_image"].shape == data["std_image"].shape == (1, 1, 1, 3)
    # Channel-major rows: the first 1,024 values of a row are its red channel.
    import scipy.io
    row = scipy.io.loadmat(str(cifar / "train.mat"))["data"][5]
    assert np.array_equal(raw_train[5][:, :, 0].ravel(), row[:1024])
    assert np.allclose(data["data_train"].mean(axis=(0, 1, 2)), 0, atol=1e-4)
    assert np.allclose(data["data_train"].std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert set(data["labels_train"]) <= set(range(20)) and len(set(data["labels_train"])) == 20
    with imported_lib(reference) as lib, pytest.raises(ValueError, match="holds 300"):
        lib.datasets.CIFAR100_data(str(cifar), 250, 100)


def test_gelu_is_the_tanh_approximation_and_its_backward_matches_central_differences(reference):
    with imported_lib(reference) as lib:
        layer = lib.mlp_layers.gelu(name="g")
        x = np.linspace(-3, 3, 25)
        out = layer.forward(x)
        tanh = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))
        assert np.allclose(out, 0.5 * x * (1 + tanh), atol=1e-15)
        from math import erf
        exact = np.array([v * 0.5 * (1 + erf(v / np.sqrt(2))) for v in x])
        assert np.max(np.abs(out - exact)) < 1e-3  # close to x * Phi(x), not equal
        rng = np.random.default_rng(0)
        x, dout = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
        layer.forward(x)
        numeric = lib.grad_check.eval_numerical_gradient_array(lambda v: layer.forward(v), x.copy(), dout)
        layer.forward(x)
        assert lib.grad_check.rel_error(numeric, layer.backward(dout)) < 1e-7


def test_regularisation_weight_decay_and_the_networks_of_the_2023_edition(reference):
    with imported_lib(reference) as lib:
        np.random.seed(0)
        model = lib.fully_conn.TestFCGeLU()
        x, dout = np.random.randn(3, 5, 3), np.random.randn(3, 5)
        w = model.net.get_params("fc1_w")
        grads = {}
        for mode, lam in (("none", 0.0), ("l1", 0.1), ("l2", 0.1)):
            model.forward(x)
            model.backward(dout, regularization=mode, reg_lambda=lam)
            grads[mode] = model.net.get_grads("fc1_w").copy()
            assert np.array_equal(model.net.layers[1].grads["fc1_w"], grads[mode])  # the layer's and the net's
        assert np.allclose(grads["l1"], grads["none"] + 0.1 * np.sign(w))
        assert np.allclose(grads["l2"], grads["none"] + 2 * 0.1 * w)
        model.forward(x)
        with pytest.raises(NotImplementedError):
            model.backward(dout, regularization="l3")

        before = w.copy()
        model.forward(x)
        model.backward(dout)
        grad = model.net.get_grads("fc1_w").copy()
        lib.optim.SGD(model.net, lr=0.1, weight_decay=0.01).step()
        assert np.allclose(model.net.layers[1].params["fc1_w"], before - 0.1 * grad - 0.01 * before)
        assert not hasattr(lib.optim, "SGDM") and not hasattr(lib.optim, "RMSProp")
        adam = lib.optim.Adam(model.net, lr=1e-3, weight_decay=0.0)
        assert adam.eps == 1e-8 and adam.weight_decay == 0.0
        lib.mlp_layers.reset_seed(5)
        first = np.random.rand()
        lib.mlp_layers.reset_seed(5)
        assert np.random.rand() == first

        net = lib.cnn_models.SmallConvolutionalNetwork()
        assert net.forward(np.zeros((2, 32, 32, 3)), False).shape == (2, EDITION.dataset.classes)
        assert any(isinstance(layer, lib.mlp_layers.gelu) for layer in net.net.layers)
        assert lib.cnn_models.TestCNN().forward(np.zeros((4, 8, 8, 3))).shape == (4, 5)
        assert lib.train.DataLoader and not hasattr(lib.train, "SVHN_DataLoader")


def test_the_2023_log_line_is_the_mean_of_the_last_show_every_losses(reference, capsys):
    with imported_lib(reference) as lib:
        rng = np.random.default_rng(1)
        data = {"data_train": (rng.normal(size=(40, 4)), rng.integers(0, 7, 40)),
                "data_val": (rng.normal(size=(10, 4)), rng.integers(0, 7, 10))}
        np.random.seed(2)
        model = lib.fully_conn.SmallFullyConnectedNetwork()
        _, loss_hist, train_acc, val_acc = lib.train.train_net(
            data, model, lib.mlp_layers.cross_entropy(), lib.optim.SGD(model.net, 1e-2), 4, 2, show_every=3,
            verbose=True, regularization="l2", reg_lambda=1e-3)
    printed = capsys.readouterr().out
    lines = re.findall(EDITION.training.iteration_line, printed)
    assert [int(i) for i, _, _ in lines] == [1, 4, 7, 10, 13, 16, 19]
    assert all(total == "20" for _, total, _ in lines)
    assert float(lines[2][2]) == pytest.approx(np.mean(loss_hist[4:7]))  # iteration 7: the losses of 5, 6 and 7
    assert float(lines[0][2]) == pytest.approx(loss_hist[0])
    assert len(re.findall(EDITION.training.epoch_line, printed)) == 2 and len(val_acc) == len(train_acc) == 2
    assert ") loss:" not in printed  # not the 2022 line


def test_the_notebook_has_the_2023_handouts_cells(reference):
    notebook = nbformat.read(str(reference / "Problem_2.ipynb"), as_version=4)
    assert len(notebook.cells) == 30
    sources = [cell.source for cell in notebook.cells]
    question = next(i for i, s in enumerate(sources) if s.startswith("#### Inline Question"))
    assert sources[question + 1].startswith("## Extra-Credit: Analysis on Trained Model [5pts]")
    assert "inline-answer" in notebook.cells[question + 2].metadata.get("tags", [])
    assert notebook.cells[question + 2].cell_type == "markdown" and question + 2 == 27
    assert sources[question + 3].startswith("# Submission")
    data_cell = next(s for s in sources if "CIFAR100_data(" in s)
    assert "'data/cifar100/'" in data_cell and "SVHN" not in "".join(sources)
    assert "40% validation accuracy" in "".join(sources)
    assert EDITION.training.weights_file in "".join(sources)
    template = nbformat.read(str(overlays.edition_folder(overlays.TEMPLATE, EDITION) / "Problem_2.ipynb"),
                             as_version=4)
    assert template.cells[27].source == "" and len(template.cells) == 30
    assert "filters =" not in next(c.source for c in template.cells
                                   if "filter-visualization" in c.metadata.get("tags", []))
    assert TEMPLATE.is_dir()


@pytest.mark.slow
def test_the_2023_reference_notebook_runs_headless_on_synthetic_cifar100(tmp_path):
    """A real kernel runs the whole reference notebook, shortened as a smoke run is: one epoch on 2,000
    synthetic images, validated on the next 500. The log has the 2023 lines, the weights are saved, and the
    logged validation accuracy is above the edition's target."""
    from nbclient import NotebookClient
    folder = overlays.materialise(overlays.REFERENCE, EDITION, tmp_path / "run")
    write_synthetic_cifar100(folder / EDITION.dataset.folder, EDITION, train=2500, test=100, seed=11)
    notebook = nbformat.read(str(folder / "Problem_2.ipynb"), as_version=4)
    parameters = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    override = nbformat.v4.new_code_cell("EPOCHS = 1\nNUM_TRAINING = 2000\nNUM_VALIDATION = 500\nSHOW_EVERY = 25")
    notebook.cells.insert(parameters + 1, override)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    training = next(c for c in notebook.cells if "training-run" in c.metadata.get("tags", []))
    log = "".join(o.get("text", "") for o in training.outputs if o.get("output_type") == "stream")
    iterations = [int(m.group("iteration")) for m in re.finditer(EDITION.training.iteration_line, log)]
    assert iterations == [1, 26, 51, 76, 101]  # 125 iterations of batch 16
    epochs = list(re.finditer(EDITION.training.epoch_line, log))
    assert len(epochs) == 1
    validation = float(epochs[0].group("val"))
    assert validation > EDITION.training.target, log
    weights = np.load(folder / EDITION.training.weights_file)
    assert weights["fc2_w"].shape == (100, EDITION.dataset.classes) and "conv1_w" in weights
    # The saved weights give the logged accuracy on the same validation rows.
    with imported_lib(folder) as lib:
        data = lib.datasets.CIFAR100_data(str(folder / EDITION.dataset.folder), 2000, 500)
        model = lib.cnn_models.SmallConvolutionalNetwork()
        model.net.load({name: weights[name] for name in weights.files})
        verified = lib.train.compute_acc(model, data["data_val"], data["labels_val"])
    assert verified == pytest.approx(validation)
    figures = [c for c in notebook.cells
               if {"training-curves", "filter-visualization"} & set(c.metadata.get("tags", []))]
    assert all(any("image/png" in o.get("data", {}) for o in c.outputs) for c in figures)

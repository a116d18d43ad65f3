"""A 2023-style (CIFAR-100) submission and notebook, built in test code for the training log's tests.

The 2023 reference solution is written elsewhere; these tests need only what the 2023 handout's training
log depends on, so they build it here from the 2022 reference's layers: a `lib/datasets.py` with
`CIFAR100_data` (channel-standardised, labels as stored), a `train_net` that wraps its loop in tqdm,
takes `regularization=` / `reg_lambda=` and prints `(Iteration i / N) Average loss: x` (the mean of the
last `show_every` losses), and a SmallConvolutionalNetwork with 20 outputs. The notebook's cells follow
the 2023 handout's order (imports, data, check cells, training); executed with nbclient, its training cell
holds what a real 2023 notebook holds: stdout lines and tqdm's carriage-return progress on stderr.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from submissions import make_submission

DATASETS = '''\
import os

import numpy as np
from scipy.io import loadmat


def CIFAR100_data(data_dir, num_training=40000, num_validation=10000):
    """CIFAR-100's 20 superclasses: validation rows right after the training rows, standardised per
    channel with the training rows' mean and std."""
    def read(name):
        table = loadmat(os.path.join(data_dir, name))
        images = table["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255
        return images, table["coarse_labels"].flatten()

    train, train_labels = read("train.mat")
    test, test_labels = read("test.mat")
    names = [str(entry[0][0]) for entry in loadmat(os.path.join(data_dir, "meta.mat"))["coarse_label_names"]]
    val = train[num_training:num_training + num_validation]
    val_labels = train_labels[num_training:num_training + num_validation]
    train, train_labels = train[:num_training], train_labels[:num_training]
    mean = train.mean(axis=(0, 1, 2), keepdims=True)
    std = train.std(axis=(0, 1, 2), keepdims=True)
    return {"data_train": (train - mean) / std, "labels_train": train_labels,
            "data_val": (val - mean) / std, "labels_val": val_labels,
            "data_test": (test - mean) / std, "labels_test": test_labels,
            "label_names": names, "mean_image": mean, "std_image": std}
'''

# Appended to the reference's lib/mlp/train.py: the later definitions win.
TRAIN_NET = '''
from tqdm import tqdm

DataLoader = SVHN_DataLoader


def _regularise(model, regularization, reg_lambda):
    if regularization == "none":
        return
    for layer in model.net.layers:
        for name, value in layer.params.items():
            if name.endswith("_w"):
                extra = np.sign(value) if regularization == "l1" else value
                layer.grads[name] = layer.grads[name] + reg_lambda * extra


def train_net(data, model, loss_func, optimizer, batch_size, max_epochs,
              lr_decay=1.0, lr_decay_every=1000, show_every=10, verbose=False,
              regularization="none", reg_lambda=0.0):
    data_train, labels_train = data["data_train"]
    data_val, labels_val = data["data_val"]
    loader = DataLoader(data_train, labels_train, batch_size)
    best, opt_params = 0.0, None
    loss_hist, train_acc_hist, val_acc_hist = [], [], []
    per_epoch = int(max(data_train.shape[0] / batch_size, 1))
    total = per_epoch * max_epochs
    for epoch in range(max_epochs):
        if epoch % lr_decay_every == 0 and epoch > 0:
            optimizer.lr = optimizer.lr * lr_decay
            print("Decaying learning rate of the optimizer to {}".format(optimizer.lr))
        for it in tqdm(range(epoch * per_epoch, (epoch + 1) * per_epoch)):
            batch, labels = loader.get_batch()
            loss = loss_func.forward(model.forward(batch), labels)
            model.backward(loss_func.backward())
            _regularise(model, regularization, reg_lambda)
            optimizer.step()
            loss_hist.append(loss)
            if verbose and it % show_every == 0:
                recent = loss_hist[-show_every:]
                print("(Iteration {} / {}) Average loss: {}".format(it + 1, total, sum(recent) / len(recent)))
        accuracies = (compute_acc(model, data_train, labels_train, num_samples=TRAIN_ACC_SAMPLES),
                      compute_acc(model, data_val, labels_val))
        for history, value in zip((train_acc_hist, val_acc_hist), accuracies):
            history.append(value)
        if accuracies[1] > best:
            best, opt_params = accuracies[1], _snapshot(model)
        if verbose:
            print("(Epoch {} / {}) Training Accuracy: {}, Validation Accuracy: {}".format(epoch + 1, max_epochs,
                                                                                          *accuracies))
    return opt_params, loss_hist, train_acc_hist, val_acc_hist


def _snapshot(model):
    model.net.gather_params()
    return {name: value.copy() for name, value in model.net.params.items()}
'''

IMPORTS = """\
from lib.mlp.fully_conn import *
from lib.mlp.layer_utils import *
from lib.mlp.train import *
from lib.cnn.layer_utils import *
from lib.cnn.cnn_models import *
from lib.datasets import *
from lib.optim import *
import numpy as np
import matplotlib
matplotlib.use("Agg")
"""


def training_source(show_every: int = 4000, epochs: int = 2, lr: str = "1e-3", seed: int = 123,
                    regularization: str = "none", reg_lambda: float = 0.01) -> str:
    """The 2023 handout's training cell with these settings (its defaults: Adam 1e-3, batch 10)."""
    return (f"seed = {seed}\nnp.random.seed(seed=seed)\n\nmodel = SmallConvolutionalNetwork()\n"
            f"loss_f = cross_entropy()\n\nresults = None\noptimizer = Adam(model.net, {lr})\n\nbatch_size = 10\n"
            f"epochs = {epochs}\nlr_decay = .999\nlr_decay_every = 10\nregularization = {regularization!r}\n"
            f"reg_lambda = {reg_lambda}\n"
            "results = train_net(data_dict, model, loss_f, optimizer, batch_size, epochs,\n"
            f"                    lr_decay, lr_decay_every, show_every={show_every}, verbose=True, "
            "regularization=regularization, reg_lambda=reg_lambda)\n"
            "opt_params, loss_hist, train_acc_hist, val_acc_hist = results\n")


def cifar_notebook(rows: tuple[int, int] = (400, 100), **training) -> nbformat.NotebookNode:
    """A 2023-style Problem 2 notebook, untagged as the handout's is; `rows`: the (training, validation)
    rows its data cell asks CIFAR100_data for."""
    markdown, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(cells=[
        markdown("# Problem 2: Incorporating CNNs"),
        code(IMPORTS),
        markdown("## Loading the data (CIFAR-100 with 20 superclasses)"),
        code(f"data = CIFAR100_data('data/cifar100/', num_training={rows[0]}, num_validation={rows[1]})\n"
             "for k, v in data.items():\n    if type(v) == np.ndarray:\n"
             "        print('Name: {} Shape: {}, {}'.format(k, v.shape, type(v)))\n"
             "    else:\n        print('{}: {}'.format(k, v))"),
        markdown("### Training the Network [25pts]\nTry to achieve 40% validation accuracy on CIFAR-100."),
        code('data_dict = {\n    "data_train": (data["data_train"], data["labels_train"]),\n'
             '    "data_val": (data["data_val"], data["labels_val"]),\n'
             '    "data_test": (data["data_test"], data["labels_test"])\n}'),
        code(training_source(**training)),
        markdown("### Visualizing Layers [5pts]"),
        markdown("#### Inline Question: Comment below on what kinds of filters you see. [5pts]"),
        markdown("## Extra-Credit: Analysis on Trained Model [5pts]"),
        markdown(""),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def cifar_submission(folder: Path, notebook: nbformat.NotebookNode | None = None) -> Path:
    """The 2022 reference's layers as a 2023-style submission (see the module's docstring)."""
    make_submission(folder, [("lib/cnn/cnn_models.py", "fc(100, 10,", "fc(100, 20,")],
                    append={"lib/mlp/train.py": TRAIN_NET})
    (folder / "lib" / "datasets.py").write_text(DATASETS)
    for name in ("Problem_2.ipynb", "get_datasets.sh", "lib/mlp/datasets.py"):
        (folder / name).unlink(missing_ok=True)
    nbformat.write(notebook or cifar_notebook(), str(folder / "Problem_2.ipynb"))
    return folder

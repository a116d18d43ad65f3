"""train_net's contract and the reference network's shape, on small random data."""

from __future__ import annotations

import re

import numpy as np

EPOCH_LINE = re.compile(r"^\(Epoch (\d+) / (\d+)\) Training Accuracy: ([0-9.]+), Validation Accuracy: ([0-9.]+)$")


def test_small_network_obeys_the_architecture_rule(ref):
    model = ref.cnn_models.SmallConvolutionalNetwork()
    kinds = [type(layer).__name__ for layer in model.net.layers]
    assert 1 <= kinds.count("ConvLayer2D") <= 2
    assert kinds.count("MaxPoolingLayer") <= 2
    out = model.forward(np.zeros((2, 32, 32, 3), dtype=np.float32), False)
    assert out.shape == (2, 10)


def test_train_net_learns_and_prints_the_handouts_lines(ref, capsys):
    """Two separable classes of 32x32 images: the reference net must learn them in two epochs."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=300)
    images = rng.standard_normal((300, 32, 32, 3)).astype(np.float32) * 0.1
    images[labels == 1, 8:24, 8:24, :] += 1.0  # class 1: a bright square in the middle
    data = {"data_train": (images[:240], labels[:240]), "data_val": (images[240:], labels[240:]),
            "data_test": (images[240:], labels[240:])}
    np.random.seed(123)
    model = ref.cnn_models.SmallConvolutionalNetwork()
    optimizer = ref.optim.Adam(model.net, 1e-3)
    opt_params, loss_hist, train_acc, val_acc = ref.train.train_net(
        data, model, ref.mlp_layers.cross_entropy(), optimizer, 20, 2, lr_decay=0.5, lr_decay_every=1,
        show_every=5, verbose=True)
    printed = capsys.readouterr().out.splitlines()
    assert len(loss_hist) == 24 and len(train_acc) == len(val_acc) == 2
    epochs = [EPOCH_LINE.match(line) for line in printed if line.startswith("(Epoch")]
    assert [m.group(1, 2) for m in epochs] == [("1", "2"), ("2", "2")]
    assert "Decaying learning rate of the optimizer to 0.0005" in printed
    assert printed[0] == f"(Iteration 1 / 24) loss: {loss_hist[0]}"
    assert max(val_acc) >= 0.9
    assert loss_hist[-1] < loss_hist[0]
    # opt_params is a snapshot of the best epoch, not an alias of the live model.
    assert set(opt_params) == set(model.net.params)
    assert all(opt_params[name] is not model.net.params[name] for name in opt_params)

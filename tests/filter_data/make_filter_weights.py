"""Regenerate filter_weights.npz: first-layer filters of the reference network, for the filter-match tests.

For each seed: the reference SmallConvolutionalNetwork's conv1_w as initialised (`init_<seed>`) and after
a short training on synthetic SVHN (`trained_<seed>`), and the first seed's trained conv2_w (`conv2_<seed>`) for the
"wrong layer" case. Trained filters are the hard case: smoother and more alike than random ones.
Also 5x5 filters (`init5_<seed>`, `trained5_<seed>`) of a variant whose first layer has 5x5 kernels,
the other common shape. Run from the repository root:

    python tests/filter_data/make_filter_weights.py

It takes a few minutes on one core; the arrays it writes are small (a few kB).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.io

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from autograder.staff.lib_loader import imported_lib  # noqa: E402
from autograder.staff.synthetic import write_synthetic_svhn  # noqa: E402

SEEDS = (1, 2, 3)
TRAIN_IMAGES = 3000
EPOCHS = 6
LEARNING_RATE = 3e-3  # higher than the handout's so that a short run moves the filters well away from their start
OUT = Path(__file__).with_name("filter_weights.npz")


def load(folder: Path) -> dict:
    """The synthetic split as the handout prepares it: (N, 32, 32, 3) floats centred on the mean."""
    raw = scipy.io.loadmat(str(folder / "train_32x32.mat"))
    images = np.moveaxis(raw["X"], -1, 0).astype(np.float32) / 255.0
    images -= images.mean(axis=0)
    labels = raw["y"].reshape(-1).astype(np.int64) % 10
    cut = int(len(labels) * 0.8)
    return {"data_train": (images[:cut], labels[:cut]), "data_val": (images[cut:], labels[cut:]),
            "data_test": (images[cut:], labels[cut:])}


def five_by_five(lib, seed: int):
    """The reference network with a 5x5 first layer (16 filters), the other common first layer."""
    np.random.seed(seed)
    model = lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)  # float64, as the stored weights were made
    layers = model.net.layers
    model.net.layers[0] = lib.cnn_layers.ConvLayer2D(3, 5, 16, stride=1, padding=2, init_scale=0.16, name="conv1")
    model.net.__init__(*layers)  # re-register the parameters of the new layer
    return model


def main() -> None:
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp, imported_lib(ROOT / "reference_solution") as lib:
        write_synthetic_svhn(Path(tmp), train=TRAIN_IMAGES, test=10, seed=7)
        data = load(Path(tmp))
        for seed in SEEDS:
            for tag, build in (("", lambda s: _reference(lib, s)), ("5", lambda s: five_by_five(lib, s))):
                model = build(seed)
                arrays[f"init{tag}_{seed}"] = np.array(model.net.get_params("conv1_w"), dtype=np.float32)
                optimizer = lib.optim.Adam(model.net, LEARNING_RATE)
                params, _, _, val = lib.train.train_net(data, model, lib.mlp_layers.cross_entropy(), optimizer, 32,
                                                        EPOCHS, show_every=10 ** 9, verbose=False)
                arrays[f"trained{tag}_{seed}"] = np.asarray(params["conv1_w"], dtype=np.float32)
                if not tag and seed == SEEDS[0]:
                    arrays[f"conv2_{seed}"] = np.asarray(params["conv2_w"], dtype=np.float32)
                print(f"seed {seed} {tag or '3'}x: validation accuracy {max(val):.3f}", flush=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT.name}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}")


def _reference(lib, seed: int):
    np.random.seed(seed)
    return lib.cnn_models.SmallConvolutionalNetwork(dtype=np.float64)  # float64, as the stored weights were made


if __name__ == "__main__":
    main()

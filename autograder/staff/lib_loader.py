"""Import an assignment folder's `lib/` into this process, then forget it again.

Only for trusted code (the reference solution, the template in tests): student code is
imported in the worker process, never here. `lib` is an implicit namespace package whose
modules star-import each other, so the folder must be first on sys.path and any `lib*`
modules of a previous folder must be dropped before and after.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

#: The data loader is imported from where the folder's edition keeps it (see `_datasets_module`).
MODULES = {
    "grad_check": "lib.grad_check",
    "optim": "lib.optim",
    "datasets": "lib.mlp.datasets",
    "mlp_layers": "lib.mlp.layer_utils",
    "fully_conn": "lib.mlp.fully_conn",
    "train": "lib.mlp.train",
    "cnn_layers": "lib.cnn.layer_utils",
    "cnn_models": "lib.cnn.cnn_models",
}


def forget_lib() -> None:
    """Drop every cached `lib` module so that the next import reads a fresh folder."""
    for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
        del sys.modules[name]


def _datasets_module(root: Path) -> str:
    """The loader module of the edition whose loader file `root` holds (2022: lib.mlp.datasets, 2023:
    lib.datasets); the default edition's when it holds none of them."""
    from autograder.edition import default_edition, editions
    for edition in editions():
        if (root / edition.dataset.loader_file).is_file():
            return edition.dataset.loader_module
    return default_edition().dataset.loader_module


@contextmanager
def imported_lib(root: Path) -> Iterator[SimpleNamespace]:
    """The modules of `root/lib` by short name (see MODULES), importable only inside the block."""
    if not (Path(root) / "lib").is_dir():
        raise FileNotFoundError(f"{root}: no lib/ folder")
    saved_path = list(sys.path)
    forget_lib()
    sys.path.insert(0, str(Path(root).resolve()))
    try:
        modules = dict(MODULES, datasets=_datasets_module(Path(root)))
        yield SimpleNamespace(**{short: importlib.import_module(full) for short, full in modules.items()})
    finally:
        sys.path[:] = saved_path
        forget_lib()

"""Filter images as students draw them, rendered with real matplotlib (Agg) the way a notebook saves
them (PNG, bbox_inches="tight"), for the filter-match tests and the measurement in the README.

Weights come from tests/filter_data/filter_weights.npz (the reference network's first layer, several
seeds, initialised and trained; see make_filter_weights.py there).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

WEIGHTS = Path(__file__).with_name("filter_data") / "filter_weights.npz"


def weights(name: str) -> np.ndarray:
    """One stored first-layer array, (K, K, C, F)."""
    with np.load(WEIGHTS) as stored:
        return np.array(stored[name], dtype=np.float64)


def _png(figure, dpi: float) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _scaled(filters: np.ndarray, per_filter: bool) -> np.ndarray:
    """Min-max to 0..1, per filter or over all of them, as students do."""
    axes = (0, 1, 2) if per_filter else None
    low = filters.min(axis=axes, keepdims=True)
    high = filters.max(axis=axes, keepdims=True)
    return (filters - low) / np.maximum(high - low, 1e-12)


def grid_image(filters: np.ndarray, rows: int, columns: int, gap: int = 1, gap_value: float = 1.0,
               per_filter: bool = True, transpose: bool = False) -> np.ndarray:
    """The handout's im_array: tiles in a rows x columns grid with `gap` pixels of `gap_value` around them."""
    kernel, _, _, count = filters.shape
    tiles = _scaled(filters, per_filter)
    if transpose:
        tiles = tiles.transpose(1, 0, 2, 3)
    image = np.full((rows * (kernel + gap) + gap, columns * (kernel + gap) + gap, 3), gap_value, dtype=np.float64)
    for index in range(count):
        r, c = divmod(index, columns)
        top, left = gap + r * (kernel + gap), gap + c * (kernel + gap)
        image[top:top + kernel, left:left + kernel] = tiles[:, :, :, index]
    return image


def handout(filters: np.ndarray, rows: int, columns: int, *, gap: int = 1, gap_value: float = 1.0,
            per_filter: bool = True, axis: bool = False, figsize=(6.4, 4.8), dpi: float = 100, upscale: int = 1,
            interpolation: str | None = None, colorbar: bool = False, title: str = "",
            transpose: bool = False) -> bytes:
    """The handout's way: im_array tiled, optionally upscaled with np.kron, then plt.imshow(im_array)."""
    image = grid_image(filters, rows, columns, gap, gap_value, per_filter, transpose)
    if upscale > 1:
        image = np.kron(image, np.ones((upscale, upscale, 1)))
    figure = plt.figure(figsize=figsize)
    shown = plt.imshow(image, interpolation=interpolation)
    if not axis:
        plt.axis("off")
    if colorbar:
        plt.colorbar(shown)
    if title:
        plt.title(title)
    return _png(figure, dpi)


def subplots(filters: np.ndarray, rows: int, columns: int, *, per_filter: bool = True, axis: bool = True,
             titles: bool = True, colorbar: bool = False, figsize=(8, 8), dpi: float = 100,
             facecolor: str = "white", interpolation: str | None = None) -> bytes:
    """One axes per filter, with ticks and a title each (and a colorbar), as many students draw them."""
    tiles = _scaled(filters, per_filter)
    figure, axes = plt.subplots(rows, columns, figsize=figsize, facecolor=facecolor)
    for index, ax in enumerate(np.ravel(axes)):
        if index >= filters.shape[3]:
            ax.axis("off")
            continue
        shown = ax.imshow(tiles[:, :, :, index], interpolation=interpolation)
        if titles:
            ax.set_title(f"filter {index}", fontsize=8)
        if not axis:
            ax.axis("off")
        if colorbar:
            figure.colorbar(shown, ax=ax)
    figure.tight_layout()
    return _png(figure, dpi)


def channel_sum(filters: np.ndarray, rows: int, columns: int, cmap: str = "viridis", figsize=(8, 8),
                dpi: float = 100, axis: bool = False, interpolation: str | None = None) -> bytes:
    """Each filter summed over its input channels, drawn with a colormap, one axes per filter. Without
    axes and in a grey colormap, a tile's extreme blocks have the figure's own white."""
    figure, axes = plt.subplots(rows, columns, figsize=figsize)
    for index, ax in enumerate(np.ravel(axes)):
        if not axis:
            ax.axis("off")
        if index < filters.shape[3]:
            ax.imshow(filters[:, :, :, index].sum(axis=2), cmap=cmap, interpolation=interpolation)
    return _png(figure, dpi)


def per_channel(filters: np.ndarray, cmap: str = "gray", figsize=(12, 10), dpi: float = 100) -> bytes:
    """Three grey axes per filter (its R, G and B weights), filters side by side, four to a row."""
    count = filters.shape[3]
    columns = 12
    rows = math.ceil(3 * count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=figsize)
    flat = np.ravel(axes)
    for ax in flat:
        ax.axis("off")
    for index in range(count):
        for channel in range(3):
            flat[3 * index + channel].imshow(filters[:, :, channel, index], cmap=cmap)
    return _png(figure, dpi)


def curves(seed: int = 0, figsize=(15, 12), dpi: float = 100) -> bytes:
    """The training-curves figure of the handout's cell: loss, then training and validation accuracy."""
    rng = np.random.default_rng(seed)
    loss = 2.3 * np.exp(-np.linspace(0, 3, 60)) + rng.uniform(0, 0.2, 60)
    figure = plt.figure(figsize=figsize)
    plt.subplot(2, 1, 1)
    plt.title("Training loss")
    plt.plot(loss, "-o")
    plt.xlabel("Iteration")
    plt.subplot(2, 1, 2)
    plt.title("Accuracy")
    plt.plot(np.linspace(0.3, 0.9, 10) + rng.uniform(0, 0.02, 10), "-o", label="Training")
    plt.plot(np.linspace(0.3, 0.8, 10) + rng.uniform(0, 0.02, 10), "-o", label="Validation")
    plt.xlabel("Epoch")
    plt.legend(loc="lower right")
    return _png(figure, dpi)


def noise(seed: int = 0, size=(17, 17), figsize=(6.4, 4.8), dpi: float = 100) -> bytes:
    """Random colours drawn as if they were the filter grid."""
    figure = plt.figure(figsize=figsize)
    plt.imshow(np.random.default_rng(seed).uniform(0, 1, (*size, 3)))
    plt.axis("off")
    return _png(figure, dpi)


def empty_grid(rows: int = 4, columns: int = 4, dpi: float = 100) -> bytes:
    """A grid of axes with nothing drawn in them."""
    figure, _ = plt.subplots(rows, columns, figsize=(8, 8))
    return _png(figure, dpi)


def layouts(filters: np.ndarray) -> dict[str, bytes]:
    """The filters (16 of them) in every layout the filter match must read."""
    return {
        "handout 2x8, white gaps, no axes": handout(filters, 2, 8),
        "handout 4x4, white gaps, axes, dpi 72": handout(filters, 4, 4, axis=True, dpi=72),
        "handout 1x16, black gaps, global min-max": handout(filters, 1, 16, gap_value=0.0, per_filter=False,
                                                            figsize=(12, 2)),
        "handout 8x2, no gaps, axes": handout(filters, 8, 2, gap=0, axis=True),
        "handout 4x4, no gaps, kron x40, shrunk by imshow": handout(filters, 4, 4, gap=0, upscale=40,
                                                                    figsize=(3, 3)),
        "handout 4x4, black gaps, title, colorbar": handout(filters, 4, 4, gap_value=0.0, axis=True, colorbar=True,
                                                            title="conv1 filters"),
        "handout 4x4, two-pixel gaps, dpi 200, small figure": handout(filters, 4, 4, gap=2, figsize=(3, 3), dpi=200),
        "handout 4x4, transposed tiles": handout(filters, 4, 4, transpose=True),
        "subplots 4x4, axes and titles": subplots(filters, 4, 4),
        "subplots 2x8, no axes, global min-max, wide": subplots(filters, 2, 8, per_filter=False, axis=False,
                                                                titles=False, figsize=(12, 3)),
        "subplots 4x4, titles, colorbars, black face": subplots(filters, 4, 4, colorbar=True, facecolor="black",
                                                                figsize=(10, 8)),
        "channel sum, viridis, 4x4": channel_sum(filters, 4, 4),
        "channel sum, gray, 2x8, no axes": channel_sum(filters, 2, 8, cmap="gray", figsize=(10, 3)),
        "channel sum, Greys, 2x8, no axes": channel_sum(filters, 2, 8, cmap="Greys", figsize=(10, 3)),
        "channel sum, gray_r, 4x4, no axes": channel_sum(filters, 4, 4, cmap="gray_r"),
        "channel sum, Greys, 4x4, axes": channel_sum(filters, 4, 4, cmap="Greys", axis=True),
        "handout 4x4, interpolation bilinear": handout(filters, 4, 4, interpolation="bilinear"),
        "handout 2x8, bilinear, axes, two-pixel gaps": handout(filters, 2, 8, gap=2, axis=True,
                                                              interpolation="bilinear"),
        "subplots 4x4, bilinear, no axes": subplots(filters, 4, 4, axis=False, titles=False,
                                                    interpolation="bilinear"),
        "per channel, grey, 16x3": per_channel(filters),
    }


def show_filters(submission: Path, png: bytes, first_layer: np.ndarray | None, name: str = "conv1_w") -> Path:
    """Make `submission`'s filter cell show `png` (its only output) and, with `first_layer`, save the
    weights file holding it as the first conv layer's weights, as a student's notebook would."""
    import base64

    import nbformat

    path = submission / "Problem_2.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "im_array" in c.source)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode()})]
    nbformat.write(notebook, str(path))
    if first_layer is not None:
        np.savez(submission / "svhn_cnn_params.npz", **{name: first_layer.astype(np.float32)})
    return submission

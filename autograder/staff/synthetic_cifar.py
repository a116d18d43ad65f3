"""Synthetic CIFAR-100: small scenes rendered offline, in the official Matlab layout (the 2023 edition).

The real CIFAR-100 files cannot be downloaded here, so the demo, the tests and staff without the data use
these. Each 32x32 image shows one or two shapes of its superclass (a shape and a colour family per class:
20 classes from 5 shapes x 4 palettes) on a shaded background of varied colour, shifted, scaled, rotated,
blurred and noisy: learnable by a small CNN, not by one pixel. Files, as the official ones:

- `train.mat`, `test.mat`: `data` uint8 (N, 3072) in channel-major order (1024 red, then green, then blue
  values, each row by row), `coarse_labels` and `fine_labels` uint8 (N, 1), `filenames`, `batch_label`;
- `meta.mat`: `coarse_label_names` (20 names) and `fine_label_names` (100), cell arrays of strings.

Every superclass appears in every split that has at least 20 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, ImageDraw, ImageFilter

from autograder.edition import Edition

_CANVAS = 64  # drawn at twice the size, then shrunk to 32x32 (smooth edges, like a photograph)
_SHAPES = ("disc", "square", "triangle", "stripes", "ring")
# Palettes: a base hue for the shape, varied per image.
_PALETTES = ((200, 50, 40), (40, 160, 60), (50, 80, 200), (220, 190, 40))
FINE_PER_COARSE = 5


def _jitter(colour: tuple[int, int, int], rng: np.random.Generator, spread: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, spread), 0, 255)) for c in colour)


def render(label: int, rng: np.random.Generator) -> np.ndarray:
    """One (32, 32, 3) uint8 image of superclass `label` (0..19)."""
    shape, palette = _SHAPES[label % len(_SHAPES)], _PALETTES[label // len(_SHAPES)]
    background = tuple(int(v) for v in rng.integers(60, 200, size=3))
    image = Image.new("RGB", (_CANVAS, _CANVAS), background)
    shade = np.linspace(-1, 1, _CANVAS)[:, None, None] * rng.uniform(-30, 30)
    image = Image.fromarray(np.clip(np.asarray(image, np.float32) + shade, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(1 + int(rng.random() < 0.3)):
        size = rng.uniform(14, 24)
        cx, cy = rng.uniform(size, _CANVAS - size, size=2)
        box = (cx - size, cy - size, cx + size, cy + size)
        ink = _jitter(palette, rng, 25)
        if shape == "disc":
            draw.ellipse(box, fill=ink)
        elif shape == "square":
            draw.rectangle(box, fill=ink)
        elif shape == "triangle":
            draw.polygon([(cx, cy - size), (cx - size, cy + size), (cx + size, cy + size)], fill=ink)
        elif shape == "stripes":
            for offset in range(-3, 4, 2):
                y = cy + offset * size / 4
                draw.rectangle((cx - size, y - size / 8, cx + size, y + size / 8), fill=ink)
        else:
            draw.ellipse(box, outline=ink, width=max(3, int(size / 3)))
    image = image.rotate(rng.uniform(-20, 20), resample=Image.BILINEAR, fillcolor=background)
    image = image.resize((32, 32), Image.BILINEAR).filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    pixels = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(2, 8), size=(32, 32, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_split(count: int, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`data` (count, 3072) channel-major, coarse labels and fine labels (count, 1) uint8."""
    coarse = rng.permutation(np.arange(count) % classes)
    images = np.stack([render(int(label), rng) for label in coarse])  # (N, 32, 32, 3)
    data = images.transpose(0, 3, 1, 2).reshape(count, 3072)  # channel-major, as the official rows
    fine = coarse * FINE_PER_COARSE + rng.integers(0, FINE_PER_COARSE, size=count)
    return data, coarse.astype(np.uint8).reshape(-1, 1), fine.astype(np.uint8).reshape(-1, 1)


def _cell(names: list[str]) -> np.ndarray:
    """A Matlab cell array of strings, as the official meta.mat stores its names."""
    cell = np.empty((len(names), 1), dtype=object)
    for index, name in enumerate(names):
        cell[index, 0] = np.array([name])
    return cell


def write_synthetic_cifar100(folder: Path, edition: Edition, train: int = 6000, test: int = 1000,
                             seed: int = 0) -> dict[str, Path]:
    """Write the edition's train, test and meta files into `folder`; the same seed gives the same files."""
    classes = edition.dataset.classes
    if train < classes or test < classes:
        raise ValueError(f"synthetic {edition.dataset.name} needs at least {classes} images per split, "
                         "one of each superclass")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, count, name in (("train", train, edition.dataset.train_file), ("test", test, edition.dataset.test_file)):
        data, coarse, fine = make_split(count, classes, rng)
        filenames = np.empty((count, 1), dtype=object)
        for index in range(count):
            filenames[index, 0] = np.array([f"synthetic_{split}_{index:06d}.png"])
        path = folder / name
        scipy.io.savemat(str(path), {"data": data, "coarse_labels": coarse, "fine_labels": fine,
                                     "filenames": filenames, "batch_label": f"synthetic {split} batch"},
                         do_compression=False)
        written[split] = path
    fine_names = [f"{coarse}_{index}" for coarse in edition.dataset.class_names for index in range(FINE_PER_COARSE)]
    meta = folder / edition.dataset.meta_file
    scipy.io.savemat(str(meta), {"coarse_label_names": _cell(list(edition.dataset.class_names)),
                                 "fine_label_names": _cell(fine_names)}, do_compression=False)
    written["meta"] = meta
    return written

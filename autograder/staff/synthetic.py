"""Synthetic SVHN: house-number crops rendered offline, in the official .mat layout.

The real SVHN files cannot be downloaded here, so the demo, the tests and quick runs use
these. Each 32x32 image shows a centred digit with its neighbours cut at the edges, in one
of the fonts shipped with matplotlib, in varied colours on varied, shaded backgrounds, scaled,
shifted, slightly rotated, blurred and noisy. Files: `train_32x32.mat` and `test_32x32.mat`,
`X` uint8 (32, 32, 3, N) indexed [row, column, channel, image], `y` (N, 1) with labels 1..10
where 10 is the digit 0, as in the official files; every class appears.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import scipy.io
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from autograder.edition import Edition, default_edition

_FONT_DIR = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
_FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
          "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
          "STIXGeneral.ttf", "STIXGeneralBol.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf"]
_CANVAS = 96  # rendered large, then cropped and shrunk to 32x32 like a camera crop


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a digit colour that differ enough in brightness to be readable."""
    while True:
        # Photographed plates are muted: pull random colours part of the way towards grey.
        background, ink = [c.mean() + (c - c.mean()) * rng.uniform(0.15, 0.8)
                           for c in rng.integers(0, 256, size=(2, 3)).astype(np.float64)]
        if abs(background.mean() - ink.mean()) > 60:
            return background.astype(np.int64), ink.astype(np.int64)


def render_digit(digit: int, rng: np.random.Generator, fonts: list[ImageFont.FreeTypeFont]) -> np.ndarray:
    """One 32x32x3 uint8 image of `digit` (0-9) with cut-off neighbours."""
    background, ink = _colours(rng)
    image = Image.new("RGB", (_CANVAS, _CANVAS), tuple(int(v) for v in background))
    # A soft brightness gradient across the plate.
    shade = np.linspace(-1, 1, _CANVAS)[None, :, None] * rng.uniform(-40, 40)
    plate = np.clip(np.asarray(image, dtype=np.float32) + shade, 0, 255).astype(np.uint8)
    image = Image.fromarray(plate)
    draw = ImageDraw.Draw(image)
    font = fonts[int(rng.integers(len(fonts)))]
    size = font.size
    spacing = size * rng.uniform(0.55, 0.75)
    centre_x = _CANVAS / 2 + rng.uniform(-3, 3)
    centre_y = _CANVAS / 2 + rng.uniform(-3, 3)
    digits = [(int(rng.integers(10)), -1), (digit, 0), (int(rng.integers(10)), 1)]
    for value, offset in digits:
        if offset and rng.random() < 0.25:
            continue  # sometimes a single digit, as at the end of a number
        draw.text((centre_x + offset * spacing, centre_y), str(value), font=font,
                  fill=tuple(int(v) for v in ink), anchor="mm")
    image = image.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR, fillcolor=tuple(int(v) for v in background))
    crop = size * rng.uniform(0.9, 1.15)  # the digit fills most of the height, like SVHN's crops
    left, top = centre_x - crop / 2, centre_y - crop / 2
    image = image.crop((int(left), int(top), int(left + crop), int(top + crop))).resize((32, 32), Image.BILINEAR)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(2, 10), size=(32, 32, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _load_fonts(rng: np.random.Generator) -> list[ImageFont.FreeTypeFont]:
    return [ImageFont.truetype(str(_FONT_DIR / name), int(size)) for name in _FONTS for size in (44, 52)]


def make_split(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """X (32, 32, 3, count) uint8 and y (count, 1) uint8 in 1..10; classes as even as the count allows."""
    fonts = _load_fonts(rng)
    digits = rng.permutation(np.arange(count) % 10)
    images = np.stack([render_digit(int(d), rng, fonts) for d in digits], axis=-1)
    labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(count, 1)
    return images, labels


def write_synthetic_svhn(folder: Path, train: int = 6000, test: int = 1000, seed: int = 0,
                         edition: Edition | None = None) -> dict[str, Path]:
    """Write the edition's training and test files (2022: train_32x32.mat, test_32x32.mat) into `folder`;
    the same seed gives the same files."""
    dataset = (edition or default_edition()).dataset
    if dataset.format != "svhn-mat":
        raise ValueError(f"synthetic SVHN is the svhn-mat format; edition {dataset.name} is {dataset.format}")
    if train < 10 or test < 10:
        raise ValueError("synthetic SVHN needs at least 10 images per split, one of each class")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, count, name in (("train", train, dataset.train_file), ("test", test, dataset.test_file)):
        images, labels = make_split(count, rng)
        path = folder / name
        scipy.io.savemat(str(path), {"X": images, "y": labels}, do_compression=False)
        written[split] = path
    return written

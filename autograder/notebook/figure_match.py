"""Is this picture the same figure as that one, as a person would judge it on paper?

A student's PDF shows the notebook's figures in whatever way the student made it: printed from the
browser (the figure as the notebook has it), a screenshot (the figure inside a margin or a window's
chrome), a crop, a rescale, a transparent PNG drawn on the page. Comparing raw pixels accuses all of
these, so both pictures are first made what a viewer shows (`flatten`: transparency composited onto
white), their uniform margins trimmed, and then one is looked for inside the other at every scale
where it could cover at least [pdf_check] min_cover of it (normalised cross-correlation of blurred,
downsampled grey images, coarse then refined), besides the two compared whole. Where they line up,
what decides is the ink: the share of one picture's dark strokes with no stroke of the other nearby
(`ink_distance`). The same figure re-rendered, rescaled, cropped or re-encoded leaves almost none;
another training run's curves, in the same axes with the same titles, leave their curves.

The work per pair is bounded by the rubric's sizes (every search runs on images of at most
[pdf_check] search_size pixels a side, every refinement and comparison at most compare_size), and the
caller's `Deadline` is checked between steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.signal import fftconvolve

from autograder.deadlines import Deadline, unbounded


def flatten(picture: Image.Image) -> Image.Image:
    """RGB as a viewer shows the picture on a white page: alpha (RGBA, LA, a palette's or a colour's
    transparency, a PDF image's soft mask as pypdf returns it) composited onto white, never dropped
    (dropping it shows the colour under transparent pixels, often black)."""
    if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey: to 8 bits first
        values = np.asarray(picture, dtype=np.float64)
        top = values.max() if values.size and values.max() > 255 else 255.0
        return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8), "L").convert("RGB")
    return picture.convert("RGB")


@dataclass
class Figure:
    """A picture ready to be compared: grey, at most [pdf_check] analysis_size pixels a side, its uniform
    margins trimmed. `scale` is analysis pixels per pixel of the picture; `box` (top, bottom, left, right)
    is the trimmed part, in analysis pixels."""

    grey: np.ndarray
    scale: float
    box: tuple[int, int, int, int]
    trimmed: bool
    ink: int  # pixels darker than the background by [pdf_check] ink_strong, at the compared size
    source: tuple[int, int] = (0, 0)  # the picture's own width and height, in its pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.grey.shape[1], self.grey.shape[0]


def _resized(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    """`grey` at width x height: box-averaged when shrinking (thin lines fade evenly), bilinear when growing."""
    width, height = max(1, int(width)), max(1, int(height))
    if (height, width) == grey.shape:
        return grey
    shrink = width < grey.shape[1] or height < grey.shape[0]
    return np.asarray(Image.fromarray(grey).resize((width, height), Image.BOX if shrink else Image.BILINEAR),
                      dtype=np.float32)


def _trim(grey: np.ndarray, tolerance: float) -> tuple[int, int, int, int] | None:
    """The box inside uniform margins, margins inside margins too (a white figure margin inside a grey
    page margin); None for a picture of one colour."""
    box = (0, grey.shape[0], 0, grey.shape[1])
    for _ in range(4):
        top, bottom, left, right = box
        part = grey[top:bottom, left:right]
        ring = np.concatenate([part[0], part[-1], part[:, 0], part[:, -1]])
        content = np.abs(part - np.median(ring)) > tolerance
        rows, columns = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
        if not len(rows):
            return None if box == (0, grey.shape[0], 0, grey.shape[1]) else box
        inner = (top + int(rows[0]), top + int(rows[-1]) + 1, left + int(columns[0]), left + int(columns[-1]) + 1)
        if inner == box:
            break
        box = inner
    return box


def _ink(grey: np.ndarray, level: float) -> np.ndarray:
    """Pixels further than `level` from the picture's background (its median grey)."""
    return np.abs(grey - np.median(grey)) > level


def prepare(picture: Image.Image, limits: Mapping[str, Any]) -> Figure | None:
    """The picture as a `Figure`; None when it is of one colour (nothing to compare). A large picture is first
    reduced by a whole factor (box averaging, alpha with it), so that a 30 MP figure is never composited whole."""
    limit = float(limits["analysis_size"])
    source = picture.size
    reduced = int(max(picture.size) // limit) if picture.mode in ("RGB", "RGBA", "L", "LA") else 1
    if reduced >= 2:
        picture = picture.reduce(reduced)
    rgb = flatten(picture)
    scale = min(1.0, limit / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.BOX)
    grey = np.asarray(rgb.convert("L"), dtype=np.float32)
    box = _trim(grey, float(limits["margin_tolerance"]))
    if box is None:
        return None
    trimmed = grey[box[0]:box[1], box[2]:box[3]]
    shown = min(1.0, float(limits["compare_size"]) / max(trimmed.shape))
    ink = int(_ink(_resized(trimmed, round(trimmed.shape[1] * shown), round(trimmed.shape[0] * shown)),
                   float(limits["ink_strong"])).sum())
    return Figure(trimmed, scale / max(reduced, 1), box, box != (0, grey.shape[0], 0, grey.shape[1]), ink, source)


def judgeable(figure: Figure | None, limits: Mapping[str, Any]) -> bool:
    """Large enough and with enough strokes for a judgement ([pdf_check] min_side, min_ink)."""
    return figure is not None and min(figure.grey.shape) / figure.scale >= float(limits["min_side"]) \
        and figure.ink >= int(limits["min_ink"])


@dataclass
class Match:
    """How two figures line up best: `distance` (the share of strokes without a counterpart, the larger of
    the two sides'), `correlation` (of the aligned, blurred grey images), `how` in words, and for a figure
    found inside the other: where (`offset`, x and y in pixels of the other picture: the PDF's image's top
    left corner in the notebook's figure for a crop, the notebook's figure's in the PDF's image for a
    screenshot) and at what `scale` (pixels of the PDF's picture per pixel of the notebook's)."""

    distance: float
    correlation: float
    how: str
    offset: tuple[int, int] | None = None
    scale: float | None = None


def ink_distance(first: np.ndarray, second: np.ndarray, limits: Mapping[str, Any]) -> float:
    """The larger of the two shares of strong strokes (beyond [pdf_check] ink_strong from the background)
    with no faint stroke (ink_weak) of the other within ink_radius pixels, at the best relative shift of
    at most ink_shift pixels (what a placement found at one scale and rounded can be off by). Hysteresis
    between the two levels keeps a line that resampling made fainter on one side from counting as missing."""
    radius, shift = int(limits["ink_radius"]), int(limits["ink_shift"])
    near = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    strong_a, strong_b = _ink(first, float(limits["ink_strong"])), _ink(second, float(limits["ink_strong"]))
    weak_a = ndimage.binary_dilation(_ink(first, float(limits["ink_weak"])), near)
    weak_b = ndimage.binary_dilation(_ink(second, float(limits["ink_weak"])), near)
    total_a, total_b = max(int(strong_a.sum()), 1), max(int(strong_b.sum()), 1)
    height, width = first.shape
    best = 1.0
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            # first's pixel (y, x) against second's (y + dy, x + dx), where both exist
            a = strong_a[max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
            b = weak_b[max(0, dy):height - max(0, -dy), max(0, dx):width - max(0, -dx)]
            c = strong_b[max(0, dy):height - max(0, -dy), max(0, dx):width - max(0, -dx)]
            d = weak_a[max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
            best = min(best, max(int((a & ~b).sum()) / total_a, int((c & ~d).sum()) / total_b))
    return float(best)


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    a, b = first - first.mean(), second - second.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def _side_by_side(first: np.ndarray, second: np.ndarray, limits: Mapping[str, Any]) -> tuple[float, float]:
    """`ink_distance` and blurred correlation of two regions showing the same extent, both brought to the
    smaller's size (at most compare_size a side)."""
    height, width = min(first.shape[0], second.shape[0]), min(first.shape[1], second.shape[1])
    shrink = min(1.0, float(limits["compare_size"]) / max(height, width))
    height, width = max(1, round(height * shrink)), max(1, round(width * shrink))
    a, b = _resized(first, width, height), _resized(second, width, height)
    blur = float(limits["blur"])
    return ink_distance(a, b, limits), _correlation(ndimage.gaussian_filter(a, blur), ndimage.gaussian_filter(b, blur))


def likeness(first: Figure, second: Figure, size: int = 64) -> float:
    """A quick first look: the correlation of the two trimmed pictures squeezed to `size` pixels square
    (the order in which a PDF's images are compared, most alike first)."""
    return _correlation(_resized(first.grey, size, size), _resized(second.grey, size, size))


class _Searched:
    """An image to search, with its running sums (for every window's mean and spread) computed once."""

    def __init__(self, image: np.ndarray):
        values = image.astype(np.float64)
        self.image = image
        self.sums = np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        self.squares = np.pad((values * values).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def best(self, template: np.ndarray) -> tuple[float, int, int]:
        """The normalised cross-correlation's maximum over every position where `template` fits, and
        where (y, x)."""
        height, width = template.shape
        centred = template - template.mean()
        norm = float(np.sqrt((centred * centred).sum()))
        if norm == 0:
            return 0.0, 0, 0
        products = fftconvolve(self.image, centred[::-1, ::-1], mode="valid")

        def window(table: np.ndarray) -> np.ndarray:
            return table[height:, width:] - table[:-height, width:] - table[height:, :-width] + table[:-height, :-width]

        spread = np.sqrt(np.maximum(window(self.squares) - window(self.sums) ** 2 / (height * width), 0.0)) * norm
        scores = np.where(spread > 1e-6 * norm, products / np.maximum(spread, 1e-12), 0.0)
        y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return float(scores[y, x]), int(y), int(x)


Placement = tuple[float, float, float, float, float]  # correlation, top, left, height, width (outer's pixels)


def _profile_fit(long: np.ndarray, short: np.ndarray, start: float, spread: float, steps: int, pad: int
                 ) -> tuple[float, int, int]:
    """Where the 1-D profile `short`, stretched by a ratio within `spread` (at `steps` ratios), correlates best
    with `long` at most `pad` from position `start`: (correlation, offset, length)."""
    best = (-2.0, int(round(start)), len(short))
    for ratio in np.geomspace(1 / spread, spread, steps):
        length = int(round(len(short) * ratio))
        first = max(0, int(round(start)) - pad)
        last = min(len(long) - length, int(round(start)) + pad)
        if length < 8 or last < first:
            continue
        stretched = np.interp(np.linspace(0, len(short) - 1, length), np.arange(len(short)), short)
        stretched = stretched - stretched.mean()
        norm = float(np.sqrt((stretched * stretched).sum()))
        if norm == 0:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(long[first:last + length], length)
        centred = windows - windows.mean(axis=1, keepdims=True)
        spreads = np.sqrt((centred * centred).sum(axis=1)) * norm
        scores = np.where(spreads > 0, centred @ stretched / np.maximum(spreads, 1e-12), 0.0)
        at = int(np.argmax(scores))
        if scores[at] > best[0]:
            best = (float(scores[at]), first + at, length)
    return best


def _fit_axes(outer: np.ndarray, inner: np.ndarray, placed: Placement, limits: Mapping[str, Any]) -> Placement:
    """The placement made exact axis by axis: the columns' and the rows' ink profiles (plots are made of
    horizontal and vertical strokes: axes, ticks, grid lines, text baselines) fitted in scale and offset
    separately, at compare_size. A placement found by the 2-D search is right to a few per cent of scale;
    the profiles are right to a pixel."""
    factor = min(1.0, float(limits["compare_size"]) / max(outer.shape))
    big = _resized(outer, round(outer.shape[1] * factor), round(outer.shape[0] * factor))
    dark_big = np.abs(big - np.median(big))
    score, top, left, height, width = (placed[0], *(value * factor for value in placed[1:]))
    small = _resized(inner, max(8, round(width)), max(8, round(height)))
    dark_small = np.abs(small - np.median(small))
    pad = int(round(0.03 * max(height, width))) + 3
    rows = dark_big[max(0, round(top)):round(top + height)]
    columns = dark_big[:, max(0, round(left)):round(left + width)]
    fit_x = _profile_fit(ndimage.gaussian_filter1d(rows.sum(axis=0), 0.7),
                         ndimage.gaussian_filter1d(dark_small.sum(axis=0), 0.7), left, 1.03, 25, pad)
    fit_y = _profile_fit(ndimage.gaussian_filter1d(columns.sum(axis=1), 0.7),
                         ndimage.gaussian_filter1d(dark_small.sum(axis=1), 0.7), top, 1.03, 25, pad)
    if fit_x[0] < -1 or fit_y[0] < -1:
        return placed
    return (score, fit_y[1] / factor, fit_x[1] / factor, fit_y[2] / factor, fit_x[2] / factor)


def _find_inside(outer: np.ndarray, inner: np.ndarray, limits: Mapping[str, Any], deadline: Deadline
                 ) -> list[Placement]:
    """Where `inner` may show inside `outer`, at a scale where it spans at least min_cover of `outer`'s width
    or height: the best refine_candidates placements of a search over [pdf_check] scales scales at
    search_size pixels a side, each made exact by `_fit_axes`."""
    blur = float(limits["blur"])
    factor = min(1.0, float(limits["search_size"]) / max(outer.shape))
    searched = _Searched(ndimage.gaussian_filter(
        _resized(outer, round(outer.shape[1] * factor), round(outer.shape[0] * factor)), 2 * blur))
    image = searched.image
    aspect = inner.shape[0] / inner.shape[1]
    found: list[Placement] = []
    for cover in np.geomspace(float(limits["min_cover"]), 1.0, int(limits["scales"])):
        deadline.check()
        width = round(cover * image.shape[1])
        height = round(width * aspect)
        if height > image.shape[0]:
            height, width = image.shape[0], round(image.shape[0] / aspect)
        if min(width, height) < 8:
            continue
        score, y, x = searched.best(ndimage.gaussian_filter(_resized(inner, width, height), 2 * blur))
        found.append((score, y / factor, x / factor, height / factor, width / factor))
    placements = []
    for placed in sorted(found, reverse=True)[:int(limits["refine_candidates"])]:
        if placed[0] < float(limits["unlike_correlation"]):  # nothing there resembles it: not worth fitting
            break
        deadline.check()
        placements.append(_fit_axes(outer, inner, placed, limits))
    return placements


def _placed_match(outer: Figure, inner: Figure, placed: Placement, crop: bool, limits: Mapping[str, Any]
                  ) -> Match | None:
    """The comparison of `inner` with the part of `outer` where it was placed, described in the pictures'
    own pixels: where the whole of `inner` (its uniform margins, trimmed to compare, included) lies in
    `outer`'s picture, and how many of the PDF's pixels stand for one of the notebook's."""
    _, top, left, height, width = placed
    region = outer.grey[round(top):round(top) + round(height), round(left):round(left) + round(width)]
    if min(region.shape) / outer.scale < float(limits["min_side"]):  # too few pixels for a judgement
        return None
    distance, correlation = _side_by_side(region, inner.grey, limits)
    # outer's pixels per pixel of inner, along each axis: the placement's extent over inner's trimmed part
    across = (width / outer.scale) / (inner.grey.shape[1] / inner.scale)
    down = (height / outer.scale) / (inner.grey.shape[0] / inner.scale)
    if abs(across / down - 1) < 0.03:  # the aspect kept, as a crop or rescale keeps it: the longer axis's ratio,
        across = down = across if inner.grey.shape[1] >= inner.grey.shape[0] else down  # the better measured
    # inner's whole picture in outer's pixels: the placement, widened by inner's trimmed margins
    x0 = (left + outer.box[2]) / outer.scale - (inner.box[2] / inner.scale) * across
    y0 = (top + outer.box[0]) / outer.scale - (inner.box[0] / inner.scale) * down
    x1, y1 = x0 + inner.source[0] * across, y0 + inner.source[1] * down
    x0, y0 = max(0, round(x0)), max(0, round(y0))  # within outer's picture
    x1, y1 = min(outer.source[0], round(x1)), min(outer.source[1], round(y1))
    if crop:  # the PDF's picture (inner) is a part of the notebook's (outer)
        scale = 1 / across
        how = (f"the PDF's image is a crop of the figure: its part from ({x0}, {y0}) to ({x1}, {y1}) "
               f"({x1 - x0} x {y1 - y0} pixels of the notebook's), at {scale:.2f}x")
    else:  # the notebook's figure (inner) is inside the PDF's picture: a screenshot, a margin, a window
        scale = across
        how = (f"the figure found inside the PDF's image at ({x0}, {y0}) ({x1 - x0} x {y1 - y0} pixels of "
               f"the PDF's), at {scale:.2f}x")
    return Match(distance, correlation, how, (x0, y0), round(scale, 3))


def compare_figures(ours: Figure, theirs: Figure, limits: Mapping[str, Any], deadline: Deadline | None = None
                    ) -> Match:
    """The best way `theirs` (the PDF's) shows `ours` (the notebook's): whole after trimming, or one found
    inside the other (a screenshot holds the figure, a crop is inside it). Stops early once the whole
    comparison already shows the same figure."""
    deadline = deadline or unbounded()
    distance, correlation = _side_by_side(ours.grey, theirs.grey, limits)
    trimmed = ours.trimmed or theirs.trimmed
    whole = Match(distance, correlation, "whole, uniform margins trimmed" if trimmed else "whole", None,
                  round((theirs.grey.shape[1] / theirs.scale) / (ours.grey.shape[1] / ours.scale), 3))
    if verdict(whole, limits) == SAME:
        return whole
    candidates = [whole]
    for outer, inner, crop in ((ours, theirs, True), (theirs, ours, False)):
        deadline.check()
        for placed in _find_inside(outer.grey, inner.grey, limits, deadline):
            match = _placed_match(outer, inner, placed, crop, limits)
            if match is not None:
                candidates.append(match)
    return min(candidates, key=lambda m: (verdict_rank(m, limits), m.distance, -m.correlation))


SAME, UNSURE, DIFFERENT = "same figure", "could not tell", "different figure"


def verdict(match: Match, limits: Mapping[str, Any]) -> str:
    """Same: strokes line up (distance at most same_distance) where the pictures correlate (at least
    min_correlation). Different: strokes missing beyond different_distance, or pictures that do not
    correlate at all (below unlike_correlation: noise, another kind of figure). Between: could not tell."""
    if match.distance <= float(limits["same_distance"]) and match.correlation >= float(limits["min_correlation"]):
        return SAME
    if match.distance >= float(limits["different_distance"]) or match.correlation < float(limits["unlike_correlation"]):
        return DIFFERENT
    return UNSURE


def verdict_rank(match: Match, limits: Mapping[str, Any]) -> int:
    return (SAME, UNSURE, DIFFERENT).index(verdict(match, limits))

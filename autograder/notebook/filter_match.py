"""Does a notebook's filter image show THIS network's first-layer filters?

A non-blank image in the right cell is a claim; the saved weights say what the filters are. The image
is taken apart without knowing its layout, and its tiles are compared with the filters:

1. *Regions.* The background is the colour the border of the image has most; what differs from it
   by more than `background_tolerance` is content, and each connected piece of content is a region
   (a tile between white gaps, a whole grid, an axes frame with its image). Regions that fill less
   than `min_region_fill` of their bounding box are outlines (empty frames, curves) and are skipped;
   those smaller than a tile of `min_block_pixels` per filter pixel (letters) too.
2. *Cells.* Each region loses its edge rows and columns that are mostly background or of one colour
   (ticks, spines, padding), and is cut at the rows and columns of one colour that cross it (the gaps
   of a grid, white or black). What is left between the cuts is a cell. A cell (or a region) shorter
   than the size most cells share is a tile that lost edge blocks of the background's colour (a grey
   colormap's white extreme, without axes): it is also read completed to that size.
3. *Tiles.* A cell is one tile, or a grid of r x c tiles with r * c >= F and no gaps (every such
   grid whose tiles are near square is tried: the layout is unknown), and as a tile smoothed into its
   gap by bilinear interpolation (K + 1 blocks, the tile the middle K). Each tile is sampled back to
   K x K: the mean colour of the middle half of each of its K x K blocks, which is exact for a
   nearest-neighbour upscaling and robust to matplotlib's smoothing and to a pixel of misalignment.
4. *Comparison.* Each tile is correlated with each filter, so that any affine scaling (per-filter
   or global min-max) does not matter: Pearson over the K x K x 3 values (or its mean over the three
   channels, for a student who scales each channel on its own), or Spearman of the tile's luminance
   against the filter's channel sum and each single channel (a grey or monotonic colormap such as
   viridis, per-channel subplots). One reading of the whole image is chosen: which comparison, RGB
   or BGR, and which of the 8 flips and rotations of the K x K grid (a transposed reshape is still
   these filters, shown).
5. *Assignment.* Tiles are assigned to distinct filters (scipy's linear_sum_assignment, maximising
   the total correlation of each tile with the filter's best view); a filter is shown when its tile
   correlates at least `tile_correlation`, and more for tiles of few values (`tile_threshold`).
   The image shows the filters when at least `min_shown_fraction` of them are shown.

The work is bounded: a first layer of more filters, a larger kernel or more channels than the rubric's
`max_filters`, `max_kernel`, `max_channels` is not compared at all (`first_layer_problem` says why),
at most `max_layouts` grid layouts are tried per cell, at most `max_analysed_pixels` read, and a
`Deadline` ([deadlines] filters_seconds, autograder/deadlines.py) is checked in every loop.

Every number is the rubric's [filters] table. Not handled: one-channel 3x3 tiles with bilinear
smoothing, bilinear with black gaps, bicubic, colormaps whose lightness is not monotonic
(jet, hsv), filters shown unnormalised so that imshow clips most of them, tiles smaller than
`min_block_pixels` screen pixels per filter pixel, and a grid whose gaps have the tiles' own colours.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from autograder.deadlines import Deadline, unbounded
from autograder.notebook.images import ImageRefused, open_image
from autograder.rubric import load_rubric

_LUMINANCE = np.array([0.299, 0.587, 0.114])


class FigureError(ValueError):
    """The bytes are not an image that can be read."""


@dataclass(frozen=True)
class FilterMatch:
    """How well one image shows the filters: `shown` of `filters` recognised; `match` is the mean,
    over all filters, of the correlation of the tile assigned to each (0 where none was)."""

    shown: int
    filters: int
    match: float
    tiles: int
    reading: str  # which comparison and which flip of the grid gave this reading
    correlations: tuple[float, ...] = field(default=(), repr=False)

    @property
    def fraction(self) -> float:
        """The share of the filters the image shows: the score the rubric's threshold applies to."""
        return self.shown / self.filters if self.filters else 0.0

    def passed(self, limits: Mapping[str, Any]) -> bool:
        """Whether the image shows the filters, by the rubric's `min_shown_fraction`."""
        return self.filters > 0 and self.fraction >= float(limits["min_shown_fraction"])


def decode(png: bytes, max_pixels: int | None = None) -> np.ndarray:
    """The image as (H, W, 3) integers 0..255, transparency composed on white (as a notebook shows it).
    An image of more than `max_pixels` is first shrunk by a whole factor (each new pixel the mean of a
    square of old ones), so that a figure saved at a needlessly high dpi costs no more memory to read
    than one of the rubric's `max_analysed_pixels`: its tiles keep their shape, only fewer pixels each."""
    try:  # a PNG and nothing else, checked against the intake's pixel cap before decoding (images.py)
        image = open_image(png, ("PNG",), load_rubric().intake.max_image_pixels)
    except ImageRefused as exc:
        raise FigureError(f"not a readable image ({exc})") from None
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    image = image.convert("RGB")
    if max_pixels and image.width * image.height > max_pixels:
        image = image.reduce(math.ceil(math.sqrt(image.width * image.height / max_pixels)))
    return np.asarray(image, dtype=np.int16)


def _background(pixels: np.ndarray) -> np.ndarray:
    """The colour the image's border has most: the figure's face colour."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).astype(np.int64)
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return colours[int(np.argmax(counts))].astype(np.int16)


def _content(pixels: np.ndarray, background: np.ndarray, limits: Mapping[str, Any]) -> np.ndarray:
    """Which pixels differ from the background by more than `background_tolerance` in some channel."""
    return np.abs(pixels - background).max(axis=2) > float(limits["background_tolerance"])


def _uniform(lines: np.ndarray, tolerance: float, share: float) -> np.ndarray:
    """For (n, length, 3) lines: whether each is of one colour: no channel varies by more than
    `tolerance` over the middle `share` of the line (its ends may touch a spine or a neighbour)."""
    length = lines.shape[1]
    cut = min(int(length * (1 - share) / 2), (length - 1) // 2)
    middle = lines[:, cut:length - cut]
    return (middle.max(axis=1) - middle.min(axis=1)).max(axis=1) <= tolerance


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of False in `flags`."""
    runs, start = [], None
    for index, flag in enumerate(list(flags) + [True]):
        if not flag and start is None:
            start = index
        elif flag and start is not None:
            runs.append((start, index))
            start = None
    return runs


def _cells(region: np.ndarray, background: np.ndarray, limits: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of the cells of a region: its frame trimmed, cut at its gaps."""
    tolerance, share = float(limits["uniform_tolerance"]), float(limits["separator_share"])
    content = _content(region, background, limits)
    top, bottom, left, right = 0, region.shape[0], 0, region.shape[1]
    for _ in range(3):  # ticks outside the spines, the spines, then the padding inside them
        rows = region[top:bottom, left:right]
        if rows.size == 0:
            return []
        drop = (content[top:bottom, left:right].mean(axis=1) < 0.5) | _uniform(rows, tolerance, share)
        kept = np.flatnonzero(~drop)
        if kept.size == 0:
            return []
        top, bottom = top + int(kept[0]), top + int(kept[-1]) + 1
        columns = region[top:bottom, left:right].transpose(1, 0, 2)
        drop = (content[top:bottom, left:right].mean(axis=0) < 0.5) | _uniform(columns, tolerance, share)
        kept = np.flatnonzero(~drop)
        if kept.size == 0:
            return []
        left, right = left + int(kept[0]), left + int(kept[-1]) + 1
    inner = region[top:bottom, left:right]
    row_gaps = _uniform(inner, tolerance, share)
    column_gaps = _uniform(inner.transpose(1, 0, 2), tolerance, share)
    return [(top + a, top + b, left + c, left + d) for a, b in _runs(row_gaps) for c, d in _runs(column_gaps)]


def _edges(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much the colour changes between neighbouring rows, and between neighbouring columns, of a
    cell (mean over the other direction of the largest channel difference)."""
    down = np.abs(np.diff(cell, axis=0)).max(axis=2).mean(axis=1)
    across = np.abs(np.diff(cell, axis=1)).max(axis=2).mean(axis=0)  # int16: differences of 0..255 fit
    return down, across


def _fits(profile: np.ndarray, blocks: int, limits: Mapping[str, Any]) -> bool:
    """Whether a cell `len(profile) + 1` pixels long is `blocks` blocks: enough of the boundaries that
    many blocks would have show a change of colour (a nearest-neighbour upscaling changes colour only
    there; a single tile has no boundaries where a finer grid would)."""
    if blocks <= 1:
        return True
    pitch = (len(profile) + 1) / blocks
    reach = max(1, int(round(pitch * 0.15)))
    nearby = ndimage.maximum_filter1d(profile, 2 * reach + 1, mode="constant")
    centres = np.clip(np.round(np.arange(1, blocks) * pitch).astype(np.int64) - 1, 0, len(profile) - 1)
    return float(np.mean(nearby[centres] > float(limits["uniform_tolerance"]))) >= float(limits["grid_edge_share"])


def _tiles(pixels: np.ndarray, cell: tuple[int, int, int, int], kernel: int, count: int, limits: Mapping[str, Any],
           deadline: Deadline) -> list[tuple[float, float, float, float]]:
    """The tile boxes a cell may hold: itself, and every gapless grid of near-square tiles with room
    for `count` filters whose block boundaries the cell shows (at most `max_layouts` layouts tested)."""
    top, bottom, left, right = cell
    height, width = bottom - top, right - left
    smallest = kernel * float(limits["min_block_pixels"])
    aspect = float(limits["max_tile_aspect"])
    boxes = []
    layouts = {(1, 1)} | {(math.ceil(count / columns), columns) for columns in range(1, count + 1)}
    down, across = _edges(pixels[top:bottom, left:right])
    tried = 0
    for rows, columns in sorted(layouts):
        tile_h, tile_w = height / rows, width / columns
        if min(tile_h, tile_w) < smallest or not 1 / aspect <= tile_w / tile_h <= aspect:
            continue
        tried += 1
        if tried > int(limits["max_layouts"]):
            break
        deadline.check()
        if (rows, columns) != (1, 1) and not (_fits(down, rows * kernel, limits)
                                              and _fits(across, columns * kernel, limits)):
            continue
        boxes += [(top + r * tile_h, top + (r + 1) * tile_h, left + c * tile_w, left + (c + 1) * tile_w)
                  for r in range(rows) for c in range(columns)]
    return boxes


def _sample(pixels: np.ndarray, boxes: np.ndarray, kernel: int) -> np.ndarray:
    """(N, K, K, 3): the mean colour of the middle half of each of the K x K blocks of each box."""
    integral = np.zeros((pixels.shape[0] + 1, pixels.shape[1] + 1, 3))
    integral[1:, 1:] = pixels.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    fractions = (np.arange(kernel) + 0.25) / kernel, (np.arange(kernel) + 0.75) / kernel
    top, bottom, left, right = (boxes[:, i:i + 1] for i in range(4))
    y0 = np.round(top + (bottom - top) * fractions[0]).astype(np.int64)
    y1 = np.maximum(np.round(top + (bottom - top) * fractions[1]).astype(np.int64), y0 + 1)
    x0 = np.round(left + (right - left) * fractions[0]).astype(np.int64)
    x1 = np.maximum(np.round(left + (right - left) * fractions[1]).astype(np.int64), x0 + 1)
    y0, y1 = (np.clip(v, 0, pixels.shape[0])[:, :, None] for v in (y0, y1))
    x0, x1 = (np.clip(v, 0, pixels.shape[1])[:, None, :] for v in (x0, x1))
    sums = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    area = ((y1 - y0) * (x1 - x0))[..., None]
    return sums / np.maximum(area, 1)


def _shortfall_positions(start: float, stop: float, size: float, block: float) -> list[float]:
    """Where a box `size` long may start so that it holds [start, stop): flush with either end and at
    every whole block between (what was cut off is whole blocks of the background's colour)."""
    missing = size - (stop - start)
    if missing <= block / 2:
        return [start - max(missing, 0.0) / 2]
    steps = max(1, int(round(missing / block)))
    return [stop - size + missing * step / steps for step in range(steps + 1)]


def _completed(cells: list[tuple[int, int, int, int]], pieces: list[tuple[int, int, int, int]], kernel: int,
               limits: Mapping[str, Any], deadline: Deadline) -> list[tuple[float, float, float, float]]:
    """Tiles cut short, completed to the size of their neighbours. A tile drawn without axes whose
    edge blocks have the background's colour (the extreme of a grey colormap on a white figure) loses
    those blocks to the background; the other tiles of the figure say how large it is. The size of
    tiles is one that at least two cells share (within a pixel or two) and that is near square; each
    cell or piece of content (a tile split by a line of such blocks) shorter than it by at least half
    a block, but at least one block long, is tried at every position of whole blocks that holds it."""
    aspect = float(limits["max_tile_aspect"])
    smallest = kernel * float(limits["min_block_pixels"])
    sizes = [(bottom - top, right - left) for top, bottom, left, right in cells]
    shared = set()
    for height, width in sizes:
        deadline.check()
        if min(height, width) < smallest or not 1 / aspect <= width / height <= aspect:
            continue
        if sum(abs(height - h) <= 2 and abs(width - w) <= 2 for h, w in sizes) >= 2:
            shared.add((height, width))
    boxes: set[tuple[float, float, float, float]] = set()
    for tile_h, tile_w in sorted(shared):
        block_h, block_w = tile_h / kernel, tile_w / kernel
        for top, bottom, left, right in dict.fromkeys(cells + pieces):
            deadline.check()
            height, width = bottom - top, right - left
            if height > tile_h + 2 or width > tile_w + 2 or height < block_h - 2 or width < block_w - 2:
                continue
            if tile_h - height <= block_h / 2 and tile_w - width <= block_w / 2:
                continue  # a whole tile: read as it is
            boxes.update((y, y + tile_h, x, x + tile_w) for y in _shortfall_positions(top, bottom, tile_h, block_h)
                         for x in _shortfall_positions(left, right, tile_w, block_w))
    return sorted(boxes)


def _smoothed(cell: tuple[int, int, int, int], kernel: int, limits: Mapping[str, Any]
              ) -> list[tuple[float, float, float, float]]:
    """The tile inside a cell drawn with bilinear smoothing (`interpolation="bilinear"`): the colours
    blend into the gap around the tile over half a filter pixel on each side, so the cell is K + 1
    blocks long and the tile is its middle K (whose centres keep the filter's own values)."""
    top, bottom, left, right = cell
    height, width = bottom - top, right - left
    aspect = float(limits["max_tile_aspect"])
    if min(height, width) < (kernel + 1) * float(limits["min_block_pixels"]) or \
            not 1 / aspect <= width / height <= aspect:
        return []
    half_h, half_w = height / (kernel + 1) / 2, width / (kernel + 1) / 2
    return [(top + half_h, bottom - half_h, left + half_w, right - half_w)]


def find_tiles(pixels: np.ndarray, kernel: int, count: int, limits: Mapping[str, Any],
               deadline: Deadline | None = None) -> np.ndarray:
    """Every candidate tile of an image, sampled to (N, K, K, 3); more candidates than filters is
    normal (titles, other layouts' readings, a tile completed at several positions): the assignment
    keeps the ones that fit. StageTimeout past `deadline`."""
    deadline = deadline or unbounded()
    background = _background(pixels)
    content = _content(pixels, background, limits)
    labels, _ = ndimage.label(content)
    smallest = kernel * float(limits["min_block_pixels"])
    cells: list[tuple[int, int, int, int]] = []
    pieces: list[tuple[int, int, int, int]] = []
    sizes = np.bincount(labels.ravel())
    fill = float(limits["min_region_fill"])
    for label, found in enumerate(ndimage.find_objects(labels), start=1):
        deadline.check()
        if found is None:
            continue
        rows, columns = found
        height, width = rows.stop - rows.start, columns.stop - columns.start
        if height < smallest or width < smallest or sizes[label] < fill * height * width:
            continue  # too small for a tile (a letter), or an outline (an empty axes frame, a curve)
        pieces.append((rows.start, rows.stop, columns.start, columns.stop))
        cells += [(rows.start + top, rows.start + bottom, columns.start + left, columns.start + right)
                  for top, bottom, left, right in _cells(pixels[found], background, limits)]
    boxes: list[tuple[float, float, float, float]] = []
    for cell in cells:
        boxes += _tiles(pixels, cell, kernel, count, limits, deadline) + _smoothed(cell, kernel, limits)
        if len(boxes) > int(limits["max_tiles"]):
            break
    deadline.check()
    boxes += _completed(cells, pieces, kernel, limits, deadline)
    deadline.check()
    if not boxes:
        return np.zeros((0, kernel, kernel, 3))
    return _sample(pixels, np.asarray(boxes[:int(limits["max_tiles"])], dtype=np.float64), kernel)


def _standardised(vectors: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit length (a constant row stays 0: it correlates with nothing)."""
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 1e-9)


def _correlation(tiles: np.ndarray, views: np.ndarray) -> np.ndarray:
    """Pearson correlation of every tile row with every view row."""
    return _standardised(tiles) @ _standardised(views).T


def _dihedral(filters: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The 8 flips and rotations of the K x K grid of (K, K, ...) filters, named."""
    out = []
    for turns in range(4):
        turned = np.rot90(filters, turns, axes=(0, 1))
        out.append((f"rotated {90 * turns}" if turns else "as saved", turned))
        out.append((f"transposed, rotated {90 * turns}" if turns else "transposed", np.swapaxes(turned, 0, 1)))
    return out


def _readings(tiles: np.ndarray, filters: np.ndarray):
    """(name, correlation matrix N x V, filter of each view column, values compared per pair) for every
    reading of the image."""
    count = filters.shape[3]
    flat_tiles = tiles.reshape(len(tiles), -1)
    luminance = rankdata((tiles @ _LUMINANCE).reshape(len(tiles), -1), axis=1)
    for name, grid in _dihedral(filters):
        if grid.shape[2] == 3:
            views = np.moveaxis(grid, 3, 0)  # (F, K, K, 3)
            for order, channels in (("RGB", [0, 1, 2]), ("BGR", [2, 1, 0])):
                ordered = views[..., channels]
                yield (f"{order}, {name}", _correlation(flat_tiles, ordered.reshape(count, -1)), np.arange(count),
                       flat_tiles.shape[1])
                per_channel = np.mean([_correlation(tiles[..., c].reshape(len(tiles), -1),
                                                    ordered[..., c].reshape(count, -1)) for c in range(3)], axis=0)
                yield f"{order} scaled per channel, {name}", per_channel, np.arange(count), flat_tiles.shape[1]
        scalars = [grid.sum(axis=2)] + [grid[:, :, c] for c in range(grid.shape[2])] if grid.shape[2] > 1 \
            else [grid[:, :, 0]]
        views = np.concatenate([np.moveaxis(s, 2, 0).reshape(count, -1) for s in scalars])
        owners = np.tile(np.arange(count), len(scalars))
        ranked = _correlation(luminance, rankdata(views, axis=1))
        yield f"one channel or colormap, {name}", ranked, owners, luminance.shape[1]
        yield f"one channel or inverted colormap, {name}", -ranked, owners, luminance.shape[1]


def tile_threshold(values: int, limits: Mapping[str, Any]) -> float:
    """The correlation a tile of `values` numbers needs to show a filter: at least `tile_correlation`,
    and at least as unlikely by chance as `tile_significance` standard errors of Fisher's z (3x3 tiles
    in one channel have only 9 values, where a correlation of 0.85 happens by chance: they need 0.985)."""
    needed = math.tanh(float(limits["tile_significance"]) / math.sqrt(max(values - 3, 1)))
    return max(float(limits["tile_correlation"]), needed)


def compare_tiles(tiles: np.ndarray, filters: np.ndarray, limits: Mapping[str, Any],
                  deadline: Deadline | None = None) -> FilterMatch:
    """The best reading of these tiles as the filters (K, K, C, F): tiles assigned to distinct filters.
    StageTimeout past `deadline`."""
    deadline = deadline or unbounded()
    count = int(filters.shape[3])
    best = FilterMatch(0, count, 0.0, len(tiles), "no tiles found", (0.0,) * count)
    if len(tiles) == 0:
        return best
    for name, matrix, owners, values in _readings(tiles, filters.astype(np.float64)):
        deadline.check()
        threshold = tile_threshold(values, limits)
        # Each tile against each filter: its best view of that filter (channel sum or one channel), so
        # that the assignment gives tiles to distinct filters, not to distinct views of one filter.
        by_filter = np.full((count, len(matrix)), -1.0)
        np.maximum.at(by_filter, owners, matrix.T)
        rows, columns = linear_sum_assignment(by_filter.T, maximize=True)
        per_filter = np.zeros(count)
        per_filter[columns] = np.maximum(by_filter.T[rows, columns], 0.0)
        shown = int(np.sum(per_filter >= threshold))
        match = float(np.mean(per_filter))
        if (shown, match) > (best.shown, best.match):
            best = FilterMatch(shown, count, match, len(tiles), name, tuple(float(v) for v in per_filter))
    return best


def is_first_layer(array: np.ndarray) -> bool:
    """Whether an array has the shape of a conv layer's filters as this module reads them: (K, K, C, F),
    square kernels, nothing empty."""
    return array.ndim == 4 and array.shape[0] == array.shape[1] and 0 not in array.shape


def first_layer_problem(shape: tuple[int, ...], limits: Mapping[str, Any]) -> str:
    """Why the grader does not compare an image with first-layer weights of this (K, K, C, F) shape
    (more filters, a larger kernel or more input channels than the rubric's bounds), or "" when it does.
    The sentence is the student's: it names what the layer has and what the grader reads."""
    kernel, _, channels, count = (int(n) for n in shape)
    if count > int(limits["max_filters"]):
        return f"the first layer has {count} filters; the grader compares at most {int(limits['max_filters'])}"
    if kernel > int(limits["max_kernel"]):
        bound = int(limits["max_kernel"])
        return f"the first layer's kernels are {kernel} x {kernel}; the grader compares at most {bound} x {bound}"
    if channels > int(limits["max_channels"]):
        return (f"the first layer has {channels} input channels; the grader compares at most "
                f"{int(limits['max_channels'])}")
    return ""


def match_filters(png: bytes, filters: np.ndarray, limits: Mapping[str, Any],
                  deadline: Deadline | None = None) -> FilterMatch:
    """How well the image `png` shows `filters` (K, K, C, F: the first conv layer's weights).
    FigureError when the bytes are no image; ValueError for weights of another shape or out of the
    rubric's bounds (`first_layer_problem`); StageTimeout past `deadline`."""
    filters = np.asarray(filters, dtype=np.float64)
    if not is_first_layer(filters):
        raise ValueError(f"first-layer weights of shape {filters.shape}; expected (K, K, C, F)")
    problem = first_layer_problem(filters.shape, limits)
    if problem:
        raise ValueError(problem)
    deadline = deadline or unbounded()
    pixels = decode(png, int(limits["max_analysed_pixels"]))
    deadline.check()
    tiles = find_tiles(pixels, filters.shape[0], filters.shape[3], limits, deadline)
    return compare_tiles(tiles, filters, limits, deadline)


def _thumbnail(png: bytes, limits: Mapping[str, Any]) -> np.ndarray:
    """The figure's content (its background margins cut), grey, blurred and shrunk to a fixed square."""
    pixels = decode(png, int(limits["max_analysed_pixels"]))
    background = _background(pixels)
    content = _content(pixels, background, limits)
    rows, columns = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if rows.size and columns.size:
        pixels = pixels[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    grey = Image.fromarray(np.clip(pixels.astype(np.float64) @ _LUMINANCE, 0, 255).astype(np.uint8))
    size = int(limits["same_figure_size"])
    small = np.asarray(grey.resize((size, size), Image.BOX), dtype=np.float64)
    return ndimage.gaussian_filter(small, float(limits["same_figure_blur"]))


def figure_similarity(first: bytes, second: bytes, limits: Mapping[str, Any]) -> float:
    """Correlation of two figures' thumbnails: near 1 for the same figure drawn again at another size
    or resolution. Unreadable images are similar to nothing (0)."""
    try:
        a, b = _thumbnail(first, limits).ravel(), _thumbnail(second, limits).ravel()
    except FigureError:
        return 0.0
    if a.std() < 1e-6 and b.std() < 1e-6:
        return 1.0 if abs(a.mean() - b.mean()) <= float(limits["background_tolerance"]) else 0.0
    return float(_correlation(a[None], b[None])[0, 0])


def same_figure(first: bytes, second: bytes, limits: Mapping[str, Any]) -> bool:
    """Whether two images are the same figure, by the rubric's `same_figure_correlation`."""
    return figure_similarity(first, second, limits) >= float(limits["same_figure_correlation"])


def render_filters(filters: np.ndarray, min_width: int) -> bytes:
    """The filters (K, K, C, F) as a PNG grid for staff: each scaled to 0..1 on its own, a white
    gap between tiles, upscaled by whole pixels (nearest neighbour) to at least `min_width` wide.
    RGB for three input channels, else the channel mean in grey."""
    filters = np.asarray(filters, dtype=np.float64)
    kernel, _, channels, count = filters.shape
    tiles = np.moveaxis(filters if channels == 3 else np.repeat(filters.mean(axis=2, keepdims=True), 3, axis=2), 3, 0)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    span = tiles.max(axis=(1, 2, 3), keepdims=True) - low
    tiles = np.divide(tiles - low, span, out=np.full_like(tiles, 0.5), where=span > 0)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (kernel + 1) + 1, columns * (kernel + 1) + 1, 3))
    for index in range(count):
        r, c = divmod(index, columns)
        grid[1 + r * (kernel + 1):1 + r * (kernel + 1) + kernel, 1 + c * (kernel + 1):1 + c * (kernel + 1) + kernel] = \
            tiles[index]
    scale = max(1, math.ceil(min_width / grid.shape[1]))
    big = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.round(big * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()

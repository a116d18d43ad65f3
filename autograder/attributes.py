"""The attributes of a graded case that real bugs hinge on: padding 0, a non-square input, ...

A case of a conv or pool item has a geometry (batch, height, width, channels, kernel or pool
size, stride, padding); each attribute splits cases in two sides, each side with a code
(`padding_0` / `padding_positive`) and words for feedback. Two modules use them: the fixture
generator, which draws hidden cases until every attribute shows up on both sides and no two
attributes split the cases alike (so a failure pattern points at one attribute only), and the
diagnosis, which names the attribute that separates an item's failing cases from its passing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Geometry:
    """The shape side of one case; a pool has its pool size as `kernel` and no padding."""

    batch: int
    height: int
    width: int
    channels: int
    kernel: int
    stride: int
    padding: int = 0

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1


@dataclass(frozen=True)
class Attribute:
    """A yes/no property of a case; `yes`/`no` are the codes of its two sides."""

    id: str
    yes: str
    no: str
    yes_text: str
    no_text: str
    test: Callable[[Geometry], bool]

    def side(self, geometry: Geometry) -> str:
        return self.yes if self.test(geometry) else self.no


def _uneven(g: Geometry) -> bool:
    return (g.height + 2 * g.padding - g.kernel) % g.stride != 0 or (g.width + 2 * g.padding - g.kernel) % g.stride != 0


PADDING_0 = Attribute("padding", "padding_0", "padding_positive", "padding 0", "padding > 0", lambda g: g.padding == 0)
NON_SQUARE = Attribute("shape", "non_square", "square", "a non-square input", "a square input",
                       lambda g: g.height != g.width)
BATCH = Attribute("batch", "batch_many", "batch_one", "a batch of more than one image", "a batch of one image",
                  lambda g: g.batch > 1)
CHANNELS = Attribute("channels", "channels_many", "channels_one", "more than one channel", "one channel",
                     lambda g: g.channels > 1)
KERNEL = Attribute("kernel", "kernel_many", "kernel_one", "a kernel larger than 1x1", "a 1x1 kernel",
                   lambda g: g.kernel > 1)
STRIDE = Attribute("stride", "stride_many", "stride_one", "stride > 1", "stride 1", lambda g: g.stride > 1)
UNEVEN = Attribute("uneven", "uneven_stride", "even_stride", "a stride that does not divide the input",
                   "a stride that divides the input", _uneven)
OVERLAP = Attribute("overlap", "overlapping", "disjoint", "overlapping windows (stride < pool size)",
                    "disjoint windows (stride >= pool size)", lambda g: g.stride < g.kernel)

#: The attributes that matter to each item's cases (TestCNN's cases have none: fixed shapes).
BY_ITEM: dict[str, tuple[Attribute, ...]] = {
    "output_size": (PADDING_0, NON_SQUARE, STRIDE, UNEVEN),
    "conv_forward": (PADDING_0, NON_SQUARE, BATCH, CHANNELS, KERNEL, STRIDE, UNEVEN),
    "conv_backward": (PADDING_0, NON_SQUARE, BATCH, CHANNELS, KERNEL, STRIDE, UNEVEN),
    "pool_forward": (NON_SQUARE, BATCH, CHANNELS, STRIDE, UNEVEN, OVERLAP),
    "pool_backward": (NON_SQUARE, BATCH, CHANNELS, STRIDE, UNEVEN, OVERLAP),
}

#: Words for every side code, for reports that read codes (the class report).
SIDE_TEXT: dict[str, str] = {code: text for attribute in {a for group in BY_ITEM.values() for a in group}
                             for code, text in ((attribute.yes, attribute.yes_text), (attribute.no, attribute.no_text))}


def geometry(item: str, args: dict[str, Any], input_shape: Sequence[int] | None) -> Geometry | None:
    """A case's geometry from its arguments and input shape (N, H, W, C); None where shapes are fixed."""
    if item not in BY_ITEM or input_shape is None or len(input_shape) != 4:
        return None
    n, h, w, c = (int(v) for v in input_shape)
    if item.startswith("pool"):
        return Geometry(n, h, w, c, int(args["pool_size"]), int(args["stride"]))
    return Geometry(n, h, w, c, int(args["kernel_size"]), int(args["stride"]), int(args["padding"]))


def sides(item: str, found: Geometry | None) -> tuple[str, ...]:
    """The side code of each of the item's attributes for one case (empty without a geometry)."""
    if found is None:
        return ()
    return tuple(attribute.side(found) for attribute in BY_ITEM[item])


def separates(item: str, geometries: Sequence[Geometry], at_least: int = 1) -> list[str]:
    """What keeps `geometries` from pointing every single-attribute bug at its attribute; empty when none.

    Every attribute must show each side in `at_least` cases, and no two attributes may split the
    cases alike (the same split or its mirror image), or a failure on exactly one side could not be
    told apart."""
    problems = []
    splits = {}
    for attribute in BY_ITEM[item]:
        split = tuple(attribute.test(g) for g in geometries)
        for count, text in ((sum(split), attribute.yes_text), (len(split) - sum(split), attribute.no_text)):
            if count < at_least:
                problems.append(f"{item}: {count} case(s) with {text}, fewer than {at_least}")
        splits[attribute.id] = split
    for first, second in combinations(splits, 2):
        a, b = splits[first], splits[second]
        if a == b or a == tuple(not v for v in b):
            problems.append(f"{item}: {first} and {second} split the cases alike")
    return problems
